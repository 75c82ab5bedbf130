/**
 * Assembling one policy set from its sources — the generated agent-list
 * policies, the compiled YAML rules and the `.cedar` files — and proving it
 * before it may decide anything: the schema parses, every policy validates
 * strictly against it, ids are unique, annotations mean something, and tools
 * named by policies exist. Every problem is reported, each at its source.
 *
 * The set is also cut into slices for evaluation: policies whose scope names
 * one agent (`principal == Warden::Agent::"x"`) go to that agent's slice, the
 * rest to the shared one. Cedar's cost per decision grows with every policy in
 * the set it evaluates (measured: ~2–6 µs each in wasm, even when the scope
 * does not match), so a decision evaluates the shared slice and its own agent's
 * slice only — 10,000 per-agent rules cost a decision no more than 10.
 * Slices are cut per kind of action too: tool calls evaluate the policies that
 * can apply to `call`, resource reads and prompt gets (issue #10) those that can
 * apply to `read_resource` / `get_prompt`, so neither pays for the other's rules.
 */

import { createHash } from 'node:crypto';
import type { PolicyJson, SchemaJson, ValidationError } from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyArgumentType, PolicyConfig } from '../config/policy-types.js';
import type { InspectionConfig } from '../config/schema-inspection.js';
import type { ToolConfig } from '../config/types.js';
import { collectArgumentTypes } from './arguments.js';
import { checkParseSchema, validate } from './cedar.js';
import {
  AGENT_DENY_POLICY,
  AGENT_LIST_READS,
  agentListPolicies,
  type CompiledFacts,
  compileRule,
  ruleFacts,
} from './compile.js';
import {
  describeCedarError,
  type FilePolicy,
  fileLocation,
  type PolicyOrigin,
  readCedarFile,
} from './files.js';
import { RISK_ORDER } from './obligations.js';
import { ACTIONS, buildSchema, CEDAR, type CedarAction, callOnlySchema } from './schema.js';
import type { TaintSettings } from './taint.js';
import { secretsOutRule, taintRules } from './taint.js';

/** What the engine knows about one policy besides its text. */
export interface PolicyMeta {
  effect: 'permit' | 'forbid';
  /** An obligation-only permit: attaches its annotations to an allowed call, never allows one by itself. */
  obligationOnly: boolean;
  /** String-valued annotations (a bare `@name` reads as ""). */
  annotations: Readonly<Record<string, string>>;
  /** Where it came from, e.g. `policies/after-hours.cedar:3:1`, `policy.rules[0]`, `built-in`. */
  origin: string;
}

/** A proven policy set, ready to preparse. */
export interface BuiltPolicySet {
  policies: Record<string, string>;
  meta: ReadonlyMap<string, PolicyMeta>;
  /** Ids of the policies every tool-call decision evaluates (those that can apply to `call`). */
  shared: readonly string[];
  /** Ids of the `call` policies whose scope names one agent, by agent id. */
  byAgent: ReadonlyMap<string, readonly string[]>;
  /**
   * The same cut for resource reads and prompt gets (issue #10): the policies
   * that can apply to `read_resource` or `get_prompt`. A policy whose scope names
   * no action is in both; a rule about tools only in the first, one about
   * resources only here.
   */
  access: { shared: readonly string[]; byAgent: ReadonlyMap<string, readonly string[]> };
  argumentTypes: ReadonlyMap<string, PolicyArgumentType>;
  /** What the set reads, so a request can leave out what no policy looks at. */
  reads: AttributeReads;
  schema: SchemaJson<string>;
  /** SHA-256 over ids and texts: names the exact set in audit entries. */
  digest: string;
  warnings: string[];
}

/**
 * Attribute names read anywhere in the set (of any entity or record: over-counting
 * is harmless), and whether some policy uses `context` as a whole value.
 */
export interface AttributeReads {
  names: ReadonlySet<string>;
  wholeContext: boolean;
}

/** Tool names policies may reference; with `complete` false an unknown name is only a warning. */
export interface KnownTools {
  names: ReadonlySet<string>;
  /** True when every upstream's tools are in `names` (all upstreams up, or none configured). */
  complete: boolean;
}

export type BuildResult =
  | { ok: true; set: BuiltPolicySet }
  | { ok: false; errors: string[]; warnings: string[] };

/** What a policy set is built from. */
export interface PolicySources {
  policy: PolicyConfig;
  tools: Readonly<Record<string, ToolConfig>>;
  knownTools?: KnownTools;
  /** The `taint:` section, compiled to built-in policies (absent = none). */
  taint?: TaintSettings;
  /** `inspection.arguments` (its `secretsToExternal` is a built-in policy; absent = none). */
  inspectArguments?: InspectionConfig['arguments'];
  /** How to show a file path in messages (default: as given). */
  show?: (path: string) => string;
}

/** Not an attribute name Cedar allows unquoted, so no policy can read it by accident. */
const WHOLE_CONTEXT = ' whole context';

interface Entry {
  id: string;
  text: string;
  origin: PolicyOrigin;
  facts: CompiledFacts;
  /** The YAML rule's id, for messages. */
  ruleId?: string;
}

function originLabel(e: Entry): string {
  if (e.origin.kind === 'file') return fileLocation(e.origin, e.text, 0);
  if (e.origin.kind === 'rule') return `policy.rules[${e.origin.index}] (${e.ruleId})`;
  return 'built-in';
}

function locate(e: Entry, err: ValidationError): string {
  const at = err.error.sourceLocations?.[0];
  const where = e.origin.kind === 'file' && at ? fileLocation(e.origin, e.text, at.start) : originLabel(e);
  return `${where}: policy "${e.id}": ${describeCedarError(err.error)}`;
}

/** An entity uid in either JSON form Cedar uses. */
function uidOf(v: unknown): { type: unknown; id: unknown } | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  const inner = (o['__entity'] ?? o) as Record<string, unknown>;
  return 'type' in inner && 'id' in inner ? { type: inner['type'], id: inner['id'] } : undefined;
}

/** Every `Warden::Tool::"…"` entity a policy names (scope or condition). */
function toolRefs(json: PolicyJson): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    if (v === null || typeof v !== 'object') return;
    const uid = uidOf(v);
    if (uid?.type === CEDAR.tool && typeof uid.id === 'string') out.push(uid.id);
    for (const child of Object.values(v)) walk(child);
  };
  walk([json.principal, json.resource, json.conditions]);
  return out;
}

/** Attribute names a policy reads; `wholeContext` when it uses `context` other than to read from it. */
function readsOf(json: PolicyJson): { names: string[]; wholeContext: boolean } {
  const names: string[] = [];
  let wholeContext = false;
  const walk = (v: unknown, readBase: boolean): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x, false);
      return;
    }
    if (v === null || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    const access = (o['.'] ?? o['has']) as { left?: unknown; attr?: unknown } | undefined;
    if (access && typeof access === 'object' && 'left' in access) {
      const attrs = Array.isArray(access.attr) ? access.attr : [access.attr];
      for (const a of attrs) if (typeof a === 'string') names.push(a);
      walk(access.left, true);
      return;
    }
    if (o['Var'] === 'context' && !readBase) wholeContext = true;
    for (const child of Object.values(o)) walk(child, false);
  };
  walk(json.conditions, false);
  return { names, wholeContext };
}

/** The actions a scope names; undefined when it names none (every action). */
function scopeActions(json: PolicyJson): CedarAction[] | undefined {
  const a = json.action;
  if (a.op === 'All') return undefined;
  const uids = 'entities' in a ? a.entities : 'entity' in a ? [a.entity] : [];
  const ids = new Set(uids.map((u) => uidOf(u)?.id));
  return ACTIONS.filter((x) => ids.has(x));
}

/** The facts of a policy read from a file, from Cedar's own parse of it. */
function fileFacts(json: PolicyJson): CompiledFacts {
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries((json.annotations ?? {}) as Record<string, string | null>)) {
    annotations[k] = v ?? '';
  }
  // `principal in Warden::Agent::"x"` is equality too: agents have no agent children.
  const p = json.principal;
  const uid = (p.op === '==' || p.op === 'in') && 'entity' in p ? uidOf(p.entity) : undefined;
  const agent = uid?.type === CEDAR.agent && typeof uid.id === 'string' ? uid.id : undefined;
  const reads = readsOf(json);
  const actions = scopeActions(json);
  return {
    effect: json.effect,
    annotations,
    ...(agent === undefined ? {} : { agent }),
    tools: toolRefs(json),
    ...(actions === undefined ? {} : { actions }),
    // A policy that passes `context` around whole needs all of it: the marker name says so.
    reads: reads.wholeContext ? [...reads.names, WHOLE_CONTEXT] : reads.names,
  };
}

/** Policy ids cut into the shared slice and per-agent slices. */
function slices() {
  const shared: string[] = [];
  const byAgent = new Map<string, string[]>();
  return {
    shared,
    byAgent,
    add(id: string, agent: string | undefined) {
      if (agent === undefined) shared.push(id);
      else byAgent.set(agent, [...(byAgent.get(agent) ?? []), id]);
    },
  };
}

/**
 * The file policies that name no action, fail validation against the whole
 * schema, and pass against the schema of `call` alone: by id, with the warnings
 * that validation gave them (an impossible forbid is still refused).
 */
function callOnlyPolicies(
  schema: SchemaJson<string>,
  byId: ReadonlyMap<string, Entry>,
  failed: readonly ValidationError[],
): Map<string, ValidationError[]> {
  const out = new Map<string, ValidationError[]>();
  const candidates: Record<string, string> = {};
  for (const err of failed) {
    const e = byId.get(err.policyId);
    if (e?.origin.kind === 'file' && e.facts.actions === undefined) candidates[e.id] = e.text;
  }
  if (Object.keys(candidates).length === 0) return out;
  const v = validate({
    schema: callOnlySchema(schema),
    policies: { staticPolicies: candidates },
    validationSettings: { mode: 'strict' },
  });
  if (v.type === 'failure') return out;
  const bad = new Set(v.validationErrors.map((e) => e.policyId));
  for (const id of Object.keys(candidates)) {
    if (!bad.has(id))
      out.set(
        id,
        v.validationWarnings.filter((w) => w.policyId === id),
      );
  }
  return out;
}

/** Build and prove the policy set described by `src`, reading its files. Never throws for bad policy input. */
export async function buildPolicySet(src: PolicySources): Promise<BuildResult> {
  const show = src.show ?? ((p: string) => p);
  const files = await Promise.all(src.policy.files.map((f) => readCedarFile(f, show(f))));
  return assemblePolicySet(src, files);
}

/** The synchronous core of {@link buildPolicySet}, given the files already read (in `policy.files` order). */
export function assemblePolicySet(
  src: PolicySources,
  files: ReadonlyArray<{ policies: readonly FilePolicy[]; errors: readonly string[] }>,
): BuildResult {
  const errors: string[] = [];
  const warnings: string[] = [];

  const args = collectArgumentTypes({
    declared: src.policy.arguments,
    tools: src.tools,
    rules: src.policy.rules,
  });
  errors.push(...args.errors);
  const schema = buildSchema(args.types);
  const parsedSchema = checkParseSchema(schema);
  if (parsedSchema.type === 'failure') {
    errors.push(...parsedSchema.errors.map((e) => `Cedar schema: ${describeCedarError(e)}`));
  }

  const entries: Entry[] = Object.entries(agentListPolicies()).map(([id, text]) => ({
    id,
    text,
    origin: { kind: 'builtin' },
    facts: {
      effect: id === AGENT_DENY_POLICY ? 'forbid' : 'permit',
      annotations: {},
      tools: [],
      reads: AGENT_LIST_READS,
      actions: [CEDAR.call],
    },
  }));
  for (const r of [...taintRules(src.taint), ...secretsOutRule(src.inspectArguments)]) {
    entries.push({ id: r.id, text: compileRule(r), origin: { kind: 'builtin' }, facts: ruleFacts(r) });
  }
  src.policy.rules.forEach((r, index) => {
    entries.push({
      id: r.id,
      ruleId: r.id,
      text: compileRule(r),
      origin: { kind: 'rule', index },
      facts: ruleFacts(r),
    });
  });
  for (const read of files) {
    errors.push(...read.errors);
    for (const p of read.policies) entries.push({ ...p, facts: fileFacts(p.json) });
  }

  const byId = new Map<string, Entry>();
  for (const e of entries) {
    const other = byId.get(e.id);
    if (other) {
      errors.push(`${originLabel(e)}: duplicate policy id "${e.id}" (already used at ${originLabel(other)})`);
      continue;
    }
    byId.set(e.id, e);
  }
  const policies: Record<string, string> = {};
  for (const [id, e] of byId) policies[id] = e.text;

  const meta = new Map<string, PolicyMeta>();
  const reads = new Set<string>();
  const calls = slices();
  const access = slices();
  for (const [id, e] of byId) {
    const { effect, annotations } = e.facts;
    const obligationOnly = 'obligation' in annotations;
    const label = originLabel(e);
    if (obligationOnly && effect === 'forbid') {
      errors.push(
        `${label}: policy "${id}": @obligation marks a permit whose annotations apply to allowed calls; a forbid cannot carry it`,
      );
    }
    const risk = annotations['risk'];
    if (risk !== undefined && !(risk in RISK_ORDER)) {
      errors.push(
        `${label}: policy "${id}": @risk("${risk}") is not a risk class (low, medium, high, critical)`,
      );
    }
    if (
      obligationOnly &&
      Object.keys(annotations).every((k) => ['obligation', 'id', 'description'].includes(k))
    ) {
      warnings.push(`${label}: policy "${id}": an @obligation policy without obligations has no effect`);
    }
    meta.set(id, { effect, obligationOnly, annotations, origin: label });
    for (const r of e.facts.reads) reads.add(r);

    const known = src.knownTools;
    for (const t of known ? new Set(e.facts.tools) : []) {
      if (known?.names.has(t)) continue;
      const msg = `${label}: policy "${id}" names tool "${t}", which no upstream or tools: entry provides`;
      if (known?.complete) errors.push(msg);
      else warnings.push(`${msg} (not every upstream is connected, so it may yet appear)`);
    }
  }

  if (parsedSchema.type === 'success') {
    const v = validate({
      schema,
      policies: { staticPolicies: policies },
      validationSettings: { mode: 'strict' },
    });
    if (v.type === 'failure') errors.push(...v.errors.map((e) => `policy set: ${describeCedarError(e)}`));
    else {
      const at = (err: ValidationError) => {
        const e = byId.get(err.policyId);
        return e ? locate(e, err) : `policy "${err.policyId}": ${describeCedarError(err.error)}`;
      };
      // A file policy that names no action and reads what only tool calls have (context.arguments,
      // a Tool attribute) was written when `call` was the only action: it stays about tool calls.
      let validationErrors = v.validationErrors;
      let validationWarnings = v.validationWarnings;
      const callOnly = callOnlyPolicies(schema, byId, validationErrors);
      for (const [id, warningsOfId] of callOnly) {
        const e = byId.get(id)!;
        e.facts = { ...e.facts, actions: [CEDAR.call] };
        validationErrors = validationErrors.filter((err) => err.policyId !== id);
        validationWarnings = [...validationWarnings.filter((w) => w.policyId !== id), ...warningsOfId];
        warnings.push(
          `${originLabel(e)}: policy "${id}" names no action but reads what only tool calls have, so it ` +
            'applies to tool calls only (scope it `action == Warden::Action::"call"` to say so)',
        );
      }
      // A file permit that names no action grants every action: since issue #10 that includes
      // resource reads and prompt gets, which a policy written for tool calls did not mean to allow.
      for (const e of byId.values()) {
        if (e.origin.kind === 'file' && e.facts.actions === undefined && e.facts.effect === 'permit') {
          warnings.push(
            `${originLabel(e)}: policy "${e.id}" names no action, so it also permits resource reads and ` +
              'prompt gets; scope it `action == Warden::Action::"call"` if it is about tool calls only',
          );
        }
      }
      errors.push(...validationErrors.map(at));
      for (const w of validationWarnings) {
        // A forbid or an obligation that can never apply fails open without a sound: typically a
        // misspelt attribute behind `has` (`context.arguments has amuont`). That is an error; an
        // impossible permit only grants nothing, so it stays a warning.
        const m = meta.get(w.policyId);
        const impossible = /policy is impossible/.test(w.error.message);
        if (impossible && (m?.effect === 'forbid' || m?.obligationOnly)) errors.push(at(w));
        else warnings.push(at(w));
      }
      warnings.push(...v.otherWarnings.map((w) => `policy set: ${describeCedarError(w)}`));
    }
  }

  for (const [id, e] of byId) {
    const applies = e.facts.actions ?? ACTIONS;
    if (applies.includes(CEDAR.call)) calls.add(id, e.facts.agent);
    if (applies.includes(CEDAR.readResource) || applies.includes(CEDAR.getPrompt))
      access.add(id, e.facts.agent);
  }

  if (errors.length > 0) return { ok: false, errors: [...new Set(errors)], warnings: [...new Set(warnings)] };
  const hash = createHash('sha256');
  for (const id of [...byId.keys()].sort()) hash.update(`${id}\u0000${policies[id]}\u0000`);
  return {
    ok: true,
    set: {
      policies,
      meta,
      shared: calls.shared,
      byAgent: calls.byAgent,
      access: { shared: access.shared, byAgent: access.byAgent },
      argumentTypes: args.types,
      reads: { names: reads, wholeContext: reads.has(WHOLE_CONTEXT) },
      schema,
      digest: hash.digest('hex'),
      warnings: [...new Set(warnings)],
    },
  };
}
