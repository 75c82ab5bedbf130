/**
 * Circuit breakers per session and per agent (issue #8). A breaker opens on
 * consecutive failed calls, on cost, or (sessions) on wall time; while it is
 * open every call of that session or agent is refused with CIRCUIT_OPEN, until
 * an operator resets it or, for failures, its cool-down passes.
 *
 * The open state is two columns on the session and agent rows, which every
 * call reads anyway (token verification): every replica sees an open breaker on
 * its next call at no extra query. Each transition is one conditional UPDATE,
 * so however many replicas race, it is applied — and audited — once.
 *
 * Consecutive failures are counted in memory, per replica: a success seen by
 * one replica does not reset another's count (see docs/monitoring.md). Cost is
 * counted in the store (only for tools with a cost, only when a limit is set).
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AuditEntry, AuditInput } from '../audit/index.js';
import type { AgentBreakerLimits, BreakersConfig, SessionBreakerLimits } from '../config/schema-breakers.js';
import type { WardenConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { Agent, Session } from '../identity/index.js';
import { COST_UNITS_PER_COST, toCostUnits } from '../limits/index.js';
import type { MonitorMetrics } from '../metrics/index.js';
import type { SecurityAlert } from '../notify/index.js';
import type { Store } from '../store/index.js';
import { type Clock, type IdGenerator, randomId, systemClock } from '../util/clock.js';
import { BreakerRows, type BreakerScope, type OpenBreaker, shown, UNTIL_RESET } from './breaker-rows.js';

export { type BreakerScope, type OpenBreaker, UNTIL_RESET } from './breaker-rows.js';

/** Why a breaker opened; a row may carry another string written by a later version. */
export type BreakerReason = 'failures' | 'cost' | 'wall-time';
/** Which breaker an operator means. */
export type BreakerTarget = { sessionId: string } | { agentId: string };

/** What check and record read from a call: the pipeline's CallState fits it. */
export interface BreakerCall {
  readonly request: { readonly traceId: string; readonly signal?: AbortSignal | undefined };
  agent?: Agent;
  session?: Session;
  tool?: { name: string };
  toolName?: string;
  /** The call's own signal (kill switch, client gone): an aborted call is no verdict on the upstream. */
  signal?: AbortSignal;
  /** Set once the attempt entry is written: the call ran (or was started). */
  attempt?: unknown;
  result?: CallToolResult;
}

/** How a call that ran counts: `neutral` neither trips nor resets the failure count. */
export type BreakerOutcome = 'success' | 'failure' | 'neutral';

/** What an operator's reset did. */
export interface BreakerResetResult {
  scope: BreakerScope;
  id: string;
  agentId: string;
  /** True when the breaker was open and this reset closed it; false when it was closed already. */
  closed: boolean;
  /** Why it had opened (when `closed`). */
  reason: string | null;
}

export interface BreakersOptions {
  store: Store;
  audit: { append(input: AuditInput): Promise<AuditEntry> };
  config: BreakersConfig;
  /** A tool's cost per call (config `tools.<name>.cost`); 0 = not counted. */
  costOf(tool: string): number;
  clock?: Clock;
  /** Raises CIRCUIT_OPENED to the operators (notifiers); never throws. */
  alert?(alert: SecurityAlert): void;
  /** Counts trips (`warden_circuit_breaker_trips_total`), on the replica that opened the breaker. */
  metrics?: Pick<MonitorMetrics, 'breakerOpened'>;
  /** Where a breaker write or audit entry that failed is reported (never silent, never thrown at a caller). */
  log?: { error(fields: Record<string, unknown>, message: string): void };
  /** Trace ids for operator resets that bring none. */
  newId?: IdGenerator;
  /** Sessions (and agents) whose failure streak is remembered at once; the oldest is forgotten first. */
  maxTracked?: number;
}

/**
 * The codes of a call that ran and failed upstream: the tool errored, timed out,
 * was unreachable, or answered with something inspection would not pass on.
 */
const FAILURE_CODES: ReadonlySet<string> = new Set([
  'UPSTREAM_ERROR',
  'UPSTREAM_TIMEOUT',
  'UPSTREAM_UNAVAILABLE',
  'RESULT_WITHHELD',
]);

/**
 * How a call counts for the failure breakers. Only calls that ran are judged:
 * a failure is one of FAILURE_CODES, or (with `countToolErrors`) a tool result with `isError`,
 * which is otherwise neutral; any other
 * error after the attempt (the client went away, the kill switch, an internal
 * fault) is neutral. A result that came back clean is a success.
 */
export function breakerOutcome(
  call: BreakerCall,
  error: { code: string } | null,
  countToolErrors = true,
): BreakerOutcome {
  if (call.attempt === undefined) return 'neutral';
  if (call.signal?.aborted || call.request.signal?.aborted) return 'neutral';
  if (error) return FAILURE_CODES.has(error.code) ? 'failure' : 'neutral';
  if (call.result?.isError === true) return countToolErrors ? 'failure' : 'neutral';
  return 'success';
}

/** A failure streak per key, bounded: Map order is recency, so the stalest streak goes first. */
class Streaks {
  private readonly counts = new Map<string, number>();
  constructor(private readonly max: number) {}

  bump(key: string): number {
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.delete(key);
    this.counts.set(key, n);
    if (this.counts.size > this.max) {
      const oldest = this.counts.keys().next();
      if (!oldest.done) this.counts.delete(oldest.value);
    }
    return n;
  }

  clear(key: string): void {
    this.counts.delete(key);
  }
}

interface Limits {
  session: SessionBreakerLimits;
  agent: AgentBreakerLimits;
}

interface Transition {
  scope: BreakerScope;
  id: string;
  agentId: string;
  agentType: string | null;
  sessionId: string | null;
  traceId: string;
  tool: string | null;
}

/** The refusal of a call while a breaker is open. */
function refusal(scope: BreakerScope, id: string, reason: string, until: number, now: number): WardenError {
  const retry = until === UNTIL_RESET ? undefined : Math.max(1, Math.ceil((until - now) / 1000));
  return new WardenError(
    'CIRCUIT_OPEN',
    scope === 'session' ? "The session's circuit breaker is open" : "The agent's circuit breaker is open",
    {
      rule: `breaker.${scope}.${reason}`,
      detail: `${scope} ${id}: breaker open (${reason}) ${
        retry === undefined ? 'until an operator resets it' : `until ${new Date(until).toISOString()}`
      }`,
      data: { scope, reason, ...(retry === undefined ? {} : { retryAfterSeconds: retry }) },
    },
  );
}

/** Circuit breakers over the store: `check` before a call, `record` after it, `reset` and `status` for operators. */
export class Breakers {
  private readonly clock: Clock;
  private readonly newId: IdGenerator;
  private readonly streaks: Record<BreakerScope, Streaks>;
  private readonly limits = new Map<string, Limits>();
  private readonly rows: BreakerRows;

  constructor(private readonly opts: BreakersOptions) {
    this.clock = opts.clock ?? systemClock;
    this.newId = opts.newId ?? randomId;
    this.rows = new BreakerRows(opts.store);
    const max = opts.maxTracked ?? 100_000;
    this.streaks = { session: new Streaks(max), agent: new Streaks(max) };
  }

  /** The limits that apply to agents of `type` (the defaults with that type's overrides). */
  limitsFor(type: string): Limits {
    let l = this.limits.get(type);
    if (!l) {
      const c = this.opts.config;
      const o = Object.hasOwn(c.agentTypes, type) ? c.agentTypes[type] : undefined;
      l = { session: { ...c.session, ...o?.session }, agent: { ...c.agent, ...o?.agent } };
      this.limits.set(type, l);
    }
    return l;
  }

  /**
   * Refuses the call (CIRCUIT_OPEN) while the agent's or the session's breaker is
   * open, as the rows read with the token show it; closes a breaker whose cool-down
   * has passed (once, whichever replica sees it first); opens the session's on wall time.
   */
  async check(call: BreakerCall): Promise<void> {
    const { agent, session } = call;
    if (!agent || !session) throw new WardenError('INTERNAL', 'Breaker check ran out of order');
    const now = this.clock.now();
    await this.gate(this.transition('agent', call), agent, now);
    await this.gate(this.transition('session', call), session, now);
    const limit = this.limitsFor(agent.type).session.maxWallTimeMs;
    if (limit !== null && now - session.createdAt >= limit) {
      await this.open(this.transition('session', call), 'wall-time', UNTIL_RESET, {
        ageMs: now - session.createdAt,
        maxWallTimeMs: limit,
      });
      throw refusal('session', session.id, 'wall-time', UNTIL_RESET, now);
    }
  }

  /**
   * Tells the breakers how a call ended (`error` null = it returned a result).
   * Counts failure streaks and cost, and opens a breaker that reached its limit
   * before resolving, so the caller's next call is refused. Never throws.
   */
  async record(call: BreakerCall, error: { code: string } | null): Promise<void> {
    const { agent, session } = call;
    if (!agent || !session || call.attempt === undefined) return;
    try {
      const limits = this.limitsFor(agent.type);
      const outcome = breakerOutcome(call, error, this.opts.config.countToolErrors);
      const work: Promise<void>[] = [];
      if (outcome === 'success') {
        this.streaks.session.clear(session.id);
        this.streaks.agent.clear(agent.id);
      } else if (outcome === 'failure') {
        work.push(this.countFailure(this.transition('session', call), session, limits.session));
        work.push(this.countFailure(this.transition('agent', call), agent, limits.agent));
      }
      const tool = call.tool?.name ?? call.toolName;
      const units = tool === undefined ? 0 : toCostUnits(this.opts.costOf(tool));
      if (units > 0 && limits.session.maxCost !== null) {
        work.push(this.chargeSession(this.transition('session', call), units, limits.session.maxCost));
      }
      if (units > 0 && limits.agent.maxCost !== null) {
        work.push(this.chargeAgent(this.transition('agent', call), units, limits.agent));
      }
      const failed = (await Promise.allSettled(work)).filter((r) => r.status === 'rejected');
      for (const r of failed) this.failed('record', call.request.traceId, r.reason);
    } catch (e) {
      this.failed('record', call.request.traceId, e);
    }
  }

  /**
   * An operator closes a breaker (`POST /admin/v1/{agents|sessions}/:id/breaker/reset`,
   * the CLI): audited as CIRCUIT_CLOSED by that human; the accumulated cost starts again
   * from zero. NOT_FOUND when there is no such agent or session.
   */
  async reset(
    target: BreakerTarget,
    operatorId: string,
    opts: { traceId?: string } = {},
  ): Promise<BreakerResetResult> {
    const scope: BreakerScope = 'sessionId' in target ? 'session' : 'agent';
    const id = 'sessionId' in target ? target.sessionId : target.agentId;
    const traceId = opts.traceId ?? this.newId();
    // A breaker that opens again between the read and the write is read again: the reset is never lost.
    for (let tries = 0; tries < 5; tries++) {
      const row = await this.rows.read(scope, id);
      if (!row)
        throw new WardenError('NOT_FOUND', `${scope === 'session' ? 'Session' : 'Agent'} ${id} not found`);
      const base = { scope, id, agentId: row.agentId };
      if (row.openUntil === null) return { ...base, closed: false, reason: null };
      if (!(await this.rows.close(scope, id, row.openUntil))) continue;
      this.streaks[scope].clear(id);
      await this.audit({
        traceId,
        event: 'CIRCUIT_CLOSED',
        actorType: 'HUMAN',
        actorId: operatorId,
        agentId: row.agentId,
        agentType: row.agentType,
        sessionId: scope === 'session' ? id : null,
        data: { scope, reason: 'operator', openReason: row.reason, openUntil: shown(row.openUntil) },
      });
      return { ...base, closed: true, reason: row.reason };
    }
    throw new WardenError('CONFLICT', 'The breaker kept changing; try again', {
      detail: `${scope} ${id}: reset lost five races`,
    });
  }

  /** Every breaker open now, agents first (for the admin API and metrics). */
  async status(): Promise<OpenBreaker[]> {
    return this.rows.listOpen(this.clock.now());
  }

  /** How many breakers are open now, by scope (`warden_circuit_breakers_open`). */
  async openCounts(): Promise<Record<BreakerScope, number>> {
    return this.rows.countOpen(this.clock.now());
  }

  private transition(scope: BreakerScope, call: BreakerCall): Transition {
    const agent = call.agent!;
    const session = call.session!;
    return {
      scope,
      id: scope === 'session' ? session.id : agent.id,
      agentId: agent.id,
      agentType: agent.type,
      sessionId: session.id,
      traceId: call.request.traceId,
      tool: call.tool?.name ?? call.toolName ?? null,
    };
  }

  /** Refuses while `row`'s breaker is open; closes it once its cool-down has passed. */
  private async gate(t: Transition, row: BreakerRow, now: number): Promise<void> {
    const until = row.breakerOpenUntil ?? null;
    if (until === null) return;
    if (until > now) throw refusal(t.scope, t.id, row.breakerReason ?? 'open', until, now);
    await this.coolDownPassed(t, until, row.breakerReason ?? null);
  }

  /** Closes a breaker whose cool-down passed; the replica whose UPDATE matches audits it. */
  private async coolDownPassed(t: Transition, until: number, reason: string | null): Promise<void> {
    if (!(await this.rows.close(t.scope, t.id, until))) return;
    this.streaks[t.scope].clear(t.id);
    await this.audit({
      ...this.entry(t),
      event: 'CIRCUIT_CLOSED',
      data: { scope: t.scope, reason: 'cool-down', openReason: reason, openUntil: until },
    });
  }

  private async countFailure(
    t: Transition,
    row: BreakerRow,
    limits: SessionBreakerLimits | AgentBreakerLimits,
  ): Promise<void> {
    const threshold = limits.maxConsecutiveFailures;
    if (threshold === null) return;
    const count = this.streaks[t.scope].bump(t.id);
    if (count < threshold) return;
    this.streaks[t.scope].clear(t.id);
    await this.closeIfStale(t, row);
    const until = limits.coolDownMs === null ? UNTIL_RESET : this.clock.now() + limits.coolDownMs;
    await this.open(t, 'failures', until, { count, threshold });
  }

  /** Adds the call's cost to the session's total (one atomic UPDATE); at maxCost, opens until reset. */
  private async chargeSession(t: Transition, units: number, maxCost: number): Promise<void> {
    const total = await this.rows.addSessionCost(t.id, units);
    if (total < toCostUnits(maxCost)) return;
    // Spending is not undone by waiting: a cost breaker stays open until an operator resets it.
    await this.open(t, 'cost', UNTIL_RESET, { cost: total / COST_UNITS_PER_COST, maxCost });
  }

  /** Adds the call's cost to the agent's current window (a new window starts when it ran out). */
  private async chargeAgent(t: Transition, units: number, limits: AgentBreakerLimits): Promise<void> {
    const total = await this.rows.addAgentCost(t.id, units, this.clock.now(), limits.costWindowMs);
    if (limits.maxCost === null || total < toCostUnits(limits.maxCost)) return;
    await this.open(t, 'cost', UNTIL_RESET, {
      cost: total / COST_UNITS_PER_COST,
      maxCost: limits.maxCost,
      costWindowMs: limits.costWindowMs,
    });
  }

  /**
   * A breaker the call's own read showed open with its cool-down passed, not yet
   * closed by anyone (a long call that outlived it): closed first, so the log reads
   * OPENED, CLOSED, OPENED and the open below can match `breaker_open_until IS NULL`.
   */
  private async closeIfStale(t: Transition, row: BreakerRow): Promise<void> {
    const until = row.breakerOpenUntil ?? null;
    if (until !== null && until <= this.clock.now())
      await this.coolDownPassed(t, until, row.breakerReason ?? null);
  }

  /** Opens a closed breaker (conditional UPDATE): the one replica that opens it audits and alerts. */
  private async open(
    t: Transition,
    reason: BreakerReason,
    until: number,
    numbers: Record<string, unknown>,
  ): Promise<boolean> {
    if (!(await this.rows.open(t.scope, t.id, until, reason))) return false;
    this.streaks[t.scope].clear(t.id);
    this.opts.metrics?.breakerOpened(t.scope, reason);
    const data = { scope: t.scope, reason, ...numbers, openUntil: shown(until) };
    await this.audit({ ...this.entry(t), event: 'CIRCUIT_OPENED', data });
    this.opts.alert?.({
      kind: 'circuit.opened',
      severity: t.scope === 'agent' ? 'high' : 'medium',
      traceId: t.traceId,
      agentId: t.agentId,
      sessionId: t.sessionId,
      tool: t.tool,
      summary: `${t.scope === 'agent' ? 'Agent' : 'Session'} ${t.id}: circuit breaker opened (${reason}); calls are refused ${
        until === UNTIL_RESET ? 'until an operator resets it' : `until ${new Date(until).toISOString()}`
      }`,
      data,
    });
    return true;
  }

  private entry(t: Transition): Omit<AuditInput, 'event'> {
    return {
      traceId: t.traceId,
      actorType: 'SYSTEM',
      actorId: null,
      agentId: t.agentId,
      agentType: t.agentType,
      sessionId: t.scope === 'session' ? t.sessionId : null,
      toolName: t.tool,
    };
  }

  /** The transition is committed already: an entry that cannot be written is logged, not thrown. */
  private async audit(input: AuditInput): Promise<void> {
    await this.opts.audit.append(input).then(
      () => {},
      (e: unknown) => this.failed(`audit ${input.event}`, input.traceId, e),
    );
  }

  private failed(what: string, traceId: string, e: unknown): void {
    this.opts.log?.error(
      { traceId, err: e instanceof Error ? e.message : String(e) },
      `circuit breaker: ${what} failed`,
    );
  }
}

type BreakerRow = Pick<Session | Agent, 'breakerOpenUntil' | 'breakerReason'>;

/** The breakers a gateway runs, from its configuration (tool costs from `tools.<name>.cost`). */
export function breakersFor(
  config: Pick<WardenConfig, 'breakers' | 'tools'>,
  deps: Omit<BreakersOptions, 'config' | 'costOf'>,
): Breakers {
  return new Breakers({
    ...deps,
    config: config.breakers,
    costOf: (tool) => (Object.hasOwn(config.tools, tool) ? (config.tools[tool]?.cost ?? 0) : 0),
  });
}
