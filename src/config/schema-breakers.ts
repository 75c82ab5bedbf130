/**
 * The `breakers:` section (issue #8): circuit breakers per session and per agent.
 * A breaker opens on consecutive upstream failures, on cost, or (sessions) on
 * wall time, and refuses calls with CIRCUIT_OPEN until an operator resets it or,
 * for failures, its cool-down passes (docs/monitoring.md "Circuit breakers").
 */
import { z } from 'zod';
import { durationField } from './fields.js';

/** Every key of the section, for "did you mean …?" hints. */
export const BREAKER_KEYS = [
  'breakers',
  'session',
  'agent',
  'agentTypes',
  'maxConsecutiveFailures',
  'maxCost',
  'maxWallTime',
  'costWindow',
  'coolDown',
  'countToolErrors',
] as const;

/** A session's breaker limits; null = that trigger is off (coolDownMs null = until an operator resets). */
export interface SessionBreakerLimits {
  maxConsecutiveFailures: number | null;
  maxCost: number | null;
  maxWallTimeMs: number | null;
  coolDownMs: number | null;
}

/** An agent's breaker limits (counted over all its sessions); null = that trigger is off. */
export interface AgentBreakerLimits {
  maxConsecutiveFailures: number | null;
  maxCost: number | null;
  /** The agent's cost is summed per window of this length, starting at its first charge. */
  costWindowMs: number;
  coolDownMs: number | null;
}

/** The resolved `breakers:` section. */
export interface BreakersConfig {
  session: SessionBreakerLimits;
  agent: AgentBreakerLimits;
  /** Overrides per agent type: only the keys given replace the defaults above. */
  agentTypes: Record<string, { session: Partial<SessionBreakerLimits>; agent: Partial<AgentBreakerLimits> }>;
  /**
   * Whether a result the tool itself marked `isError` counts as a failure. Off by default: "order
   * not found" five times in a row is a tool answering, not an upstream failing.
   */
  countToolErrors: boolean;
}

const failures = z.number().int().min(1).nullable();
const cost = z.number().positive().nullable();
const coolDown = durationField({ min: 1000 }).nullable();
const wallTime = durationField({ min: 1000 }).nullable();
const costWindow = durationField({ min: 60_000 });

/** Drops the keys an override left out, so a merge keeps the defaults for them. */
function given<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const sessionOverride = z
  .strictObject({
    maxConsecutiveFailures: failures.optional(),
    maxCost: cost.optional(),
    maxWallTime: wallTime.optional(),
    coolDown: coolDown.optional(),
  })
  .transform(
    (s): Partial<SessionBreakerLimits> =>
      given({
        maxConsecutiveFailures: s.maxConsecutiveFailures,
        maxCost: s.maxCost,
        maxWallTimeMs: s.maxWallTime,
        coolDownMs: s.coolDown,
      }),
  );

const agentOverride = z
  .strictObject({
    maxConsecutiveFailures: failures.optional(),
    maxCost: cost.optional(),
    costWindow: costWindow.optional(),
    coolDown: coolDown.optional(),
  })
  .transform(
    (a): Partial<AgentBreakerLimits> =>
      given({
        maxConsecutiveFailures: a.maxConsecutiveFailures,
        maxCost: a.maxCost,
        costWindowMs: a.costWindow,
        coolDownMs: a.coolDown,
      }),
  );

export const breakersSchema = z
  .strictObject({
    // On by default for failures: a stuck loop against a failing upstream stops by itself.
    session: z
      .strictObject({
        maxConsecutiveFailures: failures.default(5),
        maxCost: cost.default(null),
        maxWallTime: wallTime.default(null),
        coolDown: coolDown.default(5 * 60_000),
      })
      .prefault({})
      .transform(
        (s): SessionBreakerLimits => ({
          maxConsecutiveFailures: s.maxConsecutiveFailures,
          maxCost: s.maxCost,
          maxWallTimeMs: s.maxWallTime,
          coolDownMs: s.coolDown,
        }),
      ),
    agent: z
      .strictObject({
        maxConsecutiveFailures: failures.default(20),
        maxCost: cost.default(null),
        costWindow: costWindow.default(24 * 3_600_000),
        coolDown: coolDown.default(15 * 60_000),
      })
      .prefault({})
      .transform(
        (a): AgentBreakerLimits => ({
          maxConsecutiveFailures: a.maxConsecutiveFailures,
          maxCost: a.maxCost,
          costWindowMs: a.costWindow,
          coolDownMs: a.coolDown,
        }),
      ),
    agentTypes: z
      .record(
        z.string().min(1),
        z
          .strictObject({ session: sessionOverride.prefault({}), agent: agentOverride.prefault({}) })
          .prefault({}),
      )
      .default(() => ({})),
    countToolErrors: z.boolean().default(false),
  })
  .prefault({}) satisfies z.ZodType<BreakersConfig, unknown>;

/** The section's default (the embedded default config uses it). */
export function defaultBreakers(): BreakersConfig {
  return breakersSchema.parse({});
}
