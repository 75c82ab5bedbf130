import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { AuditLog } from '../audit/index.js';
import { breakersSchema } from '../config/schema-breakers.js';
import { isWardenError } from '../errors.js';
import { AgentRegistry, SessionStore } from '../identity/index.js';
import type { SecurityAlert } from '../notify/index.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { type BreakerCall, Breakers, breakerOutcome, UNTIL_RESET } from './breakers.js';

const MIN = 60_000;
const COSTS: Record<string, number> = { lookup: 0, paid: 0.25, pricey: 1.5 };

it('judges only calls that ran: upstream failures and isError fail, aborted and other errors are neutral', () => {
  const ran = { request: { traceId: 't' }, attempt: {} };
  expect(breakerOutcome({ request: { traceId: 't' } }, { code: 'UPSTREAM_ERROR' })).toBe('neutral');
  for (const code of ['UPSTREAM_ERROR', 'UPSTREAM_TIMEOUT', 'UPSTREAM_UNAVAILABLE', 'RESULT_WITHHELD'])
    expect(breakerOutcome(ran, { code }), code).toBe('failure');
  expect(breakerOutcome(ran, { code: 'INTERNAL' })).toBe('neutral');
  expect(breakerOutcome(ran, { code: 'AGENT_KILLED' })).toBe('neutral');
  expect(breakerOutcome({ ...ran, result: { content: [], isError: true } }, null)).toBe('failure');
  // Unless told to, a tool's own error result ("order not found") neither counts nor resets.
  expect(breakerOutcome({ ...ran, result: { content: [], isError: true } }, null, false)).toBe('neutral');
  expect(breakerOutcome({ ...ran, result: { content: [] } }, null)).toBe('success');
  const aborted = new AbortController();
  aborted.abort();
  expect(breakerOutcome({ ...ran, signal: aborted.signal }, { code: 'UPSTREAM_ERROR' })).toBe('neutral');
  expect(
    breakerOutcome(
      { request: { traceId: 't', signal: aborted.signal }, attempt: {} },
      { code: 'UPSTREAM_TIMEOUT' },
    ),
  ).toBe('neutral');
});

describeEachDialect('Breakers', (target) => {
  let store: Store;
  let other: Store;
  const clock = new ManualClock();
  let audit: AuditLog;
  let agents: AgentRegistry;
  let sessions: SessionStore;
  const alerts: SecurityAlert[] = [];
  const logged: string[] = [];
  const trips: string[] = [];
  let n = 0;

  const config = breakersSchema.parse({
    session: { maxConsecutiveFailures: 3, coolDown: '5m', maxCost: 1 },
    agent: { maxConsecutiveFailures: 5, coolDown: null, maxCost: 2, costWindow: '1h' },
    agentTypes: {
      lenient: { session: { maxConsecutiveFailures: null, maxCost: null }, agent: { maxCost: null } },
      'sessions-only': { agent: { maxConsecutiveFailures: null } },
      'agent-cost': { session: { maxCost: null } },
      timed: { session: { maxWallTime: '10m' } },
    },
  });

  const make = (s: Store = store, a: AuditLog = audit) =>
    new Breakers({
      store: s,
      audit: a,
      config,
      clock,
      costOf: (t) => COSTS[t] ?? 0,
      alert: (x) => alerts.push(x),
      metrics: { breakerOpened: (scope, reason) => trips.push(`${scope}:${reason}`) },
      log: { error: (_f, m) => logged.push(m) },
    });

  /** A fresh agent (so its streaks and cost are its own) with one session. */
  async function agentWithSession(type = 'support'): Promise<{ agentId: string; sessionId: string }> {
    const agentId = `agent-${++n}`;
    await agents.register(
      {
        id: agentId,
        type,
        version: '1',
        environment: 'test',
        owner: 'o',
        expiresAt: clock.now() + 86_400_000,
        maxConcurrentSessions: 100,
        allowedTools: ['lookup'],
        deniedTools: [],
        publicJwk: null,
        constraints: {},
      },
      'api',
    );
    return { agentId, sessionId: await openSession(agentId) };
  }

  async function openSession(agentId: string): Promise<string> {
    const { session } = await sessions.open(agentId, (_a, now) => ({
      expiresAt: now + 60 * MIN,
      scopes: [],
      maxToolCalls: 1000,
      allowedCidrs: [],
      issuedVia: 'operator',
      clientIp: null,
    }));
    return session.id;
  }

  /** A call as the pipeline hands it over: agent and session rows as read with the token, now. */
  async function call(sessionId: string, tool = 'lookup', s: Store = store): Promise<BreakerCall> {
    const session = await new SessionStore(s, clock).get(sessionId);
    const agent = await new AgentRegistry(s, clock).get(session!.agentId);
    return {
      request: { traceId: `tr-${++n}` },
      agent: agent!,
      session: session!,
      tool: { name: tool },
      attempt: {},
    };
  }

  const failing = async (b: Breakers, sessionId: string, times: number, tool = 'lookup') => {
    for (let i = 0; i < times; i++) await b.record(await call(sessionId, tool), { code: 'UPSTREAM_ERROR' });
  };
  const succeeding = async (b: Breakers, sessionId: string, tool = 'lookup') =>
    b.record({ ...(await call(sessionId, tool)), result: { content: [] } }, null);

  /** The CIRCUIT_OPEN error `check` throws, or undefined when the call may go on. */
  async function refusal(b: Breakers, c: BreakerCall) {
    try {
      await b.check(c);
      return undefined;
    } catch (e) {
      if (!isWardenError(e, 'CIRCUIT_OPEN')) throw e;
      return { rule: e.rule, data: e.data, status: e.status };
    }
  }

  /** The breaker entries about one session (or, for an agent id, about the agent's own breaker). */
  const about = (id: string) => async (event: string) =>
    (await audit.read()).filter(
      (e) =>
        e.event === event &&
        (e.sessionId === id ||
          (e.agentId === id && (e.data as { scope?: string } | null)?.scope === 'agent')),
    );

  beforeAll(async () => {
    store = await target.open();
    other = await target.open();
    audit = new AuditLog(store, { clock });
    agents = new AgentRegistry(store, clock);
    sessions = new SessionStore(store, clock);
  });
  afterAll(async () => {
    await other?.close().catch(() => {});
    await store?.close().catch(() => {});
    await target.cleanup();
  });

  it('opens the session breaker at exactly N consecutive failures, not at N−1', async () => {
    const b = make();
    const { sessionId } = await agentWithSession('sessions-only');
    await failing(b, sessionId, 2);
    expect(await refusal(b, await call(sessionId))).toBeUndefined();
    trips.length = 0;
    await failing(b, sessionId, 1);
    const r = await refusal(b, await call(sessionId));
    expect(r).toEqual({
      rule: 'breaker.session.failures',
      status: 503,
      data: { scope: 'session', reason: 'failures', retryAfterSeconds: 300 },
    });
    const opened = await about(sessionId)('CIRCUIT_OPENED');
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({
      actorType: 'SYSTEM',
      sessionId,
      data: {
        scope: 'session',
        reason: 'failures',
        count: 3,
        threshold: 3,
        openUntil: clock.now() + 5 * MIN,
      },
    });
    expect(alerts.at(-1)).toMatchObject({ kind: 'circuit.opened', sessionId, severity: 'medium' });
    // Calls still in flight when it opened may fail too: the breaker is not opened (or audited) twice.
    await failing(b, sessionId, 3);
    expect(await about(sessionId)('CIRCUIT_OPENED')).toHaveLength(1);
    expect(trips).toEqual(['session:failures']);
  });

  it('a success resets the streak; a neutral ending does not', async () => {
    const b = make();
    const { sessionId } = await agentWithSession();
    await failing(b, sessionId, 2);
    await succeeding(b, sessionId);
    await failing(b, sessionId, 2);
    expect(await refusal(b, await call(sessionId))).toBeUndefined();
    await b.record(await call(sessionId), { code: 'INTERNAL' });
    await failing(b, sessionId, 1);
    expect((await refusal(b, await call(sessionId)))?.rule).toBe('breaker.session.failures');
  });

  it('closes after the cool-down, and two processes seeing it write CIRCUIT_CLOSED once', async () => {
    const a = make();
    const b = make(other, new AuditLog(other, { clock }));
    const { sessionId } = await agentWithSession('sessions-only');
    await failing(a, sessionId, 3);
    const seenByA = await call(sessionId);
    const seenByB = await call(sessionId, 'lookup', other);
    clock.advance(5 * MIN - 1000);
    expect((await refusal(a, seenByA))?.data).toMatchObject({ retryAfterSeconds: 1 });
    clock.advance(1000);
    await Promise.all([a.check(seenByA), b.check(seenByB)]);
    const closed = await about(sessionId)('CIRCUIT_CLOSED');
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({
      actorType: 'SYSTEM',
      data: { scope: 'session', reason: 'cool-down', openReason: 'failures' },
    });
    expect(await refusal(a, await call(sessionId))).toBeUndefined();
    // Closed means counting from zero again.
    await failing(a, sessionId, 2);
    expect(await refusal(a, await call(sessionId))).toBeUndefined();
  });

  it('the agent breaker counts failures over all its sessions and refuses every session until an operator resets it', async () => {
    const b = make();
    const { agentId, sessionId } = await agentWithSession();
    const second = await openSession(agentId);
    const third = await openSession(agentId);
    // Taking turns: no session reaches 3 in a row, the agent reaches 5.
    for (let i = 0; i < 5; i++) await failing(b, [sessionId, second, third][i % 3]!, 1);
    const r = await refusal(b, await call(await openSession(agentId)));
    // coolDown null: no Retry-After, only an operator closes it.
    expect(r).toEqual({
      rule: 'breaker.agent.failures',
      status: 503,
      data: { scope: 'agent', reason: 'failures' },
    });
    expect((await agents.get(agentId))?.breakerOpenUntil).toBe(UNTIL_RESET);
    const opened = await about(agentId)('CIRCUIT_OPENED');
    expect(opened.map((e) => e.data)).toEqual([
      { scope: 'agent', reason: 'failures', count: 5, threshold: 5, openUntil: null },
    ]);
    expect(opened[0]?.sessionId).toBeNull();
    expect(alerts.at(-1)).toMatchObject({ kind: 'circuit.opened', agentId, severity: 'high' });
    clock.advance(24 * 60 * MIN);
    expect((await refusal(b, await call(sessionId)))?.rule).toBe('breaker.agent.failures');

    expect(await b.status()).toContainEqual({
      scope: 'agent',
      id: agentId,
      agentId,
      reason: 'failures',
      openUntil: null,
    });
    expect(await b.reset({ agentId }, 'alice', { traceId: 'tr-reset' })).toEqual({
      scope: 'agent',
      id: agentId,
      agentId,
      closed: true,
      reason: 'failures',
    });
    expect(await refusal(b, await call(sessionId))).toBeUndefined();
    const closed = await about(agentId)('CIRCUIT_CLOSED');
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({
      traceId: 'tr-reset',
      actorType: 'HUMAN',
      actorId: 'alice',
      data: { scope: 'agent', reason: 'operator', openReason: 'failures', openUntil: null },
    });
    // A second reset finds it closed: nothing to do, nothing audited.
    expect((await b.reset({ agentId }, 'alice')).closed).toBe(false);
    expect(await about(agentId)('CIRCUIT_CLOSED')).toHaveLength(1);
    expect((await b.status()).some((o) => o.id === agentId)).toBe(false);
  });

  it('an operator resets a session breaker; unknown ids are NOT_FOUND', async () => {
    const b = make();
    const { sessionId, agentId } = await agentWithSession();
    await failing(b, sessionId, 3);
    expect(await b.status()).toContainEqual({
      scope: 'session',
      id: sessionId,
      agentId,
      reason: 'failures',
      openUntil: clock.now() + 5 * MIN,
    });
    const before = await b.openCounts();
    expect(before.session).toBeGreaterThanOrEqual(1);
    expect(await b.reset({ sessionId }, 'bob')).toMatchObject({ scope: 'session', agentId, closed: true });
    expect(await b.openCounts()).toEqual({ ...before, session: before.session - 1 });
    expect(await refusal(b, await call(sessionId))).toBeUndefined();
    expect((await about(sessionId)('CIRCUIT_CLOSED'))[0]).toMatchObject({
      actorType: 'HUMAN',
      actorId: 'bob',
      agentId,
      agentType: 'support',
      sessionId,
      data: { reason: 'operator' },
    });
    for (const t of [{ sessionId: 'ses_nope' }, { agentId: 'nobody' }]) {
      await expect(b.reset(t, 'bob')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    }
  });

  it('two processes on one store: one opens, the other refuses on its next check', async () => {
    const a = make();
    const b = make(other, new AuditLog(other, { clock }));
    const { sessionId } = await agentWithSession('sessions-only');
    expect(await refusal(b, await call(sessionId, 'lookup', other))).toBeUndefined();
    await failing(a, sessionId, 3);
    expect((await refusal(b, await call(sessionId, 'lookup', other)))?.rule).toBe('breaker.session.failures');
    // And B's reset reaches A.
    expect((await b.reset({ sessionId }, 'carol')).closed).toBe(true);
    expect(await refusal(a, await call(sessionId))).toBeUndefined();
    // Both reaching the limit at once: one opens it, one entry says so.
    const [ca, cb] = [await call(sessionId), await call(sessionId, 'lookup', other)];
    for (let i = 0; i < 2; i++) {
      await a.record(ca, { code: 'UPSTREAM_TIMEOUT' });
      await b.record(cb, { code: 'UPSTREAM_TIMEOUT' });
    }
    await Promise.all([
      a.record(ca, { code: 'UPSTREAM_TIMEOUT' }),
      b.record(cb, { code: 'UPSTREAM_TIMEOUT' }),
    ]);
    expect(await about(sessionId)('CIRCUIT_OPENED')).toHaveLength(2);
    expect((await refusal(a, await call(sessionId)))?.rule).toBe('breaker.session.failures');
  });

  it('opens the session breaker when its cost reaches maxCost (decimal costs without drift), until reset', async () => {
    const b = make();
    const { sessionId } = await agentWithSession();
    for (let i = 0; i < 3; i++) await b.record(await call(sessionId, 'paid'), null);
    expect(await refusal(b, await call(sessionId))).toBeUndefined();
    await b.record(await call(sessionId, 'paid'), null);
    expect(await refusal(b, await call(sessionId))).toEqual({
      rule: 'breaker.session.cost',
      status: 503,
      data: { scope: 'session', reason: 'cost' },
    });
    expect((await about(sessionId)('CIRCUIT_OPENED')).map((e) => e.data)).toEqual([
      { scope: 'session', reason: 'cost', cost: 1, maxCost: 1, openUntil: null },
    ]);
    // Calls that never ran (no attempt) cost nothing; the reset starts the count again.
    await b.reset({ sessionId }, 'alice');
    await b.record({ ...(await call(sessionId, 'paid')), attempt: undefined }, null);
    for (let i = 0; i < 3; i++) await b.record(await call(sessionId, 'paid'), null);
    expect(await refusal(b, await call(sessionId))).toBeUndefined();
  });

  it("counts an agent's cost per window, across its sessions", async () => {
    const b = make();
    const { agentId, sessionId } = await agentWithSession('agent-cost');
    const second = await openSession(agentId);
    await b.record(await call(sessionId, 'pricey'), null);
    clock.advance(60 * MIN);
    // A new window: 1.5 again, not 3.
    await b.record(await call(second, 'pricey'), null);
    expect(await refusal(b, await call(sessionId))).toBeUndefined();
    await b.record(await call(await openSession(agentId), 'paid'), null);
    expect(await refusal(b, await call(sessionId))).toBeUndefined();
    await b.record(await call(await openSession(agentId), 'paid'), null);
    expect((await refusal(b, await call(sessionId)))?.rule).toBe('breaker.agent.cost');
    expect((await about(agentId)('CIRCUIT_OPENED')).map((e) => e.data)).toEqual([
      { scope: 'agent', reason: 'cost', cost: 2, maxCost: 2, costWindowMs: 60 * MIN, openUntil: null },
    ]);
  });

  it('opens the session breaker on wall time, once', async () => {
    const b = make();
    const { sessionId } = await agentWithSession('timed');
    clock.advance(10 * MIN - 1);
    expect(await refusal(b, await call(sessionId))).toBeUndefined();
    clock.advance(1);
    const stale = await call(sessionId);
    expect(await refusal(b, stale)).toEqual({
      rule: 'breaker.session.wall-time',
      status: 503,
      data: { scope: 'session', reason: 'wall-time' },
    });
    expect(await refusal(b, stale)).toMatchObject({ rule: 'breaker.session.wall-time' });
    expect(await refusal(b, await call(sessionId))).toMatchObject({ rule: 'breaker.session.wall-time' });
    expect((await about(sessionId)('CIRCUIT_OPENED')).map((e) => e.data)).toEqual([
      { scope: 'session', reason: 'wall-time', ageMs: 10 * MIN, maxWallTimeMs: 10 * MIN, openUntil: null },
    ]);
  });

  it('applies per-agent-type overrides', async () => {
    const b = make();
    expect(b.limitsFor('lenient').session).toEqual({
      maxConsecutiveFailures: null,
      maxCost: null,
      maxWallTimeMs: null,
      coolDownMs: 5 * MIN,
    });
    const { sessionId } = await agentWithSession('lenient');
    await failing(b, sessionId, 4, 'paid');
    expect(await refusal(b, await call(sessionId))).toBeUndefined();
    // The agent's own failure limit still holds.
    await failing(b, sessionId, 1);
    expect((await refusal(b, await call(sessionId)))?.rule).toBe('breaker.agent.failures');
  });

  it('never throws from record, even with the store gone (the failure is logged)', async () => {
    const own = await target.open();
    const { sessionId } = await agentWithSession();
    const c = await call(sessionId, 'paid');
    const b = make(own, new AuditLog(own, { clock }));
    await own.close();
    logged.length = 0;
    await expect(b.record(c, null)).resolves.toBeUndefined();
    expect(logged.length).toBeGreaterThan(0);
    expect(new Set(logged)).toEqual(new Set(['circuit breaker: record failed']));
  });
});
