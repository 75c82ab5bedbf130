/**
 * `warden audit hmac [VALUE|-]` (issue #9): the audit HMAC of a value, as the log
 * stores it in place of a redacted secret, and with `--search` the entries that
 * hold it. The lookup is audited (AUDIT_QUERIED: the HMAC, never the value).
 */
import type { Command } from 'commander';
import { WardenError } from '../errors.js';
import { loadForCli } from './context.js';
import { iso, printJson, reportError } from './output.js';

/** More than any secret worth looking up: stops `- < big-file` early. */
const MAX_VALUE_BYTES = 65_536;

interface HmacOptions {
  config?: string;
  json?: boolean;
  search?: boolean;
  limit: string;
}

/** Everything on stdin, less one trailing newline (what `echo` or a here-string adds). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_VALUE_BYTES) throw new WardenError('INVALID_REQUEST', 'stdin is too long for a value');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (text === '') throw new WardenError('INVALID_REQUEST', 'stdin was empty');
  return text;
}

/** Register `audit hmac` on the `audit` command group. */
export function registerAuditHmac(audit: Command): void {
  audit
    .command('hmac')
    .description(
      'Print the audit HMAC of a value (how the log stores a redacted secret); --search lists the entries holding it',
    )
    .argument('[value]', 'the value, or - to read it from stdin (keeps it out of shell history)')
    .option('-c, --config <file>', 'config file')
    .option('--search', 'also list the entries whose parameters or data hold the HMAC (a full scan)')
    .option('--limit <n>', 'with --search: at most this many entries, newest first', '100')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      '\nThe key is audit.hmac.key (by default <dataDir>/audit-hmac.key): use the gateway\'s own.\nThe lookup is audited as AUDIT_QUERIED (the HMAC, never the value).\n\nExample:\n  printf %s "$SUSPECT_PASSWORD" | warden audit hmac - --search',
    )
    .action(async (value: string | undefined, opts: HmacOptions) => {
      try {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
          throw new WardenError('INVALID_REQUEST', '--limit must be an integer from 1 to 10000');
        }
        if (value === undefined) {
          throw new WardenError('INVALID_REQUEST', 'give the value, or - to read it from stdin');
        }
        const text = value === '-' ? await readStdin() : value;
        const { config } = await loadForCli(opts);
        const { AuditLog, loadAuditHmacKey, lookupHmac } = await import('../audit/index.js');
        const { openStore } = await import('../store/index.js');
        // Never a new key here: an HMAC under a key the log was not written with matches nothing.
        const hmac = await loadAuditHmacKey({ ...config.audit.hmac.key, generate: false });
        const store = await openStore(config.store.url);
        try {
          const r = await lookupHmac(
            { store, hmac, audit: new AuditLog(store, { hmac }) },
            {
              value: text,
              search: opts.search === true,
              limit,
              actorId: `operator:${process.env.USER ?? 'unknown'}`,
              traceId: `cli-hmac-${Date.now()}`,
              via: 'cli',
            },
          );
          if (opts.json) {
            printJson(
              r.matches === undefined
                ? { hmac: r.hmac }
                : { hmac: r.hmac, matches: r.matches.map((m) => ({ ...m, ts: iso(m.ts) })) },
            );
            return;
          }
          process.stdout.write(`${r.hmac}\n`);
          if (r.matches === undefined) return;
          if (r.matches.length === 0) process.stdout.write('no entry holds it\n');
          for (const m of r.matches) {
            process.stdout.write(`${m.seq}\t${iso(m.ts)}\t${m.event}\t${m.agentId ?? '-'}\t${m.traceId}\n`);
          }
        } finally {
          await store.close();
        }
      } catch (e) {
        reportError(e, opts.json);
      }
    });
}
