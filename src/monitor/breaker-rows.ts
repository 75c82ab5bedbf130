/**
 * The circuit breakers' columns on the `sessions` and `agents` rows (migration
 * 010): every state change is one conditional UPDATE, so replicas racing on one
 * breaker change it once, and the one whose UPDATE matched records it.
 */
import { sql } from 'kysely';
import type { Store } from '../store/index.js';

/** `breaker_open_until` of a breaker only an operator closes: the latest time a Date can hold. */
export const UNTIL_RESET = 8_640_000_000_000_000;

export type BreakerScope = 'session' | 'agent';

/** One open breaker, as `Breakers.status()` lists it. */
export interface OpenBreaker {
  scope: BreakerScope;
  /** The session id or the agent id. */
  id: string;
  agentId: string;
  reason: string;
  /** Epoch ms when the cool-down ends; null = until an operator resets it. */
  openUntil: number | null;
}

/** A breaker's row as a reset reads it. */
export interface BreakerRowState {
  agentId: string;
  agentType: string | null;
  openUntil: number | null;
  reason: string | null;
}

/** An open-until as shown to people: null for "until an operator resets it". */
export function shown(until: number): number | null {
  return until === UNTIL_RESET ? null : until;
}

/** Reads and writes the breaker columns. */
export class BreakerRows {
  constructor(private readonly store: Store) {}

  /** Opens a closed breaker; true only for the caller whose UPDATE opened it. */
  async open(scope: BreakerScope, id: string, until: number, reason: string): Promise<boolean> {
    const res = await this.store.db
      // Both tables carry the same breaker columns (migration 010).
      .updateTable(scope === 'session' ? 'sessions' : ('agents' as 'sessions'))
      .set({ breaker_open_until: until, breaker_reason: reason })
      .where('id', '=', id)
      .where('breaker_open_until', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Closes a breaker iff it is still the one seen open until `until`, and zeroes its cost. */
  async close(scope: BreakerScope, id: string, until: number): Promise<boolean> {
    const db = this.store.db;
    const res =
      scope === 'session'
        ? await db
            .updateTable('sessions')
            .set({ breaker_open_until: null, breaker_reason: null, breaker_cost: 0 })
            .where('id', '=', id)
            .where('breaker_open_until', '=', until)
            .executeTakeFirst()
        : await db
            .updateTable('agents')
            .set({
              breaker_open_until: null,
              breaker_reason: null,
              breaker_cost: 0,
              breaker_cost_since: null,
            })
            .where('id', '=', id)
            .where('breaker_open_until', '=', until)
            .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Adds `units` to the session's cost (one atomic UPDATE); the new total. */
  async addSessionCost(id: string, units: number): Promise<number> {
    const row = await this.store.db
      .updateTable('sessions')
      .set((eb) => ({ breaker_cost: eb('breaker_cost', '+', units) }))
      .where('id', '=', id)
      .returning('breaker_cost')
      .executeTakeFirst();
    return Number(row?.breaker_cost ?? 0);
  }

  /** Adds `units` to the agent's current cost window, starting a new one when it ran out; the window's total. */
  async addAgentCost(id: string, units: number, now: number, windowMs: number): Promise<number> {
    // SET expressions all see the row as it was, so both CASEs agree on whether the window is new.
    const fresh = sql<boolean>`(breaker_cost_since is null or breaker_cost_since <= ${now - windowMs})`;
    const row = await this.store.db
      .updateTable('agents')
      .set({
        breaker_cost: sql<number>`case when ${fresh} then ${units} else breaker_cost + ${units} end`,
        breaker_cost_since: sql<number>`case when ${fresh} then ${now} else breaker_cost_since end`,
      })
      .where('id', '=', id)
      .returning('breaker_cost')
      .executeTakeFirst();
    return Number(row?.breaker_cost ?? 0);
  }

  /** A breaker's row (with the agent it belongs to), or undefined when there is no such session or agent. */
  async read(scope: BreakerScope, id: string): Promise<BreakerRowState | undefined> {
    const db = this.store.db;
    const row =
      scope === 'session'
        ? await db
            .selectFrom('sessions')
            .innerJoin('agents', 'agents.id', 'sessions.agent_id')
            .select([
              'sessions.agent_id as agentId',
              'agents.type as agentType',
              'sessions.breaker_open_until as openUntil',
              'sessions.breaker_reason as reason',
            ])
            .where('sessions.id', '=', id)
            .executeTakeFirst()
        : await db
            .selectFrom('agents')
            .select([
              'id as agentId',
              'type as agentType',
              'breaker_open_until as openUntil',
              'breaker_reason as reason',
            ])
            .where('id', '=', id)
            .executeTakeFirst();
    if (!row) return undefined;
    return {
      agentId: row.agentId,
      agentType: row.agentType,
      openUntil: row.openUntil === null ? null : Number(row.openUntil),
      reason: row.reason,
    };
  }

  /** Every breaker open at `now`, agents first (a partial index keeps this off the full tables). */
  async listOpen(now: number): Promise<OpenBreaker[]> {
    const db = this.store.db;
    const [agents, sessions] = await Promise.all([
      db
        .selectFrom('agents')
        .select(['id', 'breaker_open_until', 'breaker_reason'])
        .where('breaker_open_until', '>', now)
        .orderBy('id')
        .execute(),
      db
        .selectFrom('sessions')
        .select(['id', 'agent_id', 'breaker_open_until', 'breaker_reason'])
        .where('breaker_open_until', '>', now)
        .orderBy('id')
        .execute(),
    ]);
    const open = (
      scope: BreakerScope,
      id: string,
      agentId: string,
      until: unknown,
      reason: string | null,
    ) => ({
      scope,
      id,
      agentId,
      reason: reason ?? 'unknown',
      openUntil: shown(Number(until)),
    });
    return [
      ...agents.map((r) => open('agent', r.id, r.id, r.breaker_open_until, r.breaker_reason)),
      ...sessions.map((r) => open('session', r.id, r.agent_id, r.breaker_open_until, r.breaker_reason)),
    ];
  }

  /** How many breakers are open at `now`, by scope. */
  async countOpen(now: number): Promise<Record<BreakerScope, number>> {
    const count = (table: 'agents' | 'sessions') =>
      this.store.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('breaker_open_until', '>', now)
        .executeTakeFirst()
        .then((r) => Number(r?.n ?? 0));
    const [agent, session] = await Promise.all([count('agents'), count('sessions')]);
    return { agent, session };
  }
}
