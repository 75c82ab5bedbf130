/**
 * The resolved `policy:` section. Owned by the policy engine (src/policy/);
 * the YAML shorthand's rule shape is defined here and compiled to Cedar there.
 */
import type { ToolCapability } from './schema-inspection.js';
import type { RiskClass } from './types.js';

/** Argument types a policy can compare: the scalar JSON types with an exact Cedar counterpart. */
export type PolicyArgumentType = 'string' | 'integer' | 'boolean';

/** Short weekday names, as `context.time.weekday` carries them. */
export type Weekday = 'Mon' | 'Tue' | 'Wed' | 'Thu' | 'Fri' | 'Sat' | 'Sun';

/** A scalar a condition compares an argument with. */
export type PolicyScalar = string | number | boolean;

/** Comparisons on one argument; several keys are ANDed. Numeric operators need integers. */
export interface ArgumentCondition {
  eq?: PolicyScalar;
  ne?: PolicyScalar;
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
  in?: PolicyScalar[];
  notIn?: PolicyScalar[];
  /** A Cedar `like` pattern: `*` matches any run of characters. */
  like?: string;
}

/** Integer comparisons (session statistics). */
export interface NumberCondition {
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
  eq?: number;
}

/** A clock window `HH:MM-HH:MM` in `policy.timezone`: start inclusive, end exclusive; may wrap midnight. */
export interface TimeCondition {
  /** Applies when the local time is inside this window. */
  within?: string;
  /** Applies when the local time is outside this window (e.g. after hours: outside 06:00-22:00). */
  outside?: string;
  /** Applies on these local weekdays only. */
  days?: Weekday[];
}

/** Conditions on the request's context; all present conditions must hold (AND). */
export interface RuleConditions {
  time?: TimeCondition;
  /** Per top-level argument; an absent argument never satisfies a condition. */
  arguments?: Record<string, ArgumentCondition>;
  /** The user the agent acts for; no user never satisfies a condition. */
  user?: { tier?: string[] };
  session?: { calls?: NumberCondition; toolsUsed?: string[] };
  /** Client address in (or not in) CIDR ranges; an unknown address is in no range (`notIn` holds). */
  clientIp?: { in?: string[]; notIn?: string[] };
  /**
   * The detectors' findings on the call's arguments (issue #7): `injection` and `classifier`
   * are scores 0–100, `secrets` and `pii` counts. A detector that did not run never satisfies a condition.
   */
  detectors?: {
    injection?: NumberCondition;
    classifier?: NumberCondition;
    secrets?: NumberCondition;
    pii?: NumberCondition;
  };
  /** The session's taint: it has taken in untrusted content / read private data (true), or not (false). */
  taint?: { untrusted?: boolean; privateData?: boolean };
  /**
   * The call's recipients (tools that declare `recipients`): all of them in
   * `taint.trustedRecipients` (true), or not — including a tool that declares none (false).
   */
  recipients?: { trusted: boolean };
}

/** What an allowed call must still satisfy, emitted as Cedar annotations on the compiled policy. */
export interface RuleObligations {
  /** `required` (or an approver group, for the approvals issue): the call waits for a human. */
  approval?: string;
  /** Raises the call's risk class (never lowers it). */
  risk?: RiskClass;
  /** Further annotations carried to the decision unchanged. */
  annotations?: Record<string, string>;
}

/**
 * One shorthand rule; compiled to one Cedar policy whose id is `id`.
 * `permit` grants, `forbid` denies (and wins), `obligation` only attaches its
 * obligations to a call something else permits — it never grants on its own.
 * Absent selectors mean "any".
 *
 * A rule is about tool calls (action `call`) unless it has `resources` or
 * `prompts` (issue #10): then it is about reading those MCP resources / getting
 * those prompts only, and may not also select tools, read arguments or
 * detectors, or carry obligations (the config loader refuses the mix).
 */
export interface PolicyRuleConfig {
  id: string;
  effect: 'permit' | 'forbid' | 'obligation';
  description?: string;
  agents?: string[];
  agentTypes?: string[];
  environments?: string[];
  tools?: string[];
  toolTags?: string[];
  /** Tools with any of these capabilities (`tools.<t>.capabilities`). */
  toolCapabilities?: ToolCapability[];
  risk?: RiskClass[];
  /** MCP resource URIs, as Cedar `like` patterns (`*` any run of characters, `\*` a literal star). */
  resources?: string[];
  /** MCP prompt names (public names), as Cedar `like` patterns. */
  prompts?: string[];
  when?: RuleConditions;
  obligations?: RuleObligations;
}

export interface PolicyConfig {
  /** Absolute paths of plain `.cedar` policy files. */
  files: string[];
  /** YAML shorthand rules. */
  rules: PolicyRuleConfig[];
  /**
   * Types of the tool arguments policies may read as `context.arguments.<name>`
   * (besides those typed in `tools.<t>.arguments` and implied by rules).
   */
  arguments?: Record<string, PolicyArgumentType>;
  /** IANA zone for time-of-day context (`context.time`). */
  timezone: string;
  /** Reload on file change (SIGHUP always reloads). */
  watch: boolean;
}
