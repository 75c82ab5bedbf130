/** `warden agents register|list|show|disable|enable`: the agent registry from the command line. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { WardenError } from '../errors.js';
import type { Agent } from '../identity/index.js';
import type { Services } from '../server/services.js';
import { parseDuration } from '../util/duration.js';
import { loadForCli } from './context.js';
import { iso, printJson, reportError } from './output.js';

const list = (v: string, prev: string[] = []) => [
  ...prev,
  ...v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

interface CommonOptions {
  config?: string;
  json?: boolean;
}

/** Run `fn` with services open and agents synced from config; errors are reported, never thrown. */
async function withServices(opts: CommonOptions, fn: (s: Services) => Promise<void>): Promise<void> {
  try {
    const { config } = await loadForCli(opts);
    // Loaded on use: the store and identity stack are heavy, and `--help` should not pay for them.
    const { openServices, syncAgents } = await import('../server/services.js');
    const s = await openServices(config);
    try {
      await syncAgents(s, config);
      await fn(s);
    } finally {
      await s.store.close();
    }
  } catch (e) {
    reportError(e, opts.json);
  }
}

/** An agent as JSON for people and machines: times ISO, the public key's thumbprint-ish summary. */
function view(a: Agent) {
  return {
    ...a,
    createdAt: iso(a.createdAt),
    updatedAt: iso(a.updatedAt),
    expiresAt: iso(a.expiresAt),
  };
}

/** Parse --expires: an ISO date-time or a duration from now (e.g. 30d). */
export function parseExpiry(value: string, now: number): number {
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/.test(value)) return now + parseDuration(value);
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new WardenError(
      'INVALID_REQUEST',
      `--expires: expected an ISO date-time or a duration like 30d, got "${value}"`,
    );
  return t;
}

/** Register the `agents` command group. */
export function registerAgents(program: Command): void {
  const agents = program.command('agents').description('Agent identities (non-human identities)');

  agents
    .command('list')
    .description('List registered agents')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output')
    .action((opts: CommonOptions) =>
      withServices(opts, async (s) => {
        const all = await s.agents.list();
        if (opts.json) return printJson(all.map(view));
        if (all.length === 0) return void process.stdout.write('No agents registered.\n');
        const now = s.clock.now();
        for (const a of all) {
          const state = a.status === 'disabled' ? 'disabled' : a.expiresAt <= now ? 'expired' : 'active';
          process.stdout.write(
            `${a.id.padEnd(24)} ${a.type.padEnd(20)} ${state.padEnd(9)} expires ${iso(a.expiresAt)}  allowed: ${a.allowedTools.join(', ') || '-'}\n`,
          );
        }
      }),
    );

  agents
    .command('show <id>')
    .description('Show one agent')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output')
    .action((id: string, opts: CommonOptions) =>
      withServices(opts, async (s) => {
        const a = await s.agents.get(id);
        if (!a) throw new WardenError('NOT_FOUND', `No agent "${id}"`);
        const active = await s.sessions.countActive(a.id, s.clock.now());
        if (opts.json) return printJson({ ...view(a), activeSessions: active });
        const v = view(a);
        const rows: Array<[string, string]> = [
          ['id', v.id],
          ['type', v.type],
          ['version', v.version],
          ['environment', v.environment],
          ['owner', v.owner],
          ['status', v.status + (v.disabledReason ? ` (${v.disabledReason})` : '')],
          ['created', v.createdAt],
          ['expires', v.expiresAt],
          ['max sessions', String(v.maxConcurrentSessions)],
          ['active sessions', String(active)],
          ['allowed tools', v.allowedTools.join(', ') || '-'],
          ['denied tools', v.deniedTools.join(', ') || '-'],
          ['scopes', v.scopes.join(', ') || '-'],
          ['constraints', JSON.stringify(v.constraints)],
          [
            'public key',
            v.publicJwk
              ? `${String(v.publicJwk.kty)} ${String(v.publicJwk.crv ?? '')}`
              : 'none (operator-issued tokens only)',
          ],
          ['source', v.source],
        ];
        for (const [k, val] of rows) process.stdout.write(`${k.padEnd(16)} ${val}\n`);
      }),
    );

  agents
    .command('register')
    .description('Register a new agent identity')
    .requiredOption('--id <id>', 'agent id')
    .requiredOption('--type <type>', "agent type, e.g. 'customer-support'")
    .requiredOption('--owner <team>', 'team responsible')
    .requiredOption('--expires <when>', 'mandatory expiry: ISO date-time or a duration from now (e.g. 30d)')
    .option('--agent-version <version>', 'agent version, for audit', '1.0.0')
    .option('--environment <env>', 'production | staging | development', 'development')
    .option('--max-sessions <n>', 'max concurrent sessions', '5')
    .option('--allow <tools>', 'allowed tools (comma-separated, repeatable)', list, [])
    .option('--deny <tools>', 'denied tools (comma-separated, repeatable)', list, [])
    .option(
      '--scope <patterns>',
      'resource-scope patterns the agent may request, e.g. orders:read:user:* (comma-separated, repeatable)',
      list,
      [],
    )
    .option('--public-key <file>', 'public JWK file for private_key_jwt')
    .option('--max-tool-calls <n>', 'max tool calls per session')
    .option('--cidr <cidrs>', 'allowed client CIDRs (comma-separated, repeatable)', list, [])
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output')
    .action(
      (
        opts: CommonOptions & {
          id: string;
          type: string;
          owner: string;
          expires: string;
          agentVersion: string;
          environment: string;
          maxSessions: string;
          allow: string[];
          deny: string[];
          scope: string[];
          publicKey?: string;
          maxToolCalls?: string;
          cidr: string[];
        },
      ) =>
        withServices(opts, async (s) => {
          const maxSessions = Number(opts.maxSessions);
          if (!Number.isInteger(maxSessions) || maxSessions < 1) {
            throw new WardenError('INVALID_REQUEST', '--max-sessions must be a positive integer');
          }
          let publicJwk: Record<string, unknown> | null = null;
          if (opts.publicKey) {
            try {
              publicJwk = JSON.parse(readFileSync(opts.publicKey, 'utf8')) as Record<string, unknown>;
            } catch (e) {
              throw new WardenError(
                'INVALID_REQUEST',
                `--public-key: cannot read a JWK from ${opts.publicKey}: ${(e as Error).message}`,
              );
            }
            for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) {
              if (k in publicJwk)
                throw new WardenError(
                  'INVALID_REQUEST',
                  '--public-key: the file holds a PRIVATE key; register the public half only',
                );
            }
          }
          const maxToolCalls = opts.maxToolCalls === undefined ? undefined : Number(opts.maxToolCalls);
          if (maxToolCalls !== undefined && (!Number.isInteger(maxToolCalls) || maxToolCalls < 1)) {
            throw new WardenError('INVALID_REQUEST', '--max-tool-calls must be a positive integer');
          }
          const expiresAt = parseExpiry(opts.expires, s.clock.now());
          if (expiresAt <= s.clock.now()) {
            throw new WardenError(
              'INVALID_REQUEST',
              `--expires is in the past (${iso(expiresAt)}): the agent could never get a session`,
            );
          }
          const agent = await s.agents.register(
            {
              id: opts.id,
              type: opts.type,
              version: opts.agentVersion,
              environment: opts.environment,
              owner: opts.owner,
              expiresAt,
              maxConcurrentSessions: maxSessions,
              allowedTools: opts.allow,
              deniedTools: opts.deny,
              scopes: opts.scope,
              publicJwk: publicJwk as Agent['publicJwk'],
              constraints: {
                ...(maxToolCalls === undefined ? {} : { maxToolCalls }),
                ...(opts.cidr.length ? { allowedCidrs: opts.cidr } : {}),
              },
            },
            'cli',
          );
          await s.audit.append({
            traceId: `cli-${s.clock.now()}`,
            event: 'AGENT_REGISTERED',
            actorType: 'HUMAN',
            actorId: `operator:${process.env.USER ?? 'unknown'}`,
            agentId: agent.id,
            agentType: agent.type,
            data: {
              source: 'cli',
              allowedTools: agent.allowedTools,
              deniedTools: agent.deniedTools,
              scopes: agent.scopes,
            },
          });
          if (opts.json) return printJson(view(agent));
          process.stdout.write(`Registered agent ${agent.id} (expires ${iso(agent.expiresAt)}).\n`);
        }),
    );

  agents
    .command('disable <id>')
    .description('Disable an agent: it gets no new session, and its open sessions are revoked')
    .option('--reason <text>', 'why (recorded in the audit log)', 'disabled by operator')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output')
    .action((id: string, opts: CommonOptions & { reason: string }) =>
      withServices(opts, async (s) => {
        const agent = await s.agents.disable(id, opts.reason);
        const revoked = await s.sessions.revokeAllForAgent(id, `agent disabled: ${opts.reason}`);
        await s.audit.append({
          traceId: `cli-${s.clock.now()}`,
          event: 'AGENT_DISABLED',
          actorType: 'HUMAN',
          actorId: `operator:${process.env.USER ?? 'unknown'}`,
          agentId: id,
          agentType: agent.type,
          data: { reason: opts.reason, sessionsRevoked: revoked },
        });
        if (opts.json) return printJson({ ...view(agent), sessionsRevoked: revoked });
        process.stdout.write(`Disabled agent ${id}; revoked ${revoked} open session(s).\n`);
      }),
    );

  agents
    .command('enable <id>')
    .description('Re-enable a disabled agent')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output')
    .action((id: string, opts: CommonOptions) =>
      withServices(opts, async (s) => {
        const agent = await s.agents.enable(id);
        await s.audit.append({
          traceId: `cli-${s.clock.now()}`,
          event: 'AGENT_UPDATED',
          actorType: 'HUMAN',
          actorId: `operator:${process.env.USER ?? 'unknown'}`,
          agentId: id,
          agentType: agent.type,
          data: { status: 'active' },
        });
        if (opts.json) return printJson(view(agent));
        process.stdout.write(`Enabled agent ${id}.\n`);
      }),
    );
}
