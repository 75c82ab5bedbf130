/**
 * oidc-provider's storage, in Warden's store: every model lives in the
 * `oidc_models` table (never the provider's in-memory adapter, which loses
 * state on restart and is not shared by replicas), except `Client`, which is
 * served from the agent registry, so disabling an agent disables its client at once.
 */
import type { Adapter, AdapterFactory, AdapterPayload } from 'oidc-provider';
import { type Agent, type AgentRegistry, assertUsable } from '../identity/index.js';
import type { Store } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';

/** A replay-detection entry claimed by a concurrent request lives at least this long before its own expiry is set. */
const REPLAY_PLACEHOLDER_MS = 10 * 60_000;

function epochSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** Stores one model's entries in `oidc_models`. */
class SqlAdapter implements Adapter {
  constructor(
    protected readonly store: Store,
    protected readonly model: string,
    protected readonly clock: Clock,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    const now = this.clock.now();
    const row = {
      payload: JSON.stringify(payload),
      expires_at: typeof expiresIn === 'number' ? now + expiresIn * 1000 : null,
      grant_id: typeof payload.grantId === 'string' ? payload.grantId : null,
      uid: typeof payload.uid === 'string' ? payload.uid : null,
      user_code: typeof payload.userCode === 'string' ? payload.userCode : null,
    };
    await this.store.db
      .insertInto('oidc_models')
      .values({ model: this.model, id, consumed_at: null, ...row })
      // A re-save never clears `consumed_at`: a consumed artefact stays consumed.
      .onConflict((oc) => oc.columns(['model', 'id']).doUpdateSet(row))
      .execute();
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.findBy('id', id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findBy('uid', uid);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findBy('user_code', userCode);
  }

  async consume(id: string): Promise<void> {
    await this.store.db
      .updateTable('oidc_models')
      .set({ consumed_at: this.clock.now() })
      .where('model', '=', this.model)
      .where('id', '=', id)
      .execute();
  }

  async destroy(id: string): Promise<void> {
    await this.store.db
      .deleteFrom('oidc_models')
      .where('model', '=', this.model)
      .where('id', '=', id)
      .execute();
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    // Grants span models (AccessToken, RefreshToken, …): revoke them all.
    await this.store.db.deleteFrom('oidc_models').where('grant_id', '=', grantId).execute();
  }

  private async findBy(
    column: 'id' | 'uid' | 'user_code',
    value: string,
  ): Promise<AdapterPayload | undefined> {
    const row = await this.store.db
      .selectFrom('oidc_models')
      .select(['payload', 'expires_at', 'consumed_at'])
      .where('model', '=', this.model)
      .where(column, '=', value)
      .executeTakeFirst();
    if (!row) return undefined;
    if (row.expires_at !== null && Number(row.expires_at) <= this.clock.now()) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    if (row.consumed_at !== null) payload.consumed = epochSeconds(Number(row.consumed_at));
    return payload;
  }
}

/**
 * Client-assertion replay detection (RFC 7523 §3 item 7: a jti is used once).
 * oidc-provider checks with `find` then records with `upsert`, which two
 * concurrent requests carrying the same assertion could both pass. Here `find`
 * itself claims the jti with an insert-if-absent, so exactly one request sees
 * "not found", on every replica.
 */
class ReplayDetectionAdapter extends SqlAdapter {
  override async find(id: string): Promise<AdapterPayload | undefined> {
    const now = this.clock.now();
    const seen: AdapterPayload = { jti: id, kind: 'ReplayDetection', iat: epochSeconds(now) };
    const claim = {
      payload: JSON.stringify(seen),
      expires_at: now + REPLAY_PLACEHOLDER_MS,
      consumed_at: null,
      grant_id: null,
      uid: null,
      user_code: null,
    };
    const inserted = await this.store.db
      .insertInto('oidc_models')
      .values({ model: this.model, id, ...claim })
      .onConflict((oc) => oc.columns(['model', 'id']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) return undefined;
    // Seen before: only an entry that has expired may be taken over (compare-and-set).
    const taken = await this.store.db
      .updateTable('oidc_models')
      .set(claim)
      .where('model', '=', this.model)
      .where('id', '=', id)
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    return Number(taken.numUpdatedRows) === 1 ? undefined : seen;
  }
}

/** Serves `Client` metadata from the registry; registration is off, so writes are refused. */
class ClientAdapter implements Adapter {
  constructor(
    private readonly agents: AgentRegistry,
    private readonly metadata: (agent: Agent) => AdapterPayload | undefined,
    private readonly clock: Clock,
  ) {}

  async find(id: string): Promise<AdapterPayload | undefined> {
    const agent = await this.agents.get(id);
    try {
      assertUsable(agent, id, this.clock.now());
    } catch {
      return undefined; // unknown / disabled / expired agent: no client, so invalid_client
    }
    return agent ? this.metadata(agent) : undefined;
  }

  async upsert(): Promise<void> {
    throw new Error('clients are managed through the agent registry');
  }
  async destroy(): Promise<void> {
    throw new Error('clients are managed through the agent registry');
  }
  async consume(): Promise<void> {}
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async revokeByGrantId(): Promise<void> {}
}

/** The adapter factory oidc-provider is configured with. */
export function createAdapterFactory(deps: {
  store: Store;
  agents: AgentRegistry;
  clientMetadata: (agent: Agent) => AdapterPayload | undefined;
  clock?: Clock;
}): AdapterFactory {
  const clock = deps.clock ?? systemClock;
  return (model: string) => {
    if (model === 'Client') return new ClientAdapter(deps.agents, deps.clientMetadata, clock);
    if (model === 'ReplayDetection') return new ReplayDetectionAdapter(deps.store, model, clock);
    return new SqlAdapter(deps.store, model, clock);
  };
}

/** Deletes expired `oidc_models` rows; returns how many. */
export async function pruneExpiredModels(store: Store, now: number): Promise<number> {
  const res = await store.db.deleteFrom('oidc_models').where('expires_at', '<=', now).executeTakeFirst();
  return Number(res.numDeletedRows);
}
