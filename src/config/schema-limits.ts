/** The `limits:` section: rate limits and cost budgets, and where their counters live. */
import { z } from 'zod';
import { durationField, fail, field, ok, secretRef } from './fields.js';
import type { SecretRef } from './types.js';

const redisUrlField = field(
  'a redis:// URL or a secret reference',
  (v): ReturnType<typeof ok<string | SecretRef>> | ReturnType<typeof fail> => {
    if (typeof v === 'string') {
      let u: URL;
      try {
        u = new URL(v);
      } catch {
        return fail('expected a redis:// URL');
      }
      if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
        return fail('expected a redis:// or rediss:// URL');
      if (u.password !== '')
        return fail('the Redis URL contains a password; use a reference such as {env: REDIS_URL}');
      return ok(v);
    }
    return secretRef(v, false);
  },
);

/** Counter windows are whole seconds: Redis expiry (EX) has one-second resolution. */
const wholeSeconds = (d: ReturnType<typeof durationField>) =>
  d.refine((ms) => ms % 1000 === 0, { error: 'expected a whole number of seconds (e.g. 1s, 90s, 1h)' });

/** Budgets are counted in integer micro-units (Redis counters are integers), so amounts stay far below 2^53. */
const MAX_BUDGET = 1e9;

const rateSchema = z.strictObject({
  per: z.enum(['agent', 'agent-tool', 'session']),
  tool: z.string().min(1).optional(),
  points: z.number().int().min(1),
  duration: wholeSeconds(durationField({ min: 1000 })),
});

const budgetSchema = z.strictObject({
  per: z.enum(['agent', 'agent-tool']),
  tool: z.string().min(1).optional(),
  amount: z.number().positive().max(MAX_BUDGET),
  period: wholeSeconds(durationField({ min: 1000 })),
});

/** `tool` narrows an agent × tool rule; on any other `per` it would be silently meaningless. */
function toolOnlyForAgentTool(list: Array<{ per: string; tool?: string | undefined }>, ctx: z.RefinementCtx) {
  list.forEach((r, i) => {
    if (r.tool !== undefined && r.per !== 'agent-tool') {
      ctx.addIssue({
        code: 'custom',
        path: [i, 'tool'],
        message: `tool applies only to per: agent-tool (got per: ${r.per})`,
      });
    }
  });
}

/** Two identical rules would share one counter and charge every call twice. */
function noDuplicates(list: unknown[], ctx: z.RefinementCtx) {
  const seen = new Map<string, number>();
  list.forEach((r, i) => {
    const key = JSON.stringify(r);
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else ctx.addIssue({ code: 'custom', path: [i], message: `duplicates entry ${first}` });
  });
}

/** `limits:`; absent = no rate limits or budgets, memory counters. */
export const limitsSchema = z
  .strictObject({
    store: z.enum(['memory', 'redis']).default('memory'),
    redis: z
      .strictObject({
        url: redisUrlField,
        /** A command unanswered this long counts as the store being down (then `onStoreDown` decides). */
        timeout: durationField({ min: 50, max: 10_000 }).default(1000),
      })
      .optional(),
    /** Key prefix in the counter store, so deployments sharing one Redis keep apart. */
    namespace: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
        error: 'expected letters, digits, ".", "_" or "-" (at most 64)',
      })
      .default('warden'),
    onStoreDown: z.enum(['deny', 'allow']).default('deny'),
    rates: z
      .array(rateSchema)
      .default(() => [])
      .superRefine((l, ctx) => {
        toolOnlyForAgentTool(l, ctx);
        noDuplicates(l, ctx);
      }),
    budgets: z
      .array(budgetSchema)
      .default(() => [])
      .superRefine((l, ctx) => {
        toolOnlyForAgentTool(l, ctx);
        noDuplicates(l, ctx);
      }),
  })
  .refine((l) => l.store !== 'redis' || l.redis !== undefined, {
    error: 'store: redis needs redis.url',
    path: ['redis'],
  })
  .prefault({});
