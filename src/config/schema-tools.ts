/** The `tools:` section: risk, tags, cost, argument constraints and resource scopes per tool. */
import { z } from 'zod';
import { fail, field, ok } from './fields.js';
import type { ArgumentRule, RiskClass } from './types.js';

const riskSchema = z.enum(['low', 'medium', 'high', 'critical'] satisfies RiskClass[]);

const regexField = field('a regular expression', (v) => {
  if (typeof v !== 'string' || v === '') return fail('expected a regular expression string');
  try {
    new RegExp(v, 'u');
  } catch (e) {
    return fail(`invalid regular expression: ${(e as Error).message}`);
  }
  return ok(v);
});

/** `{name}` placeholders of a resource-scope template must be argument names. */
const SCOPE_TEMPLATE = /^[A-Za-z0-9_.-]+(:([A-Za-z0-9_.-]+|\{[A-Za-z_][A-Za-z0-9_]*\}))+$/;

const argumentRuleSchema = z
  .strictObject({
    type: z.enum(['string', 'integer', 'number', 'boolean', 'array', 'object']).optional(),
    pattern: regexField.optional(),
    enum: z
      .array(z.union([z.string(), z.number(), z.boolean()]))
      .min(1)
      .optional(),
    minimum: z.number().optional(),
    maximum: z.number().optional(),
    minLength: z.number().int().min(0).optional(),
    maxLength: z.number().int().min(0).optional(),
    maxItems: z.number().int().min(0).optional(),
  })
  .refine((r) => r.minimum === undefined || r.maximum === undefined || r.minimum <= r.maximum, {
    error: 'minimum is greater than maximum',
  })
  .refine((r) => r.minLength === undefined || r.maxLength === undefined || r.minLength <= r.maxLength, {
    error: 'minLength is greater than maxLength',
  }) satisfies z.ZodType<ArgumentRule>;

/** One tool's settings; everything but `risk` is optional. */
export const toolSchema = z.strictObject({
  risk: riskSchema.default('low'),
  tags: z
    .array(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, { error: 'expected a lowercase tag' }))
    .default(() => []),
  cost: z.number().min(0).default(0),
  arguments: z.record(z.string().min(1), argumentRuleSchema).default(() => ({})),
  forbiddenKeys: z.array(z.string().min(1)).default(() => []),
  resourceScopes: z
    .array(
      z.string().regex(SCOPE_TEMPLATE, {
        error: 'expected a scope template like orders:read:user:{userId}',
      }),
    )
    .default(() => []),
});

/** Keys of the tool schema, for "did you mean" hints. */
export const TOOL_KEYS = [...Object.keys(toolSchema.shape), ...Object.keys(argumentRuleSchema.shape ?? {})];
