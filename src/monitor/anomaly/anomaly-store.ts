/**
 * The `anomalies` table (migration 009): what was raised, for the admin API,
 * severity counting and de-duplication, and for finishing the anomalies of a
 * process that died between committing one and auditing it.
 */
import type { Insertable, Selectable } from 'kysely';
import type { AnomaliesTable, Store } from '../../store/index.js';
import type { AnomalyQuery, AnomalyRecord } from './types.js';

/** An anomaly ready to insert (severity and response decided) with its de-duplication key. */
export type NewAnomaly = AnomalyRecord & { dedup: string };

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

/** The numbers column: everything about the anomaly that has no column of its own. */
function numbersOf(a: AnomalyRecord): string {
  return JSON.stringify({
    windowMs: a.windowMs,
    metric: a.metric,
    observed: a.observed,
    baseline: a.baseline,
    factor: a.factor,
    threshold: a.threshold,
    count: a.count,
    details: a.details,
  });
}

/** A stored anomaly. */
function rowToRecord(r: Selectable<AnomaliesTable>): AnomalyRecord {
  let n: Record<string, unknown> = {};
  try {
    n = JSON.parse(r.numbers) as Record<string, unknown>;
  } catch {
    // a damaged row still lists, without its numbers
  }
  const numOrNull = (v: unknown) => (typeof v === 'number' ? v : null);
  return {
    id: r.id,
    ts: Number(r.ts),
    rule: r.rule as AnomalyRecord['rule'],
    severity: r.severity as AnomalyRecord['severity'],
    response: r.response as AnomalyRecord['response'],
    agentId: r.agent_id,
    agentType: r.agent_type,
    sessionId: r.session_id,
    tool: r.tool,
    windowStart: Number(r.window_start),
    windowMs: num(n.windowMs),
    metric: (typeof n.metric === 'string' ? n.metric : 'calls') as AnomalyRecord['metric'],
    observed: numOrNull(n.observed),
    baseline: numOrNull(n.baseline),
    factor: numOrNull(n.factor),
    threshold: numOrNull(n.threshold),
    count: num(n.count),
    details:
      typeof n.details === 'object' && n.details !== null ? (n.details as AnomalyRecord['details']) : {},
    traceId: r.trace_id,
    triggerSeq: Number(r.trigger_seq),
    respondedAt: r.responded_at === null ? null : Number(r.responded_at),
    responseError: r.response_error,
    auditSeq: r.audit_seq === null ? null : Number(r.audit_seq),
  };
}

/** The row that stores a new anomaly, claimed by the process committing it at `now`. */
export function anomalyRow(a: NewAnomaly, now: number): Insertable<AnomaliesTable> {
  return {
    id: a.id,
    ts: a.ts,
    agent_id: a.agentId,
    agent_type: a.agentType,
    session_id: a.sessionId,
    tool: a.tool,
    rule: a.rule,
    severity: a.severity,
    response: a.response,
    window_start: a.windowStart,
    dedup: a.dedup,
    numbers: numbersOf(a),
    trace_id: a.traceId,
    trigger_seq: a.triggerSeq,
    claimed_at: now,
    responded_at: null,
    response_error: null,
    audit_seq: null,
  };
}

/** Reads and bookkeeping of stored anomalies. */
export class AnomalyStore {
  constructor(private readonly store: Store) {}

  /** Which of these de-duplication keys are taken already. */
  async existingDedups(keys: readonly string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const rows = await this.store.db
      .selectFrom('anomalies')
      .select('dedup')
      .where('dedup', 'in', keys)
      .execute();
    return new Set(rows.map((r) => r.dedup));
  }

  /** Anomalies per agent raised at or after `since`. */
  async recentCounts(agents: readonly string[], since: number): Promise<Map<string, number>> {
    if (agents.length === 0) return new Map();
    const rows = await this.store.db
      .selectFrom('anomalies')
      .select((eb) => ['agent_id', eb.fn.countAll<number>().as('n')])
      .where('agent_id', 'in', agents)
      .where('ts', '>=', since)
      .groupBy('agent_id')
      .execute();
    return new Map(rows.map((r) => [r.agent_id, num(r.n)]));
  }

  /** Records that the response ran (and how it failed, if it did). */
  async markResponded(id: string, at: number, error: string | null): Promise<void> {
    await this.store.db
      .updateTable('anomalies')
      .set({ responded_at: at, response_error: error })
      .where('id', '=', id)
      .execute();
  }

  /** Records the ANOMALY_DETECTED entry. */
  async markAudited(id: string, seq: number): Promise<void> {
    await this.store.db.updateTable('anomalies').set({ audit_seq: seq }).where('id', '=', id).execute();
  }

  /**
   * Anomalies a process committed but did not finish (it crashed before auditing them), claimed
   * longer than `leaseMs` ago: each is taken over by compare-and-set, so one process finishes it.
   */
  async claimUnfinished(now: number, leaseMs: number, limit: number): Promise<AnomalyRecord[]> {
    const rows = await this.store.db
      .selectFrom('anomalies')
      .selectAll()
      .where('audit_seq', 'is', null)
      .where('claimed_at', '<', now - leaseMs)
      .orderBy('claimed_at', 'asc')
      .limit(limit)
      .execute();
    const out: AnomalyRecord[] = [];
    for (const r of rows) {
      const claimed = await this.store.db
        .updateTable('anomalies')
        .set({ claimed_at: now })
        .where('id', '=', r.id)
        .where('claimed_at', '=', r.claimed_at)
        .where('audit_seq', 'is', null)
        .executeTakeFirst();
      if (claimed.numUpdatedRows === 1n) out.push(rowToRecord(r));
    }
    return out;
  }

  /** Stored anomalies, newest first. */
  async list(q: AnomalyQuery): Promise<AnomalyRecord[]> {
    const limit = Math.min(Math.max(Math.trunc(q.limit ?? 100), 1), 1000);
    let query = this.store.db.selectFrom('anomalies').selectAll();
    if (q.agentId !== undefined) query = query.where('agent_id', '=', q.agentId);
    if (q.since !== undefined) query = query.where('ts', '>=', q.since);
    const rows = await query.orderBy('ts', 'desc').orderBy('id', 'asc').limit(limit).execute();
    return rows.map(rowToRecord);
  }
}
