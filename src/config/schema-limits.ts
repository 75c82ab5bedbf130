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

const rateSchema = z.strictObject({
  per: z.enum(['agent', 'agent-tool', 'session']),
  tool: z.string().min(1).optional(),
  points: z.number().int().min(1),
  duration: durationField({ min: 1000 }),
});

const budgetSchema = z.strictObject({
  per: z.enum(['agent', 'agent-tool']),
  tool: z.string().min(1).optional(),
  amount: z.number().positive(),
  period: durationField({ min: 1000 }),
});

/** `limits:`; absent = no rate limits or budgets, memory counters. */
export const limitsSchema = z
  .strictObject({
    store: z.enum(['memory', 'redis']).default('memory'),
    redis: z.strictObject({ url: redisUrlField }).optional(),
    onStoreDown: z.enum(['deny', 'allow']).default('deny'),
    rates: z.array(rateSchema).default(() => []),
    budgets: z.array(budgetSchema).default(() => []),
  })
  .refine((l) => l.store !== 'redis' || l.redis !== undefined, {
    error: 'store: redis needs redis.url',
    path: ['redis'],
  })
  .prefault({});
