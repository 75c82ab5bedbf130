import { calculateJwkThumbprint } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { KeyManager, type KeyManagerOptions } from './keys.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

describeEachDialect('KeyManager', (target) => {
  let store: Store;
  beforeAll(async () => {
    store = await target.open();
  });
  afterAll(async () => {
    // Clean up even when beforeAll failed: a half-migrated schema left behind trips later PostgreSQL runs.
    await store?.close().catch(() => {});
    await target.cleanup();
  });

  const options = (clock: ManualClock, over: Partial<KeyManagerOptions> = {}): KeyManagerOptions => ({
    alg: 'EdDSA',
    rotateAfterMs: 24 * HOUR,
    tokenTtlMs: 15 * MIN,
    clockSkewMs: 30_000,
    refreshIntervalMs: 30_000,
    clock,
    ...over,
  });

  it('generates one key on first use, publishes only its public half, and persists it across re-open', async () => {
    const clock = new ManualClock();
    const keys = new KeyManager(store, options(clock));
    await keys.init();
    const signing = await keys.signingKey();
    expect(signing.alg).toBe('EdDSA');
    expect(signing.privateJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: signing.kid, alg: 'EdDSA' });
    expect(typeof signing.privateJwk.d).toBe('string');

    const pub = await keys.publicJwks();
    expect(pub.keys).toHaveLength(1);
    expect(pub.keys[0]).not.toHaveProperty('d');
    expect(pub.keys[0]).toMatchObject({ kid: signing.kid, use: 'sig', alg: 'EdDSA' });
    // kid is the RFC 7638 thumbprint of the public key.
    expect(await calculateJwkThumbprint(pub.keys[0]!)).toBe(signing.kid);
    const priv = await keys.privateJwks();
    expect(priv.keys[0]?.d).toBe(signing.privateJwk.d);

    await store.close();
    store = await target.open();
    const again = new KeyManager(store, options(clock));
    await again.init();
    expect((await again.signingKey()).kid).toBe(signing.kid);
    expect(await again.version()).toBe(await keys.version());
  });

  it('two managers on one store agree on the active key', async () => {
    const clock = new ManualClock();
    const a = new KeyManager(store, options(clock));
    const b = new KeyManager(store, options(clock));
    await Promise.all([a.init(), b.init()]);
    expect((await a.signingKey()).kid).toBe((await b.signingKey()).kid);
  });

  it('rotates when due, keeps the old key published for ttl + skew + refresh, then prunes it', async () => {
    const clock = new ManualClock();
    const keys = new KeyManager(store, options(clock, { rotateAfterMs: HOUR }));
    await keys.init();
    const first = (await keys.signingKey()).kid;
    clock.advance(HOUR);
    const second = (await keys.signingKey()).kid;
    expect(second).not.toBe(first);
    expect((await keys.publicJwks()).keys.map((k) => k.kid)).toEqual([second, first]);
    expect(await keys.verificationKey(first)).toBeDefined();

    // Retired at T; published until T + 15 min + 30 s + 30 s.
    clock.advance(16 * MIN - 1);
    expect((await keys.publicJwks()).keys.map((k) => k.kid)).toEqual([second, first]);
    // Pruned on the next refresh of the snapshot.
    clock.advance(30_000);
    expect((await keys.publicJwks()).keys.map((k) => k.kid)).toEqual([second]);
    expect(await keys.verificationKey(first)).toBeUndefined();
    const rows = await store.db.selectFrom('signing_keys').select('kid').execute();
    expect(rows.map((r) => r.kid)).not.toContain(first);
  });

  it('rotate() switches at once; a change of alg rotates on init', async () => {
    const clock = new ManualClock();
    const keys = new KeyManager(store, options(clock));
    await keys.init();
    const before = await keys.signingKey();
    await keys.rotate();
    const after = await keys.signingKey();
    expect(after.kid).not.toBe(before.kid);

    const es = new KeyManager(store, options(clock, { alg: 'ES256' }));
    await es.init();
    const ec = await es.signingKey();
    expect(ec).toMatchObject({ alg: 'ES256', privateJwk: { kty: 'EC', crv: 'P-256' } });
    expect((await es.publicJwks()).keys.map((k) => k.kid)).toContain(after.kid);
  });

  it('re-reads the store for an unknown kid at most once per interval', async () => {
    const clock = new ManualClock();
    const keys = new KeyManager(store, options(clock, { unknownKidRefreshMs: 5000 }));
    await keys.init();
    const other = new KeyManager(store, options(clock));
    await other.init();
    await other.rotate();
    const fresh = (await other.signingKey()).kid;
    // `keys` has not seen the rotation yet; the first unknown-kid lookup refreshes.
    expect(await keys.verificationKey('nonexistent')).toBeUndefined();
    await other.rotate();
    const newer = (await other.signingKey()).kid;
    expect(await keys.verificationKey(fresh)).toBeDefined();
    // Within the interval: no second re-read, so the newest key is not found yet.
    expect(await keys.verificationKey(newer)).toBeUndefined();
    clock.advance(5000);
    expect(await keys.verificationKey(newer)).toBeDefined();
  });
});
