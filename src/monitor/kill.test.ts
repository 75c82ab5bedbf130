import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { describeRedis, REDIS_URL, uniqueNamespace } from '../../test/helpers/redis.js';
import { AuditLog } from '../audit/index.js';
import { WardenError } from '../errors.js';
import { AgentRegistry, SessionStore } from '../identity/index.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { InFlightCalls } from './in-flight.js';
import { KillSwitch } from './kill.js';
import { KillBus, type KillMessage, parseKillMessage } from './kill-bus.js';

const quiet = { warn: () => {}, error: () => {}, info: () => {} };

describe('InFlightCalls', () => {
  it("aborts an agent's calls with AGENT_KILLED and forgets them when they leave", () => {
    const f = new InFlightCalls();
    const a1 = new AbortController();
    const a2 = new AbortController();
    const b1 = new AbortController();
    const leaveA1 = f.enter('a', 's1', a1);
    f.enter('a', 's2', a2);
    f.enter('b', 's3', b1);
    expect(f.size).toBe(3);
    expect(f.live().agents.sort()).toEqual(['a', 'b']);
    leaveA1();
    expect(f.abortAgent('a', 'why')).toBe(1);
    expect(a1.signal.aborted).toBe(false);
    expect(a2.signal.reason).toBeInstanceOf(WardenError);
    expect((a2.signal.reason as WardenError).code).toBe('AGENT_KILLED');
    expect(b1.signal.aborted).toBe(false);
  });

  it('refuses a call of a just-killed agent or session that registers after the abort went out', () => {
    const f = new InFlightCalls();
    f.abortAgent('a', 'gone');
    expect(() => f.enter('a', 's1', new AbortController())).toThrow(/kill switch/);
    f.abortSession('s9', 'gone');
    expect(() => f.enter('b', 's9', new AbortController())).toThrowError(
      expect.objectContaining({ code: 'SESSION_REVOKED' }),
    );
    expect(() => f.enter('b', 's8', new AbortController())).not.toThrow();
    f.forgetAgent('a');
    expect(() => f.enter('a', 's1', new AbortController())).not.toThrow();
  });

  it('forgets a kill after a while (the store refuses the agent by then)', () => {
    let now = 0;
    const f = new InFlightCalls(() => now);
    f.abortAgent('a', 'gone');
    now += 10 * 60_000;
    expect(() => f.enter('a', 's1', new AbortController())).not.toThrow();
  });

  it('aborts only the named session', () => {
    const f = new InFlightCalls();
    const one = new AbortController();
    const two = new AbortController();
    f.enter('a', 's1', one);
    f.enter('a', 's2', two);
    expect(f.abortSession('s1', 'x')).toBe(1);
    expect(one.signal.aborted).toBe(true);
    expect(two.signal.aborted).toBe(false);
  });
});

describe('parseKillMessage', () => {
  const ok = { v: 1, kind: 'agent-killed', id: 'a', reason: 'r', at: 1, origin: 'o' };
  it('accepts a well-formed message and drops anything else', () => {
    expect(parseKillMessage(JSON.stringify(ok))).toEqual(ok);
    for (const bad of [
      'not json',
      'null',
      JSON.stringify({ ...ok, v: 2 }),
      JSON.stringify({ ...ok, kind: 'agent-revived' }),
      JSON.stringify({ ...ok, id: '' }),
      JSON.stringify({ ...ok, id: 'x'.repeat(300) }),
      JSON.stringify({ ...ok, at: 'now' }),
      JSON.stringify({ ...ok, agentId: 7 }),
    ]) {
      expect(parseKillMessage(bad), bad).toBeUndefined();
    }
  });
});

describeRedis('KillBus (real Redis pub/sub)', () => {
  it('carries a kill to the other process and not back to its sender', async () => {
    const namespace = uniqueNamespace();
    const a = new KillBus({ url: REDIS_URL, namespace, log: quiet });
    const b = new KillBus({ url: REDIS_URL, namespace, log: quiet });
    const other = new KillBus({ url: REDIS_URL, namespace: uniqueNamespace(), log: quiet });
    const got: Record<string, KillMessage[]> = { a: [], b: [], other: [] };
    try {
      expect(await a.start((m) => got.a!.push(m))).toBe(true);
      expect(await b.start((m) => got.b!.push(m))).toBe(true);
      expect(await other.start((m) => got.other!.push(m))).toBe(true);
      expect(await a.publish({ kind: 'agent-killed', id: 'bot-1', reason: 'why', at: 123 })).toBe(true);
      const end = Date.now() + 3000;
      while (got.b!.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      expect(got.b).toEqual([
        { v: 1, kind: 'agent-killed', id: 'bot-1', reason: 'why', at: 123, origin: a.origin },
      ]);
      await new Promise((r) => setTimeout(r, 50));
      expect(got.a).toEqual([]);
      expect(got.other).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close(), other.close()]);
    }
  });

  it('reports a Redis it cannot reach instead of hanging', async () => {
    const bus = new KillBus({ url: 'redis://127.0.0.1:1', namespace: 'x', log: quiet });
    try {
      expect(await bus.publish({ kind: 'agent-killed', id: 'a', reason: 'r', at: 1 })).toBe(false);
    } finally {
      await bus.close();
    }
  });
});

describeEachDialect('KillSwitch store poll (a process without Redis)', (target) => {
  let store: Store;
  const clock = new ManualClock();
  beforeAll(async () => {
    store = await target.open();
    await new AgentRegistry(store, clock).register(
      {
        id: 'bot',
        type: 't',
        version: '1',
        environment: 'test',
        owner: 'o',
        expiresAt: clock.now() + 86_400_000,
        maxConcurrentSessions: 10,
        allowedTools: ['a'],
        deniedTools: [],
        publicJwk: null,
        constraints: {},
      },
      'api',
    );
  });
  afterAll(async () => {
    await store?.close().catch(() => {});
    await target.cleanup();
  });

  const process = () => {
    const agents = new AgentRegistry(store, clock);
    const sessions = new SessionStore(store, clock);
    const inFlight = new InFlightCalls(() => clock.now());
    const audit = new AuditLog(store, { clock });
    return {
      agents,
      sessions,
      inFlight,
      kill: new KillSwitch({ agents, sessions, audit, inFlight, clock, log: quiet }),
    };
  };

  it('another process aborts its running call on its next poll of the store', async () => {
    const here = process();
    const there = process();
    const { session } = await here.sessions.open('bot', (_a, now) => ({
      expiresAt: now + 600_000,
      scopes: ['tool:a:execute'],
      maxToolCalls: 10,
      allowedCidrs: [],
      issuedVia: 'operator',
      clientIp: null,
      userId: null,
      grantId: null,
    }));
    const running = new AbortController();
    there.inFlight.enter('bot', session.id, running);
    // Nothing stopped yet: the poll aborts nothing.
    expect(await there.kill.poll()).toBe(0);

    const r = await here.kill.killAgent('bot', {
      by: { type: 'HUMAN', id: 'root' },
      reason: 'test',
      traceId: 't1',
    });
    expect(r).toMatchObject({ repeated: false, sessionsRevoked: 1, callsAborted: 0, broadcast: false });
    expect(running.signal.aborted).toBe(false);
    expect(await there.kill.poll()).toBe(1);
    expect((running.signal.reason as WardenError).code).toBe('AGENT_KILLED');
    expect((running.signal.reason as WardenError).detail).toContain('root');

    await expect(
      here.kill.killAgent('bot', { by: { type: 'HUMAN', id: 'root' }, reason: '   ', traceId: 't2' }),
    ).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    await expect(
      here.kill.killAgent('ghost', { by: { type: 'HUMAN', id: 'root' }, reason: 'x', traceId: 't3' }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
