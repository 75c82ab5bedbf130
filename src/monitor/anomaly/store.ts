/**
 * The monitor's tables (migration 009): hourly buckets, tools ever run and the
 * audit-log cursor (anomalies: anomaly-store.ts). A batch of the log is committed in one
 * transaction that first moves the cursor from where its reader found it to
 * where the batch ends (compare-and-set): of several processes that read the
 * same batch, exactly one commits its buckets and anomalies.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Store } from '../../store/index.js';
import { anomalyRow, type NewAnomaly } from './anomaly-store.js';
import { entry, type HourStats, type RangeStats } from './stats.js';

/** The cursor row of the anomaly monitor. */
export const CURSOR = 'anomaly';
/** Events the monitor reads: calls (outcome phase only) and denials. */
export const CALL_EVENT = 'TOOL_CALL';
export const DENIAL_EVENTS = ['TOOL_DENIED', 'RATE_LIMITED'] as const;
/** Rows per multi-row INSERT: 11 columns × 200 stays far below either dialect's parameter limit. */
const INSERT_CHUNK = 200;
/**
 * Longest name (UTF-8 bytes) kept as written in a key column. A denied call's tool name is what
 * the agent asked for: without a bound, one long enough to overflow an index entry would fail
 * every commit of its batch and stall monitoring for good.
 */
const MAX_NAME_BYTES = 200;
/** Largest byte or token count taken from one entry (a reported 1e300 must not overflow BIGINT). */
const MAX_MEASURE = 1e12;

export type Scope = 'agent' | 'type';

/** One audit entry, as the monitor needs it. */
export interface MonitorEvent {
  seq: number;
  ts: number;
  traceId: string;
  kind: 'call' | 'denial';
  agentId: string;
  agentType: string | null;
  sessionId: string | null;
  /** '' when a denial named no tool. */
  tool: string;
  resultBytes: number;
  /** Model tokens the agent reported; null = not reported (unknown, never zero). */
  tokens: number | null;
}

/** An increment of one bucket. */
export interface BucketDelta extends HourStats {
  scope: Scope;
  key: string;
  tool: string;
  hour: number;
  agentType: string;
}

/** First and last call of a tool by one scope key. */
export interface ToolSeen {
  scope: Scope;
  key: string;
  tool: string;
  first: number;
  last: number;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

/** One bucket row's counts. */
const statsOf = (r: {
  calls: unknown;
  result_bytes: unknown;
  tokens: unknown;
  token_calls: unknown;
  denials: unknown;
}): HourStats => ({
  calls: num(r.calls),
  resultBytes: num(r.result_bytes),
  tokens: num(r.tokens),
  tokenCalls: num(r.token_calls),
  denials: num(r.denials),
});

/** A count from an entry: a whole number within bounds, or null when it is not a count. */
function measure(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(Math.min(v, MAX_MEASURE)) : null;
}

/** `s`, or when too long for a key column its start and a hash of the whole (distinct names stay distinct). */
export function boundedName(s: string): string {
  if (Buffer.byteLength(s) <= MAX_NAME_BYTES) return s;
  const hash = createHash('sha256').update(s).digest('hex').slice(0, 16);
  return `${[...s].slice(0, 48).join('')}…${hash}`;
}

/** Reads and writes of the monitor's tables. */
export class MonitorStore {
  constructor(private readonly store: Store) {}

  /** Creates the cursor at 0 (the whole log is history to learn from) unless it exists. */
  async ensureCursor(now: number): Promise<void> {
    await this.store.db
      .insertInto('monitor_cursors')
      .values({ name: CURSOR, seq: 0, updated_at: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
  }

  /** The last seq processed. */
  async cursor(): Promise<number> {
    const r = await this.store.db
      .selectFrom('monitor_cursors')
      .select('seq')
      .where('name', '=', CURSOR)
      .executeTakeFirst();
    return num(r?.seq);
  }

  /** The last committed audit seq. */
  async head(): Promise<number> {
    const r = await this.store.db
      .selectFrom('audit_head')
      .select('seq')
      .where('id', '=', 1)
      .executeTakeFirst();
    return num(r?.seq);
  }

  /** The monitored entries with seq in (after, upTo], in seq order. */
  async events(after: number, upTo: number): Promise<MonitorEvent[]> {
    const rows = await this.store.db
      .selectFrom('audit_log')
      .select(['seq', 'ts', 'trace_id', 'event', 'agent_id', 'agent_type', 'session_id', 'tool_name', 'data'])
      .where('seq', '>', after)
      .where('seq', '<=', upTo)
      .where('event', 'in', [CALL_EVENT, ...DENIAL_EVENTS])
      .orderBy('seq', 'asc')
      .execute();
    const out: MonitorEvent[] = [];
    for (const r of rows) {
      if (r.agent_id === null) continue;
      let data: Record<string, unknown> = {};
      if (r.data !== null) {
        try {
          const parsed: unknown = JSON.parse(r.data);
          if (typeof parsed === 'object' && parsed !== null) data = parsed as Record<string, unknown>;
        } catch {
          // unreadable data: counted as a call or denial without numbers
        }
      }
      const call = r.event === CALL_EVENT;
      // The attempt entry precedes every call that runs; only its outcome is counted.
      if (call && data.phase !== 'outcome') continue;
      out.push({
        seq: Number(r.seq),
        ts: Number(r.ts),
        traceId: r.trace_id,
        kind: call ? 'call' : 'denial',
        agentId: boundedName(r.agent_id),
        agentType: r.agent_type === null ? null : boundedName(r.agent_type),
        sessionId: r.session_id,
        tool: boundedName(r.tool_name ?? ''),
        resultBytes: call ? (measure(data.resultBytes) ?? 0) : 0,
        tokens: call ? measure(data.tokens) : null,
      });
    }
    return out;
  }

  /** Hourly rows of scope-`agent` keys for `tools`, hours in [from, to). */
  async agentHours(
    agents: readonly string[],
    tools: readonly string[],
    from: number,
    to: number,
  ): Promise<Array<{ key: string; tool: string; hour: number; stats: HourStats }>> {
    if (agents.length === 0 || tools.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('monitor_buckets')
      .selectAll()
      .where('scope', '=', 'agent')
      .where('key', 'in', agents)
      .where('tool', 'in', tools)
      .where('hour', '>=', from)
      .where('hour', '<', to)
      .execute();
    return rows.map((r) => ({
      key: r.key,
      tool: r.tool,
      hour: Number(r.hour),
      stats: statsOf(r),
    }));
  }

  /** Every hourly row of one scope key, hours in [from, to). */
  async keyHours(
    scope: Scope,
    key: string,
    from: number,
    to: number,
  ): Promise<Array<{ tool: string; hour: number; stats: HourStats }>> {
    const rows = await this.store.db
      .selectFrom('monitor_buckets')
      .selectAll()
      .where('scope', '=', scope)
      .where('key', '=', key)
      .where('hour', '>=', from)
      .where('hour', '<', to)
      .execute();
    return rows.map((r) => ({
      tool: r.tool,
      hour: Number(r.hour),
      stats: statsOf(r),
    }));
  }

  /**
   * A type's behaviour per (agent, window): totals over its agents' rows in [from, to) and the
   * number of (agent, window) pairs with calls — what a new agent of the type is compared with.
   */
  async typeStats(
    agentType: string,
    tools: readonly string[] | undefined,
    from: number,
    to: number,
    windowMs: number,
  ): Promise<Map<string, RangeStats>> {
    // Both dialects divide integers exactly when both sides are integers (SQLite binds JS
    // numbers as REAL, hence the cast); the outer query groups by the alias `w`.
    const w = sql<number>`hour / cast(${windowMs} as integer)`;
    let inner = this.store.db
      .selectFrom('monitor_buckets')
      .select((eb) => [
        'tool',
        'key',
        w.as('w'),
        eb.fn.sum<number>('calls').as('c'),
        eb.fn.sum<number>('result_bytes').as('b'),
        eb.fn.sum<number>('tokens').as('t'),
        eb.fn.sum<number>('token_calls').as('tc'),
        eb.fn.sum<number>('denials').as('d'),
      ])
      .where('scope', '=', 'agent')
      .where('agent_type', '=', agentType)
      .where('hour', '>=', from)
      .where('hour', '<', to)
      .where('calls', '>', 0);
    if (tools !== undefined) {
      if (tools.length === 0) return new Map();
      inner = inner.where('tool', 'in', tools);
    }
    const rows = await this.store.db
      .selectFrom(inner.groupBy(['tool', 'key', sql`w`]).as('s'))
      .select((eb) => [
        's.tool',
        eb.fn.countAll<number>().as('windows'),
        eb.fn.sum<number>('s.c').as('calls'),
        eb.fn.sum<number>('s.b').as('bytes'),
        eb.fn.sum<number>('s.t').as('tokens'),
        eb.fn.sum<number>('s.tc').as('token_calls'),
        eb.fn.sum<number>('s.d').as('denials'),
        eb.fn.sum<number>(eb.case().when('s.tc', '>', 0).then(1).else(0).end()).as('token_windows'),
      ])
      .groupBy('s.tool')
      .execute();
    const out = new Map<string, RangeStats>();
    for (const r of rows) {
      out.set(r.tool, {
        calls: num(r.calls),
        resultBytes: num(r.bytes),
        tokens: num(r.tokens),
        tokenCalls: num(r.token_calls),
        denials: num(r.denials),
        windows: num(r.windows),
        tokenWindows: num(r.token_windows),
      });
    }
    return out;
  }

  /** The tools each key has ever run, with first and last call. */
  async knownTools(scope: Scope, keys: readonly string[]): Promise<Map<string, Map<string, ToolSeen>>> {
    const out = new Map<string, Map<string, ToolSeen>>();
    if (keys.length === 0) return out;
    const rows = await this.store.db
      .selectFrom('monitor_tools')
      .selectAll()
      .where('scope', '=', scope)
      .where('key', 'in', keys)
      .execute();
    for (const r of rows) {
      entry(out, r.key, () => new Map<string, ToolSeen>()).set(r.tool, {
        scope,
        key: r.key,
        tool: r.tool,
        first: Number(r.first_seen),
        last: Number(r.last_seen),
      });
    }
    return out;
  }

  /** Timestamps of the agent's latest `limit` denials with seq ≤ `maxSeq` and ts > `after`, newest first. */
  async priorDenials(agentId: string, after: number, maxSeq: number, limit: number): Promise<number[]> {
    if (limit <= 0) return [];
    const rows = await this.store.db
      .selectFrom('audit_log')
      .select('ts')
      .where('agent_id', '=', agentId)
      .where('ts', '>', after)
      .where('seq', '<=', maxSeq)
      .where('event', 'in', [...DENIAL_EVENTS])
      .orderBy('ts', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => Number(r.ts));
  }

  /**
   * Commits one batch: moves the cursor from `from` to `to` (or returns null when another
   * process has moved it: the batch is theirs), adds the bucket and tool increments and
   * inserts the anomalies. Returns the ids inserted.
   */
  async commit(
    from: number,
    to: number,
    now: number,
    buckets: readonly BucketDelta[],
    tools: readonly ToolSeen[],
    anomalies: readonly NewAnomaly[],
  ): Promise<Set<string> | null> {
    try {
      return await this.store.db.transaction().execute(async (trx) => {
        // First statement, and a write: on SQLite it takes the write lock before anything is read.
        const moved = await trx
          .updateTable('monitor_cursors')
          .set({ seq: to, updated_at: now })
          .where('name', '=', CURSOR)
          .where('seq', '=', from)
          .executeTakeFirst();
        if (moved.numUpdatedRows !== 1n) throw new LostRace();
        for (let i = 0; i < buckets.length; i += INSERT_CHUNK) {
          await trx
            .insertInto('monitor_buckets')
            .values(
              buckets.slice(i, i + INSERT_CHUNK).map((b) => ({
                scope: b.scope,
                key: b.key,
                tool: b.tool,
                hour: b.hour,
                agent_type: b.agentType,
                calls: b.calls,
                result_bytes: b.resultBytes,
                tokens: b.tokens,
                token_calls: b.tokenCalls,
                denials: b.denials,
              })),
            )
            .onConflict((oc) =>
              oc.columns(['scope', 'key', 'tool', 'hour']).doUpdateSet((eb) => ({
                calls: eb('monitor_buckets.calls', '+', eb.ref('excluded.calls')),
                result_bytes: eb('monitor_buckets.result_bytes', '+', eb.ref('excluded.result_bytes')),
                tokens: eb('monitor_buckets.tokens', '+', eb.ref('excluded.tokens')),
                token_calls: eb('monitor_buckets.token_calls', '+', eb.ref('excluded.token_calls')),
                denials: eb('monitor_buckets.denials', '+', eb.ref('excluded.denials')),
              })),
            )
            .execute();
        }
        for (let i = 0; i < tools.length; i += INSERT_CHUNK) {
          await trx
            .insertInto('monitor_tools')
            .values(
              tools.slice(i, i + INSERT_CHUNK).map((t) => ({
                scope: t.scope,
                key: t.key,
                tool: t.tool,
                first_seen: t.first,
                last_seen: t.last,
              })),
            )
            .onConflict((oc) =>
              oc.columns(['scope', 'key', 'tool']).doUpdateSet((eb) => ({
                // Entries of different processes are not in ts order: keep the extremes.
                first_seen: eb
                  .case()
                  .when('excluded.first_seen', '<', eb.ref('monitor_tools.first_seen'))
                  .then(eb.ref('excluded.first_seen'))
                  .else(eb.ref('monitor_tools.first_seen'))
                  .end(),
                last_seen: eb
                  .case()
                  .when('excluded.last_seen', '>', eb.ref('monitor_tools.last_seen'))
                  .then(eb.ref('excluded.last_seen'))
                  .else(eb.ref('monitor_tools.last_seen'))
                  .end(),
              })),
            )
            .execute();
        }
        const inserted = new Set<string>();
        for (let i = 0; i < anomalies.length; i += INSERT_CHUNK) {
          const rows = await trx
            .insertInto('anomalies')
            .values(anomalies.slice(i, i + INSERT_CHUNK).map((a) => anomalyRow(a, now)))
            .onConflict((oc) => oc.column('dedup').doNothing())
            .returning('id')
            .execute();
          for (const r of rows) inserted.add(r.id);
        }
        return inserted;
      });
    } catch (e) {
      // Lost the compare-and-set, or the lock behind it: either way the batch is (or will be) someone's.
      if (e instanceof LostRace || isContention(e)) return null;
      throw e;
    }
  }

  /** Forgets buckets of hours before `before` (tools ever run and anomalies are kept). */
  async prune(before: number): Promise<number> {
    const r = await this.store.db.deleteFrom('monitor_buckets').where('hour', '<', before).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

/** Another process committed the batch first. */
class LostRace extends Error {}

/** Lock contention with another writer (SQLITE_BUSY, PostgreSQL serialization failure or deadlock). */
function isContention(e: unknown): boolean {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const code = (c as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return true;
    if (code === '40001' || code === '40P01') return true;
  }
  return false;
}
