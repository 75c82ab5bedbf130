/**
 * `warden grants list|revoke`: what users allowed OAuth clients to do as
 * agents on their behalf (issue #6). Talks to the running gateway's admin API
 * like `warden approvals`, so a revocation ends the grant's sessions at once
 * and is audited with the operator's name.
 */
import type { Command } from 'commander';
import type { UserGrant } from '../oauth/index.js';
import { type ApiOptions, run, withApiOptions } from './approvals.js';
import { printJson } from './output.js';

/** A grant as the admin API sends it: UserGrant with its times as ISO strings. */
type Grant = Omit<UserGrant, 'createdAt' | 'updatedAt' | 'lastUsedAt' | 'revokedAt'> & {
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
};

function line(g: Grant): string {
  const state = g.revokedAt ? `revoked ${g.revokedAt} by ${g.revokedBy ?? '?'}` : 'active';
  return `${g.id}  ${state}  user ${g.userId}  agent ${g.agentId}  client ${g.clientName ?? g.clientId} → ${g.redirectHost ?? '?'}  [${g.scopes.join(' ')}]${g.lastUsedAt ? `  last used ${g.lastUsedAt}` : ''}`;
}

/** Register `grants`. */
export function registerGrants(program: Command): void {
  const grants = program
    .command('grants')
    .description(
      "Users' delegated grants: which OAuth clients act as which agent for whom (talks to the running gateway)",
    )
    .addHelpText(
      'after',
      `
Authentication: --token TOKEN, or WARDEN_OPERATOR_TOKEN, or --as OPERATOR (listing needs the
admin or auditor role, revoking needs admin).

Examples:
  warden grants list --as ops --user alice
  warden grants revoke 3Jx…Qk --as ops --reason "laptop lost"`,
    );

  withApiOptions(
    grants
      .command('list')
      .description('List grants, newest first (active ones unless --revoked)')
      .option('--user <id>', 'only this user')
      .option('--agent <id>', 'only this agent')
      .option('--revoked', 'include revoked grants')
      .option('--limit <n>', 'at most n (default 500)'),
  ).action(
    async (opts: ApiOptions & { user?: string; agent?: string; revoked?: boolean; limit?: string }) => {
      await run(opts, async (api) => {
        const q = new URLSearchParams();
        if (opts.user) q.set('user', opts.user);
        if (opts.agent) q.set('agent', opts.agent);
        if (opts.revoked) q.set('revoked', 'true');
        if (opts.limit) q.set('limit', opts.limit);
        const body = (await api('GET', `/admin/v1/grants${q.size > 0 ? `?${q}` : ''}`)) as {
          grants: Grant[];
        };
        if (opts.json) return printJson(body);
        if (body.grants.length === 0) return void process.stdout.write('no grants\n');
        for (const g of body.grants) process.stdout.write(`${line(g)}\n`);
      });
    },
  );

  withApiOptions(
    grants
      .command('revoke <id>')
      .description('Revoke a grant: its tokens stop working and its sessions end at once')
      .option('--reason <text>', 'why (recorded in the audit log)')
      .addHelpText(
        'after',
        '\nGrant ids may start with "-": put the id after "--", e.g.\n  warden grants revoke --reason "left the team" -- -Xy3…',
      ),
  ).action(async (id: string, opts: ApiOptions & { reason?: string }) => {
    await run(opts, async (api) => {
      const body = (await api('POST', `/admin/v1/grants/${encodeURIComponent(id)}/revoke`, {
        ...(opts.reason === undefined ? {} : { reason: opts.reason }),
      })) as { grant: Grant; sessionsRevoked: number; repeated: boolean };
      if (opts.json) return printJson(body);
      process.stdout.write(
        body.repeated
          ? `already revoked: ${line(body.grant)}\n`
          : `revoked (${body.sessionsRevoked} session${body.sessionsRevoked === 1 ? '' : 's'} ended): ${line(body.grant)}\n`,
      );
    });
  });
}
