/**
 * Retention (issue #9): archive old entries to a file, then prune them from the
 * store, while keeping everything verifiable.
 *
 * Archive: a checkpoint is signed at exactly the last archived entry (K) first;
 * the file is JSON lines — a header, then every entry from the previous prune
 * point + 1 through K, as stored. The header carries the checkpoint at K, and,
 * when an earlier prune exists, the checkpoint there with the tree's right edge
 * at that size, so the file verifies on its own: chain, hashes, and the Merkle
 * root at K against the signature (`verifyArchive`). Written to a temp file,
 * flushed, renamed; then read back and verified before anything is pruned.
 *
 * Prune: only after the archive verifies and its last entry is the store's
 * entry K. One transaction records the prune (K, the chain hash there, the right
 * edge there, the archive's name and SHA-256) and deletes entries ≤ K; the
 * append-only trigger lets a row go only once such a record covers it. The tree
 * nodes stay, so proofs for later entries still work; `warden audit verify`
 * starts at K, from the signed checkpoint there. Pruned entries are proved from
 * their archive (`inclusionFromArchive`). The prune itself is audited.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import {
  type Checkpoint,
  type Checkpointer,
  openCheckpoint,
  parseCheckpoint,
  payloadMatches,
  type TrustedKeys,
} from './checkpoint.js';
import { entryHash, fromRow } from './entry.js';
import type { AuditLog } from './log.js';
import { MerkleAccumulator, toHex } from './merkle.js';
import type { InclusionBundle } from './proofs.js';
import {
  entryLeafHash,
  frontierFromJson,
  frontierToJson,
  type MerkleTree,
  TreeReader,
  type TreeSource,
} from './tree.js';
import type { AuditEntry, VerifyProblem } from './types.js';

export const ARCHIVE_TYPE = 'warden.audit.archive';
const PAGE = 2_000;

/** The first line of an archive file. */
export interface ArchiveHeader {
  type: typeof ARCHIVE_TYPE;
  v: 1;
  log: string;
  /** First and last seq in the file. */
  from: number;
  through: number;
  /** The chain hash before `from` (genesis, or the previous prune point's). */
  prevHash: string;
  /** The checkpoint at from − 1 (null when from = 1) and the tree's right edge there. */
  startCheckpoint: Checkpoint | null;
  startFrontier: (string | null)[];
  /** The checkpoint at `through`: the file's entries must give its root. */
  checkpoint: Checkpoint;
  createdAt: number;
}

export interface ArchiveResult {
  file: string;
  sha256: string;
  bytes: number;
  from: number;
  through: number;
  entries: number;
}

/** The outcome of `verifyArchive`. */
export interface ArchiveVerifyResult {
  ok: boolean;
  file: string;
  from: number;
  through: number;
  entries: number;
  sha256: string;
  problem?: VerifyProblem;
  /** The right edge at `through` (set when ok): what a prune records. */
  frontier?: (Uint8Array | null)[];
  header?: ArchiveHeader;
}

interface RetentionDeps {
  store: Store;
  tree: MerkleTree;
  checkpoints: Checkpointer;
}

/** The last seq with ts before `beforeTs` (0 if none). */
export async function lastSeqBefore(store: Store, beforeTs: number): Promise<number> {
  const row = await store.db
    .selectFrom('audit_log')
    .select('seq')
    .where('ts', '<', beforeTs)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row === undefined ? 0 : Number(row.seq);
}

/** Archive entries (previous prune point, through] to `file`. Verifies what it wrote. */
export async function archiveEntries(
  deps: RetentionDeps,
  opts: {
    through: number;
    file: string;
    trusted: TrustedKeys;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<ArchiveResult> {
  const { store, tree, checkpoints } = deps;
  const pruned = await tree.pruned();
  const start = pruned?.throughSeq ?? 0;
  const through = opts.through;
  if (!Number.isSafeInteger(through) || through <= start) {
    throw new WardenError(
      'INVALID_REQUEST',
      start === 0
        ? 'nothing to archive: choose a later point (--through SEQ or --before TIME)'
        : `entries up to ${start} are archived and pruned already: choose a point after ${start}`,
    );
  }
  const state = await tree.advance();
  if (through > state.size) {
    throw new WardenError('INVALID_REQUEST', `entry ${through} is beyond the log's ${state.size} entries`);
  }
  // Checkpoint before archiving: the archive's last entry is under a signature.
  const checkpoint = await checkpoints.checkpointNow(through);
  const startCheckpoint = start === 0 ? null : ((await checkpoints.get(start)) ?? null);
  if (start > 0 && startCheckpoint === null) {
    throw new WardenError(
      'AUDIT_UNAVAILABLE',
      `the checkpoint at the previous prune point (${start}) is missing`,
    );
  }
  const header: ArchiveHeader = {
    type: ARCHIVE_TYPE,
    v: 1,
    log: state.logId,
    from: start + 1,
    through,
    prevHash: pruned?.throughHash ?? '0'.repeat(64),
    startCheckpoint,
    startFrontier: pruned === undefined ? [] : pruned.frontier.map((h) => (h === null ? null : toHex(h))),
    checkpoint,
    createdAt: Date.now(),
  };
  await mkdir(dirname(opts.file), { recursive: true });
  const tmp = `${opts.file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  let written = 0;
  try {
    await fh.write(`${JSON.stringify(header)}\n`);
    for (let after = start; after < through; ) {
      const rows = await store.db
        .selectFrom('audit_log')
        .selectAll()
        .where('seq', '>', after)
        .where('seq', '<=', through)
        .orderBy('seq', 'asc')
        .limit(PAGE)
        .execute();
      if (rows.length === 0) throw new WardenError('AUDIT_UNAVAILABLE', `entries after ${after} are missing`);
      await fh.write(`${rows.map((r) => JSON.stringify(fromRow(r))).join('\n')}\n`);
      written += rows.length;
      after = Number(rows.at(-1)!.seq);
      opts.onProgress?.(written, through - start);
    }
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  const check = await verifyArchive(tmp, opts.trusted);
  if (!check.ok) {
    await rm(tmp, { force: true });
    throw new WardenError(
      'AUDIT_UNAVAILABLE',
      `the archive did not verify after writing: ${check.problem?.message}`,
    );
  }
  await rename(tmp, opts.file);
  const bytes = (await stat(opts.file)).size;
  return { file: opts.file, sha256: check.sha256, bytes, from: start + 1, through, entries: written };
}

/** Verify an archive file on its own (streamed): header signatures, chain, hashes, root at `through`. */
export async function verifyArchive(file: string, trusted: TrustedKeys): Promise<ArchiveVerifyResult> {
  const sha = createHash('sha256');
  const input = createReadStream(file);
  input.on('data', (chunk) => sha.update(chunk));
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let header: ArchiveHeader | undefined;
  let acc = new MerkleAccumulator();
  let prevHash = '';
  let seq = 0;
  let entries = 0;
  let problem: VerifyProblem | undefined;
  const fail = (p: VerifyProblem) => {
    problem ??= p;
  };
  try {
    for await (const line of lines) {
      if (problem) break;
      if (header === undefined) {
        const h = parseHeader(line);
        if (typeof h === 'string') {
          fail({ seq: 0, kind: 'modified', message: `${basename(file)}: ${h}` });
          break;
        }
        header = h;
        const headerProblem = await checkHeader(h, trusted);
        if (headerProblem) {
          fail(headerProblem);
          break;
        }
        acc = MerkleAccumulator.resume(h.from - 1, frontierFromJson(JSON.stringify(h.startFrontier)));
        prevHash = h.prevHash;
        seq = h.from - 1;
        continue;
      }
      if (line.trim() === '') continue;
      let entry: AuditEntry;
      try {
        entry = JSON.parse(line) as AuditEntry;
      } catch {
        fail({ seq: seq + 1, kind: 'modified', message: `entry ${seq + 1} in the archive is not JSON` });
        break;
      }
      const n = seq + 1;
      if (entry.seq !== n) {
        fail({
          seq: n,
          kind: typeof entry.seq === 'number' && entry.seq > n ? 'deleted' : 'inserted',
          message: `the archive holds entry ${String(entry.seq)} where entry ${n} belongs`,
        });
        break;
      }
      let hash: string | null;
      try {
        hash = entryHash(entry);
      } catch {
        hash = null;
      }
      if (hash !== entry.hash) {
        fail({ seq: n, kind: 'modified', message: `archived entry ${n} does not match its hash` });
        break;
      }
      if (entry.prevHash !== prevHash) {
        fail({ seq: n, kind: 'inserted', message: `archived entry ${n} does not chain to entry ${n - 1}` });
        break;
      }
      acc.push(entryLeafHash(entry.hash));
      prevHash = entry.hash;
      seq = n;
      entries++;
    }
  } catch (e) {
    throw new WardenError('INVALID_REQUEST', `cannot read the archive ${file}: ${(e as Error).message}`);
  }
  await new Promise<void>((r) => (input.closed ? r() : input.once('close', () => r())));
  const base = {
    file,
    from: header?.from ?? 0,
    through: header?.through ?? 0,
    entries,
    sha256: sha.digest('hex'),
  };
  if (header === undefined && problem === undefined) {
    fail({ seq: 0, kind: 'truncated', message: `${basename(file)} is empty` });
  }
  if (problem === undefined && header !== undefined) {
    if (seq < header.through) {
      fail({
        seq: seq + 1,
        kind: 'truncated',
        message: `the archive ends at ${seq} but says it holds entries through ${header.through}`,
      });
    } else if (toHex(acc.root()) !== header.checkpoint.root || prevHash !== header.checkpoint.head) {
      fail({
        seq: header.from,
        kind: 'modified',
        message: `the archived entries do not give the root signed at checkpoint ${header.through}`,
      });
    }
  }
  if (problem !== undefined) return { ok: false, ...base, problem, ...(header ? { header } : {}) };
  return { ok: true, ...base, frontier: acc.frontier(), header: header! };
}

function parseHeader(line: string): ArchiveHeader | string {
  let h: Partial<ArchiveHeader>;
  try {
    h = JSON.parse(line) as Partial<ArchiveHeader>;
  } catch {
    return 'the first line is not JSON';
  }
  if (h?.type !== ARCHIVE_TYPE || h.v !== 1) return 'not a Warden audit archive';
  if (
    !Number.isSafeInteger(h.from) ||
    !Number.isSafeInteger(h.through) ||
    (h.from as number) < 1 ||
    (h.through as number) < (h.from as number) ||
    typeof h.prevHash !== 'string' ||
    !Array.isArray(h.startFrontier) ||
    typeof h.log !== 'string'
  ) {
    return 'the archive header is malformed';
  }
  const cp = parseCheckpoint(h.checkpoint);
  if (cp === undefined) return 'the archive header has no checkpoint';
  return { ...(h as ArchiveHeader), checkpoint: cp };
}

async function checkHeader(h: ArchiveHeader, trusted: TrustedKeys): Promise<VerifyProblem | undefined> {
  const bad = (seq: number, message: string): VerifyProblem => ({
    seq,
    kind: 'checkpoint-signature',
    message,
  });
  const check = async (cp: Checkpoint, what: string): Promise<VerifyProblem | undefined> => {
    const opened = await openCheckpoint(cp.jws, trusted);
    if (!opened.ok) return bad(cp.size, `${what}: ${opened.reason}`);
    if (!payloadMatches(cp, opened.payload))
      return bad(cp.size, `${what}: its fields differ from what was signed`);
    if (cp.log !== h.log) return bad(cp.size, `${what} belongs to another log`);
    return undefined;
  };
  if (h.checkpoint.size !== h.through)
    return bad(h.through, `the archive's checkpoint is not at ${h.through}`);
  const p = await check(h.checkpoint, `the archive's checkpoint ${h.through}`);
  if (p) return p;
  if (h.from === 1) {
    if (h.prevHash !== '0'.repeat(64) || h.startFrontier.length > 0)
      return bad(0, 'the archive start is malformed');
    return undefined;
  }
  const start = h.startCheckpoint === null ? undefined : parseCheckpoint(h.startCheckpoint);
  if (start === undefined || start.size !== h.from - 1) {
    return bad(h.from - 1, `the archive starts at ${h.from} without the checkpoint at ${h.from - 1}`);
  }
  const q = await check(start, `the archive's start checkpoint ${start.size}`);
  if (q) return q;
  try {
    const acc = MerkleAccumulator.resume(h.from - 1, frontierFromJson(JSON.stringify(h.startFrontier)));
    if (toHex(acc.root()) !== start.root || h.prevHash !== start.head) {
      return bad(h.from - 1, 'the archive start does not match the checkpoint signed there');
    }
  } catch {
    return bad(h.from - 1, 'the archive start frontier is malformed');
  }
  return undefined;
}

/**
 * Prune the entries an archive holds, after verifying it again and matching it to the store.
 * Records the prune and appends an audit entry about it (actor: the operator).
 */
export async function pruneArchived(
  deps: RetentionDeps & { audit: AuditLog },
  opts: { file: string; trusted: TrustedKeys; by: string; traceId: string },
): Promise<{ through: number; deleted: number; sha256: string }> {
  const { store, tree } = deps;
  const v = await verifyArchive(opts.file, opts.trusted);
  if (!v.ok || v.header === undefined || v.frontier === undefined) {
    throw new WardenError(
      'INVALID_REQUEST',
      `the archive does not verify: ${v.problem?.message ?? 'unknown'}`,
    );
  }
  const h = v.header;
  const state = await tree.state();
  if (h.log !== state.logId) throw new WardenError('INVALID_REQUEST', 'the archive belongs to another log');
  const pruned = await tree.pruned();
  const start = pruned?.throughSeq ?? 0;
  if (h.from !== start + 1) {
    throw new WardenError(
      'INVALID_REQUEST',
      `the archive starts at ${h.from}, but the log's entries start at ${start + 1}: prune archives in order`,
    );
  }
  const row = await store.db
    .selectFrom('audit_log')
    .select('hash')
    .where('seq', '=', h.through)
    .executeTakeFirst();
  if (row === undefined || row.hash !== h.checkpoint.head) {
    throw new WardenError(
      'INVALID_REQUEST',
      `the store's entry ${h.through} is not the archive's last entry`,
    );
  }
  const deleted = await store.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('audit_prune')
      .values({
        through_seq: h.through,
        through_hash: h.checkpoint.head,
        frontier: frontierToJson(v.frontier!),
        archive_name: basename(opts.file),
        archive_sha256: v.sha256,
        pruned_at: Date.now(),
        pruned_by: opts.by,
      })
      .execute();
    const r = await trx.deleteFrom('audit_log').where('seq', '<=', h.through).executeTakeFirst();
    return Number(r.numDeletedRows);
  });
  await deps.audit.append({
    traceId: opts.traceId,
    event: 'AUDIT_PRUNED',
    actorType: 'HUMAN',
    actorId: opts.by,
    result: 'success',
    data: { from: h.from, through: h.through, deleted, archive: basename(opts.file), sha256: v.sha256 },
  });
  return { through: h.through, deleted, sha256: v.sha256 };
}

/** Leaves from an archive's entries (held in memory: 32 bytes each), nothing stored. */
function archiveSource(from: number, leaves: Uint8Array[]): TreeSource {
  return {
    async leaves(first, end) {
      const a = first - (from - 1);
      if (a < 0 || end - (from - 1) > leaves.length) {
        throw new WardenError('AUDIT_PRUNED', `entries ${first + 1}..${end} are not in this archive`);
      }
      return leaves.slice(a, end - (from - 1));
    },
    async tiles() {
      return undefined;
    },
  };
}

/** An inclusion bundle for a pruned entry, from its archive, against the archive's checkpoint. */
export async function inclusionFromArchive(
  file: string,
  seq: number,
  trusted: TrustedKeys,
): Promise<InclusionBundle> {
  const v = await verifyArchive(file, trusted);
  if (!v.ok || v.header === undefined) {
    throw new WardenError(
      'INVALID_REQUEST',
      `the archive does not verify: ${v.problem?.message ?? 'unknown'}`,
    );
  }
  const h = v.header;
  if (seq < h.from || seq > h.through) {
    throw new WardenError('INVALID_REQUEST', `entry ${seq} is not in this archive (${h.from}..${h.through})`);
  }
  const leaves: Uint8Array[] = [];
  let entry: AuditEntry | undefined;
  const lines = createInterface({
    input: createReadStream(file, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let first = true;
  for await (const line of lines) {
    if (first) {
      first = false;
      continue;
    }
    if (line.trim() === '') continue;
    const e = JSON.parse(line) as AuditEntry;
    leaves.push(entryLeafHash(e.hash));
    if (e.seq === seq) entry = e;
  }
  if (entry === undefined) throw new WardenError('NOT_FOUND', `entry ${seq} is not in the archive`);
  const startFrontier = frontierFromJson(JSON.stringify(h.startFrontier));
  const reader = new TreeReader(
    archiveSource(h.from, leaves),
    h.through,
    h.from > 1 ? { throughSeq: h.from - 1, throughHash: h.prevHash, frontier: startFrontier } : undefined,
  );
  const proof = await reader.inclusion(seq - 1, h.through);
  return {
    type: 'warden.audit.inclusion',
    entry,
    leafIndex: seq - 1,
    treeSize: h.through,
    proof: proof.map(toHex),
    checkpoint: h.checkpoint,
  };
}
