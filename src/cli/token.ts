/** `warden token issue`: an operator mints a session token for a registered agent. */
import type { Command } from 'commander';
import { WardenError } from '../errors.js';
import { parseDuration } from '../util/duration.js';
import { loadForCli } from './context.js';
import { iso, printJson, reportError } from './output.js';

interface IssueOptions {
  config?: string;
  agent: string;
  ttl?: string;
  scope?: string[];
  user?: string;
  json?: boolean;
}

/** Register `token issue`. */
export function registerToken(program: Command): void {
  const token = program.command('token').description('Session tokens');
  token
    .command('issue')
    .description(
      'Mint a short-lived session token for a registered agent (bootstrap and testing); prints only the token',
    )
    .requiredOption('-a, --agent <id>', 'agent id')
    .option('--ttl <duration>', 'lifetime, e.g. 5m (at most the configured tokens.ttl, itself at most 15m)')
    .option(
      '--scope <scopes>',
      'only these scopes (space- or comma-separated, repeatable): tool:<name>:execute, or a resource scope ' +
        "such as orders:read:user:usr_abc that one of the agent's patterns covers; default: every tool scope plus the agent's wildcard-free resource scopes",
      (v: string, prev: string[] = []) => [...prev, ...v.split(/[\s,]+/).filter(Boolean)],
    )
    .option(
      '--user <id>',
      'the user the agent acts for in this session (policies see context.user; that user may not approve its requests)',
    )
    .option('-c, --config <file>', 'config file')
    .option('--json', 'print JSON: token, sessionId, agentId, expiresAt, scopes')
    .action(async (opts: IssueOptions) => {
      try {
        const { config } = await loadForCli(opts);
        const { openServices, syncAgents } = await import('../server/services.js');
        const s = await openServices(config);
        try {
          await syncAgents(s, config);
          await s.keys.init();
          let ttlMs: number | undefined;
          if (opts.ttl !== undefined) {
            try {
              ttlMs = parseDuration(opts.ttl);
            } catch (e) {
              throw new WardenError('INVALID_REQUEST', `--ttl: ${(e as Error).message}`);
            }
            if (ttlMs < 1000 || ttlMs > config.tokens.ttlMs) {
              throw new WardenError(
                'INVALID_REQUEST',
                `--ttl must be between 1s and the configured maximum ${config.tokens.ttlMs / 60_000} minutes`,
              );
            }
          }
          const issued = await s.tokens.issue(opts.agent, {
            ...(ttlMs === undefined ? {} : { ttlMs }),
            ...(opts.scope === undefined ? {} : { scopes: opts.scope }),
            ...(opts.user === undefined ? {} : { userId: opts.user }),
          });
          if (opts.json) {
            printJson({
              token: issued.token,
              tokenType: issued.tokenType,
              sessionId: issued.sessionId,
              agentId: issued.agentId,
              expiresAt: iso(issued.expiresAt),
              scopes: issued.scopes,
            });
          } else {
            process.stdout.write(`${issued.token}\n`);
          }
        } finally {
          await s.store.close();
        }
      } catch (e) {
        reportError(e, opts.json);
      }
    });
}
