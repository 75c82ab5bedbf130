import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { AgentRegistry } from './agents.js';
import { type NewSession, SessionStore } from './sessions.js';

const MIN = 60_000;

describeEachDialect('SessionStore', (target) => {
  let store: Store;
  const clock = new ManualClock();
  let sessions: SessionStore;
  beforeAll(async () => {
    store = await target.open();
    sessions = new SessionStore(store, clock);
    await new AgentRegistry(store, clock).register(
      {
        id: 'agent-s',
        type: 't',
        version: '1',
        environment: 'test',
        owner: 'o',
        expiresAt: clock.now() + 86_400_000,
        maxConcurrentSessions: 100,
        allowedTools: ['a'],
        deniedTools: [],
        publicJwk: null,
        constraints: {},
      },
      'api',
    );
  });
  afterAll(async () => {
    // Clean up even when beforeAll failed: a half-migrated schema left behind trips later PostgreSQL runs.
    await store?.close().catch(() => {});
    await target.cleanup();
  });

  const draft =
    (over: Partial<NewSession> = {}) =>
    (_: unknown, now: number): NewSession => ({
      expiresAt: now + 15 * MIN,
      scopes: ['tool:a:execute'],
      maxToolCalls: 30,
      allowedCidrs: ['10.0.0.0/8'],
      issuedVia: 'operator',
      clientIp: '10.1.2.3',
      userId: null,
      grantId: null,
      ...over,
    });

  it('opens a session and reads it back', async () => {
    const { session } = await sessions.open('agent-s', draft());
    expect(await sessions.get(session.id)).toEqual({
      id: session.id,
      agentId: 'agent-s',
      createdAt: clock.now(),
      expiresAt: clock.now() + 15 * MIN,
      revokedAt: null,
      revokedReason: null,
      callCount: 0,
      maxToolCalls: 30,
      allowedCidrs: ['10.0.0.0/8'],
      scopes: ['tool:a:execute'],
      issuedVia: 'operator',
      clientIp: '10.1.2.3',
      userId: null,
      grantId: null,
      expiryLogged: false,
      breakerOpenUntil: null,
      breakerReason: null,
    });
    expect(await sessions.get('ses_missing')).toBeUndefined();
  });

  it('claimCall is atomic: 50 concurrent claims on a 30-call session yield exactly 1..30', async () => {
    const { session } = await sessions.open('agent-s', draft({ maxToolCalls: 30 }));
    const claims = await Promise.all(Array.from({ length: 50 }, () => sessions.claimCall(session.id)));
    const results = claims.map((c) => c?.calls ?? null);
    const granted = results.filter((r): r is number => r !== null).sort((a, b) => a - b);
    expect(granted).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(results.filter((r) => r === null)).toHaveLength(20);
    expect((await sessions.get(session.id))?.callCount).toBe(30);
    expect(await sessions.claimCall(session.id)).toBeNull();
    expect(await sessions.claimCall('ses_missing')).toBeNull();
  });

  it('claims made together for several sessions each get their own count, interleaved or not', async () => {
    const a = (await sessions.open('agent-s', draft({ maxToolCalls: 3 }))).session;
    const b = (await sessions.open('agent-s', draft({ maxToolCalls: 5 }))).session;
    const ids = [a.id, b.id, a.id, 'ses_missing', b.id, a.id, a.id, b.id];
    const results = (await Promise.all(ids.map((id) => sessions.claimCall(id)))).map((c) => c?.calls ?? null);
    // Concurrent claims may be served in any order (PostgreSQL runs them side by side):
    // what holds is each session's own set of counts.
    const of = (id: string) =>
      results
        .filter((_, i) => ids[i] === id)
        .sort((x, y) => (x ?? Number.MAX_VALUE) - (y ?? Number.MAX_VALUE));
    expect(of(a.id)).toEqual([1, 2, 3, null]);
    expect(of(b.id)).toEqual([1, 2, 3]);
    expect(of('ses_missing')).toEqual([null]);
    expect((await sessions.get(a.id))?.callCount).toBe(3);
    expect((await sessions.get(b.id))?.callCount).toBe(3);
  });

  it('counts active sessions: revoked and expired ones do not count', async () => {
    const before = await sessions.countActive('agent-s', clock.now());
    const a = (await sessions.open('agent-s', draft())).session;
    await sessions.open('agent-s', draft({ expiresAt: clock.now() + 1000 }));
    expect(await sessions.countActive('agent-s', clock.now())).toBe(before + 2);
    await sessions.revoke(a.id, 'test');
    expect(await sessions.countActive('agent-s', clock.now())).toBe(before + 1);
    expect(await sessions.countActive('agent-s', clock.now() + 1000)).toBe(before);
  });

  it('revoke keeps the first reason; NOT_FOUND for unknown sessions', async () => {
    const { session } = await sessions.open('agent-s', draft());
    await sessions.revoke(session.id, 'first');
    clock.advance(10);
    await sessions.revoke(session.id, 'second');
    const s = await sessions.get(session.id);
    expect(s).toMatchObject({ revokedReason: 'first', revokedAt: clock.now() - 10 });
    await expect(sessions.revoke('ses_missing', 'x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('revokeAllForAgent revokes live sessions and reports how many', async () => {
    await sessions.revokeAllForAgent('agent-s', 'reset');
    await sessions.open('agent-s', draft());
    await sessions.open('agent-s', draft());
    expect(await sessions.revokeAllForAgent('agent-s', 'kill switch')).toBe(2);
    expect(await sessions.countActive('agent-s', clock.now())).toBe(0);
    expect(await sessions.revokeAllForAgent('agent-s', 'again')).toBe(0);
  });

  it('markExpiryLogged is true for exactly one of many concurrent callers', async () => {
    const { session } = await sessions.open('agent-s', draft());
    const results = await Promise.all(
      Array.from({ length: 10 }, () => sessions.markExpiryLogged(session.id)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await sessions.get(session.id))?.expiryLogged).toBe(true);
    expect(await sessions.markExpiryLogged('ses_missing')).toBe(false);
  });
});
