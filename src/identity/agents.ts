/**
 * The agent registry: non-human identities declared in config (GitOps), the
 * admin API or the CLI, persisted in the `agents` table. Default deny: an
 * unknown, disabled or expired agent is never usable.
 */
import type { Selectable } from 'kysely';
import type { AgentConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { type AgentsTable, fixedQuery, type Store } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';
import { checkAgentInput } from './agent-input.js';
import type { Agent, AgentInput } from './types.js';

/** Reason recorded when a config-declared agent disappears from the config file. */
export const REMOVED_FROM_CONFIG = 'removed from config';

/** The scopes an agent's tokens carry: `tool:<name>:execute` for each allowed tool that is not denied (denied wins). */
export function scopesFor(agent: Pick<Agent, 'allowedTools' | 'deniedTools'>): string[] {
  const denied = new Set(agent.deniedTools);
  const scopes = new Set<string>();
  for (const tool of agent.allowedTools) if (!denied.has(tool)) scopes.add(`tool:${tool}:execute`);
  return [...scopes].sort();
}

/** Throws AGENT_UNKNOWN / AGENT_DISABLED / AGENT_EXPIRED unless `agent` may authenticate at `now`. */
export function assertUsable(agent: Agent | undefined, id: string, now: number): Agent {
  if (!agent) {
    throw new WardenError('AGENT_UNKNOWN', 'The agent is not registered', {
      detail: `agent ${id} not found`,
    });
  }
  if (agent.status === 'killed') {
    throw new WardenError('AGENT_KILLED', 'The agent has been stopped by the kill switch', {
      detail: `agent ${id} killed: ${agent.disabledReason ?? 'no reason given'}`,
    });
  }
  if (agent.status !== 'active') {
    throw new WardenError('AGENT_DISABLED', 'The agent is disabled', {
      detail: `agent ${id} disabled: ${agent.disabledReason ?? 'no reason given'}`,
    });
  }
  if (agent.expiresAt <= now) {
    throw new WardenError('AGENT_EXPIRED', 'The agent identity has expired', {
      detail: `agent ${id} expired at ${new Date(agent.expiresAt).toISOString()}`,
    });
  }
  return agent;
}

/** Maps an `agents` row to an Agent. */
export function rowToAgent(row: Selectable<AgentsTable>): Agent {
  return {
    id: row.id,
    type: row.type,
    version: row.version,
    environment: row.environment,
    owner: row.owner,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    expiresAt: Number(row.expires_at),
    maxConcurrentSessions: row.max_concurrent_sessions,
    allowedTools: JSON.parse(row.allowed_tools) as string[],
    deniedTools: JSON.parse(row.denied_tools) as string[],
    scopes: JSON.parse(row.scopes) as string[],
    publicJwk: row.public_jwk === null ? null : (JSON.parse(row.public_jwk) as Agent['publicJwk']),
    constraints: JSON.parse(row.constraints) as Agent['constraints'],
    delegation: row.delegation ? (JSON.parse(row.delegation) as Agent['delegation']) : null,
    status: row.status === 'active' ? 'active' : row.status === 'killed' ? 'killed' : 'disabled',
    disabledReason: row.disabled_reason,
    source: row.source,
    breakerOpenUntil: row.breaker_open_until == null ? null : Number(row.breaker_open_until),
    breakerReason: row.breaker_reason ?? null,
  };
}

/** The columns an AgentInput sets (everything but timestamps, status and source). */
function inputColumns(input: AgentInput) {
  return {
    type: input.type,
    version: input.version,
    environment: input.environment,
    owner: input.owner,
    expires_at: input.expiresAt,
    max_concurrent_sessions: input.maxConcurrentSessions,
    allowed_tools: JSON.stringify(input.allowedTools),
    denied_tools: JSON.stringify(input.deniedTools),
    scopes: JSON.stringify(input.scopes ?? []),
    public_jwk: input.publicJwk === null ? null : JSON.stringify(input.publicJwk),
    constraints: JSON.stringify(input.constraints),
    delegation: input.delegation ? JSON.stringify(input.delegation) : null,
  };
}

function sameDeclaration(agent: Agent, input: AgentInput): boolean {
  const a = inputColumns({ ...agent });
  const b = inputColumns(input);
  return (Object.keys(b) as (keyof typeof b)[]).every((k) => a[k] === b[k]);
}

/** Registered agents, backed by the store. */
export class AgentRegistry {
  /** Read on every tool call: built once. */
  private readonly byId;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock = systemClock,
  ) {
    this.byId = fixedQuery((arg) => store.db.selectFrom('agents').selectAll().where('id', '=', arg(0)));
  }

  /** The agent with `id`, or undefined. */
  async get(id: string): Promise<Agent | undefined> {
    const row = (await this.byId(this.store.db, [id])).rows[0];
    return row ? rowToAgent(row) : undefined;
  }

  /** Every agent, ordered by id. */
  async list(): Promise<Agent[]> {
    const rows = await this.store.db.selectFrom('agents').selectAll().orderBy('id').execute();
    return rows.map(rowToAgent);
  }

  /** Registers a new agent; CONFLICT when the id is taken, INVALID_REQUEST when the declaration is invalid. */
  async register(input: AgentInput, source: string): Promise<Agent> {
    const check = checkAgentInput(input);
    if (!check.ok) throw new WardenError('INVALID_REQUEST', `Invalid agent: ${check.problem}`);
    const value = check.value;
    const now = this.clock.now();
    const inserted = await this.store.db
      .insertInto('agents')
      .values({
        id: value.id,
        ...inputColumns(value),
        created_at: now,
        updated_at: now,
        status: 'active',
        disabled_reason: null,
        source,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) !== 1) {
      throw new WardenError('CONFLICT', `Agent ${value.id} already exists`);
    }
    return (await this.get(value.id))!;
  }

  /**
   * Upserts the agents declared in config (source 'config'). Status is kept: a
   * disabled agent stays disabled. Config agents no longer declared are
   * disabled (reason REMOVED_FROM_CONFIG) and re-enabled if declared again.
   */
  async syncFromConfig(
    agents: AgentConfig[],
  ): Promise<{ created: string[]; updated: string[]; removed: string[] }> {
    const inputs: AgentInput[] = [];
    const seen = new Set<string>();
    for (const declared of agents) {
      const check = checkAgentInput({ ...declared, publicJwk: declared.publicJwk ?? null });
      if (!check.ok) {
        throw new WardenError('CONFIG_INVALID', `agents[${declared.id ?? '?'}]: ${check.problem}`);
      }
      if (seen.has(check.value.id)) {
        throw new WardenError('CONFIG_INVALID', `agents: duplicate id ${check.value.id}`);
      }
      seen.add(check.value.id);
      inputs.push(check.value);
    }
    const now = this.clock.now();
    const result = { created: [] as string[], updated: [] as string[], removed: [] as string[] };
    await this.store.db.transaction().execute(async (trx) => {
      const existing = new Map(
        (await trx.selectFrom('agents').selectAll().execute()).map((row) => [row.id, rowToAgent(row)]),
      );
      for (const input of inputs) {
        const current = existing.get(input.id);
        if (!current) {
          const inserted = await trx
            .insertInto('agents')
            .values({
              id: input.id,
              ...inputColumns(input),
              created_at: now,
              updated_at: now,
              status: 'active',
              disabled_reason: null,
              source: 'config',
            })
            // Replicas starting together sync the same file: the first insert wins, the rest are no-ops.
            .onConflict((oc) => oc.column('id').doNothing())
            .executeTakeFirst();
          if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) result.created.push(input.id);
          continue;
        }
        const reAdded = current.status === 'disabled' && current.disabledReason === REMOVED_FROM_CONFIG;
        if (sameDeclaration(current, input) && current.source === 'config' && !reAdded) continue;
        await trx
          .updateTable('agents')
          .set({
            ...inputColumns(input),
            updated_at: now,
            source: 'config',
            ...(reAdded ? { status: 'active' as const, disabled_reason: null } : {}),
          })
          .where('id', '=', input.id)
          .execute();
        result.updated.push(input.id);
      }
      for (const agent of existing.values()) {
        if (agent.source !== 'config' || seen.has(agent.id) || agent.status !== 'active') continue;
        await trx
          .updateTable('agents')
          .set({ status: 'disabled', disabled_reason: REMOVED_FROM_CONFIG, updated_at: now })
          .where('id', '=', agent.id)
          .execute();
        result.removed.push(agent.id);
      }
    });
    return result;
  }

  /** Disables an agent (its tokens stop verifying at once); NOT_FOUND when absent. */
  async disable(id: string, reason: string): Promise<Agent> {
    return this.setStatus(id, 'disabled', reason);
  }

  /**
   * Kill switch (issue #8): marks the agent killed unless it is already; true when this call
   * changed it (so a double kill is recorded once). NOT_FOUND when absent.
   */
  async kill(id: string, reason: string): Promise<{ agent: Agent; changed: boolean }> {
    const res = await this.store.db
      .updateTable('agents')
      .set({ status: 'killed', disabled_reason: reason, updated_at: this.clock.now() })
      .where('id', '=', id)
      .where('status', '!=', 'killed')
      .executeTakeFirst();
    const agent = await this.get(id);
    if (!agent) throw new WardenError('NOT_FOUND', `Agent ${id} not found`);
    return { agent, changed: Number(res.numUpdatedRows) === 1 };
  }

  /** Of `ids`, the agents that may not run (killed, disabled, gone), with why (the kill switch's store poll). */
  async stoppedAmong(
    ids: readonly string[],
  ): Promise<Array<{ id: string; status: string; reason: string | null }>> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('agents')
      .select(['id', 'status', 'disabled_reason'])
      .where('id', 'in', [...ids])
      .execute();
    const found = new Map(rows.map((r) => [r.id, r]));
    const out: Array<{ id: string; status: string; reason: string | null }> = [];
    for (const id of ids) {
      const r = found.get(id);
      if (!r) out.push({ id, status: 'gone', reason: null });
      else if (r.status !== 'active') out.push({ id, status: r.status, reason: r.disabled_reason });
    }
    return out;
  }

  /** Re-enables a disabled or killed agent; NOT_FOUND when absent. */
  async enable(id: string): Promise<Agent> {
    return this.setStatus(id, 'active', null);
  }

  /** The agent, if it may authenticate now; throws AGENT_UNKNOWN / AGENT_DISABLED / AGENT_EXPIRED otherwise. */
  async requireUsable(id: string, now: number = this.clock.now()): Promise<Agent> {
    return assertUsable(await this.get(id), id, now);
  }

  private async setStatus(id: string, status: Agent['status'], reason: string | null): Promise<Agent> {
    const res = await this.store.db
      .updateTable('agents')
      .set({ status, disabled_reason: reason, updated_at: this.clock.now() })
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new WardenError('NOT_FOUND', `Agent ${id} not found`);
    return (await this.get(id))!;
  }
}
