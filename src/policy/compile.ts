/**
 * The YAML shorthand compiled to Cedar. Each rule becomes one policy whose id
 * is the rule's id; selectors are ANDed, values inside one selector are ORed.
 * Obligations become annotations (`@approval`, `@risk`, …) that the engine
 * reads back from the determining policies.
 *
 * Agents' `allowedTools` / `deniedTools` are not compiled per agent: two fixed
 * policies read them as entity attributes of the (per-request) principal, so
 * the policy set does not grow with the registry — bench/micro/authz.ts measures the
 * alternative (one generated policy per agent) growing linearly instead.
 */
import type {
  ArgumentCondition,
  NumberCondition,
  PolicyRuleConfig,
  RuleConditions,
  TimeCondition,
} from '../config/policy-types.js';
import { attr, cedarPattern, cedarScalar, cedarString, entityRef, hasAttr } from './cedar-text.js';
import { CEDAR, type CedarAction } from './schema.js';

/** Ids of the generated allow / deny-list policies. */
export const AGENT_ALLOW_POLICY = 'agent.allowedTools';
export const AGENT_DENY_POLICY = 'agent.deniedTools';

const CALL = 'action == Warden::Action::"call"';
const READ_RESOURCE = `Warden::Action::"${CEDAR.readResource}"`;
const GET_PROMPT = `Warden::Action::"${CEDAR.getPrompt}"`;

/** A rule about MCP resources or prompts (issue #10) rather than tool calls. */
export function isAccessRule(rule: PolicyRuleConfig): boolean {
  return rule.resources !== undefined || rule.prompts !== undefined;
}

/** The actions a rule applies to: `call`, unless it selects resources or prompts (then those only). */
function ruleActions(rule: PolicyRuleConfig): CedarAction[] {
  if (!isAccessRule(rule)) return [CEDAR.call];
  return [...(rule.resources ? [CEDAR.readResource] : []), ...(rule.prompts ? [CEDAR.getPrompt] : [])];
}

/** The two fixed policies that enforce every agent's allow and deny lists from the registry. */
export function agentListPolicies(): Record<string, string> {
  return {
    [AGENT_ALLOW_POLICY]: [
      '@description("an agent may call the tools in its allowedTools")',
      `permit (principal is Warden::Agent, ${CALL}, resource is Warden::Tool)`,
      'when { principal.allowedTools.contains(resource.name) };',
    ].join('\n'),
    [AGENT_DENY_POLICY]: [
      '@description("an agent may never call the tools in its deniedTools (forbid wins)")',
      `forbid (principal is Warden::Agent, ${CALL}, resource is Warden::Tool)`,
      'when { principal.deniedTools.contains(resource.name) };',
    ].join('\n'),
  };
}

const list = (items: readonly string[]) => `[${items.join(', ')}]`;
const strings = (items: readonly string[]) => list(items.map(cedarString));

function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

/** Local minute of the day; hour and minute come from context.time, in policy.timezone. */
const MINUTE_OF_DAY = '(context.time.hour * 60 + context.time.minute)';

/** `HH:MM-HH:MM`, start inclusive and end exclusive; a window whose end is before its start wraps midnight. */
function withinWindow(window: string): string {
  const [from, to] = window.split('-') as [string, string];
  const start = minutes(from);
  const end = minutes(to);
  const lower = `${MINUTE_OF_DAY} >= ${start}`;
  const upper = `${MINUTE_OF_DAY} < ${end}`;
  return start < end ? `(${lower} && ${upper})` : `(${lower} || ${upper})`;
}

function timeConditions(t: TimeCondition): string[] {
  const out: string[] = [];
  if (t.within !== undefined) out.push(withinWindow(t.within));
  if (t.outside !== undefined) out.push(`!${withinWindow(t.outside)}`);
  if (t.days !== undefined) out.push(`${strings(t.days)}.contains(context.time.weekday)`);
  return out;
}

function numberOps(value: string, c: NumberCondition | ArgumentCondition): string[] {
  const out: string[] = [];
  if (c.gt !== undefined) out.push(`${value} > ${c.gt}`);
  if (c.gte !== undefined) out.push(`${value} >= ${c.gte}`);
  if (c.lt !== undefined) out.push(`${value} < ${c.lt}`);
  if (c.lte !== undefined) out.push(`${value} <= ${c.lte}`);
  return out;
}

function argumentConditions(args: Record<string, ArgumentCondition>): string[] {
  const out: string[] = [];
  for (const [name, c] of Object.entries(args)) {
    const value = attr('context.arguments', name);
    // An absent argument satisfies no comparison: `has` first, or Cedar would error on the access.
    const parts = [hasAttr('context.arguments', name)];
    if (c.eq !== undefined) parts.push(`${value} == ${cedarScalar(c.eq)}`);
    if (c.ne !== undefined) parts.push(`${value} != ${cedarScalar(c.ne)}`);
    parts.push(...numberOps(value, c));
    if (c.in !== undefined) parts.push(`${list(c.in.map(cedarScalar))}.contains(${value})`);
    if (c.notIn !== undefined) parts.push(`!${list(c.notIn.map(cedarScalar))}.contains(${value})`);
    if (c.like !== undefined) parts.push(`${value} like ${cedarString(c.like)}`);
    out.push(`(${parts.join(' && ')})`);
  }
  return out;
}

function ipRanges(cidrs: readonly string[]): string {
  return `(${cidrs.map((c) => `context.clientIp.isInRange(ip(${cedarString(c)}))`).join(' || ')})`;
}

function contextConditions(w: RuleConditions): string[] {
  const out: string[] = [];
  if (w.time) out.push(...timeConditions(w.time));
  if (w.arguments) out.push(...argumentConditions(w.arguments));
  if (w.user?.tier !== undefined) {
    out.push(
      `(context has user && context.user has tier && ${strings(w.user.tier)}.contains(context.user.tier))`,
    );
  }
  if (w.session?.calls !== undefined) {
    const c = w.session.calls;
    out.push(...numberOps('context.session.calls', c));
    if (c.eq !== undefined) out.push(`context.session.calls == ${c.eq}`);
  }
  if (w.session?.toolsUsed !== undefined) {
    out.push(`context.session.toolsUsed.containsAny(${strings(w.session.toolsUsed)})`);
  }
  // An unknown client address is inside no range: `in` fails and `notIn` holds, so a
  // "forbid from outside the office" rule also covers calls whose address is unknown.
  if (w.clientIp?.in !== undefined) out.push(`(context has clientIp && ${ipRanges(w.clientIp.in)})`);
  if (w.clientIp?.notIn !== undefined) {
    out.push(`!(context has clientIp && ${ipRanges(w.clientIp.notIn)})`);
  }
  for (const [name, c] of Object.entries(w.detectors ?? {})) {
    if (c === undefined) continue;
    // A detector that did not run has no value: no comparison holds for it.
    const path = `context.detectors.${name}`;
    const ops = [...numberOps(path, c), ...(c.eq !== undefined ? [`${path} == ${c.eq}`] : [])];
    out.push(`(context has detectors && context.detectors has ${name} && ${ops.join(' && ')})`);
  }
  for (const [name, want] of Object.entries(w.taint ?? {})) {
    if (want === undefined) continue;
    const tainted = `(context has taint && context.taint has ${name} && context.taint.${name})`;
    out.push(want ? tainted : `!${tainted}`);
  }
  if (w.recipients?.trusted !== undefined) {
    // A tool that declares no recipients has none that are trusted.
    const trusted = '(context has recipients && context.recipients.trusted)';
    out.push(w.recipients.trusted ? trusted : `!${trusted}`);
  }
  return out;
}

function annotations(rule: PolicyRuleConfig): string[] {
  const out: string[] = [];
  if (rule.description !== undefined) out.push(`@description(${cedarString(rule.description)})`);
  if (rule.effect === 'obligation') out.push('@obligation');
  const o = rule.obligations;
  if (o?.approval !== undefined) out.push(`@approval(${cedarString(o.approval)})`);
  if (o?.risk !== undefined) out.push(`@risk(${cedarString(o.risk)})`);
  for (const [k, v] of Object.entries(o?.annotations ?? {})) out.push(`@${k}(${cedarString(v)})`);
  return out;
}

/** What the engine needs to know about a compiled policy without parsing it back. */
export interface CompiledFacts {
  effect: 'permit' | 'forbid';
  /** Exactly the annotations {@link compileRule} writes (a bare `@name` as ""). */
  annotations: Record<string, string>;
  /** The one agent the policy's scope names (`principal == Warden::Agent::"…"`), if any. */
  agent?: string;
  /** Tools the policy names. */
  tools: readonly string[];
  /** Attribute names the policy reads (of any entity or record), so requests can leave the rest out. */
  reads: readonly string[];
  /** The actions the policy can apply to; absent = every action (a scope that names none). */
  actions?: readonly CedarAction[];
}

/** What the two agent-list policies read. */
export const AGENT_LIST_READS: readonly string[] = ['allowedTools', 'deniedTools', 'name'];

function ruleReads(rule: PolicyRuleConfig): string[] {
  const w = rule.when;
  return [
    ...(rule.environments ? ['environment'] : []),
    ...(rule.toolTags ? ['tags'] : []),
    ...(rule.risk ? ['risk'] : []),
    ...(w?.time ? ['time', 'hour', 'minute', 'weekday'] : []),
    ...(w?.arguments ? ['arguments', ...Object.keys(w.arguments)] : []),
    ...(w?.user ? ['user', 'tier'] : []),
    ...(w?.session ? ['session', 'calls', 'toolsUsed'] : []),
    ...(w?.clientIp ? ['clientIp'] : []),
    ...(rule.toolCapabilities ? ['capabilities'] : []),
    ...(w?.detectors ? ['detectors', ...Object.keys(w.detectors)] : []),
    ...(w?.taint ? ['taint', ...Object.keys(w.taint)] : []),
    ...(w?.recipients ? ['recipients', 'trusted'] : []),
    ...(rule.resources ? ['uri'] : []),
    ...(rule.prompts ? ['name'] : []),
  ];
}

/**
 * The facts of `compileRule(rule)`, read from the rule: parsing 10,000 compiled
 * policies back through Cedar costs seconds at load. compile.test.ts checks the
 * two agree.
 */
export function ruleFacts(rule: PolicyRuleConfig): CompiledFacts {
  const annotations: Record<string, string> = {};
  if (rule.description !== undefined) annotations['description'] = rule.description;
  if (rule.effect === 'obligation') annotations['obligation'] = '';
  if (rule.obligations?.approval !== undefined) annotations['approval'] = rule.obligations.approval;
  if (rule.obligations?.risk !== undefined) annotations['risk'] = rule.obligations.risk;
  Object.assign(annotations, rule.obligations?.annotations ?? {});
  const single = rule.agents?.length === 1 && !rule.agentTypes ? rule.agents[0] : undefined;
  return {
    effect: rule.effect === 'forbid' ? 'forbid' : 'permit',
    annotations,
    ...(single === undefined ? {} : { agent: single }),
    tools: rule.tools ?? [],
    reads: ruleReads(rule),
    actions: ruleActions(rule),
  };
}

/** `resource.<attr> like p1 || …` (patterns: `*` any run of characters, `\*` a literal star). */
function likeAny(attribute: string, patterns: readonly string[]): string {
  const parts = patterns.map((p) => `resource.${attribute} like ${cedarPattern(p)}`);
  return parts.length === 1 ? parts[0]! : `(${parts.join(' || ')})`;
}

/**
 * The action and resource of a rule's scope, and the condition its resource
 * selectors add: `call` on tools, or `read_resource` / `get_prompt` by pattern.
 */
function actionAndResource(rule: PolicyRuleConfig, conditions: string[]): [string, string] {
  const { resources, prompts } = rule;
  if (resources && prompts) {
    conditions.push(
      `((resource is ${CEDAR.resource} && ${likeAny('uri', resources)})` +
        ` || (resource is ${CEDAR.prompt} && ${likeAny('name', prompts)}))`,
    );
    return [`action in [${READ_RESOURCE}, ${GET_PROMPT}]`, 'resource'];
  }
  if (resources) {
    conditions.push(likeAny('uri', resources));
    return [`action == ${READ_RESOURCE}`, `resource is ${CEDAR.resource}`];
  }
  if (prompts) {
    conditions.push(likeAny('name', prompts));
    return [`action == ${GET_PROMPT}`, `resource is ${CEDAR.prompt}`];
  }
  let resource = 'resource';
  const tools = rule.tools?.map((t) => entityRef('Tool', t));
  if (tools?.length === 1) resource = `resource == ${tools[0]}`;
  else if (tools) conditions.push(`resource in ${list(tools)}`);
  if (rule.toolTags) conditions.push(`resource.tags.containsAny(${strings(rule.toolTags)})`);
  if (rule.toolCapabilities) {
    conditions.push(`resource.capabilities.containsAny(${strings(rule.toolCapabilities)})`);
  }
  if (rule.risk) conditions.push(`${strings(rule.risk)}.contains(resource.risk)`);
  return [CALL, resource];
}

/** One rule as Cedar policy text (its id is the rule's id, given separately to the policy set). */
export function compileRule(rule: PolicyRuleConfig): string {
  const conditions: string[] = [];

  let principal = 'principal';
  const agents = rule.agents?.map((a) => entityRef('Agent', a));
  const types = rule.agentTypes?.map((t) => entityRef('AgentType', t));
  if (agents?.length === 1 && !types) principal = `principal == ${agents[0]}`;
  else if (agents) conditions.push(`principal in ${list(agents)}`);
  if (types?.length === 1 && !agents) principal = `principal in ${types[0]}`;
  else if (types) conditions.push(`principal in ${list(types)}`);
  if (rule.environments) conditions.push(`${strings(rule.environments)}.contains(principal.environment)`);

  const [action, resource] = actionAndResource(rule, conditions);

  if (rule.when) conditions.push(...contextConditions(rule.when));

  const effect = rule.effect === 'forbid' ? 'forbid' : 'permit';
  const head = `${effect} (${principal}, ${action}, ${resource})`;
  const body = conditions.length === 0 ? ';' : `\nwhen {\n  ${conditions.join('\n  && ')}\n};`;
  return [...annotations(rule), `${head}${body}`].join('\n');
}

/** Every rule compiled, keyed by id. */
export function compileRules(rules: readonly PolicyRuleConfig[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of rules) out[r.id] = compileRule(r);
  return out;
}
