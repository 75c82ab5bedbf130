/**
 * The Cedar policy engine: holds one proven, preparsed policy set and decides
 * calls against it. A reload builds and proves the next set while the current
 * one keeps deciding, preparses it under fresh cache ids, and only then
 * switches — so a decision always sees one whole set, and a bad reload leaves
 * the running set in place (and says why, in the log and the audit log).
 * Default deny; a forbid wins; a forbid that fails to evaluate counts as applying.
 *
 * A decision evaluates the shared slice and, when the agent has policies of its
 * own, that agent's slice, and merges the two exactly as Cedar would have
 * decided over their union (any satisfied forbid denies; else any satisfied
 * permit allows). See policy-set.ts for why the set is sliced.
 */

import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, isAbsolute, relative } from 'node:path';
import type { StatefulAuthorizationCall } from '@cedar-policy/cedar-wasm/nodejs';
import type { AuditInput } from '../audit/index.js';
import type { PolicyConfig } from '../config/policy-types.js';
import type { InspectionConfig } from '../config/schema-inspection.js';
import type { ToolConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { type Clock, systemClock } from '../util/clock.js';
import { SessionActivity } from './activity.js';
import { preparsePolicySet, statefulIsAuthorized } from './cedar.js';
import { describeCedarError } from './files.js';
import { mergeObligations, type Obligations } from './obligations.js';
import { assemblePolicySet, type BuiltPolicySet, buildPolicySet, type KnownTools } from './policy-set.js';
import { RecipientMatcher, recipientFacts } from './recipients.js';
import {
  type AccessInput,
  type AuthzInput,
  buildAccessRequest,
  buildRequest,
  LocalTime,
  type ToolFacts,
} from './request.js';
import type { TaintSettings } from './taint.js';

/** The outcome of one authorization. Policy ids are sorted, so equal inputs give equal decisions. */
export type AuthzDecision =
  | { allowed: true; policyIds: string[]; obligations: Obligations; errors: string[] }
  | {
      allowed: false;
      /** `forbid`: forbids applied; `forbid-error`: a forbid could not be evaluated; `not-permitted`: default deny. */
      reason: 'forbid' | 'forbid-error' | 'not-permitted';
      policyIds: string[];
      errors: string[];
    };

/** Why a reload happened. */
export type ReloadTrigger = 'start' | 'sighup' | 'watch' | 'api';

/** What a reload did. */
export interface ReloadResult {
  ok: boolean;
  trigger: ReloadTrigger;
  /** Digest of the set now in force (the old one when the reload failed). */
  digest: string;
  policyCount: number;
  errors: string[];
  warnings: string[];
}

/** The part of a pino logger the engine uses. */
export interface PolicyLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PolicyEngineOptions {
  policy: PolicyConfig;
  tools: Readonly<Record<string, ToolConfig>>;
  /** The `taint:` section (compiled to built-in policies); absent = no taint policies. */
  taint?: TaintSettings;
  /** `inspection.arguments` (secrets sent out is a built-in policy); absent = none. */
  inspectArguments?: InspectionConfig['arguments'];
  /** Tool names policies may reference (config tools plus upstream tools). */
  knownTools?: () => KnownTools;
  /** Where a reload reads the `policy:` section from (e.g. the config file again); default: the one given. */
  reloadPolicy?: () => Promise<PolicyConfig>;
  /** Other files whose change triggers a reload when `policy.watch` is on (the config file). */
  watchFiles?: string[];
  audit?: (input: AuditInput) => Promise<unknown>;
  logger?: PolicyLogger;
  clock?: Clock;
}

/** One preparsed part of the set; Cedar names its policies policy0…, in `ids` order. */
interface Slice {
  slot: string;
  ids: readonly string[];
}

/** The slices one action evaluates: the shared one and, per agent, its own. */
interface Slices {
  shared: Slice;
  agents: ReadonlyMap<string, Slice>;
}

interface Active extends Slices {
  parity: 0 | 1;
  /** The slices of resource reads and prompt gets (issue #10); `shared`/`agents` are tool calls'. */
  access: Slices;
  set: BuiltPolicySet;
  time: LocalTime;
  loadedAt: number;
  /** Decisions of this policy set by exact request (see decide); a reload starts a new one. */
  answers: Map<string, CedarAnswer>;
}

type CedarAnswer = ReturnType<typeof statefulIsAuthorized>;

/** Distinct requests remembered per policy set (each ≈ 1 KB). */
const ANSWER_CACHE = 4_096;

const silent: PolicyLogger = { info() {}, warn() {}, error() {} };
const WATCH_DEBOUNCE_MS = 150;
let instances = 0;

/** How a file path appears in messages: relative to the working directory when inside it. */
function shownPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}

function unavailable(detail: string, cause?: unknown): WardenError {
  return new WardenError('POLICY_UNAVAILABLE', 'Authorization is unavailable; the call was not run', {
    rule: 'policy.fail-closed',
    detail,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Decides tool calls, resource reads and prompt gets with Cedar. Build one with {@link PolicyEngine.create}. */
export class PolicyEngine {
  private active: Active | null = null;
  private policy: PolicyConfig;
  private readonly instance: number;
  private readonly activity = new SessionActivity();
  private readonly logger: PolicyLogger;
  private readonly clock: Clock;
  private chain: Promise<unknown> = Promise.resolve();
  private watchers: FSWatcher[] = [];
  private watchTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly recipients: RecipientMatcher;

  private constructor(private readonly opts: PolicyEngineOptions) {
    this.instance = ++instances;
    this.recipients = new RecipientMatcher(opts.taint?.trustedRecipients ?? []);
    this.policy = opts.policy;
    this.logger = opts.logger ?? silent;
    this.clock = opts.clock ?? systemClock;
  }

  /** Build, prove and load the policy set; throws CONFIG_INVALID naming every problem when it is invalid. */
  static async create(opts: PolicyEngineOptions): Promise<PolicyEngine> {
    const engine = new PolicyEngine(opts);
    const r = await engine.load('start', opts.policy);
    if (!r.ok) {
      throw new WardenError('CONFIG_INVALID', `invalid policy:\n${r.errors.join('\n')}`, {
        data: { errors: r.errors },
      });
    }
    if (opts.policy.watch) engine.startWatching();
    return engine;
  }

  /**
   * An engine over the agents' allow and deny lists alone (no rules, no files),
   * built synchronously: what a pipeline without a configured engine uses.
   */
  static basic(tools: Readonly<Record<string, ToolConfig>> = {}): PolicyEngine {
    const policy: PolicyConfig = { files: [], rules: [], arguments: {}, timezone: 'UTC', watch: false };
    const engine = new PolicyEngine({ policy, tools });
    const built = assemblePolicySet({ policy, tools }, []);
    if (!built.ok) throw new WardenError('INTERNAL', `built-in policies invalid: ${built.errors.join('; ')}`);
    engine.activate(built.set, policy);
    return engine;
  }

  /** The set in force: its digest, size and load time. */
  get current(): { digest: string; policyCount: number; loadedAt: number } {
    const a = this.active;
    return a
      ? { digest: a.set.digest, policyCount: Object.keys(a.set.policies).length, loadedAt: a.loadedAt }
      : { digest: '', policyCount: 0, loadedAt: 0 };
  }

  /** Decide one call. Throws POLICY_UNAVAILABLE when the engine cannot decide (fail closed). */
  authorize(input: AuthzInput): AuthzDecision {
    const a = this.active;
    if (!a || this.closed) throw unavailable('no policy set is loaded');
    // Own keys only: a tool named "constructor" must not find Object.prototype's.
    const cfg = Object.hasOwn(this.opts.tools, input.tool.name)
      ? this.opts.tools[input.tool.name]
      : undefined;
    const facts: ToolFacts = {
      risk: cfg?.risk ?? 'low',
      tags: cfg?.tags ?? [],
      capabilities: cfg?.capabilities ?? [],
    };
    // Only when some policy reads them: parsing addresses is not free.
    if (cfg?.recipients && (a.set.reads.wholeContext || a.set.reads.names.has('recipients'))) {
      const r = recipientFacts(cfg.recipients, input.arguments, this.recipients);
      if (r) facts.recipients = r;
    }
    let request: Omit<StatefulAuthorizationCall, 'preparsedPolicySetId'>;
    try {
      const used = this.activity.toolsUsed(input.session.id);
      request = buildRequest(input, facts, a.set.argumentTypes, a.time, used, a.set.reads);
    } catch (e) {
      // INVALID_ARGUMENTS (a declared argument of the wrong type) is a decision, not an outage.
      if (e instanceof WardenError) throw e;
      throw unavailable(`Cedar request failed: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    return evaluate(a, a, input.agent.id, request);
  }

  /**
   * Decide one MCP resource read or prompt get (issue #10), as {@link authorize}
   * decides a call: default deny, a forbid wins, a forbid that errors applies,
   * obligations from the allowing permits' annotations. Only policies that can
   * apply to `read_resource` / `get_prompt` are evaluated. Throws POLICY_UNAVAILABLE
   * when the engine cannot decide (fail closed).
   */
  authorizeAccess(input: AccessInput): AuthzDecision {
    const a = this.active;
    if (!a || this.closed) throw unavailable('no policy set is loaded');
    let request: Omit<StatefulAuthorizationCall, 'preparsedPolicySetId'>;
    try {
      const used = this.activity.toolsUsed(input.session.id);
      request = buildAccessRequest(input, a.time, used, a.set.reads);
    } catch (e) {
      throw unavailable(`Cedar request failed: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    return evaluate(a, a.access, input.agent.id, request);
  }

  /** Record that `sessionId` was authorized to call `tool` (feeds `context.session.toolsUsed`). */
  noteUse(sessionId: string, tool: string): void {
    this.activity.note(sessionId, tool);
  }

  /** Re-read the policy sources and swap them in when valid; otherwise keep the current set. Never throws. */
  reload(trigger: Exclude<ReloadTrigger, 'start'> = 'api'): Promise<ReloadResult> {
    const next = this.chain.then(async () => {
      let policy: PolicyConfig;
      try {
        policy = this.opts.reloadPolicy ? await this.opts.reloadPolicy() : this.policy;
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        return this.report(trigger, { ok: false, errors: message.split('\n'), warnings: [] });
      }
      return this.load(trigger, policy);
    });
    this.chain = next.catch(() => {});
    return next;
  }

  /** Stop watching and release the preparsed sets; later decisions fail closed. */
  close(): void {
    this.closed = true;
    this.stopWatching();
    if (this.watchTimer) clearTimeout(this.watchTimer);
    if (this.active) release(this.active);
    this.active = null;
  }

  private async load(trigger: ReloadTrigger, policy: PolicyConfig): Promise<ReloadResult> {
    const built = await buildPolicySet({
      policy,
      tools: this.opts.tools,
      ...(this.opts.taint ? { taint: this.opts.taint } : {}),
      ...(this.opts.inspectArguments ? { inspectArguments: this.opts.inspectArguments } : {}),
      ...(this.opts.knownTools ? { knownTools: this.opts.knownTools() } : {}),
      show: shownPath,
    });
    if (!built.ok) return this.report(trigger, { ok: false, errors: built.errors, warnings: built.warnings });
    if (this.closed)
      return this.report(trigger, { ok: false, errors: ['the engine is closed'], warnings: [] });
    const watchChanged =
      policy.watch !== this.policy.watch || policy.files.join('\n') !== this.policy.files.join('\n');
    const errors = this.activate(built.set, policy);
    if (errors.length > 0) return this.report(trigger, { ok: false, errors, warnings: built.set.warnings });
    if (trigger !== 'start' && watchChanged) {
      this.stopWatching();
      if (policy.watch) this.startWatching();
    }
    return this.report(trigger, { ok: true, errors: [], warnings: built.set.warnings });
  }

  /** Preparse `set` under fresh cache ids and switch to it; returns Cedar's errors when it cannot. */
  private activate(set: BuiltPolicySet, policy: PolicyConfig): string[] {
    // Two generations of cache ids, alternating: the running set's ids are never touched, and
    // the wasm cache (which cannot delete) holds at most two sets' worth of names.
    const parity = this.active?.parity === 0 ? 1 : 0;
    const prefix = `warden-${this.instance}-${parity}`;
    const made: Slice[] = [];
    const prepare = (slot: string, ids: readonly string[]): string[] => {
      // One text per slice: Cedar parses a whole text several times faster than a map of texts.
      // A plain loop, not ids.map(…): Node 20's V8 crashed ("unreachable code" in the deoptimizer)
      // deoptimizing this function inside an inlined Array.prototype.map over 10,000 slices.
      const texts: string[] = [];
      for (const id of ids) texts.push(set.policies[id] ?? '');
      const parsed = preparsePolicySet(slot, { staticPolicies: texts.join('\n') });
      if (parsed.type === 'failure') return parsed.errors.map(describeCedarError);
      made.push({ slot, ids });
      return [];
    };
    const problems: string[] = [];
    const cut = (tag: string, shared: readonly string[], byAgent: ReadonlyMap<string, readonly string[]>) => {
      problems.push(...prepare(`${prefix}-${tag}shared`, shared));
      const sharedSlice = made.at(-1);
      const agents = new Map<string, Slice>();
      let k = 0;
      for (const [agent, ids] of byAgent) {
        if (problems.length > 0) break;
        problems.push(...prepare(`${prefix}-${tag}a${k++}`, ids));
        const slice = made.at(-1);
        if (slice && problems.length === 0) agents.set(agent, slice);
      }
      return { shared: sharedSlice!, agents };
    };
    const calls = cut('', set.shared, set.byAgent);
    const access = problems.length === 0 ? cut('r', set.access.shared, set.access.byAgent) : calls;
    if (problems.length > 0) {
      for (const m of made) free(m.slot);
      return problems;
    }
    const previous = this.active;
    // The switch: synchronous, so no decision sees half of one set and half of the other.
    this.active = {
      parity,
      shared: calls.shared,
      agents: calls.agents,
      access,
      set,
      time: new LocalTime(policy.timezone),
      loadedAt: this.clock.now(),
      answers: new Map(),
    };
    this.policy = policy;
    if (previous) release(previous);
    return [];
  }

  private async report(
    trigger: ReloadTrigger,
    r: { ok: boolean; errors: string[]; warnings: string[] },
  ): Promise<ReloadResult> {
    const { digest, policyCount } = this.current;
    const result: ReloadResult = { ...r, trigger, digest, policyCount };
    for (const w of r.warnings) this.logger.warn({ trigger }, `policy: ${w}`);
    if (r.ok) this.logger.info({ trigger, digest, policyCount }, 'policy set loaded');
    else if (trigger === 'start') this.logger.error({ trigger, errors: r.errors }, 'policy set invalid');
    else
      this.logger.error(
        { trigger, errors: r.errors, digest },
        'policy reload failed; the previous set stays in force',
      );
    if (this.opts.audit && (r.ok || trigger !== 'start')) {
      await this.opts
        .audit({
          traceId: `policy-${trigger}-${this.clock.now()}`,
          event: 'POLICY_RELOADED',
          actorType: 'SYSTEM',
          actorId: `policy:${trigger}`,
          result: r.ok ? 'success' : 'failure',
          data: {
            ok: r.ok,
            trigger,
            digest,
            policyCount,
            ...(r.ok ? {} : { errors: r.errors.slice(0, 50) }),
            ...(r.warnings.length > 0 ? { warnings: r.warnings.slice(0, 50) } : {}),
          },
        })
        .catch((e: unknown) => this.logger.error({ err: e }, 'could not audit the policy load'));
    }
    return result;
  }

  private startWatching(): void {
    const files = [...this.policy.files, ...(this.opts.watchFiles ?? [])];
    const byDir = new Map<string, Set<string>>();
    for (const f of files) {
      const names = byDir.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      byDir.set(dirname(f), names);
    }
    // Watch directories, not files: editors save by renaming a new file over the old one.
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || names.has(name.toString())) this.scheduleReload();
        });
        w.on('error', (e) => this.logger.warn({ err: e, dir }, 'policy: file watch failed'));
        this.watchers.push(w);
      } catch (e) {
        this.logger.warn({ err: e, dir }, 'policy: cannot watch directory');
      }
    }
  }

  private stopWatching(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  private scheduleReload(): void {
    if (this.watchTimer) clearTimeout(this.watchTimer);
    // One reload per burst of writes (an editor's save is several events).
    this.watchTimer = setTimeout(() => {
      this.watchTimer = undefined;
      if (!this.closed) void this.reload('watch');
    }, WATCH_DEBOUNCE_MS);
    this.watchTimer.unref?.();
  }
}

/** The policy id Cedar reported (`policy<N>` within a slice preparsed from one text) as ours. */
function idOf(slice: Slice, cedarId: string): string {
  const m = /^policy(\d+)$/.exec(cedarId);
  return (m ? slice.ids[Number(m[1])] : undefined) ?? cedarId;
}

/** The wasm cache has no delete: overwriting a set with an empty one frees it. */
function free(slot: string): void {
  preparsePolicySet(slot, { staticPolicies: {} });
}

/**
 * Cedar's answer for `request` against the preparsed set in `slot`. Evaluation
 * is a pure function of the policy set and the request (entities and context,
 * which carry everything a policy may read: time to the minute, arguments,
 * session counters), so an identical request gets the remembered answer instead
 * of another trip through wasm. The cache lives and dies with its policy set.
 */
function decide(a: Active, slot: string, request: Omit<StatefulAuthorizationCall, 'preparsedPolicySetId'>) {
  const key = `${slot}\n${JSON.stringify(request)}`;
  const hit = a.answers.get(key);
  if (hit !== undefined) return hit;
  const answer = statefulIsAuthorized({ ...request, preparsedPolicySetId: slot });
  if (answer.type === 'success') {
    if (a.answers.size >= ANSWER_CACHE) a.answers.delete(a.answers.keys().next().value as string);
    a.answers.set(key, answer);
  }
  return answer;
}

function release(a: Active): void {
  for (const slices of [a, a.access]) {
    free(slices.shared.slot);
    for (const s of slices.agents.values()) free(s.slot);
  }
}

/**
 * Decide `request` over the shared slice of `slices` and the agent's own, merged
 * exactly as Cedar would have decided over their union.
 */
function evaluate(
  a: Active,
  slices: Slices,
  agent: string,
  request: Omit<StatefulAuthorizationCall, 'preparsedPolicySetId'>,
): AuthzDecision {
  const forbids: string[] = [];
  const permits: string[] = [];
  const errored: Array<{ id: string; message: string }> = [];
  try {
    const own = slices.agents.get(agent);
    for (const slice of own ? [slices.shared, own] : [slices.shared]) {
      const answer = decide(a, slice.slot, request);
      if (answer.type === 'failure') throw unavailable(answer.errors.map(describeCedarError).join('; '));
      const { decision, diagnostics } = answer.response;
      // In a denying slice the reasons are its satisfied forbids; in an allowing one, its permits.
      (decision === 'deny' ? forbids : permits).push(...diagnostics.reason.map((r) => idOf(slice, r)));
      for (const e of diagnostics.errors)
        errored.push({ id: idOf(slice, e.policyId), message: e.error.message });
    }
  } catch (e) {
    if (e instanceof WardenError) throw e;
    throw unavailable(`Cedar request failed: ${e instanceof Error ? e.message : String(e)}`, e);
  }

  const errors = errored.map((e) => `${e.id}: ${e.message}`);
  if (forbids.length > 0) return { allowed: false, reason: 'forbid', policyIds: forbids.sort(), errors };
  // Cedar skips a policy that errors; for a forbid that would be failing open.
  const erroredForbids = errored.map((e) => e.id).filter((id) => a.set.meta.get(id)?.effect === 'forbid');
  if (erroredForbids.length > 0) {
    return { allowed: false, reason: 'forbid-error', policyIds: erroredForbids.sort(), errors };
  }
  const reasons = permits.sort();
  const granting = reasons.filter((id) => !a.set.meta.get(id)?.obligationOnly);
  if (granting.length === 0) return { allowed: false, reason: 'not-permitted', policyIds: [], errors };
  const obligations = mergeObligations(reasons.map((id) => a.set.meta.get(id)?.annotations ?? {}));
  return { allowed: true, policyIds: reasons, obligations, errors };
}

/** Build a policy engine from config (see {@link PolicyEngine.create}). */
export function createPolicyEngine(opts: PolicyEngineOptions): Promise<PolicyEngine> {
  return PolicyEngine.create(opts);
}
