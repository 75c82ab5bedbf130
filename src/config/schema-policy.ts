/**
 * The `policy:` section: Cedar files and the YAML shorthand. The rule shape
 * grows with the policy engine (src/policy/); unknown keys are errors.
 */
import { z } from 'zod';

const ruleSchema = z.strictObject({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, { error: 'expected a policy id ([A-Za-z0-9._-])' }),
  effect: z.enum(['permit', 'forbid']),
  description: z.string().optional(),
});

/** `policy:`; absent = no extra policies (agents' allow/deny lists still apply). */
export const policySchema = z
  .strictObject({
    files: z.array(z.string().min(1)).default(() => []),
    rules: z.array(ruleSchema).default(() => []),
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
  .prefault({});
