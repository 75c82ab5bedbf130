/**
 * `warden kill AGENT`, `warden kill --session ID` and `warden revive AGENT`:
 * the kill switch from the command line. They call the running gateway's admin
 * API with an operator token, so the kill reaches in-flight calls (here and, via
 * Redis or the store poll, in every other process), is audited with the
 * operator's id, and alerts like a kill from anywhere else.
 */
import type { Command } from 'commander';
import { WardenError } from '../errors.js';
import type { KillReport } from '../monitor/index.js';
import { type ApiOptions, run, withApiOptions } from './approvals.js';
import { printJson } from './output.js';

interface KillOptions extends ApiOptions {
  reason: string;
  session?: string;
}

interface BreakerOptions extends ApiOptions {
  agent?: string;
  session?: string;
}

/** Register `kill`, `revive` and `breakers`. */
export function registerKill(program: Command): void {
  withApiOptions(
    program
      .command('kill [agent]')
      .description(
        'Stop an agent now: revoke every token and session, abort its running calls on every gateway process, deny its pending approvals, refuse new sessions until revived',
      )
      .requiredOption('-r, --reason <text>', 'why (audited, and sent to the operators)')
      .option('--session <id>', 'stop one session only (the agent keeps running)'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  warden kill support-bot -r "sending mail to unknown recipients" --as alice\n  warden kill --session ses_1234 -r "looping" --json',
    )
    .action((agent: string | undefined, opts: KillOptions) =>
      run(opts, async (api) => {
        if ((agent === undefined) === (opts.session === undefined)) {
          throw new WardenError('INVALID_REQUEST', 'name an agent, or a session with --session (not both)');
        }
        const path =
          opts.session !== undefined
            ? `/admin/v1/sessions/${encodeURIComponent(opts.session)}/kill`
            : `/admin/v1/agents/${encodeURIComponent(agent as string)}/kill`;
        const out = (await api('POST', path, { reason: opts.reason })) as { kill: KillReport };
        if (opts.json) return printJson(out.kill);
        const k = out.kill;
        const what =
          k.scope === 'agent' ? `agent ${k.agentId}` : `session ${k.sessionId} of agent ${k.agentId}`;
        const lines = [
          k.repeated ? `${what} was already stopped.` : `Killed ${what}.`,
          `  sessions revoked:  ${k.sessionsRevoked}`,
          `  calls aborted:     ${k.callsAborted} (in the process that answered)`,
          `  approvals denied:  ${k.approvalsDenied}`,
          `  other processes:   ${k.broadcast ? 'told through Redis' : 'will see it on their store poll (about a second)'}`,
        ];
        if (k.scope === 'agent') lines.push(`Re-enable with: warden revive ${k.agentId} -r "<why>"`);
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );

  withApiOptions(
    program
      .command('revive <agent>')
      .description(
        'Re-enable a killed (or disabled) agent: it may open new sessions; its old ones stay revoked',
      )
      .requiredOption('-r, --reason <text>', 'why (audited)'),
  ).action((agent: string, opts: KillOptions) =>
    run(opts, async (api) => {
      const out = (await api('POST', `/admin/v1/agents/${encodeURIComponent(agent)}/enable`, {
        reason: opts.reason,
      })) as { agent: Record<string, unknown>; repeated: boolean };
      if (opts.json) return printJson(out);
      process.stdout.write(
        out.repeated ? `Agent ${agent} was already active.\n` : `Revived agent ${agent}.\n`,
      );
    }),
  );

  const breakers = program
    .command('breakers')
    .description('Circuit breakers: which are open, and resetting one (admins)');
  withApiOptions(
    breakers.command('list').description('List the open circuit breakers (agents and sessions)'),
  ).action((opts: ApiOptions) =>
    run(opts, async (api) => {
      const out = (await api('GET', '/admin/v1/breakers')) as { breakers: Array<Record<string, unknown>> };
      if (opts.json) return printJson(out.breakers);
      if (out.breakers.length === 0) {
        process.stdout.write('No circuit breaker is open.\n');
        return;
      }
      for (const b of out.breakers) {
        const until = b.untilReset ? 'until reset' : `until ${String(b.openUntil)}`;
        process.stdout.write(
          `${String(b.scope).padEnd(8)} ${String(b.id).padEnd(36)} ${String(b.reason)} (${until})\n`,
        );
      }
    }),
  );
  withApiOptions(
    breakers
      .command('reset')
      .description("Close an agent's or a session's circuit breaker (and zero its counted cost)")
      .option('--agent <id>', "the agent's breaker")
      .option('--session <id>', "one session's breaker"),
  ).action((opts: BreakerOptions) =>
    run(opts, async (api) => {
      if ((opts.agent === undefined) === (opts.session === undefined)) {
        throw new WardenError('INVALID_REQUEST', 'name --agent or --session (one of them)');
      }
      const path =
        opts.agent !== undefined
          ? `/admin/v1/agents/${encodeURIComponent(opts.agent)}/breaker/reset`
          : `/admin/v1/sessions/${encodeURIComponent(opts.session as string)}/breaker/reset`;
      const out = (await api('POST', path, {})) as { breaker: Record<string, unknown>; repeated: boolean };
      if (opts.json) return printJson(out);
      const what = opts.agent !== undefined ? `agent ${opts.agent}` : `session ${opts.session}`;
      process.stdout.write(
        out.repeated ? `The breaker of ${what} was not open.\n` : `Reset the breaker of ${what}.\n`,
      );
    }),
  );
}
