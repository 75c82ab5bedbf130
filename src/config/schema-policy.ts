/**
 * The `policy:` section: Cedar files and the YAML shorthand compiled to Cedar
 * by src/policy/compile.ts. Objects are strict, so a misspelt selector or
 * obligation is an error rather than a rule that silently matches everything.
 */
import { z } from 'zod';
import { cidrField } from './fields.js';
import type { PolicyConfig, PolicyRuleConfig, Weekday } from './policy-types.js';
import { capabilitySchema } from './schema-inspection.js';
import type { RiskClass } from './types.js';

/** Ids of the policies Warden generates itself; a rule may not take them. */
export const RESERVED_POLICY_IDS: ReadonlySet<string> = new Set([
  'agent.allowedTools',
  'agent.deniedTools',
  'taint.untrusted',
  'taint.privateData',
  'detectors.secretsToExternal',
]);

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const satisfies readonly Weekday[];
const riskSchema = z.enum(['low', 'medium', 'high', 'critical'] satisfies RiskClass[]);
/** `HH:MM-HH:MM`, end may be 24:00; equal ends would be an empty (or full) window, which is surely a mistake. */
const WINDOW = /^([01]\d|2[0-3]):([0-5]\d)-(([01]\d|2[0-3]):([0-5]\d)|24:00)$/;
/** Cedar annotation keys are identifiers; these are taken by Warden's own meaning. */
const ANNOTATION_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED_ANNOTATIONS = new Set(['id', 'obligation', 'approval', 'risk', 'description']);
/** Cedar's Long is 64-bit; JSON numbers are exact only up to 2^53, so integers beyond that are refused. */
const integer = z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
const scalar = z.union([z.string(), integer, z.boolean()], {
  error: 'expected a string, an integer or a boolean',
});
const nonEmptyList = <T extends z.ZodType>(item: T) =>
  z.array(item).min(1, { error: 'expected a non-empty list' });
const name = z.string().min(1);

const windowField = z
  .string()
  .regex(WINDOW, { error: 'expected a window like 06:00-22:00 (24-hour clock, end exclusive)' })
  .refine((w) => w.slice(0, 5) !== w.slice(6), { error: 'the window starts where it ends' });

const argumentConditionSchema = z
  .strictObject({
    eq: scalar.optional(),
    ne: scalar.optional(),
    gt: integer.optional(),
    gte: integer.optional(),
    lt: integer.optional(),
    lte: integer.optional(),
    in: nonEmptyList(scalar).optional(),
    notIn: nonEmptyList(scalar).optional(),
    like: z.string().optional(),
  })
  .refine((c) => Object.keys(c).length > 0, { error: 'expected at least one comparison (eq, gt, in, …)' });

const numberConditionSchema = z
  .strictObject({
    gt: integer.optional(),
    gte: integer.optional(),
    lt: integer.optional(),
    lte: integer.optional(),
    eq: integer.optional(),
  })
  .refine((c) => Object.keys(c).length > 0, { error: 'expected at least one comparison (gt, gte, …)' });

const conditionsSchema = z.strictObject({
  time: z
    .strictObject({
      within: windowField.optional(),
      outside: windowField.optional(),
      days: nonEmptyList(z.enum(WEEKDAYS)).optional(),
    })
    .refine((t) => t.within === undefined || t.outside === undefined, {
      error: 'use either within or outside, not both',
    })
    .optional(),
  arguments: z.record(name, argumentConditionSchema).optional(),
  user: z.strictObject({ tier: nonEmptyList(name).optional() }).optional(),
  session: z
    .strictObject({ calls: numberConditionSchema.optional(), toolsUsed: nonEmptyList(name).optional() })
    .optional(),
  clientIp: z
    .strictObject({ in: nonEmptyList(cidrField).optional(), notIn: nonEmptyList(cidrField).optional() })
    .optional(),
  detectors: z
    .strictObject({
      injection: numberConditionSchema.optional(),
      classifier: numberConditionSchema.optional(),
      secrets: numberConditionSchema.optional(),
      pii: numberConditionSchema.optional(),
    })
    .refine((d) => Object.keys(d).length > 0, { error: 'expected injection, classifier, secrets or pii' })
    .optional(),
  taint: z
    .strictObject({ untrusted: z.boolean().optional(), privateData: z.boolean().optional() })
    .refine((t) => Object.keys(t).length > 0, { error: 'expected untrusted or privateData' })
    .optional(),
  recipients: z.strictObject({ trusted: z.boolean() }).optional(),
});

const obligationsSchema = z.strictObject({
  approval: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/, { error: 'expected "required" or an approver group name' })
    .optional(),
  risk: riskSchema.optional(),
  annotations: z
    .record(z.string(), z.string())
    // Checked here rather than as a key schema, whose message zod replaces with "Invalid key in record".
    .superRefine((rec, ctx) => {
      for (const k of Object.keys(rec)) {
        if (!ANNOTATION_KEY.test(k)) {
          ctx.addIssue({ code: 'custom', path: [k], message: 'expected an annotation name (an identifier)' });
        } else if (RESERVED_ANNOTATIONS.has(k)) {
          const instead = k === 'approval' || k === 'risk' ? ` (use obligations.${k})` : '';
          ctx.addIssue({ code: 'custom', path: [k], message: `reserved annotation name${instead}` });
        }
      }
    })
    .optional(),
});

/** What only a tool call has: a rule about resources or prompts may not use it. */
const TOOL_ONLY: ReadonlyArray<readonly [(r: PolicyRuleConfig) => boolean, string[]]> = [
  [(r) => r.tools !== undefined, ['tools']],
  [(r) => r.toolTags !== undefined, ['toolTags']],
  [(r) => r.toolCapabilities !== undefined, ['toolCapabilities']],
  [(r) => r.risk !== undefined, ['risk']],
  [(r) => r.when?.arguments !== undefined, ['when', 'arguments']],
  [(r) => r.when?.detectors !== undefined, ['when', 'detectors']],
  [(r) => r.when?.recipients !== undefined, ['when', 'recipients']],
  [(r) => r.obligations !== undefined && r.effect !== 'forbid', ['obligations']],
];

const ruleSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, { error: 'expected a policy id ([A-Za-z0-9._-])' })
      .refine((id) => !RESERVED_POLICY_IDS.has(id), { error: 'this id is reserved for a generated policy' }),
    effect: z.enum(['permit', 'forbid', 'obligation']),
    description: z.string().optional(),
    agents: nonEmptyList(name).optional(),
    agentTypes: nonEmptyList(name).optional(),
    environments: nonEmptyList(name).optional(),
    tools: nonEmptyList(name).optional(),
    toolTags: nonEmptyList(name).optional(),
    toolCapabilities: nonEmptyList(capabilitySchema).optional(),
    risk: nonEmptyList(riskSchema).optional(),
    resources: nonEmptyList(name).optional(),
    prompts: nonEmptyList(name).optional(),
    when: conditionsSchema.optional(),
    obligations: obligationsSchema.optional(),
  })
  .superRefine((r, ctx) => {
    const hasObligations =
      r.obligations !== undefined &&
      (r.obligations.approval !== undefined ||
        r.obligations.risk !== undefined ||
        Object.keys(r.obligations.annotations ?? {}).length > 0);
    if (r.effect === 'forbid' && r.obligations !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['obligations'],
        message: 'a forbid denies outright; put obligations on a permit or an obligation rule',
      });
    }
    if (r.resources !== undefined || r.prompts !== undefined) {
      const about =
        r.prompts === undefined
          ? 'resources'
          : r.resources === undefined
            ? 'prompts'
            : 'resources and prompts';
      if (r.effect === 'obligation') {
        ctx.addIssue({
          code: 'custom',
          path: ['effect'],
          message: `a rule about ${about} is a permit or a forbid (obligations are about tool calls)`,
        });
      }
      for (const [present, path] of TOOL_ONLY) {
        if (!present(r)) continue;
        ctx.addIssue({
          code: 'custom',
          path,
          message: `a rule about ${about} cannot also have ${path.join('.')}: that is about tool calls (write a separate rule)`,
        });
      }
      return;
    }
    if (r.effect === 'obligation' && !hasObligations) {
      ctx.addIssue({
        code: 'custom',
        path: ['effect'],
        message: 'an obligation rule needs obligations (approval, risk or annotations)',
      });
    }
  }) satisfies z.ZodType<PolicyRuleConfig>;

/** `policy:`; absent = no extra policies (agents' allow/deny lists still apply). */
export const policySchema = z
  .strictObject({
    files: z.array(z.string().min(1)).default(() => []),
    rules: z.array(ruleSchema).default(() => []),
    arguments: z
      .record(
        name,
        z.enum(['string', 'integer', 'boolean'], { error: 'expected string, integer or boolean' }),
      )
      .default(() => ({})),
    timezone: z
      .string()
      .refine(
        (tz) => {
          try {
            new Intl.DateTimeFormat('en', { timeZone: tz });
            return true;
          } catch {
            return false;
          }
        },
        { error: 'expected an IANA time zone such as UTC or Europe/Paris' },
      )
      .default('UTC'),
    watch: z.boolean().default(false),
  })
  .superRefine((p, ctx) => {
    const first = new Map<string, number>();
    p.rules.forEach((r, i) => {
      const seen = first.get(r.id);
      if (seen === undefined) first.set(r.id, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'id'],
          message: `duplicate policy id "${r.id}" (already used by policy.rules[${seen}])`,
        });
    });
  })
  .prefault({}) satisfies z.ZodType<Omit<PolicyConfig, 'files'> & { files: string[] }>;

/** Every key of the section, for "did you mean …?" hints. */
export const POLICY_KEYS: readonly string[] = [
  'files',
  'rules',
  'arguments',
  'timezone',
  'watch',
  ...Object.keys(ruleSchema.shape),
  ...Object.keys(conditionsSchema.shape),
  ...Object.keys(argumentConditionSchema.shape),
  ...Object.keys(obligationsSchema.shape),
  'within',
  'outside',
  'days',
  'tier',
  'calls',
  'toolsUsed',
];
