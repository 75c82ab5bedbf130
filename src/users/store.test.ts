import { afterAll, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { errorBody, isWardenError, type WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { verifyPassword } from './password.js';
import {
  DUMMY_HASH,
  LOCKOUT_MS,
  LOGIN_FAILED_MESSAGE,
  LoginFailedError,
  type LoginFailureReason,
  MAX_FAILED_LOGINS,
  UserStore,
} from './store.js';

// The real verifyPassword, watched: the unknown-user path must run it too.
vi.mock('./password.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('./password.js')>();
  return { ...real, verifyPassword: vi.fn(real.verifyPassword) };
});

const PW = 'correct horse battery staple';
const OTHER = 'not the right password';

/** The LoginFailedError `p` rejects with (fails the test when it resolves or throws something else). */
async function loginFailure(p: Promise<unknown>): Promise<LoginFailedError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(LoginFailedError);
  const failure = e as LoginFailedError;
  // Whatever the reason, the caller and the client see the same thing.
  expect(failure.code).toBe('LOGIN_FAILED');
  expect(failure.status).toBe(401);
  expect(failure.message).toBe(LOGIN_FAILED_MESSAGE);
  expect(failure.rule).toBeUndefined();
  expect(errorBody(failure, 't')).toEqual({
    error: { code: 'LOGIN_FAILED', message: LOGIN_FAILED_MESSAGE, traceId: 't' },
  });
  return failure;
}

async function expectCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isWardenError(e), String(e)).toBe(true);
  expect((e as WardenError).code).toBe(code);
  if (message) expect((e as WardenError).message).toMatch(message);
}

describeEachDialect('UserStore', (target) => {
  let store: Store;
  let clock: ManualClock;
  let users: UserStore;
  beforeAll(async () => {
    store = await target.open();
  });
  beforeEach(() => {
    clock = new ManualClock();
    users = new UserStore(store, clock);
    vi.mocked(verifyPassword).mockClear();
  });
  afterAll(async () => {
    await store?.close().catch(() => {});
    await target.cleanup();
  });

  it('creates a user and reads it back, never with its hash', async () => {
    const created = await users.create({
      id: 'alice',
      displayName: 'Alice A.',
      email: 'alice@example.com',
      password: PW,
    });
    const expected = {
      id: 'alice',
      displayName: 'Alice A.',
      email: 'alice@example.com',
      status: 'active',
      failedLogins: 0,
      lockedUntil: null,
      createdAt: clock.now(),
      updatedAt: clock.now(),
      lastLoginAt: null,
      hasPassword: true,
    };
    expect(created).toEqual(expected);
    expect(await users.get('alice')).toEqual(expected);
    expect(JSON.stringify(await users.list())).not.toContain('scrypt');
    const row = await store.db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', 'alice')
      .executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^scrypt\$15\$8\$1\$/);
    expect(await users.get('nobody')).toBeUndefined();
  });

  it('defaults the display name to the id; a user without a password has none', async () => {
    const u = await users.create({ id: 'ext-only' });
    expect(u).toMatchObject({ id: 'ext-only', displayName: 'ext-only', email: null, hasPassword: false });
  });

  it('lists users in byte order of their ids, whatever the database collation', async () => {
    const ids = ['list_b', 'list-b', 'list.b', 'listb', 'list0', 'list-a'];
    for (const id of ids) await users.create({ id });
    const listed = (await users.list()).map((u) => u.id).filter((id) => id.startsWith('list'));
    expect(listed).toEqual(['list-a', 'list-b', 'list.b', 'list0', 'list_b', 'listb']);
  });

  it('refuses a taken id with USER_EXISTS', async () => {
    await users.create({ id: 'dup', password: PW });
    await expectCode(users.create({ id: 'dup' }), 'USER_EXISTS', /dup already exists/);
    expect((await users.get('dup'))?.hasPassword).toBe(true);
  });

  it('refuses invalid input with INVALID_REQUEST naming the field, and stores nothing', async () => {
    for (const id of ['corp:alice', 'Alice', '', '-dash', '.dot', 'a'.repeat(65), 'a b', 'é']) {
      await expectCode(users.create({ id }), 'INVALID_REQUEST', /Invalid user: id must/);
    }
    await expectCode(users.create({ id: 'bad-email', email: 'not-an-email' }), 'INVALID_REQUEST', /email/);
    await expectCode(users.create({ id: 'bad-email', email: 'a@b' }), 'INVALID_REQUEST', /email/);
    await expectCode(users.create({ id: 'bad-name', displayName: '  ' }), 'INVALID_REQUEST', /displayName/);
    await expectCode(
      users.create({ id: 'bad-pw', password: 'short' }),
      'INVALID_REQUEST',
      /password: .*too short/,
    );
    await expectCode(users.create({ id: 'bad-pw', password: 'x'.repeat(20) }), 'INVALID_REQUEST', /password/);
    for (const id of ['bad-email', 'bad-name', 'bad-pw']) expect(await users.get(id)).toBeUndefined();
    expect(await users.create({ id: 'a'.repeat(64) })).toMatchObject({ id: 'a'.repeat(64) });
  });

  it('authenticates the right password, resetting the failure count and recording the login', async () => {
    await users.create({ id: 'bob', password: PW });
    await loginFailure(users.authenticate('bob', OTHER));
    expect((await users.get('bob'))?.failedLogins).toBe(1);
    clock.advance(60_000);
    const user = await users.authenticate('bob', PW);
    expect(user).toMatchObject({ id: 'bob', failedLogins: 0, lockedUntil: null, lastLoginAt: clock.now() });
    expect(await users.get('bob')).toEqual(user);
  });

  it('refuses a wrong password: LOGIN_FAILED, counted, reason wrong_password', async () => {
    await users.create({ id: 'carol', password: PW });
    const first = await loginFailure(users.authenticate('carol', OTHER));
    expect(first.reason).toBe('wrong_password');
    expect(first.failedLogins).toBe(1);
    expect(first.detail).toContain('carol');
    const second = await loginFailure(users.authenticate('carol', `${PW}!`));
    expect(second.failedLogins).toBe(2);
    expect(await users.get('carol')).toMatchObject({ failedLogins: 2, lockedUntil: null, lastLoginAt: null });
  });

  it('every failure looks the same from outside; only the private reason differs', async () => {
    await users.create({ id: 'r-nopw' });
    await users.create({ id: 'r-off', password: PW });
    await users.setStatus('r-off', 'disabled');
    const reasons: Array<[string, string, LoginFailureReason]> = [
      ['r-missing', PW, 'unknown_user'],
      ['corp:alice', PW, 'unknown_user'],
      ['r-nopw', PW, 'no_password'],
      ['r-nopw', '', 'no_password'],
      ['r-off', PW, 'disabled'],
    ];
    for (const [id, pw, reason] of reasons) {
      expect((await loginFailure(users.authenticate(id, pw))).reason, `${id}`).toBe(reason);
    }
  });

  it('an unknown user still costs a password check (against the dummy hash), so timing does not tell', async () => {
    await users.create({ id: 'timing-known', password: PW });
    vi.mocked(verifyPassword).mockClear();
    const started = performance.now();
    await loginFailure(users.authenticate('timing-nobody', PW));
    const elapsed = performance.now() - started;
    expect(verifyPassword).toHaveBeenCalledTimes(1);
    expect(verifyPassword).toHaveBeenCalledWith(PW, DUMMY_HASH);
    // A real scrypt at N = 2^15, r = 8 ran (tens of milliseconds), not just a lookup.
    expect(elapsed).toBeGreaterThan(15);
    // A user without a password, and a malformed user name, take the same path.
    await users.create({ id: 'timing-nopw' });
    await loginFailure(users.authenticate('timing-nopw', PW));
    await loginFailure(users.authenticate('Not A Name', PW));
    expect(verifyPassword).toHaveBeenCalledTimes(3);
    expect(vi.mocked(verifyPassword).mock.calls.map((c) => c[1])).toEqual([
      DUMMY_HASH,
      DUMMY_HASH,
      DUMMY_HASH,
    ]);
  });

  it(`locks after ${MAX_FAILED_LOGINS} failures in a row; then even the right password is refused`, async () => {
    await users.create({ id: 'dave', password: PW });
    for (let i = 1; i < MAX_FAILED_LOGINS; i++) {
      expect((await loginFailure(users.authenticate('dave', OTHER))).failedLogins).toBe(i);
      expect((await users.get('dave'))?.lockedUntil).toBeNull();
    }
    const last = await loginFailure(users.authenticate('dave', OTHER));
    expect(last).toMatchObject({ reason: 'wrong_password', failedLogins: MAX_FAILED_LOGINS });
    expect(await users.get('dave')).toMatchObject({
      failedLogins: MAX_FAILED_LOGINS,
      lockedUntil: clock.now() + LOCKOUT_MS,
    });
    clock.advance(LOCKOUT_MS - 1);
    expect((await loginFailure(users.authenticate('dave', PW))).reason).toBe('locked');
    // Attempts while locked neither count nor extend the lock.
    expect((await loginFailure(users.authenticate('dave', OTHER))).reason).toBe('locked');
    expect(await users.get('dave')).toMatchObject({
      failedLogins: MAX_FAILED_LOGINS,
      lockedUntil: clock.now() + 1,
      lastLoginAt: null,
    });
  });

  it('a lock expires after LOCKOUT_MS: the right password works again, and the count starts over', async () => {
    await users.create({ id: 'erin', password: PW });
    for (let i = 0; i < MAX_FAILED_LOGINS; i++) await loginFailure(users.authenticate('erin', OTHER));
    clock.advance(LOCKOUT_MS);
    // One wrong attempt after the lock does not lock again at once.
    const after = await loginFailure(users.authenticate('erin', OTHER));
    expect(after).toMatchObject({ reason: 'wrong_password', failedLogins: 1 });
    expect((await users.get('erin'))?.lockedUntil).toBeNull();
    expect(await users.authenticate('erin', PW)).toMatchObject({ failedLogins: 0, lockedUntil: null });

    await users.create({ id: 'erin2', password: PW });
    for (let i = 0; i < MAX_FAILED_LOGINS; i++) await loginFailure(users.authenticate('erin2', OTHER));
    clock.advance(LOCKOUT_MS);
    expect(await users.authenticate('erin2', PW)).toMatchObject({
      failedLogins: 0,
      lockedUntil: null,
      lastLoginAt: clock.now(),
    });
  });

  it('refuses a disabled user even with the right password, until enabled', async () => {
    await users.create({ id: 'frank', password: PW });
    expect((await users.setStatus('frank', 'disabled')).status).toBe('disabled');
    expect((await loginFailure(users.authenticate('frank', PW))).reason).toBe('disabled');
    expect((await users.setStatus('frank', 'active')).status).toBe('active');
    expect((await users.authenticate('frank', PW)).id).toBe('frank');
  });

  it('counts 10 parallel wrong attempts exactly (one atomic update each) and ends locked', async () => {
    await users.create({ id: 'grace', password: PW });
    const failures = await Promise.all(
      Array.from({ length: 10 }, () => loginFailure(users.authenticate('grace', OTHER))),
    );
    expect(failures.map((f) => f.failedLogins).sort((a, b) => a! - b!)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
    expect(await users.get('grace')).toMatchObject({
      failedLogins: 10,
      lockedUntil: clock.now() + LOCKOUT_MS,
    });
    expect((await loginFailure(users.authenticate('grace', PW))).reason).toBe('locked');
  });

  it('setPassword replaces the password and clears the lock; unlock clears it too', async () => {
    await users.create({ id: 'heidi', password: PW });
    for (let i = 0; i < MAX_FAILED_LOGINS; i++) await loginFailure(users.authenticate('heidi', OTHER));
    const reset = await users.setPassword('heidi', 'a brand new passphrase');
    expect(reset).toMatchObject({ failedLogins: 0, lockedUntil: null, hasPassword: true });
    expect((await loginFailure(users.authenticate('heidi', PW))).reason).toBe('wrong_password');
    expect((await users.authenticate('heidi', 'a brand new passphrase')).id).toBe('heidi');
    await expectCode(
      users.setPassword('heidi', 'aaaaaaaaaaaaaaaa'),
      'INVALID_REQUEST',
      /password: .*repeats/,
    );

    for (let i = 0; i < MAX_FAILED_LOGINS; i++) await loginFailure(users.authenticate('heidi', OTHER));
    expect((await users.get('heidi'))?.lockedUntil).not.toBeNull();
    expect(await users.unlock('heidi')).toMatchObject({ failedLogins: 0, lockedUntil: null });
    expect((await users.authenticate('heidi', 'a brand new passphrase')).id).toBe('heidi');
  });

  it('a user without a password gets one with setPassword', async () => {
    await users.create({ id: 'ivan' });
    expect((await users.setPassword('ivan', PW)).hasPassword).toBe(true);
    expect((await users.authenticate('ivan', PW)).id).toBe('ivan');
  });

  it('remove deletes; every change to an unknown user is USER_UNKNOWN', async () => {
    await users.create({ id: 'judy', password: PW });
    await users.remove('judy');
    expect(await users.get('judy')).toBeUndefined();
    expect((await loginFailure(users.authenticate('judy', PW))).reason).toBe('unknown_user');
    await expectCode(users.remove('judy'), 'USER_UNKNOWN', /judy/);
    await expectCode(users.setPassword('judy', PW), 'USER_UNKNOWN');
    await expectCode(users.setStatus('judy', 'disabled'), 'USER_UNKNOWN');
    await expectCode(users.unlock('judy'), 'USER_UNKNOWN');
    await expectCode(users.setStatus('judy', 'deleted' as 'active'), 'INVALID_REQUEST', /status/);
  });
});
