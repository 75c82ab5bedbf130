/**
 * `warden audit checkpoint|checkpoints|prove|consistency|check-proof|keys` (issue #9):
 * sign a checkpoint now, list them, make proof bundles, check one anywhere with the
 * public key alone, and print that key for pinning.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { WardenConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { parseDuration } from '../util/duration.js';
import { loadForCli } from './context.js';
import { iso, printJson, reportError } from './output.js';
import { progress } from './progress.js';

interface Common {
  config?: string;
  json?: boolean;
}

function positiveInt(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new WardenError('INVALID_REQUEST', `${what} must be a positive integer`);
  return n;
}

/** Trusted keys for checking: --public-key files, or the configured ones (the signing key's public half and trustedKeys). */
export async function trustedKeysFor(config: WardenConfig, files: readonly string[] | undefined) {
  const { addTrustedKeys, loadTrustedKeys } = await import('../audit/index.js');
  if (files !== undefined && files.length > 0) {
    const keys = new Map();
    for (const f of files) {
      let text: string;
      try {
        text = await readFile(f, 'utf8');
      } catch (e) {
        throw new WardenError(
          'INVALID_REQUEST',
          `--public-key ${f}: cannot read it (${(e as NodeJS.ErrnoException).code})`,
        );
      }
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        throw new WardenError('INVALID_REQUEST', `--public-key ${f}: not JSON (expected a JWK or a JWKS)`);
      }
      await addTrustedKeys(keys, value, `--public-key ${f}`);
    }
    return keys;
  }
  // Errors (a configured key unreadable or malformed) are shown, not turned into "no keys".
  return loadTrustedKeys(config.audit.checkpoints);
}

/** Open the store and the tree-and-checkpoint services over it, for one command. */
async function withCheckpoints<T>(
  config: WardenConfig,
  fn: (s: {
    store: Store;
    tree: import('../audit/index.js').MerkleTree;
    checkpoints: import('../audit/index.js').Checkpointer;
  }) => Promise<T>,
): Promise<T> {
  const { openStore } = await import('../store/index.js');
  const { Checkpointer, loadCheckpointSigner, MerkleTree } = await import('../audit/index.js');
  const store = await openStore(config.store.url);
  try {
    const tree = new MerkleTree(store);
    const signer = await loadCheckpointSigner(config.audit.checkpoints.signingKey);
    const quiet = { info() {}, warn() {}, error() {} };
    const checkpoints = new Checkpointer({
      store,
      tree,
      signer,
      config: config.audit.checkpoints,
      log: quiet,
    });
    return await fn({ store, tree, checkpoints });
  } finally {
    await store.close();
  }
}

/** Write `text` to `out` atomically (temp file, rename), or to stdout. */
async function emit(text: string, out: string | undefined): Promise<void> {
  if (out === undefined) return void process.stdout.write(text);
  const tmp = `${out}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, out);
}

/** A point in time: ISO-8601, or a duration meaning that long ago (90d). */
function pointInTime(value: string, what: string): number {
  const iso = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && Number.isFinite(iso)) return iso;
  try {
    return Date.now() - parseDuration(value);
  } catch {
    throw new WardenError(
      'INVALID_REQUEST',
      `${what} must be an ISO-8601 date-time or a duration such as 90d, got "${value}"`,
    );
  }
}

export function registerAuditProofs(audit: Command): void {
  audit
    .command('archive')
    .description(
      'Archive old entries to a file that verifies on its own (a checkpoint is signed at the cut first); --prune then deletes them from the store',
    )
    .option('--through <seq>', 'archive entries up to this seq')
    .option('--before <when>', 'archive entries older than this: ISO-8601 or a duration ago (90d)')
    .option(
      '-o, --out <file>',
      'the archive file (default: <audit.retention.archiveDir>/audit-<from>-<through>.jsonl)',
    )
    .option('--prune', 'after the archive is written and verified, delete its entries from the store')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      '\nExamples:\n  warden audit archive --before 90d --prune\n  warden audit verify --archive .warden/audit-archive/audit-1-100000.jsonl',
    )
    .action(async (opts: Common & { through?: string; before?: string; out?: string; prune?: boolean }) => {
      try {
        if ((opts.through === undefined) === (opts.before === undefined)) {
          throw new WardenError('INVALID_REQUEST', 'give exactly one of --through SEQ or --before WHEN');
        }
        const { config } = await loadForCli(opts);
        const { archiveEntries, AuditLog, lastSeqBefore, pruneArchived } = await import('../audit/index.js');
        const result = await withCheckpoints(config, async (s) => {
          // Read after the signing key exists (withCheckpoints creates the default one).
          const trusted = await trustedKeysFor(config, undefined);
          const through =
            opts.through !== undefined
              ? positiveInt(opts.through, '--through')
              : await lastSeqBefore(s.store, pointInTime(opts.before!, '--before'));
          const from = ((await s.tree.pruned())?.throughSeq ?? 0) + 1;
          const file = opts.out ?? join(config.audit.retention.archiveDir, `audit-${from}-${through}.jsonl`);
          const bar = progress('archiving', { show: !opts.json });
          const archived = await archiveEntries(s, {
            through,
            file,
            trusted,
            onProgress: (d, t) => bar.update(d, t),
          });
          bar.stop();
          if (!opts.prune) return { archived };
          const by = `operator:${process.env.USER ?? 'unknown'}`;
          const pruned = await pruneArchived(
            { ...s, audit: new AuditLog(s.store) },
            { file, trusted, by, traceId: `prune-${randomUUID()}` },
          );
          return { archived, pruned };
        });
        if (opts.json) return printJson(result);
        const a = result.archived;
        process.stdout.write(
          `archived entries ${a.from}..${a.through} (${a.entries}) to ${a.file} (${a.bytes} bytes, sha256 ${a.sha256})\n`,
        );
        if (result.pruned) {
          process.stdout.write(
            `pruned ${result.pruned.deleted} entries from the store; keep the archive file safe\n`,
          );
        }
      } catch (e) {
        reportError(e, opts.json);
      }
    });

  audit
    .command('checkpoint')
    .description('Sign a checkpoint of the audit log now (the gateway also signs them on its own)')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExample:\n  warden audit checkpoint --json')
    .action(async (opts: Common) => {
      try {
        const { config } = await loadForCli(opts);
        const cp = await withCheckpoints(config, (s) => s.checkpoints.checkpointNow());
        if (opts.json) printJson({ checkpoint: cp });
        else process.stdout.write(`checkpoint signed: ${cp.size} entries, root ${cp.root}, key ${cp.kid}\n`);
      } catch (e) {
        reportError(e, opts.json);
      }
    });

  audit
    .command('checkpoints')
    .description('List signed checkpoints, newest first')
    .option('-n, --limit <n>', 'how many', '20')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output')
    .action(async (opts: Common & { limit: string }) => {
      try {
        const limit = positiveInt(opts.limit, '--limit');
        const { config } = await loadForCli(opts);
        const list = await withCheckpoints(config, (s) =>
          s.checkpoints.list({ limit: Math.min(limit, 1000) }),
        );
        if (opts.json) return printJson({ checkpoints: list });
        if (list.length === 0) return void process.stdout.write('no checkpoint has been signed yet\n');
        for (const c of list)
          process.stdout.write(`${String(c.size).padStart(10)}  ${iso(c.ts)}  ${c.root}  ${c.kid}\n`);
      } catch (e) {
        reportError(e, opts.json);
      }
    });

  audit
    .command('prove')
    .description('Make an inclusion proof bundle for an entry: JSON anyone can check with the public key')
    .argument('<seq>', 'the entry (its seq)')
    .option(
      '--size <n>',
      'prove against the checkpoint of this size (default: the first that covers the entry)',
    )
    .option(
      '--archive <file>',
      'prove a pruned entry from its archive file (against the checkpoint the archive holds)',
    )
    .option('-o, --out <file>', 'write the bundle to a file (default: stdout)')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'errors as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  warden audit prove 42 -o entry-42.json\n  warden audit check-proof entry-42.json --public-key checkpoint-key.jwk',
    )
    .action(async (seqText: string, opts: Common & { size?: string; out?: string; archive?: string }) => {
      try {
        const seq = positiveInt(seqText, 'seq');
        const size = opts.size === undefined ? undefined : positiveInt(opts.size, '--size');
        const { config } = await loadForCli(opts);
        const { inclusionBundle, inclusionFromArchive } = await import('../audit/index.js');
        const bundle =
          opts.archive !== undefined
            ? await inclusionFromArchive(opts.archive, seq, await trustedKeysFor(config, undefined))
            : await withCheckpoints(config, (s) =>
                inclusionBundle(s.store, s.tree, s.checkpoints, seq, size),
              );
        await emit(`${JSON.stringify(bundle, null, 2)}\n`, opts.out);
        if (opts.out !== undefined) {
          process.stderr.write(
            `inclusion proof of entry ${seq} in checkpoint ${bundle.treeSize} written to ${opts.out}\n`,
          );
        }
      } catch (e) {
        reportError(e, opts.json);
      }
    });

  audit
    .command('consistency')
    .description('Make a consistency proof bundle: the later checkpoint extends the earlier one unchanged')
    .argument('<from>', 'the earlier checkpoint (its size)')
    .argument('[to]', 'the later checkpoint (default: the latest)')
    .option('-o, --out <file>', 'write the bundle to a file (default: stdout)')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'errors as JSON')
    .addHelpText('after', '\nExample:\n  warden audit consistency 10000 -o since-10000.json')
    .action(async (fromText: string, toText: string | undefined, opts: Common & { out?: string }) => {
      try {
        const from = positiveInt(fromText, 'from');
        const to = toText === undefined ? undefined : positiveInt(toText, 'to');
        const { config } = await loadForCli(opts);
        const { consistencyBundle } = await import('../audit/index.js');
        const bundle = await withCheckpoints(config, (s) =>
          consistencyBundle(s.tree, s.checkpoints, from, to),
        );
        await emit(`${JSON.stringify(bundle, null, 2)}\n`, opts.out);
      } catch (e) {
        reportError(e, opts.json);
      }
    });

  audit
    .command('check-proof')
    .description(
      'Check a proof bundle (from warden audit prove/consistency or the admin API); exit 0 when it holds',
    )
    .argument('<file>', 'the bundle, or - for stdin')
    .option(
      '--public-key <file...>',
      'trusted checkpoint public key(s), JWK or JWKS (default: the configured key)',
    )
    .option('-c, --config <file>', 'config file (for the default key)')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      '\nExample:\n  warden audit check-proof entry-42.json --public-key checkpoint-key.jwk',
    )
    .action(async (file: string, opts: Common & { publicKey?: string[] }) => {
      try {
        const text =
          file === '-'
            ? await readStdin()
            : await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
                throw new WardenError('INVALID_REQUEST', `cannot read ${file} (${e.code})`);
              });
        let bundle: unknown;
        try {
          bundle = JSON.parse(text);
        } catch {
          throw new WardenError('INVALID_REQUEST', `${file} is not JSON`);
        }
        let keys: Awaited<ReturnType<typeof trustedKeysFor>>;
        if (opts.publicKey !== undefined && opts.publicKey.length > 0) {
          keys = await trustedKeysFor({} as WardenConfig, opts.publicKey);
        } else {
          const { config } = await loadForCli(opts);
          keys = await trustedKeysFor(config, undefined);
        }
        const { checkBundle } = await import('../audit/index.js');
        const r = await checkBundle(bundle, keys);
        if (opts.json) printJson(r);
        else process.stdout.write(r.ok ? `proof holds: ${r.summary}\n` : `proof FAILS: ${r.reason}\n`);
        process.exitCode = r.ok ? 0 : 1;
      } catch (e) {
        reportError(e, opts.json);
      }
    });

  audit
    .command('keys')
    .description("Print the checkpoint key's public half (a JWKS) to pin outside Warden")
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output (the default; kept for symmetry)')
    .action(async (opts: Common) => {
      try {
        const { config } = await loadForCli(opts);
        const { loadCheckpointSigner } = await import('../audit/index.js');
        const ref = config.audit.checkpoints.signingKey;
        if (ref.generate && 'file' in ref.ref && !existsSync(ref.ref.file)) {
          throw new WardenError(
            'NOT_FOUND',
            `no checkpoint key yet at ${ref.ref.file}: it is created when the gateway first starts`,
          );
        }
        const signer = await loadCheckpointSigner({ ...ref, generate: false });
        printJson({ keys: [signer.publicJwk] });
      } catch (e) {
        reportError(e, opts.json);
      }
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
