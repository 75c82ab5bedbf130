/**
 * Verifies the audit chain end to end, streaming it page by page (keyset on
 * seq) so memory stays flat however long the log is. Reports the first
 * problem and stops.
 *
 * What the chain alone can and cannot see: it is an unkeyed hash chain, so
 * an attacker with write access who deletes the newest entries AND rewinds
 * the head row, or edits an entry and re-hashes everything after it, leaves a
 * chain that verifies. With `tree` set, the walk also rebuilds the Merkle tree
 * and holds it against the signed checkpoints (verify-tree.ts), which catch
 * both; everything else — edits, deletions, insertions, reorderings,
 * truncation with the head left alone — the chain reports by itself.
 *
 * Two paths, one verdict. The fast path reads, per row, seq, prev_hash, hash
 * and the hash text as the database assembles it from the columns as stored
 * (`hashTextSql`: strings JSON-quoted, integers, the JSON columns' text
 * inserted as is). It checks that seq is the next integer, prev_hash is the
 * previous hash, each JSON column is NULL or exactly one JSON value (SQLite:
 * json_valid in the same query; PostgreSQL: JSON.parse here), and SHA-256 of
 * the text is the stored hash. A row that passes needs nothing more. On
 * anything else — a problem, or an entry written before the JSON columns were
 * stored canonically, whose stored text is not the hashed one — the slow path
 * takes over one row back: full rows, decoded (`fromRow`), re-encoded and
 * hashed (`entryHash`), and classified as below. Only the slow path reports
 * problems, so the classification is the same whichever path reached them.
 *
 * Why passing the fast path is as good as passing the slow one: each JSON
 * column is one complete JSON value, so column boundaries in the assembled
 * text cannot shift (moving text from `data` into `decision` leaves one of
 * them unparsable), and strings are quoted, so the text determines exactly
 * the values `fromRow` reads. When the JSON columns hold canonical text, as
 * the writer stores them, the text is byte for byte the one `entryHash`
 * builds, so the two paths agree. If a column's text is not canonical, the
 * two texts differ and, short of a SHA-256 collision, at most one of them can
 * match the stored hash: the fast path then passes the entry only if its hash
 * was recomputed over that very text — something the writer never does, an
 * attacker rewriting hashes might. The content is still bound to that hash,
 * so the edit breaks the chain where the rewritten hashes stop linking, and
 * the slow path restarts one row back, so an entry re-hashed that way on its
 * own is reported as 'modified', as the slow path alone would. Only a rewrite
 * of every later hash and of the head passes, and that passes the slow path
 * too when done with canonical text (the limit above).
 *
 * Logs written before the canonical encoding verify on the slow path; after a
 * fast-path miss the verifier stays on it for a number of pages that doubles
 * with each further miss (up to MAX_SLOW_RUN), so such a log pays one wasted
 * fast page in many.
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
import { CompiledQuery } from 'kysely';
import { WardenError } from '../errors.js';
import { type AuditLogTable, GENESIS_HASH, type Store, type StoreDialect } from '../store/index.js';
import { CorruptEntryError, entryHash, fromRow, hashTextSql, sha256Hex } from './entry.js';
import { guard } from './log.js';
import type { AuditEntry, VerifyProblem, VerifyResult } from './types.js';
import { TreeChecker, type TreeVerifyOptions } from './verify-tree.js';

/** How far around a break the verifier looks for a moved entry. */
const WINDOW = 256;
const DEFAULT_PAGE = 1_000;
const MAX_PAGE = 10_000;
/** Most slow-path pages read after a fast-path miss before the fast path is tried again. */
const MAX_SLOW_RUN = 16;

export interface VerifyOptions {
  /** Called after each page with entries checked so far and the head's seq (grows if appends race the check). */
  onProgress?: (done: number, total: number) => void;
  /** Rows per query (default 1,000). */
  pageSize?: number;
  /** Also rebuild the Merkle tree and check it against signed and published checkpoints (issue #9). */
  tree?: TreeVerifyOptions;
}

/**
 * What the fast path reads of a row: the link, the database-built hash text and, where
 * the database does not check them (PostgreSQL), the JSON columns as stored.
 */
interface FastRow {
  seq: unknown;
  prev_hash: unknown;
  hash: unknown;
  hash_text: unknown;
  parameters?: unknown;
  decision?: unknown;
  data?: unknown;
}

/** A page query, compiled once per dialect. */
interface PageQueries {
  /** Rows from the start: no lower bound, so rows planted at seq <= 0 are seen too. */
  first: string;
  /** Rows after a seq. */
  next: string;
}

interface DialectQueries {
  fast: PageQueries;
  /** Whether the fast query's hash text is NULL for a row whose JSON columns are not JSON. */
  fastChecksJson: boolean;
  full: PageQueries;
}

const QUERIES: Record<StoreDialect, DialectQueries> = {
  sqlite: dialectQueries('sqlite'),
  postgres: dialectQueries('postgres'),
};

/** Walk the whole chain and the head; ok when every entry and the head check out. */
export async function verifyChain(store: Store, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const checker = opts.tree === undefined ? undefined : new TreeChecker(store, opts.tree);
  try {
    return await walk(store, opts, checker);
  } finally {
    // A worker thread hashing the tree, if one was started, stops however the walk ended.
    await checker?.close();
  }
}

async function walk(
  store: Store,
  opts: VerifyOptions,
  checker: TreeChecker | undefined,
): Promise<VerifyResult> {
  const started = performance.now();
  const pageSize = Math.min(Math.max(Math.trunc(opts.pageSize ?? DEFAULT_PAGE), 1), MAX_PAGE);
  const queries = QUERIES[store.dialect];
  let head = await readHead(store);
  let total = head.seq;
  let entries = 0;
  let prevHash = GENESIS_HASH;
  // The hash before prevHash: where the slow path restarts after a fast-path miss.
  let prevPrevHash = GENESIS_HASH;
  let after: number | null = null;
  // Set after an empty page: the head read then, to be checked once a second read confirms the end.
  let endHead: { seq: number; hash: string } | undefined;
  // Slow-path pages still to read before trying the fast path again, and how many the next miss sets.
  let slowPages = 0;
  let slowRun = 1;
  // The tree layer, and where the walk starts (after a prune: the signed checkpoint there).
  let startSeq = 0;

  /**
   * After a fast-path miss: the slow path takes over one row back, so that an entry the fast
   * path let through only because its hash was recomputed over a non-canonical spelling of its
   * JSON gets the slow path's verdict (see the top of this file), and stays for a while.
   */
  const toSlowPath = () => {
    slowPages = slowRun;
    slowRun = Math.min(slowRun * 2, MAX_SLOW_RUN);
    if (entries > startSeq && (checker === undefined || checker.rewind())) {
      entries -= 1;
      prevHash = prevPrevHash;
      after = entries === 0 ? null : entries;
    }
  };
  const accept = (n: number, hash: string) => {
    checker?.accept(n, hash);
    prevPrevHash = prevHash;
    prevHash = hash;
    entries = n;
    after = n;
  };
  const report = () => {
    total = Math.max(total, entries);
    opts.onProgress?.(entries, total);
  };

  const done = (problem?: VerifyProblem): VerifyResult => ({
    ok: problem === undefined,
    entries,
    headSeq: head.seq,
    headHash: head.hash,
    ...(problem === undefined ? {} : { problem }),
    elapsedMs: Math.round(performance.now() - started),
    ...(checker === undefined ? {} : { tree: checker.report }),
  });

  if (checker !== undefined) {
    const from = await checker.start();
    if ('kind' in from) return done(from);
    if (from.seq > 0) {
      startSeq = from.seq;
      entries = from.seq;
      prevHash = from.hash;
      after = from.seq;
    }
  }

  for (;;) {
    const treeProblem = await checker?.prepare(entries, pageSize);
    if (treeProblem) return done(treeProblem);
    const fast = slowPages === 0;
    const rows = fast
      ? await readFastPage(store, queries.fast, after, pageSize)
      : await readPage<AuditLogTable>(store, queries.full, after, pageSize);
    if (rows === undefined) {
      toSlowPath();
      continue;
    }
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
    if (fast) {
      let missed = false;
      for (const row of rows as FastRow[]) {
        const n = entries + 1;
        if (!passesFast(row, n, prevHash, queries.fastChecksJson)) {
          missed = true;
          break;
        }
        accept(n, row.hash as string);
      }
      report();
      if (missed) toSlowPath();
      else slowRun = 1;
      const p = await checker?.flush();
      if (p) return done(p);
    } else {
      for (const row of rows as AuditLogTable[]) {
        const n = entries + 1;
        const problem = await checkRow(store, row, n, prevHash);
        if (problem !== undefined) return done(await earliest(problem, checker));
        accept(n, row.hash);
      }
      slowPages -= 1;
      report();
      const p = await checker?.flush();
      if (p) return done(p);
    }
  }

  if (head.seq === entries && head.hash === prevHash) return done(await checker?.finish(entries));
  if (head.seq > entries) {
    return done(
      await earliest(
        {
          seq: entries + 1,
          kind: 'truncated',
          message: `the head is at seq ${head.seq} but the log ends at ${entries}: entries ${entries + 1}..${head.seq} were removed`,
        },
        checker,
      ),
    );
  }
  if (head.seq < entries) {
    return done(
      await earliest(
        {
          seq: head.seq + 1,
          kind: 'head-mismatch',
          message: `the log has entries past the head (seq ${head.seq}): entries ${head.seq + 1}..${entries} were written around the writer or the head was rewound`,
        },
        checker,
      ),
    );
  }
  return done(
    await earliest(
      {
        seq: head.seq,
        kind: 'head-mismatch',
        message: `the head's hash differs from entry ${head.seq}'s hash`,
      },
      checker,
    ),
  );
}

/**
 * The chain found `problem`; the tree layer may still be hashing entries before it. Its
 * problem, when it starts no later, tells the earlier story (as it did when hashing inline).
 */
async function earliest(problem: VerifyProblem, checker: TreeChecker | undefined): Promise<VerifyProblem> {
  const t = await checker?.settle();
  return t !== undefined && t.seq <= problem.seq ? t : problem;
}

/** The fast path's check (see the top of this file); false sends the row to the slow path. */
function passesFast(row: FastRow, n: number, prevHash: string, jsonChecked: boolean): boolean {
  return (
    row.seq === n &&
    row.prev_hash === prevHash &&
    typeof row.hash_text === 'string' &&
    (jsonChecked || (isJson(row.parameters) && isJson(row.decision) && isJson(row.data))) &&
    sha256Hex(row.hash_text) === row.hash
  );
}

/** A JSON column `fromRow` can read: SQL NULL, or text holding exactly one JSON value. */
function isJson(column: unknown): boolean {
  if (column === null) return true;
  if (typeof column !== 'string') return false;
  try {
    JSON.parse(column);
    return true;
  } catch {
    return false;
  }
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

async function readPage<Row>(
  store: Store,
  queries: PageQueries,
  after: number | null,
  limit: number,
): Promise<Row[]> {
  const query =
    after === null
      ? CompiledQuery.raw(queries.first, [limit])
      : CompiledQuery.raw(queries.next, [after, limit]);
  return guard(async () => (await store.db.executeQuery<Row>(query)).rows);
}

/**
 * A fast-path page, or undefined when its query failed: SQLite's json_quote raises on a BLOB
 * planted in a text column, and the slow path, which reads the row as it is, then decides
 * (a store that is down fails there too, and is reported as such).
 */
async function readFastPage(
  store: Store,
  queries: PageQueries,
  after: number | null,
  limit: number,
): Promise<FastRow[] | undefined> {
  try {
    return await readPage<FastRow>(store, queries, after, limit);
  } catch {
    return undefined;
  }
}

function dialectQueries(dialect: StoreDialect): DialectQueries {
  const { expression, checksJson } = hashTextSql(dialect);
  const json = checksJson ? '' : ', "parameters", "decision", "data"';
  return {
    fast: pageQueries(dialect, `"seq", "prev_hash", "hash", ${expression} as "hash_text"${json}`),
    fastChecksJson: checksJson,
    full: pageQueries(dialect, '*'),
  };
}

function pageQueries(dialect: StoreDialect, columns: string): PageQueries {
  const param = (i: number) => (dialect === 'sqlite' ? '?' : `$${i}`);
  return {
    first: `select ${columns} from "audit_log" order by "seq" limit ${param(1)}`,
    next: `select ${columns} from "audit_log" where "seq" > ${param(1)} order by "seq" limit ${param(2)}`,
  };
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
