/**
 * The `tool_pins` table: one row per upstream tool, shared by every gateway
 * process on the store, which is the source of truth. Every change is a single
 * statement guarded by the state it leaves (insert-if-absent, UPDATE … WHERE
 * hash = what I saw), so when two processes see the same new or changed tool at
 * once exactly one records it and the other reads what won.
 */
import type { Selectable } from 'kysely';
import type { Store, ToolPinsTable } from '../store/index.js';
import type { ToolDefinition } from './hash.js';
import type { DefinitionInspection } from './inspect.js';

/** approved: the approved hash is served; pending: never approved; quarantined: changed since approved. */
export type PinStatus = 'approved' | 'pending' | 'quarantined';

/** One upstream tool's pin, as the store holds it. Times are epoch ms. */
export interface ToolPin {
  upstream: string;
  /** The tool's name at the upstream. */
  tool: string;
  status: PinStatus;
  approvedHash: string | null;
  approvedDefinition: ToolDefinition | null;
  /** `system:auto` or `operator:<id>`. */
  approvedBy: string | null;
  approvedAt: number | null;
  /** The definition awaiting an operator; null when approved. */
  pendingHash: string | null;
  pendingDefinition: ToolDefinition | null;
  /** The detector's view of the pending (else the approved) definition. */
  inspection: DefinitionInspection | null;
  firstSeenAt: number;
  changedAt: number;
}

/** A definition as seen now: what a write records. */
export interface SeenDefinition {
  hash: string;
  definition: ToolDefinition;
  inspection: DefinitionInspection;
}

/** (upstream, tool) */
export interface PinKey {
  upstream: string;
  tool: string;
}

function parse<T>(text: string | null): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

const STATUSES: readonly string[] = ['approved', 'pending', 'quarantined'] satisfies PinStatus[];

function rowToPin(r: Selectable<ToolPinsTable>): ToolPin {
  return {
    upstream: r.upstream,
    tool: r.tool,
    // An unknown status (a row written by a newer version, or tampered with) is not approved.
    status: STATUSES.includes(r.status) ? (r.status as PinStatus) : 'quarantined',
    approvedHash: r.approved_hash,
    approvedDefinition: parse<ToolDefinition>(r.approved_definition),
    approvedBy: r.approved_by,
    approvedAt: r.approved_at === null ? null : Number(r.approved_at),
    pendingHash: r.pending_hash,
    pendingDefinition: parse<ToolDefinition>(r.pending_definition),
    inspection: parse<DefinitionInspection>(r.inspection),
    firstSeenAt: Number(r.first_seen_at),
    changedAt: Number(r.changed_at),
  };
}

/** Reads and guarded writes of `tool_pins`. */
export class PinStore {
  constructor(private readonly store: Store) {}

  /** Every pin. The table holds one row per upstream tool ever seen: small. */
  async all(): Promise<ToolPin[]> {
    const rows = await this.store.db.selectFrom('tool_pins').selectAll().execute();
    return rows.map(rowToPin);
  }

  /** The pin of one tool, or undefined. */
  async get(key: PinKey): Promise<ToolPin | undefined> {
    const row = await this.store.db
      .selectFrom('tool_pins')
      .selectAll()
      .where('upstream', '=', key.upstream)
      .where('tool', '=', key.tool)
      .executeTakeFirst();
    return row ? rowToPin(row) : undefined;
  }

  /**
   * First sight: records the tool as approved (`approvedBy` given) or pending, unless a row exists
   * already. True when this call wrote it; false when another process was first.
   */
  async insertIfAbsent(
    key: PinKey,
    seen: SeenDefinition,
    now: number,
    approvedBy?: string,
  ): Promise<boolean> {
    const def = JSON.stringify(seen.definition);
    const r = await this.store.db
      .insertInto('tool_pins')
      .values({
        upstream: key.upstream,
        tool: key.tool,
        status: approvedBy === undefined ? 'pending' : 'approved',
        approved_hash: approvedBy === undefined ? null : seen.hash,
        approved_definition: approvedBy === undefined ? null : def,
        approved_by: approvedBy ?? null,
        approved_at: approvedBy === undefined ? null : now,
        pending_hash: approvedBy === undefined ? seen.hash : null,
        pending_definition: approvedBy === undefined ? def : null,
        inspection: JSON.stringify(seen.inspection),
        first_seen_at: now,
        changed_at: now,
      })
      .onConflict((oc) => oc.columns(['upstream', 'tool']).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** An approved tool's definition changed: quarantine it, if it is still approved at `approvedHash`. */
  async quarantine(key: PinKey, approvedHash: string, seen: SeenDefinition, now: number): Promise<boolean> {
    const r = await this.store.db
      .updateTable('tool_pins')
      .set({
        status: 'quarantined',
        pending_hash: seen.hash,
        pending_definition: JSON.stringify(seen.definition),
        inspection: JSON.stringify(seen.inspection),
        changed_at: now,
      })
      .where('upstream', '=', key.upstream)
      .where('tool', '=', key.tool)
      .where('status', '=', 'approved')
      .where('approved_hash', '=', approvedHash)
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** The definition awaiting an operator changed again: replace it, if it is still `pendingHash`. */
  async replacePending(
    key: PinKey,
    pendingHash: string,
    seen: SeenDefinition,
    now: number,
  ): Promise<boolean> {
    const r = await this.store.db
      .updateTable('tool_pins')
      .set({
        pending_hash: seen.hash,
        pending_definition: JSON.stringify(seen.definition),
        inspection: JSON.stringify(seen.inspection),
        changed_at: now,
      })
      .where('upstream', '=', key.upstream)
      .where('tool', '=', key.tool)
      .where('status', 'in', ['pending', 'quarantined'])
      .where('pending_hash', '=', pendingHash)
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /**
   * An operator approves the definition awaiting review, if it is still exactly `seen.hash`
   * (a definition that changed between review and approval is not approved blindly).
   */
  async approve(key: PinKey, seen: SeenDefinition, approvedBy: string, now: number): Promise<boolean> {
    const r = await this.store.db
      .updateTable('tool_pins')
      .set({
        status: 'approved',
        approved_hash: seen.hash,
        approved_definition: JSON.stringify(seen.definition),
        approved_by: approvedBy,
        approved_at: now,
        pending_hash: null,
        pending_definition: null,
        inspection: JSON.stringify(seen.inspection),
        changed_at: now,
      })
      .where('upstream', '=', key.upstream)
      .where('tool', '=', key.tool)
      .where('status', 'in', ['pending', 'quarantined'])
      .where('pending_hash', '=', seen.hash)
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** Undoes an approval that could not be audited (only if the row is still exactly what it made). */
  async restore(before: ToolPin, approvedHash: string, approvedAt: number): Promise<boolean> {
    const r = await this.store.db
      .updateTable('tool_pins')
      .set({
        status: before.status,
        approved_hash: before.approvedHash,
        approved_definition:
          before.approvedDefinition === null ? null : JSON.stringify(before.approvedDefinition),
        approved_by: before.approvedBy,
        approved_at: before.approvedAt,
        pending_hash: before.pendingHash,
        pending_definition:
          before.pendingDefinition === null ? null : JSON.stringify(before.pendingDefinition),
        inspection: before.inspection === null ? null : JSON.stringify(before.inspection),
        changed_at: before.changedAt,
      })
      .where('upstream', '=', before.upstream)
      .where('tool', '=', before.tool)
      .where('status', '=', 'approved')
      .where('approved_hash', '=', approvedHash)
      .where('approved_at', '=', approvedAt)
      .executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** Removes a first sight that could not be audited, so the next reconcile records it again. */
  async forget(key: PinKey, hash: string, firstSeenAt: number): Promise<boolean> {
    const r = await this.store.db
      .deleteFrom('tool_pins')
      .where('upstream', '=', key.upstream)
      .where('tool', '=', key.tool)
      .where('first_seen_at', '=', firstSeenAt)
      .where((eb) => eb.or([eb('approved_hash', '=', hash), eb('pending_hash', '=', hash)]))
      .executeTakeFirst();
    return r.numDeletedRows === 1n;
  }
}
