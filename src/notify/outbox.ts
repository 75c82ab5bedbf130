/**
 * The notification outbox (table `notification_outbox`): rows are queued in the
 * caller's moment, then claimed, delivered and settled by the delivery loop.
 *
 * Claiming is one conditional UPDATE per row that matches only the state the
 * claimer read (status, next_attempt_at, attempts) and moves next_attempt_at
 * one lease ahead: with several gateways on one PostgreSQL exactly one UPDATE
 * wins (the losers' WHERE no longer matches once the winner commits), and a
 * claimer that dies mid-delivery only delays the row by its lease. Delivery is
 * therefore at least once; receivers dedupe on the id.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../store/index.js';

/** Where a notification stands. */
export type OutboxStatus = 'pending' | 'sent' | 'dead';

/** An outbox row as operators see it (no payload: it repeats the approval). */
export interface OutboxEntry {
  id: string;
  /** `slack` or `webhook:<name>`. */
  target: string;
  event: string;
  approvalId: string | null;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

/** A row to queue. */
export interface NewOutboxRow {
  id: string;
  target: string;
  event: string;
  approvalId: string | null;
  payload: string;
}

/** A due row as read before claiming; the claim succeeds only if it is still in this state. */
export interface DueRow extends NewOutboxRow {
  attempts: number;
  nextAttemptAt: number;
}

/** Queue `rows` (one statement, so all or none), due at once. */
export async function enqueue(
  db: Kysely<Database>,
  rows: readonly NewOutboxRow[],
  now: number,
): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('notification_outbox')
    .values(
      rows.map((r) => ({
        id: r.id,
        target: r.target,
        event: r.event,
        approval_id: r.approvalId,
        payload: r.payload,
        status: 'pending',
        attempts: 0,
        next_attempt_at: now,
        last_error: null,
        created_at: now,
        updated_at: now,
      })),
    )
    .execute();
}

/** Up to `limit` pending rows due at `now`, oldest due first, leaving out `busyTargets` (not yet claimed). */
export async function selectDue(
  db: Kysely<Database>,
  now: number,
  limit: number,
  busyTargets: readonly string[] = [],
): Promise<DueRow[]> {
  let q = db.selectFrom('notification_outbox');
  if (busyTargets.length > 0) q = q.where('target', 'not in', [...busyTargets]);
  const rows = await q
    .select(['id', 'target', 'event', 'approval_id', 'payload', 'attempts', 'next_attempt_at'])
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .orderBy('next_attempt_at')
    .orderBy('created_at')
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    target: r.target,
    event: r.event,
    approvalId: r.approval_id,
    payload: r.payload,
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
  }));
}

/**
 * Claim `row` for one attempt: count the attempt and hide the row for `leaseMs`.
 * Returns the attempt number, or null when another claimer got there first.
 */
export async function claim(
  db: Kysely<Database>,
  row: DueRow,
  now: number,
  leaseMs: number,
): Promise<number | null> {
  const attempt = row.attempts + 1;
  const r = await db
    .updateTable('notification_outbox')
    .set({ attempts: attempt, next_attempt_at: now + leaseMs, updated_at: now })
    .where('id', '=', row.id)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '=', row.nextAttemptAt)
    .where('attempts', '=', row.attempts)
    .executeTakeFirst();
  return r.numUpdatedRows > 0n ? attempt : null;
}

/** Delivered. Any claimer may record it: a delivery is a delivery. */
export async function markSent(db: Kysely<Database>, id: string, now: number): Promise<void> {
  await db
    .updateTable('notification_outbox')
    .set({ status: 'sent', last_error: null, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .execute();
}

/** Try again at `at`, if this claim (attempt number) still owns the row. */
export async function scheduleRetry(
  db: Kysely<Database>,
  id: string,
  attempt: number,
  at: number,
  error: string,
  now: number,
): Promise<void> {
  await db
    .updateTable('notification_outbox')
    .set({ next_attempt_at: at, last_error: error, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .where('attempts', '=', attempt)
    .execute();
}

/** Give up: the row stays, visible to operators, until `requeueDead`. */
export async function markDead(
  db: Kysely<Database>,
  id: string,
  attempt: number,
  error: string,
  now: number,
): Promise<void> {
  await db
    .updateTable('notification_outbox')
    .set({ status: 'dead', last_error: error, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .where('attempts', '=', attempt)
    .execute();
}

/** Undo a claim whose attempt never ran to an answer (shutdown): due again now, attempt not counted. */
export async function releaseClaim(
  db: Kysely<Database>,
  id: string,
  attempt: number,
  now: number,
): Promise<void> {
  await db
    .updateTable('notification_outbox')
    .set({ attempts: attempt - 1, next_attempt_at: now, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .where('attempts', '=', attempt)
    .execute();
}

/**
 * Settle the pending messages a later event made pointless (a request that was
 * decided before it could be posted): marked sent, with the reason kept.
 */
export async function supersede(
  db: Kysely<Database>,
  approvalId: string,
  target: string,
  events: readonly string[],
  reason: string,
  now: number,
): Promise<number> {
  const r = await db
    .updateTable('notification_outbox')
    .set({ status: 'sent', last_error: reason, updated_at: now })
    .where('status', '=', 'pending')
    .where('approval_id', '=', approvalId)
    .where('target', '=', target)
    .where('event', 'in', [...events])
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** Rows for operators, newest first. */
export async function listOutbox(
  db: Kysely<Database>,
  opts: { status?: OutboxStatus; limit?: number } = {},
): Promise<OutboxEntry[]> {
  const limit = Math.min(Math.max(Math.trunc(opts.limit ?? 100), 1), 1000);
  let q = db
    .selectFrom('notification_outbox')
    .select([
      'id',
      'target',
      'event',
      'approval_id',
      'status',
      'attempts',
      'next_attempt_at',
      'last_error',
      'created_at',
      'updated_at',
    ])
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit);
  if (opts.status !== undefined) q = q.where('status', '=', opts.status);
  const rows = await q.execute();
  return rows.map((r) => ({
    id: r.id,
    target: r.target,
    event: r.event,
    approvalId: r.approval_id,
    status: r.status as OutboxStatus,
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    lastError: r.last_error,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  }));
}

/** A dead row back to pending with a fresh set of attempts; false when `id` is not dead. */
export async function requeueDead(db: Kysely<Database>, id: string, now: number): Promise<boolean> {
  const r = await db
    .updateTable('notification_outbox')
    .set({ status: 'pending', attempts: 0, next_attempt_at: now, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'dead')
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}
