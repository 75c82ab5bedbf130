/**
 * The resolved `policy:` section. Owned by the policy engine (src/policy/);
 * the YAML shorthand's rule shape is defined here and compiled to Cedar there.
 */

/** One shorthand rule; compiled to one Cedar policy whose id is `id`. */
export interface PolicyRuleConfig {
  id: string;
  effect: 'permit' | 'forbid';
  description?: string;
}

export interface PolicyConfig {
  /** Absolute paths of plain `.cedar` policy files. */
  files: string[];
  /** YAML shorthand rules. */
  rules: PolicyRuleConfig[];
  /** IANA zone for time-of-day context (`context.time`). */
  timezone: string;
  /** Reload on file change (SIGHUP always reloads). */
  watch: boolean;
}
