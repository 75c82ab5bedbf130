/** The `tools:` section: risk, tags, cost, argument constraints and resource scopes per tool. */
import { z } from 'zod';
import { fail, field, ok } from './fields.js';
import { toolApprovalSchema } from './schema-approvals.js';
import { capabilitySchema } from './schema-inspection.js';
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

/**
 * A resource-scope template: literal segments (the first names the resource
 * type and is never `tool`, which is reserved for tool scopes) and `{argument}`
 * placeholders, filled from the call's validated arguments at run time.
 */
const SCOPE_TEMPLATE = /^(?!tool:)[A-Za-z0-9_.-]+(:([A-Za-z0-9_.-]+|\{[A-Za-z_][A-Za-z0-9_]*\}))+$/;
const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The argument names a scope template's placeholders refer to. */
export function templateArguments(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '');
}

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
  })
  .refine((r) => impliedTypes(r).size <= 1, {
    // pattern + minimum could never both hold: every call would be refused, so say so at load.
    error:
      'the constraints contradict each other or the type (pattern/minLength/maxLength are for strings, minimum/maximum for numbers, maxItems for arrays)',
  }) satisfies z.ZodType<ArgumentRule>;

/** The value kinds a rule's constraints imply (`type` included); more than one is a contradiction. */
function impliedTypes(r: ArgumentRule): Set<string> {
  const kinds = new Set<string>();
  if (r.type !== undefined) kinds.add(r.type === 'integer' ? 'number' : r.type);
  if (r.pattern !== undefined || r.minLength !== undefined || r.maxLength !== undefined) kinds.add('string');
  if (r.minimum !== undefined || r.maximum !== undefined) kinds.add('number');
  if (r.maxItems !== undefined) kinds.add('array');
  return kinds;
}

/** One tool's settings; everything but `risk` is optional. */
const toolShape = z.strictObject({
  risk: riskSchema.default('low'),
  tags: z
    .array(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, { error: 'expected a lowercase tag' }))
    .default(() => []),
  cost: z.number().min(0).default(0),
  arguments: z.record(z.string().min(1), argumentRuleSchema).default(() => ({})),
  forbiddenKeys: z.array(z.string().min(1)).default(() => []),
  approval: toolApprovalSchema.optional(),
  capabilities: z.array(capabilitySchema).optional(),
  /** Arguments that hold the addresses or phone numbers a call sends to (policy: `context.recipients`). */
  recipients: z.array(z.string().min(1)).min(1).optional(),
  resourceScopes: z
    .array(
      z.string().regex(SCOPE_TEMPLATE, {
        error: 'expected a scope template like orders:read:user:{userId} (not starting with "tool:")',
      }),
    )
    .default(() => []),
});

/**
 * Placeholders are checked at load, not left to run time: each must name an
 * argument declared under `arguments`, so a typo ({userID}) is a config error
 * rather than a tool that silently denies every call, and the value that
 * becomes part of a scope has a rule (a type, a pattern) the operator wrote.
 */
export const toolSchema = toolShape.superRefine((tool, ctx) => {
  tool.resourceScopes.forEach((template, i) => {
    for (const name of templateArguments(template)) {
      if (Object.hasOwn(tool.arguments, name)) continue;
      ctx.addIssue({
        code: 'custom',
        path: ['resourceScopes', i],
        message: `placeholder {${name}} names no argument declared under arguments (declare ${name} with a type and pattern)`,
      });
    }
  });
});

/** Keys of the tool schema, for "did you mean" hints. */
export const TOOL_KEYS = [...Object.keys(toolShape.shape), ...Object.keys(argumentRuleSchema.shape ?? {})];
