/**
 * Warden's token-signing keys: generated with jose on first use, persisted in
 * `signing_keys` (shared by every replica), rotated when due. A retired key
 * stays published until every token it may have signed has expired, then it
 * is pruned. Reads are served from an in-memory snapshot, refreshed every
 * `refreshIntervalMs` and (rate-limited) when a token names an unknown kid, so
 * verifying a token never costs a database round trip for its key.
 */
import { type CryptoKey, importJWK, type JWK } from 'jose';
import type { Selectable } from 'kysely';
import type { SigningKeysTable, Store } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';
import { generateJwkPair } from './jwk.js';
import type { SigningAlg } from './types.js';

/** Options of a KeyManager. */
export interface KeyManagerOptions {
  alg: SigningAlg;
  /** A signing key older than this is replaced. */
  rotateAfterMs: number;
  /** The longest lifetime of a token signed by these keys. */
  tokenTtlMs: number;
  /** Verifiers' clock tolerance; a retired key stays published this much longer. Default 60 s. */
  clockSkewMs?: number;
  /** How stale the in-memory snapshot may get before it is re-read from the store. Default 30 s. */
  refreshIntervalMs?: number;
  /** At most one store read per this interval for tokens naming an unknown kid. Default 5 s. */
  unknownKidRefreshMs?: number;
  clock?: Clock;
}

/** A signing key as stored. */
export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  privateJwk: JWK;
  publicJwk: JWK;
  createdAt: number;
  retiredAt: number | null;
}

interface Snapshot {
  /** Every published key, the active one included, newest first. */
  keys: SigningKey[];
  active: SigningKey;
  /** Changes whenever the published set or the active key changes. */
  version: string;
  loadedAt: number;
}

function rowToKey(row: Selectable<SigningKeysTable>): SigningKey {
  return {
    kid: row.kid,
    alg: row.alg === 'ES256' ? 'ES256' : 'EdDSA',
    privateJwk: JSON.parse(row.private_jwk) as JWK,
    publicJwk: JSON.parse(row.public_jwk) as JWK,
    createdAt: Number(row.created_at),
    retiredAt: row.retired_at === null ? null : Number(row.retired_at),
  };
}

/** The active key among `keys`: the newest unretired one (deterministic if replicas raced to create two). */
function pickActive(keys: SigningKey[]): SigningKey | undefined {
  return keys
    .filter((k) => k.retiredAt === null)
    .sort((a, b) => b.createdAt - a.createdAt || (a.kid < b.kid ? 1 : -1))[0];
}

/** Owns the signing keys; see the module comment. */
export class KeyManager {
  private readonly clock: Clock;
  private readonly graceMs: number;
  private readonly refreshIntervalMs: number;
  private readonly unknownKidRefreshMs: number;
  private snapshot: Snapshot | undefined;
  private loading: Promise<Snapshot> | undefined;
  private lastUnknownKidRefresh = Number.NEGATIVE_INFINITY;
  private readonly imported = new Map<string, Promise<CryptoKey>>();

  constructor(
    private readonly store: Store,
    private readonly opts: KeyManagerOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.refreshIntervalMs = opts.refreshIntervalMs ?? 30_000;
    this.unknownKidRefreshMs = opts.unknownKidRefreshMs ?? 5_000;
    // A replica may keep signing with a just-retired key until its next refresh, and
    // verifiers accept `exp` up to the skew late: publish the key for all of that.
    this.graceMs = opts.tokenTtlMs + (opts.clockSkewMs ?? 60_000) + this.refreshIntervalMs;
  }

  /** Ensures an active key exists (generating one on first use), rotates if due, prunes expired keys. */
  async init(): Promise<void> {
    await this.reload();
  }

  /** Retires the active key now and starts signing with a new one. */
  async rotate(): Promise<void> {
    const rows = await this.store.db.selectFrom('signing_keys').selectAll().execute();
    await this.replace(pickActive(rows.map(rowToKey))?.kid);
    await this.reload();
  }

  /** The key new tokens are signed with. */
  async signingKey(): Promise<{ kid: string; alg: SigningAlg; privateJwk: JWK }> {
    const { active } = await this.fresh();
    return { kid: active.kid, alg: active.alg, privateJwk: active.privateJwk };
  }

  /** The published public keys (a JWKS document, RFC 7517 §5). */
  async publicJwks(): Promise<{ keys: JWK[] }> {
    const { keys } = await this.fresh();
    return { keys: keys.map((k) => ({ ...k.publicJwk })) };
  }

  /** The published keys with their private parts: the `jwks` oidc-provider signs with. Never expose it. */
  async privateJwks(): Promise<{ keys: JWK[] }> {
    const { keys } = await this.fresh();
    return { keys: keys.map((k) => ({ ...k.privateJwk })) };
  }

  /** One consistent view for an embedded authorization server: its private JWKS, the active kid, and the version. */
  async signingSet(): Promise<{
    version: string;
    jwks: { keys: JWK[] };
    activeKid: string;
    alg: SigningAlg;
  }> {
    const s = await this.fresh();
    return {
      version: s.version,
      jwks: { keys: s.keys.map((k) => ({ ...k.privateJwk })) },
      activeKid: s.active.kid,
      alg: s.active.alg,
    };
  }

  /** An identifier of the current key set (published kids + active kid); changes on rotation and pruning. */
  async version(): Promise<string> {
    return (await this.fresh()).version;
  }

  /** The public key for `kid`, if published; re-reads the store (rate-limited) on an unknown kid. */
  async verificationKey(kid: string): Promise<{ alg: SigningAlg; key: CryptoKey } | undefined> {
    let found = (await this.fresh()).keys.find((k) => k.kid === kid);
    const now = this.clock.now();
    if (!found && now - this.lastUnknownKidRefresh >= this.unknownKidRefreshMs) {
      // Random kids must not turn into a database flood: one re-read per interval at most.
      this.lastUnknownKidRefresh = now;
      found = (await this.reload()).keys.find((k) => k.kid === kid);
    }
    if (!found) return undefined;
    return { alg: found.alg, key: await this.importKey(found, 'public') };
  }

  /** The private CryptoKey for signing with `kid` (imported once). */
  async privateKey(kid: string): Promise<CryptoKey> {
    const found = (await this.fresh()).keys.find((k) => k.kid === kid);
    if (!found) throw new Error(`signing key ${kid} is not published`);
    return this.importKey(found, 'private');
  }

  private importKey(key: SigningKey, part: 'public' | 'private'): Promise<CryptoKey> {
    const id = `${key.kid}:${part}`;
    let p = this.imported.get(id);
    if (!p) {
      p = importJWK(part === 'public' ? key.publicJwk : key.privateJwk, key.alg) as Promise<CryptoKey>;
      this.imported.set(id, p);
      p.catch(() => this.imported.delete(id));
    }
    return p;
  }

  /** The snapshot, re-read when stale or when the active key is due for rotation. */
  private async fresh(): Promise<Snapshot> {
    const s = this.snapshot;
    const now = this.clock.now();
    if (
      s &&
      now - s.loadedAt < this.refreshIntervalMs &&
      now - s.active.createdAt < this.opts.rotateAfterMs &&
      s.active.alg === this.opts.alg
    ) {
      return s;
    }
    return this.reload();
  }

  /** Re-reads the store, rotating and pruning as due; concurrent callers share one read. */
  private reload(): Promise<Snapshot> {
    if (!this.loading) {
      this.loading = this.load().finally(() => {
        this.loading = undefined;
      });
    }
    return this.loading;
  }

  private async load(): Promise<Snapshot> {
    const now = this.clock.now();
    let keys = (await this.store.db.selectFrom('signing_keys').selectAll().execute()).map(rowToKey);
    const active = pickActive(keys);
    if (!active || active.alg !== this.opts.alg || now - active.createdAt >= this.opts.rotateAfterMs) {
      await this.replace(active?.kid);
      keys = (await this.store.db.selectFrom('signing_keys').selectAll().execute()).map(rowToKey);
    }
    await this.store.db
      .deleteFrom('signing_keys')
      .where('retired_at', 'is not', null)
      .where('retired_at', '<=', now - this.graceMs)
      .execute();
    const published = keys
      .filter((k) => k.retiredAt === null || k.retiredAt > now - this.graceMs)
      .sort((a, b) => b.createdAt - a.createdAt || (a.kid < b.kid ? 1 : -1));
    const current = pickActive(published);
    if (!current) throw new Error('no active signing key after rotation');
    const version = `${current.kid}|${published.map((k) => k.kid).join(',')}`;
    for (const id of this.imported.keys()) {
      if (!published.some((k) => id.startsWith(`${k.kid}:`))) this.imported.delete(id);
    }
    this.snapshot = { keys: published, active: current, version, loadedAt: now };
    return this.snapshot;
  }

  /**
   * Retires `expectedKid` (compare-and-set: only if it is still the active key)
   * and inserts a new active key, in one transaction. If another replica got
   * there first, nothing happens and the next read sees its key.
   */
  private async replace(expectedKid: string | undefined): Promise<void> {
    const fresh = { alg: this.opts.alg, ...(await generateJwkPair(this.opts.alg)) };
    const now = this.clock.now();
    await this.store.db.transaction().execute(async (trx) => {
      if (expectedKid !== undefined) {
        const res = await trx
          .updateTable('signing_keys')
          .set({ retired_at: now })
          .where('kid', '=', expectedKid)
          .where('retired_at', 'is', null)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) return;
      } else {
        const any = await trx
          .selectFrom('signing_keys')
          .select('kid')
          .where('retired_at', 'is', null)
          .executeTakeFirst();
        if (any) return;
      }
      // Two replicas racing on first start can leave two active keys; retire any stragglers.
      await trx
        .updateTable('signing_keys')
        .set({ retired_at: now })
        .where('retired_at', 'is', null)
        .execute();
      await trx
        .insertInto('signing_keys')
        .values({
          kid: fresh.kid,
          alg: fresh.alg,
          private_jwk: JSON.stringify(fresh.privateJwk),
          public_jwk: JSON.stringify(fresh.publicJwk),
          created_at: now,
          retired_at: null,
        })
        .execute();
    });
  }
}
