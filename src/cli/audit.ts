/** `warden audit verify|tail`: prove the chain, read the latest entries. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { AuditEntry } from '../audit/index.js';
import { WardenError } from '../errors.js';
import { registerAuditExport } from './audit-export.js';
import { registerAuditHmac } from './audit-hmac.js';
import { registerAuditProofs } from './audit-proofs.js';
import { loadForCli } from './context.js';
import { printJson, reportError } from './output.js';
import { progress } from './progress.js';

interface AuditOptions {
  config?: string;
  json?: boolean;
}

/** Register the `audit` command group. */
export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('The tamper-evident audit log');

  audit
    .command('verify')
    .description(
      'Recompute the hash chain and the Merkle tree, check every signed checkpoint; exit 0 when intact, 1 naming the first bad entry and the damage',
    )
    .option('-c, --config <file>', 'config file')
    .option(
      '--public-key <file...>',
      'trust these checkpoint public keys (JWK or JWKS) instead of the configured ones',
    )
    .option(
      '--checkpoints <file...>',
      'published checkpoints (JSON lines) to hold the log against; default: audit.checkpoints.publish.file when it exists',
    )
    .option('--chain-only', 'check the hash chain alone (no tree, no checkpoints)')
    .option('--archive <file>', 'verify an archive file on its own instead of the store')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      '\nDamage kinds: modified, deleted, inserted, reordered, truncated, head-mismatch,\ncheckpoint-signature, tree-mismatch (docs/audit.md explains each).\n\nExample:\n  warden audit verify --checkpoints /mnt/worm/checkpoints.jsonl',
    )
    .action(
      async (
        opts: AuditOptions & {
          publicKey?: string[];
          checkpoints?: string[];
          chainOnly?: boolean;
          archive?: string;
        },
      ) => {
        try {
          const { config } = await loadForCli(opts);
          if (opts.archive !== undefined) {
            const { verifyArchive } = await import('../audit/index.js');
            const { trustedKeysFor } = await import('./audit-proofs.js');
            const r = await verifyArchive(opts.archive, await trustedKeysFor(config, opts.publicKey));
            const { header: _h, frontier: _f, ...shown } = r;
            if (opts.json) printJson(shown);
            else if (r.ok) {
              process.stdout.write(
                `archive intact: entries ${r.from}..${r.through} (${r.entries}) match the checkpoint signed at ${r.through}; sha256 ${r.sha256}\n`,
              );
            } else {
              process.stdout.write(
                `archive BROKEN at entry ${r.problem?.seq} (${r.problem?.kind}): ${r.problem?.message}\n`,
              );
            }
            process.exitCode = r.ok ? 0 : 1;
            return;
          }
          const { openStore } = await import('../store/index.js');
          const { verifyChain } = await import('../audit/index.js');
          const { trustedKeysFor } = await import('./audit-proofs.js');
          const publishFile = config.audit.checkpoints.publish.file;
          const published =
            opts.checkpoints ?? (publishFile !== undefined && existsSync(publishFile) ? [publishFile] : []);
          const tree = opts.chainOnly
            ? undefined
            : { trusted: await trustedKeysFor(config, opts.publicKey), publishedFiles: published };
          const store = await openStore(config.store.url);
          const bar = progress('verifying', { show: !opts.json, lines: true });
          try {
            const r = await verifyChain(store, {
              onProgress: (d, t) => bar.update(d, t),
              ...(tree ? { tree } : {}),
            });
            bar.stop();
            if (opts.json) printJson(r);
            else if (r.ok) {
              process.stdout.write(
                `audit log intact: ${r.entries} entries, head ${r.headSeq} ${r.headHash.slice(0, 16)}… (${r.elapsedMs} ms)\n`,
              );
              const t = r.tree;
              if (t !== undefined) {
                const latest = t.latest
                  ? `latest at ${t.latest.size} signed ${new Date(t.latest.ts).toISOString()} by ${t.latest.kid}`
                  : 'none signed yet';
                process.stdout.write(
                  `checkpoints: ${t.checkpoints} stored and ${t.published} published match the entries (${latest}); ${t.unsigned} entries after the latest${t.prunedThrough ? `; entries up to ${t.prunedThrough} were pruned (archive verified separately)` : ''}\n`,
                );
              }
            } else {
              process.stdout.write(
                `audit log BROKEN at entry ${r.problem?.seq} (${r.problem?.kind}): ${r.problem?.message}\n`,
              );
            }
            process.exitCode = r.ok ? 0 : 1;
          } finally {
            await store.close();
          }
        } catch (e) {
          reportError(e, opts.json);
        }
      },
    );

  audit
    .command('tail')
    .description('Show the latest audit entries (and follow new ones with -f)')
    .option('-n, --lines <n>', 'how many entries', '20')
    .option('-f, --follow', 'keep printing new entries until interrupted')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON Lines output (one entry per line)')
    .action(async (opts: AuditOptions & { lines: string; follow?: boolean }) => {
      try {
        const n = Number(opts.lines);
        if (!Number.isInteger(n) || n < 1 || n > 10_000) {
          throw new WardenError('INVALID_REQUEST', '--lines must be an integer from 1 to 10000');
        }
        const { config } = await loadForCli(opts);
        const { openStore } = await import('../store/index.js');
        const { AuditLog, formatEntry } = await import('../audit/index.js');
        const store = await openStore(config.store.url);
        const log = new AuditLog(store);
        const print = (e: AuditEntry) =>
          process.stdout.write(`${opts.json ? JSON.stringify(e) : formatEntry(e)}\n`);
        let last = 0;
        for (const e of await log.latest(n)) {
          print(e);
          last = e.seq;
        }
        if (!opts.follow) return void (await store.close());
        const timer = setInterval(async () => {
          for (const e of await log.read({ afterSeq: last, limit: 500 }).catch(() => [])) {
            print(e);
            last = e.seq;
          }
        }, 500);
        process.on('SIGINT', () => {
          clearInterval(timer);
          void store.close().then(() => process.exit(0));
        });
      } catch (e) {
        reportError(e, opts.json);
      }
    });

  registerAuditProofs(audit);
  registerAuditHmac(audit);
  registerAuditExport(audit);
}
