/**
 * The `approvals` table: row mapping and the conditional updates that make
 * decisions race-free. Every state change is one UPDATE guarded by the state
 * it leaves, so with several gateway processes (or an approver clicking twice)
 * exactly one change wins and the others see that they lost.
 */
import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import type { Kysely, Selectable } from 'kysely';
import type { RiskClass } from '../config/types.js';
import type { ApprovalsTable, Database, Store } from '../store/index.js';
import type { Approval, ApprovalKind, DecidedVia, ReviewVerdict } from './types.js';

// canonicalize is CommonJS typed as `export default` (see src/audit/entry.ts).
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** SHA-256 hex of the canonical JSON (RFC 8785) of `args`: how a retried call is matched to its approval. */
export function argumentsHash(args: unknown): string {
  const text = canonicalize(args ?? {});
  if (text === undefined) throw new TypeError('arguments are not JSON-encodable');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function parse<T>(text: string | null, fallback: T): T {
  if (text === null) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

export function rowToApproval(row: Selectable<ApprovalsTable>): Approval {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status as Approval['status'],
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    traceId: row.trace_id,
    agentId: row.agent_id,
    agentType: row.agent_type,
    sessionId: row.session_id,
    userId: row.user_id,
    toolName: row.tool_name,
    risk: row.risk as RiskClass,
    configuredRisk: row.configured_risk as RiskClass,
    arguments: parse<unknown>(row.arguments, null),
    argumentsHash: row.arguments_hash,
    reasoning: row.reasoning,
    rule: row.rule,
    policyIds: parse<string[]>(row.policy_ids, []),
    auditSeq: row.audit_seq === null ? null : Number(row.audit_seq),
    decidedAt: row.decided_at === null ? null : Number(row.decided_at),
    decidedBy: row.decided_by,
    decidedVia: row.decided_via as DecidedVia | null,
    comment: row.decision_comment,
    argumentPatch: parse<Record<string, unknown> | null>(row.argument_patch, null),
    verdict: row.verdict as ReviewVerdict | null,
    consumedAt: row.consumed_at === null ? null : Number(row.consumed_at),
  };
}

/** A new row: everything a request or flag has before anyone decides (arguments already redacted). */
export type NewApprovalRow = Omit<
  Approval,
  'status' | 'decidedAt' | 'decidedBy' | 'decidedVia' | 'comment' | 'argumentPatch' | 'verdict' | 'consumedAt'
> & { status: 'pending' | 'flagged' };

export interface ListOptions {
  kind?: ApprovalKind;
  status?: string;
  agentId?: string;
  /** Newest first; at most this many (default 50, at most 500). */
  limit?: number;
}

/** Queries over the approvals table. */
export class ApprovalRecords {
  constructor(private readonly store: Store) {}

  /** `relaxed`: commit without waiting for the disk (a later synchronous commit makes it durable). */
  async insert(r: NewApprovalRow, relaxed = false): Promise<void> {
    if (relaxed) return this.store.relaxed((db) => this.insertOn(db, r));
    return this.insertOn(this.store.db, r);
  }

  private async insertOn(db: Kysely<Database>, r: NewApprovalRow): Promise<void> {
    await db
      .insertInto('approvals')
      .values({
        id: r.id,
        kind: r.kind,
        status: r.status,
        created_at: r.createdAt,
        expires_at: r.expiresAt,
        trace_id: r.traceId,
        agent_id: r.agentId,
        agent_type: r.agentType,
        session_id: r.sessionId,
        user_id: r.userId,
        tool_name: r.toolName,
        risk: r.risk,
        configured_risk: r.configuredRisk,
        arguments: JSON.stringify(r.arguments ?? null),
        arguments_hash: r.argumentsHash,
        reasoning: r.reasoning,
        rule: r.rule,
        policy_ids: JSON.stringify(r.policyIds),
        audit_seq: r.auditSeq,
        decided_at: null,
        decided_by: null,
        decided_via: null,
        decision_comment: null,
        argument_patch: null,
        verdict: null,
        consumed_at: null,
        consumed_trace_id: null,
      })
      .execute();
  }

  async get(id: string): Promise<Approval | undefined> {
    const row = await this.store.db
      .selectFrom('approvals')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? undefined : rowToApproval(row);
  }

  async getMany(ids: readonly string[]): Promise<Approval[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db.selectFrom('approvals').selectAll().where('id', 'in', ids).execute();
    return rows.map(rowToApproval);
  }

  async list(opts: ListOptions = {}): Promise<Approval[]> {
    const limit = Math.min(Math.max(Math.trunc(opts.limit ?? 50), 1), 500);
    let q = this.store.db.selectFrom('approvals').selectAll();
    if (opts.kind !== undefined) q = q.where('kind', '=', opts.kind);
    if (opts.status !== undefined) q = q.where('status', '=', opts.status);
    if (opts.agentId !== undefined) q = q.where('agent_id', '=', opts.agentId);
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map(rowToApproval);
  }

  /**
   * An open approval for exactly this call (same agent, tool and arguments): pending, or
   * approved and not yet used, and not expired. A retried call re-attaches to it instead of
   * asking the humans twice.
   */
  async findOpen(
    call: { agentId: string; userId: string | null; toolName: string; hash: string },
    now: number,
    /** Approvals decided before this are no longer usable. */
    decidedAfter: number,
  ): Promise<Approval | undefined> {
    const row = await this.store.db
      .selectFrom('approvals')
      .selectAll()
      .where('kind', '=', 'approval')
      .where('agent_id', '=', call.agentId)
      .where('tool_name', '=', call.toolName)
      .where('arguments_hash', '=', call.hash)
      // An approval is for the call as made for this user (or for none): never for another's session.
      .where('user_id', call.userId === null ? 'is' : '=', call.userId)
      .where('consumed_at', 'is', null)
      .where((eb) =>
        eb.or([
          eb.and([eb('status', '=', 'pending'), eb('expires_at', '>', now)]),
          eb.and([eb('status', '=', 'approved'), eb('decided_at', '>', decidedAfter)]),
        ]),
      )
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : rowToApproval(row);
  }

  /** pending → approved | denied, if still pending and not expired. True when this call won. */
  async decide(
    id: string,
    d: {
      status: 'approved' | 'denied';
      at: number;
      by: string;
      via: DecidedVia;
      comment: string | null;
      patch: Record<string, unknown> | null;
    },
  ): Promise<boolean> {
    const r = await this.store.db
      .updateTable('approvals')
      .set({
        status: d.status,
        decided_at: d.at,
        decided_by: d.by,
        decided_via: d.via,
        decision_comment: d.comment,
        argument_patch: d.patch === null ? null : JSON.stringify(d.patch),
      })
      .where('id', '=', id)
      .where('kind', '=', 'approval')
      .where('status', '=', 'pending')
      .where('expires_at', '>', d.at)
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** Undo a decision that could not be audited (only if nothing used it since). */
  async undecide(id: string, at: number): Promise<void> {
    await this.store.db
      .updateTable('approvals')
      .set({
        status: 'pending',
        decided_at: null,
        decided_by: null,
        decided_via: null,
        decision_comment: null,
        argument_patch: null,
      })
      .where('id', '=', id)
      .where('decided_at', '=', at)
      .where('consumed_at', 'is', null)
      .execute();
  }

  /** pending → expired once its time is up. True when this call won (and so audits it). */
  async expire(id: string, now: number): Promise<boolean> {
    const r = await this.store.db
      .updateTable('approvals')
      .set({ status: 'expired', decided_at: now, decided_by: 'system:timeout', decided_via: 'timeout' })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** Pending approval requests of an agent (or one of its sessions): what a kill denies. */
  async pendingIds(filter: { agentId?: string; sessionId?: string }, limit = 1000): Promise<string[]> {
    let q = this.store.db
      .selectFrom('approvals')
      .select('id')
      .where('status', '=', 'pending')
      .where('kind', '=', 'approval');
    if (filter.agentId !== undefined) q = q.where('agent_id', '=', filter.agentId);
    if (filter.sessionId !== undefined) q = q.where('session_id', '=', filter.sessionId);
    return (await q.limit(limit).execute()).map((r) => r.id);
  }

  /** pending → denied by Warden itself (kill switch). True when this call won. */
  async denyBySystem(id: string, now: number, by: string, comment: string): Promise<boolean> {
    const r = await this.store.db
      .updateTable('approvals')
      .set({
        status: 'denied',
        decided_at: now,
        decided_by: by,
        decided_via: 'system',
        decision_comment: comment,
      })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** How many requests wait for a human now (pending and not yet expired): the metrics gauge. */
  async countPending(now: number): Promise<number> {
    const row = await this.store.db
      .selectFrom('approvals')
      .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
      .where('status', '=', 'pending')
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Pending requests whose time is up (the sweeper expires them one by one, so each is audited once). */
  async dueIds(now: number, limit = 100): Promise<string[]> {
    const rows = await this.store.db
      .selectFrom('approvals')
      .select('id')
      .where('status', '=', 'pending')
      .where('expires_at', '<=', now)
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /** approved → used by one call (an approval is single use). True when this call won. */
  async consume(id: string, now: number, traceId: string): Promise<boolean> {
    const r = await this.store.db
      .updateTable('approvals')
      .set({ consumed_at: now, consumed_trace_id: traceId })
      .where('id', '=', id)
      .where('status', '=', 'approved')
      .where('consumed_at', 'is', null)
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** Give an approval back when the call it was consumed for could not start (fail closed first). */
  async unconsume(id: string, traceId: string): Promise<void> {
    await this.store.db
      .updateTable('approvals')
      .set({ consumed_at: null, consumed_trace_id: null })
      .where('id', '=', id)
      .where('consumed_trace_id', '=', traceId)
      .execute();
  }

  /** Undo a verdict that could not be audited. */
  async unreview(id: string, at: number): Promise<void> {
    await this.store.db
      .updateTable('approvals')
      .set({
        status: 'flagged',
        verdict: null,
        decided_at: null,
        decided_by: null,
        decided_via: null,
        decision_comment: null,
      })
      .where('id', '=', id)
      .where('kind', '=', 'review')
      .where('decided_at', '=', at)
      .execute();
  }

  /** flagged → reviewed with a verdict. True when this call won. */
  async review(
    id: string,
    d: { verdict: ReviewVerdict; at: number; by: string; via: DecidedVia; comment: string | null },
  ): Promise<boolean> {
    const r = await this.store.db
      .updateTable('approvals')
      .set({
        status: 'reviewed',
        verdict: d.verdict,
        decided_at: d.at,
        decided_by: d.by,
        decided_via: d.via,
        decision_comment: d.comment,
      })
      .where('id', '=', id)
      .where('kind', '=', 'review')
      .where('status', '=', 'flagged')
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }
}
