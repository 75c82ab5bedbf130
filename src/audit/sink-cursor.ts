/**
 * An audit sink's row in `audit_sink_cursor` (migration 012): the last seq
 * delivered and the lease on delivering. Every change is one conditional UPDATE
 * (compare-and-set), so with several gateways on one PostgreSQL exactly one
 * holds a sink's lease at a time, and only the holder moves its cursor.
 */
import type { Store } from '../store/index.js';

/** A sink's position and who delivers it. */
export interface SinkCursor {
  name: string;
  seq: number;
  leasedBy: string | null;
  leaseUntil: number;
  failures: number;
  lastError: string | null;
}

/** Create the sink's row at seq 0 (the whole log is delivered) unless it exists. */
export async function ensureCursor(store: Store, name: string, now: number): Promise<void> {
  await store.db
    .insertInto('audit_sink_cursor')
    .values({ name, seq: 0, leased_by: null, lease_until: 0, failures: 0, last_error: null, updated_at: now })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
}

/** The sink's row, if it exists. */
export async function readCursor(store: Store, name: string): Promise<SinkCursor | undefined> {
  const r = await store.db
    .selectFrom('audit_sink_cursor')
    .selectAll()
    .where('name', '=', name)
    .executeTakeFirst();
  return r === undefined
    ? undefined
    : {
        name: r.name,
        seq: Number(r.seq),
        leasedBy: r.leased_by,
        leaseUntil: Number(r.lease_until),
        failures: Number(r.failures),
        lastError: r.last_error,
      };
}

/**
 * Take or renew the lease for `holder` until `now + leaseMs`: succeeds when nobody holds it,
 * `holder` does already, or the holder's lease lapsed (it crashed or hangs). True when held.
 */
export async function acquireLease(
  store: Store,
  name: string,
  holder: string,
  now: number,
  leaseMs: number,
): Promise<boolean> {
  const r = await store.db
    .updateTable('audit_sink_cursor')
    .set({ leased_by: holder, lease_until: now + leaseMs })
    .where('name', '=', name)
    .where((eb) =>
      eb.or([eb('leased_by', 'is', null), eb('leased_by', '=', holder), eb('lease_until', '<', now)]),
    )
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

/** Move the cursor from `from` to `to` if `holder` still holds the lease and nobody moved it; true when moved. */
export async function advanceCursor(
  store: Store,
  name: string,
  holder: string,
  from: number,
  to: number,
  now: number,
): Promise<boolean> {
  const r = await store.db
    .updateTable('audit_sink_cursor')
    .set({ seq: to, failures: 0, last_error: null, updated_at: now })
    .where('name', '=', name)
    .where('leased_by', '=', holder)
    .where('seq', '=', from)
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

/** Record a failed delivery (for operators: how long, and why). */
export async function recordFailure(
  store: Store,
  name: string,
  holder: string,
  failures: number,
  error: string,
  now: number,
): Promise<void> {
  await store.db
    .updateTable('audit_sink_cursor')
    .set({ failures, last_error: error.slice(0, 500), updated_at: now })
    .where('name', '=', name)
    .where('leased_by', '=', holder)
    .execute();
}

/** Give the lease up (shutting down): another process may take the sink over at once. */
export async function releaseLease(store: Store, name: string, holder: string): Promise<void> {
  await store.db
    .updateTable('audit_sink_cursor')
    .set({ leased_by: null, lease_until: 0 })
    .where('name', '=', name)
    .where('leased_by', '=', holder)
    .execute();
}
