import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { isWardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { decodeTokenKey, UpstreamTokenVault } from './user-tokens.js';

const ISS = 'https://auth.tracker.example.com';
const SET = { accessToken: 'at-secret-value', refreshToken: 'rt-secret-value', expiresAt: 1_000, scope: 'x' };

describeEachDialect('UpstreamTokenVault', (target) => {
  let store: Store;
  const key = new Uint8Array(randomBytes(32));
  let vault: UpstreamTokenVault;
  beforeAll(async () => {
    store = await target.open();
    vault = new UpstreamTokenVault(store, async () => key, new ManualClock());
  });
  afterAll(async () => {
    await store.close();
    await target.cleanup();
  });

  it('seals a token set and opens it for the same user and issuer only', async () => {
    await vault.put('alice', ISS, SET);
    const row = await store.db.selectFrom('upstream_tokens').selectAll().executeTakeFirstOrThrow();
    expect(row.sealed).not.toContain('secret-value');
    expect(row.expires_at === null ? null : Number(row.expires_at)).toBe(1_000);
    expect(await vault.get('alice', ISS)).toEqual(SET);
    expect(await vault.get('alice', 'https://other.example.com')).toBeUndefined();
    expect(await vault.issuersOf('alice')).toEqual([ISS]);
    expect(await vault.usersAt(ISS, 5)).toEqual(['alice']);
  });

  it('deletes a sealed value moved to another row, or sealed under another key', async () => {
    await vault.put('alice', ISS, SET);
    const row = await store.db
      .selectFrom('upstream_tokens')
      .selectAll()
      .where('user_id', '=', 'alice')
      .executeTakeFirstOrThrow();
    await store.db
      .insertInto('upstream_tokens')
      .values({ ...row, user_id: 'mallory' })
      .execute();
    expect(await vault.get('mallory', ISS)).toBeUndefined();
    expect(await vault.issuersOf('mallory')).toEqual([]);
    const other = new UpstreamTokenVault(
      store,
      async () => new Uint8Array(randomBytes(32)),
      new ManualClock(),
    );
    expect(await other.get('alice', ISS)).toBeUndefined();
    expect(await vault.get('alice', ISS)).toBeUndefined(); // gone: the user connects again
  });

  it('replaces a user’s set on reconnect, and forgets it on disconnect', async () => {
    await vault.put('bob', ISS, SET);
    await vault.put('bob', ISS, { accessToken: 'newer' });
    expect(await vault.get('bob', ISS)).toEqual({ accessToken: 'newer' });
    expect(await vault.delete('bob', ISS)).toBe(true);
    expect(await vault.delete('bob', ISS)).toBe(false);
  });
});

it('accepts exactly 32 bytes of base64 or base64url as the token key', () => {
  const raw = randomBytes(32);
  expect(decodeTokenKey(raw.toString('base64'))).toEqual(new Uint8Array(raw));
  expect(decodeTokenKey(`${raw.toString('base64url')}\n`)).toEqual(new Uint8Array(raw));
  for (const bad of [randomBytes(16).toString('base64'), 'not a key', randomBytes(48).toString('base64')]) {
    let err: unknown;
    try {
      decodeTokenKey(bad);
    } catch (e) {
      err = e;
    }
    expect(isWardenError(err, 'CONFIG_INVALID')).toBe(true);
  }
});
