/**
 * oidc-provider's storage, in Warden's store: every model lives in the
 * `oidc_models` table (never the provider's in-memory adapter, which loses
 * state on restart and is not shared by replicas). `Client` is served from the
 * agent registry for agents, so disabling an agent disables its client at once;
 * clients registered dynamically (RFC 7591) live in `oidc_models` like the rest.
 */
import { type Adapter, type AdapterFactory, type AdapterPayload, errors } from 'oidc-provider';
import { type Agent, type AgentRegistry, assertUsable } from '../identity/index.js';
import type { Store } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';

/** A replay-detection entry claimed by a concurrent request lives at least this long before its own expiry is set. */
const REPLAY_PLACEHOLDER_MS = 10 * 60_000;

function epochSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** Single-use artefacts: consumed at most once, even by two requests racing on two replicas. */
const SINGLE_USE = new Set(['AuthorizationCode', 'RefreshToken']);

/** Stores one model's entries in `oidc_models`. */
class SqlAdapter implements Adapter {
  constructor(
    protected readonly store: Store,
    protected readonly model: string,
    protected readonly clock: Clock,
    /** Called when oidc-provider revokes a grant's tokens (code or refresh token replayed). */
    protected readonly onGrantRevoked?: (grantId: string) => Promise<void>,
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
    const res = await this.store.db
      .updateTable('oidc_models')
      .set({ consumed_at: this.clock.now() })
      .where('model', '=', this.model)
      .where('id', '=', id)
      .$if(SINGLE_USE.has(this.model), (q) => q.where('consumed_at', 'is', null))
      .executeTakeFirst();
    if (SINGLE_USE.has(this.model) && Number(res.numUpdatedRows) === 0) {
      // oidc-provider checked `consumed` when it read the row; another request consumed it
      // since. Treat it as the replay it is: the whole grant goes (RFC 9700 §4.14.2).
      const row = await this.store.db
        .selectFrom('oidc_models')
        .select('grant_id')
        .where('model', '=', this.model)
        .where('id', '=', id)
        .executeTakeFirst();
      if (row?.grant_id) {
        await this.store.db.deleteFrom('oidc_models').where('grant_id', '=', row.grant_id).execute();
        await this.onGrantRevoked?.(row.grant_id);
      }
      throw new errors.InvalidGrant(
        `${this.model === 'RefreshToken' ? 'refresh token' : 'authorization code'} already used`,
      );
    }
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
    // oidc-provider revokes a grant only when a code or refresh token is replayed; it asks each
    // model in turn, and AccessToken always: once is enough to end the grant's sessions.
    if (this.model === 'AccessToken') await this.onGrantRevoked?.(grantId);
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

/**
 * Serves `Client` metadata: agents from the registry (private_key_jwt), and
 * clients registered dynamically (RFC 7591) from `oidc_models`. An agent id is
 * never looked up as a registered client, so a disabled agent has no client at all.
 */
class ClientAdapter extends SqlAdapter {
  constructor(
    store: Store,
    private readonly agents: AgentRegistry,
    private readonly metadata: (agent: Agent) => AdapterPayload | undefined,
    clock: Clock,
    private readonly checkRegistration?: (payload: AdapterPayload) => void,
  ) {
    super(store, 'Client', clock);
  }

  override async find(id: string): Promise<AdapterPayload | undefined> {
    const agent = await this.agents.get(id);
    if (agent) {
      try {
        assertUsable(agent, id, this.clock.now());
      } catch {
        return undefined; // disabled / expired agent: no client, so invalid_client
      }
      return this.metadata(agent);
    }
    return super.find(id);
  }

  override async upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    if (await this.agents.get(id)) throw new Error('agents are managed through the agent registry');
    if (!this.checkRegistration) throw new Error('dynamic client registration is off');
    this.checkRegistration(payload);
    await super.upsert(id, payload, expiresIn);
  }

  override async destroy(id: string): Promise<void> {
    if (await this.agents.get(id)) throw new Error('agents are managed through the agent registry');
    await super.destroy(id);
  }
}

/** The adapter factory oidc-provider is configured with. */
export function createAdapterFactory(deps: {
  store: Store;
  agents: AgentRegistry;
  clientMetadata: (agent: Agent) => AdapterPayload | undefined;
  clock?: Clock;
  /** A grant's tokens were revoked because a code or refresh token was replayed. */
  onGrantRevoked?: (grantId: string) => Promise<void>;
  /** Refuses a dynamic registration (throws); absent = registration is off. */
  checkRegistration?: (payload: AdapterPayload) => void;
}): AdapterFactory {
  const clock = deps.clock ?? systemClock;
  return (model: string) => {
    if (model === 'Client') {
      return new ClientAdapter(deps.store, deps.agents, deps.clientMetadata, clock, deps.checkRegistration);
    }
    if (model === 'ReplayDetection') return new ReplayDetectionAdapter(deps.store, model, clock);
    return new SqlAdapter(deps.store, model, clock, deps.onGrantRevoked);
  };
}

/** Deletes expired `oidc_models` rows; returns how many. */
export async function pruneExpiredModels(store: Store, now: number): Promise<number> {
  const res = await store.db.deleteFrom('oidc_models').where('expires_at', '<=', now).executeTakeFirst();
  return Number(res.numDeletedRows);
}
