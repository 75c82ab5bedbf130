/**
 * Verifies the audit chain end to end, streaming it page by page (keyset on
 * seq) so memory stays flat however long the log is. Reports the first
 * problem and stops.
 *
 * What it can and cannot see: the chain is an unkeyed hash chain, so an
 * attacker with write access who deletes the newest entries AND rewinds the
 * head row leaves a shorter chain that verifies. Signed checkpoints of the
 * head (roadmap item 8, issue #9) are what catch that; everything else —
 * edits, deletions, insertions, reorderings, truncation with the head left
 * alone — is reported here.
 *
 * Classifying a break (a heuristic from the rows around it, documented so an
 * auditor knows what the word means):
 * - a gap in seq → 'deleted' at the first missing seq;
 * - a seq that is not the next integer (0, negative, not a number) → 'inserted';
 * - the stored hash does not recompute at the entry's own seq:
 *   - it recomputes at another seq s within ±WINDOW (the entry is intact but moved):
 *     s < n → 'inserted' (something pushed it later); s > n and the entry that
 *     belongs at n sits elsewhere in the window → 'reordered'; otherwise
 *     'deleted' (entries n..s-1 removed and the rest renumbered);
 *   - it recomputes nowhere → 'modified';
 * - the hash recomputes but prev_hash is not the previous entry's hash:
 *   the previous entry's true successor sits elsewhere in the window →
 *   'reordered'; otherwise 'inserted' (an entry forged with a recomputed hash,
 *   here or just before);
 * - after the last entry: head.seq beyond it → 'truncated'; any other
 *   difference between head and last entry → 'head-mismatch'.
 */
import { performance } from 'node:perf_hooks';
import { WardenError } from '../errors.js';
import { type AuditLogTable, GENESIS_HASH, type Store } from '../store/index.js';
import { CorruptEntryError, entryHash, fromRow } from './entry.js';
import type { AuditEntry, VerifyProblem, VerifyResult } from './types.js';

/** How far around a break the verifier looks for a moved entry. */
const WINDOW = 256;
const DEFAULT_PAGE = 1_000;
const MAX_PAGE = 10_000;

export interface VerifyOptions {
  /** Called after each page with entries checked so far and the head's seq (grows if appends race the check). */
  onProgress?: (done: number, total: number) => void;
  /** Rows per query (default 1,000). */
  pageSize?: number;
}

/** Walk the whole chain and the head; ok when every entry and the head check out. */
export async function verifyChain(store: Store, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const started = performance.now();
  const pageSize = Math.min(Math.max(Math.trunc(opts.pageSize ?? DEFAULT_PAGE), 1), MAX_PAGE);
  let head = await readHead(store);
  let total = head.seq;
  let entries = 0;
  let prevHash = GENESIS_HASH;
  let after: number | null = null;
  // Set after an empty page: the head read then, to be checked once a second read confirms the end.
  let endHead: { seq: number; hash: string } | undefined;

  const done = (problem?: VerifyProblem): VerifyResult => ({
    ok: problem === undefined,
    entries,
    headSeq: head.seq,
    headHash: head.hash,
    ...(problem === undefined ? {} : { problem }),
    elapsedMs: Math.round(performance.now() - started),
  });

  for (;;) {
    const rows = await readPage(store, after, pageSize);
    if (rows.length === 0) {
      if (endHead !== undefined) {
        head = endHead;
        break;
      }
      // Row and head commit together, so every row up to the head read now is visible to the
      // next query: appends that landed during the walk get checked, and none is mistaken
      // for truncation.
      endHead = await readHead(store);
      continue;
    }
    endHead = undefined;
    for (const row of rows) {
      const n = entries + 1;
      const problem = await checkRow(store, row, n, prevHash);
      if (problem !== undefined) return done(problem);
      entries = n;
      prevHash = row.hash;
      after = n;
    }
    total = Math.max(total, entries);
    opts.onProgress?.(entries, total);
  }

  if (head.seq === entries && head.hash === prevHash) return done();
  if (head.seq > entries) {
    return done({
      seq: entries + 1,
      kind: 'truncated',
      message: `the head is at seq ${head.seq} but the log ends at ${entries}: entries ${entries + 1}..${head.seq} were removed`,
    });
  }
  if (head.seq < entries) {
    return done({
      seq: head.seq + 1,
      kind: 'head-mismatch',
      message: `the log has entries past the head (seq ${head.seq}): entries ${head.seq + 1}..${entries} were written around the writer or the head was rewound`,
    });
  }
  return done({
    seq: head.seq,
    kind: 'head-mismatch',
    message: `the head's hash differs from entry ${head.seq}'s hash`,
  });
}

async function checkRow(
  store: Store,
  row: AuditLogTable,
  n: number,
  prevHash: string,
): Promise<VerifyProblem | undefined> {
  const seq = Number(row.seq);
  if (seq !== n) {
    if (Number.isInteger(seq) && seq > n) {
      const range = seq - 1 === n ? `entry ${n} is` : `entries ${n}..${seq - 1} are`;
      return { seq: n, kind: 'deleted', message: `${range} missing (the next entry is ${seq})` };
    }
    return { seq: n, kind: 'inserted', message: `an entry with seq ${String(row.seq)} is outside the chain` };
  }
  let entry: AuditEntry;
  try {
    entry = fromRow(row);
  } catch (e) {
    const why = e instanceof CorruptEntryError ? e.message : String(e);
    return { seq: n, kind: 'modified', message: `${why}: its content was changed` };
  }
  if (hashOf(entry) !== entry.hash) return diagnoseContent(entry, await readWindow(store, n));
  if (entry.prevHash !== prevHash) return diagnoseLink(entry, prevHash, await readWindow(store, n));
  return undefined;
}

/** The entry's hash does not recompute at its own seq: modified, or an intact entry that moved. */
function diagnoseContent(entry: AuditEntry, window: AuditEntry[]): VerifyProblem {
  const n = entry.seq;
  let s: number | undefined;
  for (let k = Math.max(1, n - WINDOW); k <= n + WINDOW && s === undefined; k++) {
    if (k !== n && hashOf({ ...entry, seq: k }) === entry.hash) s = k;
  }
  if (s === undefined) {
    return {
      seq: n,
      kind: 'modified',
      message: `entry ${n} does not match its hash: its content was changed`,
    };
  }
  if (s < n) {
    return {
      seq: n,
      kind: 'inserted',
      message: `entry ${n} is the intact entry ${s} moved ${n - s} place(s) later: entries were inserted before it`,
    };
  }
  const home = window.find((e) => e.seq !== n && hashOf({ ...e, seq: n }) === e.hash);
  if (home !== undefined) {
    return {
      seq: n,
      kind: 'reordered',
      message: `entry ${n} holds entry ${s}, and entry ${home.seq} holds entry ${n}: entries were reordered`,
    };
  }
  const range = s - 1 === n ? `entry ${n} was` : `entries ${n}..${s - 1} were`;
  return {
    seq: n,
    kind: 'deleted',
    message: `entry ${n} holds entry ${s}: ${range} deleted and later entries renumbered`,
  };
}

/** The entry is self-consistent but does not chain to its predecessor. */
function diagnoseLink(entry: AuditEntry, prevHash: string, window: AuditEntry[]): VerifyProblem {
  const n = entry.seq;
  const successor = window.find((e) => e.seq !== n && e.prevHash === prevHash);
  if (successor !== undefined) {
    return {
      seq: n,
      kind: 'reordered',
      message: `entry ${n} does not follow entry ${n - 1}; entry ${successor.seq} does: entries were reordered`,
    };
  }
  return {
    seq: n,
    kind: 'inserted',
    message: `entry ${n} does not chain to entry ${n - 1}: one of them was forged with a recomputed hash`,
  };
}

function hashOf(entry: Omit<AuditEntry, 'hash'>): string | null {
  try {
    return entryHash(entry);
  } catch {
    // A tampered number column (NaN) cannot be encoded: that is a mismatch, not a crash.
    return null;
  }
}

async function readPage(store: Store, after: number | null, limit: number): Promise<AuditLogTable[]> {
  return guard(() => {
    let q = store.db.selectFrom('audit_log').selectAll();
    // The first page has no lower bound, so rows planted at seq <= 0 are seen too.
    if (after !== null) q = q.where('seq', '>', after);
    return q.orderBy('seq', 'asc').limit(limit).execute();
  });
}

/** The decodable rows within ±WINDOW of `n` (read once, only when a break is being classified). */
async function readWindow(store: Store, n: number): Promise<AuditEntry[]> {
  const rows = await guard(() =>
    store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '>=', n - WINDOW)
      .where('seq', '<=', n + WINDOW)
      .orderBy('seq', 'asc')
      .execute(),
  );
  const out: AuditEntry[] = [];
  for (const row of rows) {
    try {
      out.push(fromRow(row));
    } catch {
      // A corrupt neighbour cannot be the moved entry; skip it.
    }
  }
  return out;
}

async function readHead(store: Store): Promise<{ seq: number; hash: string }> {
  const row = await guard(() =>
    store.db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst(),
  );
  if (row === undefined) {
    throw new WardenError('AUDIT_UNAVAILABLE', 'The audit log is unavailable', {
      detail: 'audit_head row is missing',
    });
  }
  return { seq: Number(row.seq), hash: row.hash };
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    throw new WardenError('AUDIT_UNAVAILABLE', 'The audit log is unavailable', { detail, cause: e });
  }
}
