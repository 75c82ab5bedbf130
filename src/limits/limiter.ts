/**
 * Rate limits and cost budgets over rate-limiter-flexible counters, in memory
 * (one process) or Redis (shared by every replica, so a limit is global).
 *
 * Semantics (docs/configuration.md "Limits"):
 * - Fixed windows that start at a key's first hit and last the rule's duration.
 * - `consume` is one atomic increment-and-compare in the store (a Lua script in
 *   Redis), so N replicas racing on one key admit exactly `points` calls.
 * - A refused call's points stay counted: attempts count, and a budget refusal
 *   is final for the rest of its period. Nothing is ever refunded.
 * - Store unreachable: `onStoreDown: deny` refuses (LIMITS_UNAVAILABLE, fail
 *   closed); `allow` lets the call through unlimited, says so in the decision
 *   (`limits.store-down-allowed`) and logs a warning.
 */
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { LimitsConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { type Clock, systemClock } from '../util/clock.js';
import {
  closeRedisClient,
  createRedisClient,
  DEFAULT_REDIS_TIMEOUTS,
  type RedisTimeouts,
  waitReady,
} from './redis.js';
import {
  applies,
  COST_UNITS_PER_COST,
  type CompiledRule,
  compileRules,
  type LimitSubject,
  subjectKey,
  toCostUnits,
} from './rules.js';

/** The rule id a call carries when it went through unlimited because the store was down (`allow` mode). */
export const STORE_DOWN_ALLOWED = 'limits.store-down-allowed';

/** The log lines the limiter writes (a pino logger fits). */
export interface LimiterLog {
  warn(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
}

export interface LimiterOptions {
  /** A tool's cost per call (config `tools.<name>.cost`); 0 = not charged. */
  costOf(tool: string): number;
  log?: LimiterLog;
  /** Used for log throttling only: counter windows run on the store's own clock. */
  clock?: Clock;
  redisTimeouts?: RedisTimeouts;
  /** How long `openLimiter` waits for Redis before starting anyway (calls then follow `onStoreDown`). */
  connectWaitMs?: number;
}

/** What a passed check adds to the call's decision: the limit rules it was counted against. */
export interface LimitPass {
  rules: string[];
}

/** The counter store's health, for readiness and operators. */
export interface LimiterStatus {
  store: 'memory' | 'redis';
  up: boolean;
  onStoreDown: 'deny' | 'allow';
  rules: number;
}

interface Counter {
  consume(key: string, points: number): Promise<RateLimiterRes>;
}

interface Rule extends CompiledRule {
  counter: Counter;
}

const ALLOW_WARN_EVERY_MS = 10_000;

const silent: LimiterLog = { warn: () => {}, info: () => {} };

/** Rate limits and budgets for the pipeline; build with {@link openLimiter}. */
export class Limiter {
  private readonly rules: Rule[];
  private readonly callerRates: Rule[];
  private readonly toolRates: Rule[];
  private readonly budgets: Rule[];
  private readonly log: LimiterLog;
  private readonly clock: Clock;
  private up = true;
  private lastAllowWarn = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly config: LimitsConfig,
    private readonly opts: LimiterOptions,
    private readonly redis: Redis | undefined,
  ) {
    this.log = opts.log ?? silent;
    this.clock = opts.clock ?? systemClock;
    const compiled = compileRules(config.namespace ?? 'warden', config.rates, config.budgets);
    this.rules = compiled.map((r) => ({ ...r, counter: this.counterFor(r) }));
    this.callerRates = this.rules.filter((r) => r.kind === 'rate' && r.per !== 'agent-tool');
    this.toolRates = this.rules.filter((r) => r.kind === 'rate' && r.per === 'agent-tool');
    this.budgets = this.rules.filter((r) => r.kind === 'budget');
    if (redis) {
      redis.on('error', (e: Error) => this.markDown(e));
      redis.on('ready', () => this.markUp());
    }
  }

  private counterFor(r: CompiledRule): Counter {
    const opts = { keyPrefix: r.keyPrefix, points: r.points, duration: r.windowSeconds };
    if (!this.redis) return new RateLimiterMemory(opts);
    // rejectIfRedisNotReady: refuse at once while reconnecting rather than write into a dead socket.
    return new RateLimiterRedis({ ...opts, storeClient: this.redis, rejectIfRedisNotReady: true });
  }

  /** Per-agent and per-session rates, before the tool is known (cheap refusal of a flood). */
  checkCaller(subject: LimitSubject): Promise<LimitPass> {
    return this.run(this.callerRates, { agentId: subject.agentId, sessionId: subject.sessionId }, 1);
  }

  /** Agent × tool rates, once the tool is resolved. */
  checkTool(subject: LimitSubject & { tool: string }): Promise<LimitPass> {
    return this.run(
      this.toolRates.filter((r) => applies(r, subject)),
      subject,
      1,
    );
  }

  /** Charge the tool's cost to every budget that covers the call; a tool that costs nothing is not counted. */
  chargeBudgets(subject: LimitSubject & { tool: string }): Promise<LimitPass> {
    const units = toCostUnits(this.opts.costOf(subject.tool));
    if (units === 0) return Promise.resolve({ rules: [] });
    return this.run(
      this.budgets.filter((r) => applies(r, subject)),
      subject,
      units,
    );
  }

  /** Health of the counter store. */
  status(): LimiterStatus {
    return {
      store: this.redis ? 'redis' : 'memory',
      up: this.redis ? this.redis.status === 'ready' : true,
      onStoreDown: this.config.onStoreDown,
      rules: this.rules.length,
    };
  }

  /** Close the Redis connection (memory counters just go away). */
  async close(): Promise<void> {
    if (this.redis) await closeRedisClient(this.redis);
  }

  /** Consume `points` on every rule's counter for `subject`; refuse if any is over. */
  private async run(rules: Rule[], subject: LimitSubject, points: number): Promise<LimitPass> {
    if (rules.length === 0) return { rules: [] };
    // One round trip per rule, all at once: latency is one store round trip, not N.
    const settled = await Promise.allSettled(
      rules.map((r) => r.counter.consume(subjectKey(r, subject), points)),
    );
    const denied: Array<{ rule: Rule; res: RateLimiterRes }> = [];
    let storeError: unknown;
    settled.forEach((s, i) => {
      const rule = rules[i]!;
      if (s.status === 'fulfilled') return;
      if (s.reason instanceof RateLimiterRes) denied.push({ rule, res: s.reason });
      else storeError ??= s.reason;
    });
    if (storeError !== undefined) this.markDown(storeError);
    else if (this.redis) this.markUp();
    // A limit that answered "over" holds even when another counter could not be read.
    if (denied.length > 0) throw refusal(denied, points);
    if (storeError !== undefined) return this.storeDown(storeError, subject);
    return { rules: rules.map((r) => r.id) };
  }

  private storeDown(e: unknown, subject: LimitSubject): LimitPass {
    const detail = e instanceof Error ? e.message : String(e);
    if (this.config.onStoreDown === 'deny') {
      throw new WardenError('LIMITS_UNAVAILABLE', 'Rate limits cannot be checked, so the call is refused', {
        rule: 'limits.store-unavailable',
        detail: `limits store (${this.status().store}) unreachable: ${detail}`,
        cause: e,
      });
    }
    const now = this.clock.now();
    if (now - this.lastAllowWarn >= ALLOW_WARN_EVERY_MS) {
      this.lastAllowWarn = now;
      this.log.warn(
        { agentId: subject.agentId, error: detail },
        'limits store unreachable: calls proceed WITHOUT rate limits or budgets (limits.onStoreDown: allow)',
      );
    }
    return { rules: [STORE_DOWN_ALLOWED] };
  }

  private markDown(e: unknown): void {
    if (!this.up) return;
    this.up = false;
    const error = e instanceof Error ? e.message : String(e);
    const effect = this.config.onStoreDown === 'deny' ? 'calls are refused' : 'calls proceed without limits';
    this.log.warn({ store: this.status().store, error }, `limits store unreachable: ${effect}`);
  }

  private markUp(): void {
    if (this.up) return;
    this.up = true;
    this.log.info({ store: this.status().store }, 'limits store reachable again');
  }
}

function retryAfterSeconds(res: RateLimiterRes): number {
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
}

function scopeText(rule: CompiledRule): string {
  if (rule.per === 'session') return 'for this session';
  if (rule.per === 'agent') return 'for this agent';
  return rule.tool === undefined ? 'for this agent and tool' : `for this agent and tool "${rule.tool}"`;
}

/** The refusal of the rule that keeps the caller out longest (the one worth naming). */
function refusal(denied: Array<{ rule: Rule; res: RateLimiterRes }>, points: number) {
  let worst = denied[0]!;
  for (const d of denied) if (d.res.msBeforeNext > worst.res.msBeforeNext) worst = d;
  const { rule, res } = worst;
  const retry = retryAfterSeconds(res);
  const window = `${rule.windowSeconds}s`;
  if (rule.kind === 'rate') {
    return new WardenError(
      'RATE_LIMITED',
      `Rate limit reached: ${rule.limit} calls per ${window} ${scopeText(rule)}; retry in ${retry}s`,
      {
        rule: rule.id,
        detail: `${res.consumedPoints} of ${rule.points} in the current window`,
        data: { retryAfterSeconds: retry, limit: rule.limit, windowSeconds: rule.windowSeconds },
      },
    );
  }
  const cost = points / COST_UNITS_PER_COST;
  const spent = res.consumedPoints / COST_UNITS_PER_COST;
  return new WardenError(
    'BUDGET_EXCEEDED',
    `Cost budget spent: ${rule.limit} per ${window} ${scopeText(rule)}; retry in ${retry}s`,
    {
      rule: rule.id,
      detail: `a call costing ${cost} brought the period's charges to ${spent} of ${rule.limit}`,
      data: { retryAfterSeconds: retry, budget: rule.limit, periodSeconds: rule.windowSeconds },
    },
  );
}

/** Build the limiter for `config`: memory counters, or Redis (waiting briefly for the first connection). */
export async function openLimiter(config: LimitsConfig, opts: LimiterOptions): Promise<Limiter> {
  const needsStore = config.rates.length > 0 || config.budgets.length > 0;
  if (config.store !== 'redis' || !needsStore) return new Limiter(config, opts, undefined);
  if (!config.redisUrl) {
    throw new WardenError('CONFIG_INVALID', 'limits.store is redis but no Redis URL was resolved');
  }
  const timeouts = opts.redisTimeouts ?? {
    ...DEFAULT_REDIS_TIMEOUTS,
    ...(config.redisTimeoutMs === undefined ? {} : { commandTimeoutMs: config.redisTimeoutMs }),
  };
  const redis = createRedisClient(config.redisUrl, timeouts);
  const limiter = new Limiter(config, opts, redis);
  const ready = await waitReady(redis, opts.connectWaitMs ?? timeouts.connectTimeoutMs * 2);
  if (!ready) {
    // Start anyway: readiness reports it, and each call follows onStoreDown until Redis answers.
    (opts.log ?? silent).warn(
      { onStoreDown: config.onStoreDown },
      'limits store (Redis) not reachable at start; retrying in the background',
    );
  }
  return limiter;
}
