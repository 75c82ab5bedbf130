/**
 * The human in the loop: approval requests for high-risk calls, review flags
 * for medium ones, and the decisions humans take on them. The store is the
 * source of truth (a restart loses nothing; several gateways share it); this
 * process only keeps the list of callers waiting here, woken at once by a
 * decision taken here and within a poll interval by one taken elsewhere.
 *
 * Fail closed throughout: a request that cannot be recorded and audited does
 * not exist (the call is refused), a decision that cannot be audited is undone,
 * a request nobody decides in time is denied, and a notifier never decides.
 */
import { type AuditEntry, type AuditInput, redactParameters } from '../audit/index.js';
import type { ApprovalsConfig, OperatorConfig, ToolConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { ChatDecide, Notifier } from '../notify/index.js';
import type { Store } from '../store/index.js';
import { type Clock, randomId, systemClock } from '../util/clock.js';
import {
  type DecisionContext,
  type DecisionInput,
  decide,
  guard,
  type ReviewInput,
  review,
} from './decisions.js';
import { ApprovalRecords, argumentsHash, type ListOptions } from './records.js';
import type { Approval } from './types.js';

export type { DecisionInput, ReviewInput } from './decisions.js';

export interface ApprovalServiceDeps {
  store: Store;
  audit: { append(input: AuditInput, opts?: { durable?: boolean }): Promise<AuditEntry> };
  config: ApprovalsConfig;
  operators: readonly OperatorConfig[];
  toolConfig(tool: string): ToolConfig | undefined;
  /** Checks an approver's edited arguments against the tool (schema, rules); throws APPROVAL_ARGUMENTS_INVALID. */
  checkPatch?(tool: string, patch: Record<string, unknown>): void;
  notifier?: Notifier;
  clock?: Clock;
  log?: {
    warn(fields: Record<string, unknown>, msg: string): void;
    error(fields: Record<string, unknown>, msg: string): void;
  };
  /** How often a waiting caller re-reads its request (decisions taken by another process). Default 1 s. */
  pollIntervalMs?: number;
  /** How often expired requests nobody waits for are denied. Default 5 s. */
  sweepIntervalMs?: number;
}

/** What the pipeline knows about a call that needs a human. */
export type ApprovalAsk = Pick<
  Approval,
  | 'traceId'
  | 'agentId'
  | 'agentType'
  | 'sessionId'
  | 'userId'
  | 'toolName'
  | 'risk'
  | 'configuredRisk'
  | 'reasoning'
  | 'rule'
  | 'policyIds'
> & {
  /** As sent (hashed for matching; redacted before it is stored). */
  arguments: Record<string, unknown>;
  /**
   * The arguments as approvers and the audit log may see them: secrets the detectors found in
   * values already replaced (inspect-input). Absent = `arguments` (key-name redaction still applies).
   */
  shownArguments?: unknown;
  /** The audit log's copy: as `shownArguments`, each marker with its HMAC (issue #9). Absent = that. */
  auditArguments?: unknown;
};

/** The approval queue. */
export class ApprovalService {
  readonly records: ApprovalRecords;
  private readonly clock: Clock;
  private readonly waiters = new Map<string, Set<() => void>>();
  private sweeper: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly deps: ApprovalServiceDeps) {
    this.records = new ApprovalRecords(deps.store);
    this.clock = deps.clock ?? systemClock;
  }

  /** Start the sweeper that denies requests nobody decided in time. */
  start(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      void this.expireDue().catch((e: unknown) =>
        this.deps.log?.warn({ err: String(e) }, 'approval sweeper could not read the store'),
      );
    }, this.deps.sweepIntervalMs ?? 5_000);
    this.sweeper.unref();
  }

  /** Stop: callers still waiting here are told their request is still pending (it survives in the store). */
  close(): void {
    this.closing = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const set of this.waiters.values()) for (const wake of set) wake();
  }

  /** Timeout for `tool`: its own, or the section's. */
  timeoutFor(tool: string): number {
    return this.deps.toolConfig(tool)?.approval?.timeoutMs ?? this.deps.config.timeoutMs;
  }

  /** One request, as it stands now: a pending request whose time is up is denied first (not left for the sweeper). */
  async get(id: string): Promise<Approval | undefined> {
    const a = await guard(() => this.records.get(id));
    if (a?.status === 'pending' && a.expiresAt <= this.clock.now()) return this.expire(id);
    return a;
  }

  /** Requests, newest first; pending ones whose time is up are denied first. */
  async list(opts: ListOptions = {}): Promise<Approval[]> {
    const now = this.clock.now();
    const rows = await guard(() => this.records.list(opts));
    const out: Approval[] = [];
    for (const a of rows) {
      const current = a.status === 'pending' && a.expiresAt <= now ? await this.expire(a.id) : a;
      if (current && (opts.status === undefined || current.status === opts.status)) out.push(current);
    }
    return out;
  }

  /**
   * An approved request must be used within the tool's approval timeout of its decision: a yes
   * given for a call is not a standing permission.
   */
  usableUntil(a: Approval): number {
    return (a.decidedAt ?? a.createdAt) + this.timeoutFor(a.toolName);
  }

  /**
   * The open request for this exact call, or a new one (recorded, audited as
   * APPROVAL_REQUESTED, announced). Fails closed: if it cannot be recorded and
   * audited, it does not exist and this throws.
   */
  async requestFor(ask: ApprovalAsk): Promise<{ approval: Approval; created: boolean }> {
    const hash = argumentsHash(ask.arguments);
    const now = this.clock.now();
    const open = await this.records.findOpen(
      { agentId: ask.agentId, userId: ask.userId, toolName: ask.toolName, hash },
      now,
      now - this.timeoutFor(ask.toolName),
    );
    if (open) return { approval: open, created: false };
    const approval = await this.create('approval', ask, hash, now, now + this.timeoutFor(ask.toolName));
    return { approval, created: true };
  }

  /** A medium-risk call that runs: flagged for a reviewer (REVIEW_FLAGGED). */
  async flag(ask: ApprovalAsk): Promise<Approval> {
    const now = this.clock.now();
    // A review has no deadline for the call; the column holds when it was flagged plus a week, for ordering queues.
    // Relaxed durability: the call's attempt entry, committed synchronously right after, makes the flag
    // durable with it; a flag lost to a power cut belonged to a call that never ran.
    return this.create('review', ask, argumentsHash(ask.arguments), now, now + 7 * 86_400_000);
  }

  private async create(
    kind: 'approval' | 'review',
    ask: ApprovalAsk,
    hash: string,
    now: number,
    expiresAt: number,
  ): Promise<Approval> {
    const id = randomId(kind === 'approval' ? 'apr' : 'rev');
    const row = {
      id,
      kind,
      status: kind === 'approval' ? ('pending' as const) : ('flagged' as const),
      createdAt: now,
      expiresAt,
      traceId: ask.traceId,
      agentId: ask.agentId,
      agentType: ask.agentType,
      sessionId: ask.sessionId,
      userId: ask.userId,
      toolName: ask.toolName,
      risk: ask.risk,
      configuredRisk: ask.configuredRisk,
      arguments: redactParameters(ask.shownArguments ?? ask.arguments),
      argumentsHash: hash,
      reasoning: ask.reasoning,
      rule: ask.rule,
      policyIds: ask.policyIds,
    };
    const relaxed = kind === 'review';
    // Audited first, stored second: a request becomes visible (and approvable) only once the log
    // holds it, even if the process dies in between (then the log names a request nobody can act on).
    let entry: AuditEntry;
    try {
      entry = await this.deps.audit.append(
        {
          traceId: ask.traceId,
          event: kind === 'approval' ? 'APPROVAL_REQUESTED' : 'REVIEW_FLAGGED',
          actorType: 'AI_AGENT',
          actorId: ask.agentId,
          agentId: ask.agentId,
          agentType: ask.agentType,
          sessionId: ask.sessionId,
          triggerUserId: ask.userId,
          toolName: ask.toolName,
          parameters: ask.auditArguments ?? ask.shownArguments ?? ask.arguments,
          reasoning: ask.reasoning,
          result: kind === 'approval' ? 'pending' : 'success',
          decision:
            kind === 'approval'
              ? { allowed: false, code: 'APPROVAL_REQUIRED', rule: ask.rule, reasons: [`risk ${ask.risk}`] }
              : { allowed: true, rule: ask.rule, reasons: [`risk ${ask.risk}: runs, flagged for review`] },
          data: {
            approvalId: id,
            risk: ask.risk,
            configuredRisk: ask.configuredRisk,
            policyIds: ask.policyIds,
            argumentsHash: hash,
            ...(kind === 'approval' ? { expiresAt: new Date(expiresAt).toISOString() } : {}),
          },
        },
        { durable: !relaxed },
      );
    } catch (e) {
      // Unaudited, it must not exist: nobody may approve a request the log never saw.
      throw new WardenError('AUDIT_UNAVAILABLE', 'The request for approval could not be audited', {
        rule: 'audit.fail-closed',
        detail: e instanceof Error ? e.message : String(e),
        cause: e,
      });
    }
    // A store failure here refuses the call (STORE_UNAVAILABLE, audited by the pipeline under the same trace).
    await guard(() => this.records.insert({ ...row, auditSeq: entry.seq }, relaxed));
    const approval: Approval = {
      ...row,
      auditSeq: entry.seq,
      decidedAt: null,
      decidedBy: null,
      decidedVia: null,
      comment: null,
      argumentPatch: null,
      verdict: null,
      consumedAt: null,
    };
    this.announce(kind === 'approval' ? 'approval.requested' : 'review.flagged', approval);
    return approval;
  }

  /**
   * A human's decision (src/approvals/decisions.ts): role, separation of duties, first
   * decision wins, audited; refusals audited and thrown with their code.
   */
  decide(input: DecisionInput): Promise<{ approval: Approval; repeated: boolean }> {
    return decide(this.decisionContext, input);
  }

  /** A reviewer's verdict on a flagged medium-risk call (REVIEW_RECORDED). */
  review(input: ReviewInput): Promise<{ approval: Approval; repeated: boolean }> {
    return review(this.decisionContext, input);
  }

  /** What the decisions need from the queue. */
  private get decisionContext(): DecisionContext {
    return {
      records: this.records,
      clock: this.clock,
      deps: this.deps,
      expire: (id) => this.expire(id),
      wake: (id) => this.wake(id),
      announce: (event, approval) => this.announce(event, approval),
    };
  }

  /** The Slack user's operator, for chat buttons. */
  operatorForSlack(slackUserId: string): OperatorConfig | undefined {
    return this.deps.operators.find((o) => o.slackUserId === slackUserId);
  }

  /**
   * A Slack button click: the Slack user must be mapped to an operator (`slackUserId`), and then
   * it is an ordinary decision (role, separation of duties, first decision wins, audited).
   */
  readonly decideFromChat: ChatDecide = async ({ approvalId, slackUserId, action, traceId }) => {
    const op = this.operatorForSlack(slackUserId);
    try {
      const out = await this.decide({
        id: approvalId,
        // An unmapped Slack user is refused (and audited) by decide as an unknown operator.
        operatorId: op?.id ?? `slack:${slackUserId}`,
        action,
        via: 'slack',
        traceId,
      });
      return { ok: true, approval: out.approval };
    } catch (e) {
      const err = e instanceof WardenError ? e : new WardenError('INTERNAL', 'Internal error');
      return { ok: false, code: err.code, message: err.message };
    }
  };

  /** Deny a pending request whose time is up; audits APPROVAL_DENIED (reason timeout) once, whoever wins. */
  async expire(id: string): Promise<Approval | undefined> {
    const now = this.clock.now();
    const won = await this.records.expire(id, now);
    const after = await this.records.get(id);
    if (won && after) {
      await this.deps.audit
        .append({
          traceId: after.traceId,
          event: 'APPROVAL_DENIED',
          actorType: 'SYSTEM',
          actorId: 'system:timeout',
          agentId: after.agentId,
          agentType: after.agentType,
          sessionId: after.sessionId,
          triggerUserId: after.userId,
          toolName: after.toolName,
          result: 'timeout',
          decision: {
            allowed: false,
            code: 'APPROVAL_TIMEOUT',
            rule: 'approval.timeout',
            reasons: ['no decision before the request expired (fail closed)'],
          },
          data: { approvalId: id, reason: 'timeout', expiresAt: new Date(after.expiresAt).toISOString() },
        })
        .catch((e: unknown) =>
          // The request is denied either way; the log line keeps the gap visible.
          this.deps.log?.error({ approvalId: id, err: String(e) }, 'approval timeout could not be audited'),
        );
      this.wake(id);
      this.announce('approval.decided', after);
    }
    return after;
  }

  /**
   * The kill switch: deny every pending request of an agent (or one session), each audited
   * APPROVAL_DENIED once (reason kill) and its waiting call woken. Returns how many were denied.
   */
  async denyPendingFor(
    filter: { agentId: string } | { sessionId: string },
    why: { by: string; reason: string; traceId: string },
  ): Promise<number> {
    const ids = await this.records.pendingIds(filter);
    let denied = 0;
    for (const id of ids) {
      if (!(await this.records.denyBySystem(id, this.clock.now(), why.by, why.reason))) continue;
      denied++;
      const after = await this.records.get(id);
      if (!after) continue;
      await this.deps.audit
        .append({
          traceId: after.traceId,
          event: 'APPROVAL_DENIED',
          actorType: 'SYSTEM',
          actorId: why.by,
          agentId: after.agentId,
          agentType: after.agentType,
          sessionId: after.sessionId,
          triggerUserId: after.userId,
          toolName: after.toolName,
          result: 'denied',
          decision: {
            allowed: false,
            code: 'APPROVAL_DENIED',
            rule: 'kill-switch',
            reasons: [`denied by the kill switch: ${why.reason}`],
          },
          data: { approvalId: id, reason: 'kill', killTraceId: why.traceId },
        })
        .catch((e: unknown) =>
          this.deps.log?.error({ approvalId: id, err: String(e) }, 'kill-switch denial could not be audited'),
        );
      this.wake(id);
      this.announce('approval.decided', after);
    }
    return denied;
  }

  /** How many requests wait for a human now (for /metrics; the caller caches it). */
  pendingCount(): Promise<number> {
    return guard(() => this.records.countPending(this.clock.now()));
  }

  /** Expire every pending request whose time is up (the sweeper; also callable from tests). */
  async expireDue(): Promise<number> {
    const ids = await this.records.dueIds(this.clock.now());
    for (const id of ids) await this.expire(id);
    return ids.length;
  }

  /**
   * Wait for a decision on `id`: resolves with the request once it is not pending any more
   * (approved, denied or expired — an expiry is enforced here if nobody else did). Rejects
   * with APPROVAL_PENDING when `signal` aborts or the gateway shuts down: the request stays
   * in the store and a retry with its id picks up the decision.
   */
  async wait(
    id: string,
    opts: { signal?: AbortSignal; onTick?: () => void; tickMs?: number } = {},
  ): Promise<Approval> {
    const poll = this.deps.pollIntervalMs ?? 1_000;
    const tickMs = opts.tickMs;
    let lastTick = this.clock.now();
    for (;;) {
      // The kill switch aborts with its own error and then denies the request too: its error is
      // the answer whichever lands first (reading the store after the abort could find the denial).
      if (opts.signal?.aborted && opts.signal.reason instanceof WardenError) throw opts.signal.reason;
      const current = await guard(() => this.records.get(id));
      if (!current) throw new WardenError('APPROVAL_NOT_FOUND', `No approval request ${id}`);
      if (current.status !== 'pending') return current;
      const now = this.clock.now();
      if (current.expiresAt <= now) {
        const after = await this.expire(id);
        if (after && after.status !== 'pending') return after;
      }
      if (this.closing) throw stillPending(current, 'the gateway is shutting down');
      if (opts.signal?.aborted) {
        // The kill switch aborts with its own error: the wait ends refused, not "still pending".
        if (opts.signal.reason instanceof WardenError) throw opts.signal.reason;
        throw stillPending(current, 'the call was cancelled');
      }
      if (tickMs !== undefined && opts.onTick && now - lastTick >= tickMs) {
        lastTick = now;
        opts.onTick();
      }
      const delay = Math.max(
        1,
        Math.min(poll, current.expiresAt - now + 1, tickMs === undefined ? poll : tickMs - (now - lastTick)),
      );
      await this.sleepOrWake(id, delay, opts.signal);
    }
  }

  /** Use an approved request for one call (single use). False when it was used already. */
  consume(id: string, traceId: string): Promise<boolean> {
    return guard(() => this.records.consume(id, this.clock.now(), traceId));
  }

  /** Give back an approval consumed by a call that then could not start. */
  unconsume(id: string, traceId: string): Promise<void> {
    return this.records.unconsume(id, traceId);
  }

  private sleepOrWake(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.waiters.get(id);
      if (!set) {
        set = new Set();
        this.waiters.set(id, set);
      }
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const s = this.waiters.get(id);
        s?.delete(done);
        if (s && s.size === 0) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  private wake(id: string): void {
    for (const wake of [...(this.waiters.get(id) ?? [])]) wake();
  }

  /** Number of callers waiting in this process (metrics, tests). */
  get waiting(): number {
    let n = 0;
    for (const s of this.waiters.values()) n += s.size;
    return n;
  }

  private announce(
    event: 'approval.requested' | 'approval.decided' | 'review.flagged',
    approval: Approval,
  ): void {
    const notifier = this.deps.notifier;
    if (!notifier) return;
    // Queued after the change is committed; a notifier problem never undoes or blocks a decision.
    void notifier
      .notify(event, approval)
      .catch((e: unknown) =>
        this.deps.log?.error(
          { approvalId: approval.id, event, err: String(e) },
          'notification could not be queued',
        ),
      );
  }
}

/** The call's answer while its request waits: pending, with the id to retry with. */
export function stillPending(a: Approval, why?: string): WardenError {
  return new WardenError(
    'APPROVAL_PENDING',
    `Approval ${a.id} is pending${why ? ` (${why})` : ''}: a human must decide before ${new Date(a.expiresAt).toISOString()}; retry the call with this approval id to pick up the decision`,
    {
      rule: 'approval.pending',
      data: { approvalId: a.id, status: 'pending', expiresAt: new Date(a.expiresAt).toISOString() },
    },
  );
}
