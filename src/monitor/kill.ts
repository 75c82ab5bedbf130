/**
 * The kill switch (issue #8, the article's fourth anti-pattern). Killing an
 * agent, in this order:
 *   1. marks it killed in the store — from that commit on, every process
 *      refuses its tokens (the agent row is read on every call) and no new
 *      session can be opened for it (sessions are opened under the agent row's lock);
 *   2. revokes every live session of it;
 *   3. aborts its calls running in this process (upstream calls and approval waits);
 *   4. tells the other processes (Redis pub/sub; the store poll otherwise);
 *   5. denies its pending approval requests, so no human approves a dead agent's call;
 *   6. audits AGENT_KILLED with who, why and the counts, and alerts the operators.
 * A session kill does the same for one session. A kill of a killed agent changes
 * nothing and is answered `repeated` (audited once). Only an admin re-enables.
 */
import type { AuditEntry, AuditInput } from '../audit/index.js';
import { WardenError } from '../errors.js';
import type { Agent } from '../identity/index.js';
import type { SecurityAlert } from '../notify/index.js';
import type { Clock } from '../util/clock.js';
import { type InFlightCalls, killedError } from './in-flight.js';
import type { KillBus, KillMessage } from './kill-bus.js';

/** Who pulled the switch: an operator (HUMAN) or an automatic response (SYSTEM, e.g. an anomaly rule). */
export interface KillActor {
  type: 'HUMAN' | 'SYSTEM';
  id: string;
}

export interface KillRequest {
  by: KillActor;
  reason: string;
  traceId: string;
}

/** What a kill did (returned by the admin API and `warden kill --json`). */
export interface KillReport {
  scope: 'agent' | 'session';
  agentId: string;
  sessionId?: string;
  /** True when it was killed already: nothing changed, nothing new audited. */
  repeated: boolean;
  sessionsRevoked: number;
  /** Calls aborted in this process (others abort theirs when the message or the store poll reaches them). */
  callsAborted: number;
  approvalsDenied: number;
  /** Whether the other processes were told through Redis (false: they learn it from the store poll). */
  broadcast: boolean;
  auditSeq: number | null;
}

export interface KillSwitchDeps {
  agents: {
    get(id: string): Promise<Agent | undefined>;
    kill(id: string, reason: string): Promise<{ agent: Agent; changed: boolean }>;
    enable(id: string): Promise<Agent>;
    stoppedAmong(
      ids: readonly string[],
    ): Promise<Array<{ id: string; status: string; reason: string | null }>>;
  };
  sessions: {
    get(id: string): Promise<{ id: string; agentId: string; revokedAt: number | null } | undefined>;
    revoke(id: string, reason: string): Promise<void>;
    revokeAllForAgent(agentId: string, reason: string): Promise<number>;
    revokedAmong(ids: readonly string[]): Promise<Array<{ id: string; reason: string | null }>>;
  };
  audit: { append(input: AuditInput, opts?: { durable?: boolean }): Promise<AuditEntry> };
  inFlight: InFlightCalls;
  /** Denies pending approval requests (src/approvals); absent = no approval queue. */
  approvals?: {
    denyPendingFor(
      filter: { agentId: string } | { sessionId: string },
      why: { by: string; reason: string; traceId: string },
    ): Promise<number>;
  };
  /** Redis pub/sub between processes; absent = the store poll alone. */
  bus?: KillBus;
  /** Closes the MCP sessions of a killed agent or session in this process. */
  closeMcp?: { forAgent(agentId: string): Promise<number>; forSession(sessionId: string): Promise<number> };
  alert?(a: SecurityAlert): void;
  metrics?: { killed(scope: string): void; killPropagated(seconds: number): void };
  clock: Clock;
  log: {
    warn(o: object, m: string): void;
    error(o: object, m: string): void;
    info(o: object, m: string): void;
  };
  /** How often each process checks the store for kills of agents it has calls running for (default 1 s). */
  pollIntervalMs?: number;
}

const REASON_MAX = 500;

function cleanReason(reason: string): string {
  const r = reason.replace(/\s+/g, ' ').trim();
  if (r.length === 0) throw new WardenError('INVALID_REQUEST', 'A kill needs a reason (it is audited)');
  if (r.length > REASON_MAX)
    throw new WardenError('INVALID_REQUEST', `The reason is longer than ${REASON_MAX} characters`);
  return r;
}

export class KillSwitch {
  private poller: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(private readonly deps: KillSwitchDeps) {}

  /** Listen for kills from other processes and start the store poll. */
  async start(): Promise<void> {
    if (this.deps.bus) {
      const ok = await this.deps.bus.start((m) => this.onRemote(m));
      if (!ok)
        this.deps.log.warn({}, 'kill channel not subscribed yet; the store poll covers other processes');
    }
    const every = this.deps.pollIntervalMs ?? 1000;
    this.poller = setInterval(() => void this.poll(), every);
    this.poller.unref();
  }

  async close(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    await this.deps.bus?.close();
  }

  /** Kill an agent everywhere. NOT_FOUND for an unknown agent (audited by the caller's face). */
  async killAgent(agentId: string, req: KillRequest): Promise<KillReport> {
    const reason = cleanReason(req.reason);
    const stored = `killed by ${req.by.type === 'HUMAN' ? 'operator' : 'system'} ${req.by.id}: ${reason}`;
    const { changed } = await this.deps.agents.kill(agentId, stored);
    // From here on, stopping comes first: what runs here is aborted and the other processes are told
    // even if revoking the sessions fails (the operator gets the error and can pull the switch again).
    const callsAborted = this.deps.inFlight.abortAgent(agentId, stored);
    const at = this.deps.clock.now();
    const told = this.deps.bus
      ? this.deps.bus.publish({ kind: 'agent-killed', id: agentId, reason: stored, at })
      : Promise.resolve(false);
    let sessionsRevoked: number;
    try {
      sessionsRevoked = await this.deps.sessions.revokeAllForAgent(agentId, stored);
    } catch (e) {
      await told;
      this.deps.log.error(
        { agentId, err: String(e) },
        'kill switch: sessions not revoked (the agent is killed)',
      );
      throw e;
    }
    const broadcast = await told;
    const approvalsDenied =
      (await this.deps.approvals
        ?.denyPendingFor({ agentId }, { by: `kill:${req.by.id}`, reason, traceId: req.traceId })
        .catch((e: unknown) => {
          this.deps.log.error({ agentId, err: String(e) }, 'kill switch: pending approvals not denied');
          return 0;
        })) ?? 0;
    this.closeMcpLater(() => this.deps.closeMcp?.forAgent(agentId));
    let auditSeq: number | null = null;
    // A repeated kill with nothing left to stop is not a new event.
    if (changed || sessionsRevoked > 0 || callsAborted > 0 || approvalsDenied > 0) {
      const agent = await this.deps.agents.get(agentId).catch(() => undefined);
      auditSeq = await this.record({
        traceId: req.traceId,
        event: 'AGENT_KILLED',
        actorType: req.by.type,
        actorId: req.by.id,
        agentId,
        agentType: agent?.type ?? null,
        result: 'success',
        decision: { allowed: false, code: 'AGENT_KILLED', rule: 'kill-switch.agent', reasons: [reason] },
        data: { reason, repeated: !changed, sessionsRevoked, callsAborted, approvalsDenied, broadcast },
      });
      this.deps.metrics?.killed('agent');
      this.deps.alert?.({
        kind: 'agent.killed',
        severity: 'critical',
        traceId: req.traceId,
        agentId,
        sessionId: null,
        tool: null,
        summary: `Agent ${agentId} was killed by ${req.by.type === 'HUMAN' ? 'operator' : 'Warden'} ${req.by.id}: ${reason}`,
        data: { sessionsRevoked, callsAborted, approvalsDenied },
      });
    }
    this.deps.log.info({ agentId, by: req.by.id, changed, sessionsRevoked, callsAborted }, 'agent killed');
    return {
      scope: 'agent',
      agentId,
      repeated: !changed,
      sessionsRevoked,
      callsAborted,
      approvalsDenied,
      broadcast,
      auditSeq,
    };
  }

  /** Kill one session everywhere (its agent stays usable). NOT_FOUND for an unknown session. */
  async killSession(sessionId: string, req: KillRequest): Promise<KillReport> {
    const reason = cleanReason(req.reason);
    const session = await this.deps.sessions.get(sessionId);
    if (!session) throw new WardenError('NOT_FOUND', `Session ${sessionId} not found`);
    const stored = `killed by ${req.by.type === 'HUMAN' ? 'operator' : 'system'} ${req.by.id}: ${reason}`;
    const changed = session.revokedAt === null;
    if (changed) await this.deps.sessions.revoke(sessionId, stored);
    const callsAborted = this.deps.inFlight.abortSession(sessionId, stored);
    const at = this.deps.clock.now();
    const broadcast = this.deps.bus
      ? await this.deps.bus.publish({
          kind: 'session-killed',
          id: sessionId,
          agentId: session.agentId,
          reason: stored,
          at,
        })
      : false;
    const approvalsDenied =
      (await this.deps.approvals
        ?.denyPendingFor({ sessionId }, { by: `kill:${req.by.id}`, reason, traceId: req.traceId })
        .catch(() => 0)) ?? 0;
    this.closeMcpLater(() => this.deps.closeMcp?.forSession(sessionId));
    let auditSeq: number | null = null;
    if (changed || callsAborted > 0 || approvalsDenied > 0) {
      const agent = await this.deps.agents.get(session.agentId).catch(() => undefined);
      auditSeq = await this.record({
        traceId: req.traceId,
        event: 'SESSION_KILLED',
        actorType: req.by.type,
        actorId: req.by.id,
        agentId: session.agentId,
        agentType: agent?.type ?? null,
        sessionId,
        result: 'success',
        decision: { allowed: false, code: 'SESSION_REVOKED', rule: 'kill-switch.session', reasons: [reason] },
        data: { reason, repeated: !changed, callsAborted, approvalsDenied, broadcast },
      });
      this.deps.metrics?.killed('session');
    }
    return {
      scope: 'session',
      agentId: session.agentId,
      sessionId,
      repeated: !changed,
      sessionsRevoked: changed ? 1 : 0,
      callsAborted,
      approvalsDenied,
      broadcast,
      auditSeq,
    };
  }

  /** Let a killed (or disabled) agent authenticate again; its old sessions stay revoked. */
  async enableAgent(
    agentId: string,
    req: KillRequest,
  ): Promise<{ agent: Agent; repeated: boolean; auditSeq: number | null }> {
    const reason = cleanReason(req.reason);
    const before = await this.deps.agents.get(agentId);
    if (!before) throw new WardenError('NOT_FOUND', `Agent ${agentId} not found`);
    if (before.status === 'active') return { agent: before, repeated: true, auditSeq: null };
    const agent = await this.deps.agents.enable(agentId);
    this.deps.inFlight.forgetAgent(agentId);
    await this.deps.bus?.publish({ kind: 'agent-enabled', id: agentId, reason, at: this.deps.clock.now() });
    const auditSeq = await this.record({
      traceId: req.traceId,
      event: 'AGENT_ENABLED',
      actorType: req.by.type,
      actorId: req.by.id,
      agentId,
      agentType: agent.type,
      result: 'success',
      data: { reason, previousStatus: before.status, previousReason: before.disabledReason },
    });
    return { agent, repeated: false, auditSeq };
  }

  /** A kill published by another process: abort what runs here. */
  private onRemote(m: KillMessage): void {
    const lag = Math.max(0, this.deps.clock.now() - m.at) / 1000;
    if (m.kind === 'agent-killed') this.deps.inFlight.abortAgent(m.id, m.reason);
    else if (m.kind === 'session-killed') this.deps.inFlight.abortSession(m.id, m.reason);
    else this.deps.inFlight.forgetAgent(m.id);
    if (m.kind === 'agent-killed') this.closeMcpLater(() => this.deps.closeMcp?.forAgent(m.id));
    if (m.kind === 'session-killed') this.closeMcpLater(() => this.deps.closeMcp?.forSession(m.id));
    if (m.kind !== 'agent-enabled') this.deps.metrics?.killPropagated(lag);
  }

  /**
   * The store poll: for the agents and sessions with calls running here, abort those the store
   * says are stopped. Covers a process without Redis, and a message Redis lost.
   */
  async poll(): Promise<number> {
    if (this.polling || this.deps.inFlight.size === 0) return 0;
    this.polling = true;
    try {
      const live = this.deps.inFlight.live();
      let aborted = 0;
      for (const a of await this.deps.agents.stoppedAmong(live.agents)) {
        aborted += this.deps.inFlight.abortAgent(a.id, a.reason ?? `agent ${a.status}`);
      }
      for (const s of await this.deps.sessions.revokedAmong(live.sessions)) {
        aborted += this.deps.inFlight.abortSession(s.id, s.reason ?? 'session revoked');
      }
      return aborted;
    } catch (e) {
      this.deps.log.warn({ err: String(e) }, 'kill switch: store poll failed');
      return 0;
    } finally {
      this.polling = false;
    }
  }

  /** MCP sessions close a moment after the abort, so the aborted calls' answers reach their clients first. */
  private closeMcpLater(fn: () => Promise<number> | undefined): void {
    setTimeout(() => void fn()?.catch(() => {}), 250).unref();
  }

  private async record(input: AuditInput): Promise<number | null> {
    try {
      return (await this.deps.audit.append(input)).seq;
    } catch (e) {
      // The kill stands (the store says so); the missing entry is logged, never silent.
      this.deps.log.error(
        { event: input.event, agentId: input.agentId, err: String(e) },
        'kill could not be audited',
      );
      return null;
    }
  }
}

export { killedError };
