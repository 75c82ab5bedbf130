/**
 * The limiter on both stores: the same cases against memory counters and
 * against Redis at 127.0.0.1:6379 (each test in its own key namespace).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeRedis, REDIS_URL, uniqueNamespace } from '../../test/helpers/redis.js';
import type { LimitsConfig } from '../config/types.js';
import { isWardenError, type WardenError } from '../errors.js';
import { type Limiter, openLimiter } from './index.js';

const COSTS: Record<string, number> = { lookup_order: 0.25, cheap: 0.1, pricey: 0.75, free: 0 };
const A = { agentId: 'agent-a', sessionId: 'sess-1' };

/** The rejection of `p` as a WardenError (fails the test when `p` resolves). */
async function refusal(p: Promise<unknown>): Promise<WardenError> {
  try {
    await p;
  } catch (e) {
    if (isWardenError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal, the check passed');
}

type Store = 'memory' | 'redis';

function limitsSuite(store: Store) {
  const open: Limiter[] = [];

  afterEach(async () => {
    vi.useRealTimers();
    for (const l of open.splice(0)) await l.close();
  });

  /** A limiter over `rules`; `namespace` lets two limiters share counters (two replicas). */
  async function make(rules: Partial<LimitsConfig>, namespace = uniqueNamespace()): Promise<Limiter> {
    const config: LimitsConfig = {
      store,
      ...(store === 'redis' ? { redisUrl: REDIS_URL } : {}),
      namespace,
      onStoreDown: 'deny',
      rates: [],
      budgets: [],
      ...rules,
    };
    const l = await openLimiter(config, { costOf: (t) => COSTS[t] ?? 0 });
    open.push(l);
    return l;
  }

  /** Let a window pass: memory counters read Date.now() (faked); Redis expires keys on its own clock. */
  async function passWindow(ms: number): Promise<void> {
    if (store === 'memory') vi.setSystemTime(Date.now() + ms);
    else await new Promise((r) => setTimeout(r, ms));
  }

  it('allows exactly the limit, refuses one past it with the rule and Retry-After', async () => {
    const l = await make({ rates: [{ per: 'agent', points: 3, durationMs: 60_000 }] });
    for (let i = 0; i < 3; i++) expect(await l.checkCaller(A)).toEqual({ rules: ['limits.rate:agent'] });
    const e = await refusal(l.checkCaller(A));
    expect(e.code).toBe('RATE_LIMITED');
    expect(e.status).toBe(429);
    expect(e.rule).toBe('limits.rate:agent');
    expect(e.data).toMatchObject({ limit: 3, windowSeconds: 60 });
    const retry = e.data?.retryAfterSeconds as number;
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
  });

  it('opens again when the window has passed', async () => {
    if (store === 'memory') vi.useFakeTimers({ toFake: ['Date'] });
    const l = await make({ rates: [{ per: 'agent', points: 2, durationMs: 1000 }] });
    await l.checkCaller(A);
    await l.checkCaller(A);
    expect((await refusal(l.checkCaller(A))).code).toBe('RATE_LIMITED');
    await passWindow(1100);
    expect(await l.checkCaller(A)).toEqual({ rules: ['limits.rate:agent'] });
  });

  it('keeps sessions apart', async () => {
    const l = await make({ rates: [{ per: 'session', points: 2, durationMs: 60_000 }] });
    await l.checkCaller(A);
    await l.checkCaller(A);
    expect((await refusal(l.checkCaller(A))).rule).toBe('limits.rate:session');
    expect(await l.checkCaller({ ...A, sessionId: 'sess-2' })).toEqual({ rules: ['limits.rate:session'] });
  });

  it('keeps agent × tool counters apart, per tool and per agent', async () => {
    const l = await make({ rates: [{ per: 'agent-tool', points: 1, durationMs: 60_000 }] });
    expect(await l.checkTool({ ...A, tool: 'lookup_order' })).toEqual({ rules: ['limits.rate:agent-tool'] });
    const e = await refusal(l.checkTool({ ...A, tool: 'lookup_order' }));
    expect(e.rule).toBe('limits.rate:agent-tool');
    expect(e.message).toContain('for this agent and tool');
    await l.checkTool({ ...A, tool: 'cheap' });
    await l.checkTool({ agentId: 'agent-b', sessionId: 'sess-9', tool: 'lookup_order' });
    // Agent × tool rules are not caller-level: checkCaller does not count them.
    expect(await l.checkCaller(A)).toEqual({ rules: [] });
  });

  it('applies a tool-filtered rule to that tool only', async () => {
    const l = await make({
      rates: [{ per: 'agent-tool', tool: 'lookup_order', points: 1, durationMs: 60_000 }],
    });
    await l.checkTool({ ...A, tool: 'lookup_order' });
    expect((await refusal(l.checkTool({ ...A, tool: 'lookup_order' }))).rule).toBe(
      'limits.rate:agent-tool:lookup_order',
    );
    for (let i = 0; i < 3; i++) expect(await l.checkTool({ ...A, tool: 'cheap' })).toEqual({ rules: [] });
  });

  it('charges budgets exactly: 4 × 0.25 = 1.0 passes, the next is refused', async () => {
    const l = await make({ budgets: [{ per: 'agent-tool', amount: 1, periodMs: 3_600_000 }] });
    for (let i = 0; i < 4; i++) {
      expect(await l.chargeBudgets({ ...A, tool: 'lookup_order' })).toEqual({
        rules: ['limits.budget:agent-tool'],
      });
    }
    const e = await refusal(l.chargeBudgets({ ...A, tool: 'lookup_order' }));
    expect(e.code).toBe('BUDGET_EXCEEDED');
    expect(e.status).toBe(429);
    expect(e.rule).toBe('limits.budget:agent-tool');
    expect(e.data).toMatchObject({ budget: 1, periodSeconds: 3600 });
    expect(e.data?.retryAfterSeconds).toBeGreaterThan(3500);
  });

  it('counts decimal costs without floating-point drift (10 × 0.1 = 1.0)', async () => {
    const l = await make({ budgets: [{ per: 'agent', amount: 1, periodMs: 60_000 }] });
    for (let i = 0; i < 10; i++) await l.chargeBudgets({ ...A, tool: 'cheap' });
    expect((await refusal(l.chargeBudgets({ ...A, tool: 'cheap' }))).code).toBe('BUDGET_EXCEEDED');
  });

  it('shares an agent budget across tools and never charges a free tool', async () => {
    const l = await make({ budgets: [{ per: 'agent', amount: 1, periodMs: 60_000 }] });
    await l.chargeBudgets({ ...A, tool: 'lookup_order' }); // 0.25
    await l.chargeBudgets({ ...A, tool: 'pricey' }); // 1.0
    expect((await refusal(l.chargeBudgets({ ...A, tool: 'cheap' }))).rule).toBe('limits.budget:agent');
    expect(await l.chargeBudgets({ ...A, tool: 'free' })).toEqual({ rules: [] });
    // Another agent's budget is its own.
    await l.chargeBudgets({ agentId: 'agent-b', sessionId: 'sess-2', tool: 'pricey' });
  });

  it('a refusal is final for the period: a refused call stays charged (attempts count)', async () => {
    const l = await make({ rates: [{ per: 'agent', points: 2, durationMs: 60_000 }] });
    await l.checkCaller(A);
    await l.checkCaller(A);
    for (let i = 0; i < 3; i++) expect((await refusal(l.checkCaller(A))).code).toBe('RATE_LIMITED');
  });

  it('holds a limit exactly under concurrency, across two limiters sharing the namespace', async () => {
    const namespace = uniqueNamespace();
    const rules = { rates: [{ per: 'agent' as const, points: 20, durationMs: 60_000 }] };
    const one = await make(rules, namespace);
    // Memory counters are per process: a second memory limiter is a second replica with its own count.
    const two = store === 'redis' ? await make(rules, namespace) : one;
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? one : two).checkCaller(A)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r.reason as WardenError).code);
    expect(new Set(refused)).toEqual(new Set(['RATE_LIMITED']));
  });

  it('keeps configurations apart: another namespace or another rule definition counts afresh', async () => {
    const namespace = uniqueNamespace();
    const rule = { per: 'agent' as const, points: 1, durationMs: 60_000 };
    const l = await make({ rates: [rule] }, namespace);
    await l.checkCaller(A);
    expect((await refusal(l.checkCaller(A))).code).toBe('RATE_LIMITED');
    const otherNamespace = await make({ rates: [rule] });
    await otherNamespace.checkCaller(A);
    const otherRule = await make({ rates: [{ ...rule, points: 2 }] }, namespace);
    await otherRule.checkCaller(A);
  });

  it('names the rule that keeps the caller out longest, and numbers rules sharing an id', async () => {
    const l = await make({
      rates: [
        { per: 'agent', points: 1, durationMs: 5_000 },
        { per: 'agent', points: 1, durationMs: 120_000 },
      ],
    });
    expect(await l.checkCaller(A)).toEqual({ rules: ['limits.rate:agent#1', 'limits.rate:agent#2'] });
    const e = await refusal(l.checkCaller(A));
    expect(e.rule).toBe('limits.rate:agent#2');
    expect(e.data?.retryAfterSeconds).toBeGreaterThan(100);
  });
}

describe('limiter [memory]', () => limitsSuite('memory'));
describeRedis('limiter [redis]', () => limitsSuite('redis'));

describe('openLimiter', () => {
  it('does not connect to Redis when no rule needs a counter', async () => {
    const l = await openLimiter(
      { store: 'redis', redisUrl: 'redis://127.0.0.1:1', onStoreDown: 'deny', rates: [], budgets: [] },
      { costOf: () => 1 },
    );
    expect(l.status()).toEqual({ store: 'memory', up: true, onStoreDown: 'deny', rules: 0 });
    expect(await l.checkCaller(A)).toEqual({ rules: [] });
    await l.close();
  });
});
