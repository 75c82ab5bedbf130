/**
 * Rate limits and budgets as the pipeline charges one call: checkCaller (after
 * the session guard), checkTool (after resolve-tool), chargeBudgets (last
 * before the attempt is recorded) — on memory counters and on Redis.
 */
import type { LimitsConfig } from '../../src/config/types.js';
import { type Limiter, openLimiter } from '../../src/limits/index.js';
import { deleteRedisNamespace, probeRedis, REDIS_URL } from './fixtures.js';
import { type BenchContext, type MicroResult, rateRow, run, skipped, usRow } from './harness.js';

const G = 'ratelimit';
const CONCURRENCY = 64;
const TOOL = 'lookup_order';

/** A few rates and budgets, high enough never to refuse: what is measured is the counting. */
export function benchLimits(namespace: string): Pick<LimitsConfig, 'namespace' | 'rates' | 'budgets'> {
  return {
    namespace,
    rates: [
      { per: 'agent', points: 1_000_000_000, durationMs: 60_000 },
      { per: 'session', points: 1_000_000_000, durationMs: 60_000 },
      { per: 'agent-tool', points: 1_000_000_000, durationMs: 10_000 },
      { per: 'agent-tool', tool: TOOL, points: 1_000_000_000, durationMs: 1_000 },
    ],
    budgets: [
      { per: 'agent', amount: 1_000_000_000, periodMs: 3_600_000 },
      { per: 'agent-tool', tool: TOOL, amount: 1_000_000_000, periodMs: 86_400_000 },
    ],
  };
}

/** The per-call cost of the benchmark's tools (budgets count only tools that cost something). */
export const benchCostOf = (tool: string): number => (tool === TOOL ? 0.25 : 0);

const SHAPE = '3 calls, 6 counters (agent, session, 2 agent×tool rates; 2 budgets)';

/** One call's limit checks, in the pipeline's order; worker w acts as session w of agent w mod 8. */
async function charge(limiter: Limiter, w: number): Promise<void> {
  const subject = { agentId: `agent-${w % 8}`, sessionId: `session-${w}` };
  await limiter.checkCaller(subject);
  await limiter.checkTool({ ...subject, tool: TOOL });
  await limiter.chargeBudgets({ ...subject, tool: TOOL });
}

async function measureStore(ctx: BenchContext, limiter: Limiter, store: string): Promise<MicroResult[]> {
  ctx.progress(`ratelimit: ${store} serial`);
  const serial = await run((w) => charge(limiter, w), ctx.timing);
  ctx.progress(`ratelimit: ${store} × ${CONCURRENCY}`);
  const parallel = await run((w) => charge(limiter, w), ctx.timing, CONCURRENCY);
  return [
    usRow(G, `checkCaller+checkTool+chargeBudgets (${store}), serial`, serial, SHAPE),
    rateRow(
      G,
      `checkCaller+checkTool+chargeBudgets (${store}), ${CONCURRENCY} in flight`,
      parallel,
      'ops/s',
      `${SHAPE}; 64 sessions of 8 agents; p50/p99 = one call's three checks under load`,
    ),
  ];
}

/** The rate-limit group. */
export async function ratelimitBench(ctx: BenchContext): Promise<MicroResult[]> {
  const namespace = `warden-bench-${process.pid}-${Date.now().toString(36)}`;
  const out: MicroResult[] = [];
  const memory = await openLimiter(
    { store: 'memory', onStoreDown: 'deny', ...benchLimits(namespace) },
    { costOf: benchCostOf },
  );
  try {
    out.push(...(await measureStore(ctx, memory, 'memory')));
  } finally {
    await memory.close();
  }

  const why = await probeRedis();
  if (why !== null) {
    const note = `Redis not reachable at ${REDIS_URL} within 1 s (${why})`;
    out.push(skipped(G, 'checkCaller+checkTool+chargeBudgets (redis), serial', 'us/op', note));
    out.push(
      skipped(G, `checkCaller+checkTool+chargeBudgets (redis), ${CONCURRENCY} in flight`, 'ops/s', note),
    );
    return out;
  }
  const redis = await openLimiter(
    { store: 'redis', redisUrl: REDIS_URL, onStoreDown: 'deny', ...benchLimits(namespace) },
    { costOf: benchCostOf, connectWaitMs: 1000 },
  );
  try {
    if (!redis.status().up)
      throw new Error(`Redis at ${REDIS_URL} answered PING but the limiter could not connect`);
    out.push(...(await measureStore(ctx, redis, 'redis')));
  } finally {
    await redis.close();
    await deleteRedisNamespace(namespace);
  }
  return out;
}
