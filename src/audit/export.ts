/**
 * Reading the log out for SIEMs (issue #9): filtered pages by keyset on seq,
 * shared by `warden audit export`, the SSE stream and the webhook sinks. A page
 * is a bounded query (`seq > after … order by seq limit n`), so memory stays
 * flat however long the log, and every entry goes out exactly as stored — seq,
 * hashes and actorType included — so a receiver can re-check the chain.
 */
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { fromRow } from './entry.js';
import { guard } from './log.js';
import type { AuditEntry } from './types.js';

/** Entries per page unless told otherwise. */
export const EXPORT_PAGE_SIZE = 1_000;
/** The largest page a caller may ask for. */
const MAX_PAGE_SIZE = 10_000;
/** An event name as the log writes them (TOOL_CALL, AUDIT_PRUNED, …). */
export const EVENT_NAME = /^[A-Z][A-Z_]{1,63}$/;

/** Which entries to read; every field narrows, absent fields do not. */
export interface AuditFilter {
  /** Any of these events (empty or absent: every event). */
  events?: readonly string[];
  agentId?: string;
  sessionId?: string;
  /** Entries at or after this time (epoch ms). */
  sinceTs?: number;
  /** Entries before this time (epoch ms). */
  untilTs?: number;
}

/** One page of a keyset scan. */
export interface PageQuery {
  /** Entries with seq greater than this. */
  afterSeq: number;
  /** And at most this (the head when the scan began: a scan of a growing log ends). */
  throughSeq?: number;
  limit: number;
}

/** The entries matching `filter` after `page.afterSeq`, in ascending seq, at most `page.limit`. */
export async function readPage(store: Store, filter: AuditFilter, page: PageQuery): Promise<AuditEntry[]> {
  const limit = Math.min(Math.max(Math.trunc(page.limit), 1), MAX_PAGE_SIZE);
  let q = store.db.selectFrom('audit_log').selectAll().where('seq', '>', page.afterSeq);
  if (page.throughSeq !== undefined) q = q.where('seq', '<=', page.throughSeq);
  const events = filter.events ?? [];
  if (events.length === 1) q = q.where('event', '=', events[0]!);
  else if (events.length > 1) q = q.where('event', 'in', [...events]);
  if (filter.agentId !== undefined) q = q.where('agent_id', '=', filter.agentId);
  if (filter.sessionId !== undefined) q = q.where('session_id', '=', filter.sessionId);
  if (filter.sinceTs !== undefined) q = q.where('ts', '>=', filter.sinceTs);
  if (filter.untilTs !== undefined) q = q.where('ts', '<', filter.untilTs);
  const rows = await guard(() => q.orderBy('seq', 'asc').limit(limit).execute());
  return guard(() => rows.map(fromRow));
}

/** The chain head's seq (0 for an empty log). */
export async function headSeq(store: Store): Promise<number> {
  const row = await guard(() =>
    store.db.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirst(),
  );
  return row === undefined ? 0 : Number(row.seq);
}

/** What to scan: a filter, where to start, where to stop. */
export interface ScanOptions {
  filter?: AuditFilter;
  /** Start after this seq (default 0: the beginning). */
  afterSeq?: number;
  /** Stop at this seq (default: the head when the scan begins). */
  throughSeq?: number;
  pageSize?: number;
}

/** One page of a scan and how far it got: `scannedThrough` may pass the last entry when a filter skips rows. */
export interface ScanPage {
  entries: AuditEntry[];
  scannedThrough: number;
  throughSeq: number;
}

/**
 * The matching entries from `afterSeq` to the head as it was when the scan began, a page at a
 * time: the caller writes each page before the next is read (its backpressure bounds memory).
 */
export async function* scanPages(store: Store, opts: ScanOptions = {}): AsyncGenerator<ScanPage> {
  const filter = opts.filter ?? {};
  const pageSize = opts.pageSize ?? EXPORT_PAGE_SIZE;
  const throughSeq = opts.throughSeq ?? (await headSeq(store));
  let after = opts.afterSeq ?? 0;
  while (after < throughSeq) {
    const entries = await readPage(store, filter, { afterSeq: after, throughSeq, limit: pageSize });
    // A short page is the last one: everything up to throughSeq was looked at.
    after = entries.length < pageSize ? throughSeq : entries.at(-1)!.seq;
    yield { entries, scannedThrough: after, throughSeq };
  }
}

/** Where an export's lines go: `write` resolves once the sink can take more (backpressure). */
export interface LineSink {
  write(text: string): Promise<void>;
}

/** What an export wrote. */
export interface ExportSummary {
  entries: number;
  /** The first and last seq written (null when nothing matched). */
  firstSeq: number | null;
  lastSeq: number | null;
  /** The head the export stopped at. */
  throughSeq: number;
}

/**
 * Write every matching entry as one JSON line (JSONL), exactly as stored, page by page;
 * `onProgress` gets the seq position reached and the seq the export stops at.
 */
export async function exportJsonl(
  store: Store,
  out: LineSink,
  opts: ScanOptions & { onProgress?: (scanned: number, through: number) => void } = {},
): Promise<ExportSummary> {
  const summary: ExportSummary = { entries: 0, firstSeq: null, lastSeq: null, throughSeq: 0 };
  summary.throughSeq = opts.throughSeq ?? (await headSeq(store));
  const start = opts.afterSeq ?? 0;
  for await (const page of scanPages(store, { ...opts, throughSeq: summary.throughSeq })) {
    if (page.entries.length > 0) {
      await out.write(page.entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
      summary.entries += page.entries.length;
      summary.firstSeq ??= page.entries[0]!.seq;
      summary.lastSeq = page.entries.at(-1)!.seq;
    }
    opts.onProgress?.(page.scannedThrough - start, summary.throughSeq - start);
  }
  return summary;
}

const DURATION = /^(\d{1,9})(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * A point in time given on a command line: an ISO 8601 date-time with a zone (`2025-01-31T08:00:00Z`),
 * a date (midnight UTC), or a duration meaning that long before `now` (`24h`, `7d`, `30m`).
 * Throws INVALID_REQUEST naming `flag` otherwise.
 */
export function parseTimeArg(flag: string, value: string, now: number): number {
  const v = value.trim();
  const d = DURATION.exec(v);
  if (d) return now - Number(d[1]) * UNIT_MS[d[2]!]!;
  if (ISO_DATE.test(v) || ISO_DATE_TIME.test(v)) {
    const t = Date.parse(ISO_DATE.test(v) ? `${v}T00:00:00Z` : v);
    if (Number.isFinite(t)) return t;
  }
  const hint = /^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(v) ? ' (add Z or an offset such as +02:00)' : '';
  throw new WardenError(
    'INVALID_REQUEST',
    `${flag}: expected an ISO 8601 date-time such as 2025-01-31T08:00:00Z, a date, or a duration such as 24h or 7d; got "${value}"${hint}`,
    { rule: 'request.shape' },
  );
}
