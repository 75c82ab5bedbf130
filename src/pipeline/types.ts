/**
 * The call pipeline's types: what a face hands in, what each step sees, and
 * what comes back. Faces (MCP, REST) translate to and from these only.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Approval, ApprovalAsk } from '../approvals/index.js';
import type { AuditEntry, AuditInput } from '../audit/index.js';
import type { InspectionConfig } from '../config/schema-inspection.js';
import type { ApprovalMode, RiskClass, ToolConfig } from '../config/types.js';
import type { WardenError } from '../errors.js';
import type { Agent, Session } from '../identity/index.js';
import type { ClassifierVerdict, ResultFindings, ResultInspection } from '../inspect/index.js';
import type { Limiter } from '../limits/index.js';
import type { PipelineMetrics } from '../metrics/index.js';
import type { InFlightCalls } from '../monitor/in-flight.js';
import type { SecurityAlert } from '../notify/index.js';
import type { AuthzDecision, AuthzInput, Obligations } from '../policy/index.js';
import type { CallTracer } from '../tracing/index.js';
import type { AggregatedTool, SessionScope, UpstreamProgress } from '../upstream/index.js';
import type { Clock } from '../util/clock.js';
import type { ArgumentFindings } from './inspect-input.js';

/** One tool call as a face received it: nothing in it is trusted yet. */
export interface ToolCallRequest {
  /** The bearer token as presented (undefined when none was). */
  token: string | undefined;
  toolName: unknown;
  parameters: unknown;
  /** The agent's stated reason for the call (audited, never trusted). */
  reasoning?: unknown;
  traceId: string;
  clientIp: string;
  face: 'mcp' | 'rest';
  /** Aborts the upstream call when the client goes away or cancels. */
  signal?: AbortSignal;
  /**
   * The principal the face already verified from `token` while handling this same
   * HTTP request (MCP verifies at the HTTP layer to bind its session); authenticate
   * reuses it instead of verifying the token a second time.
   */
  verified?: { agent: Agent; session: Session; scopes: ReadonlySet<string> };
  /** An approval id from an earlier answer (retrying a held call picks up its decision). Unvalidated. */
  approvalId?: unknown;
  /** `wait` (hold the call until a human decides) or `pending` (answer at once with the approval id). Unvalidated. */
  approvalMode?: unknown;
  /** What the agent's model spent on this call, as it reports it (`{ tokens }`). Unvalidated; absent = unknown. */
  usage?: unknown;
  /** Keeps a held call alive (MCP progress notifications); called while the call waits for a human. */
  onProgress?: (message: string) => void;
  /** The upstream's own progress reports on the call, passed on to the agent (issue #10). */
  onUpstreamProgress?: (progress: UpstreamProgress) => void;
  /** The agent MCP session's scope: session-scoped upstream connections and relaying (issue #10). */
  session?: SessionScope;
}

/** What the steps learn as the call moves along; each step reads and adds. */
export interface CallState {
  readonly request: ToolCallRequest;
  readonly startedAt: number;
  agent?: Agent;
  session?: Session;
  /** Scopes granted by the token (the upper bound of what the session may do). */
  scopes?: Set<string>;
  toolName?: string;
  tool?: AggregatedTool;
  parameters?: Record<string, unknown>;
  reasoning?: string;
  /** Rules that allowed the call, in the order the steps checked them. */
  allowedBy: string[];
  /** The Cedar policies that determined the allow (set by authorize). */
  policyIds?: string[];
  /** What those policies oblige (approval, a raised risk class, …), from their annotations. */
  obligations?: Obligations;
  /** The risk class the call runs under (configured, raised by policy). */
  risk?: RiskClass;
  /** The approval that let a high-risk call through (consumed), or the review flag of a medium one. */
  approval?: Approval;
  review?: Approval;
  /** Edit before approve: the arguments as the agent sent them, and what the approver replaced. */
  rewrite?: { original: Record<string, unknown>; patch: Record<string, unknown> };
  /** The session's taint bits as of this call's claim (TAINT in src/identity). */
  taint?: number;
  /**
   * The arguments as the audit log records them: secrets found in them replaced (inspect-input),
   * each marker with the HMAC of the value it replaced when the log has a key (issue #9).
   */
  auditParameters?: unknown;
  /** The same with plain `[REDACTED:<TYPE>]` markers: what approvers are shown (no HMAC leaves the log). */
  shownParameters?: unknown;
  /** The detectors' findings on the arguments (inspect-input), for policy and the audit entry. */
  detectors?: ArgumentFindings;
  /** What inspect-output found in (and did to) the result. */
  inspection?: ResultInspectionState;
  /** Model tokens the agent reported for this call (validated); undefined = not reported. */
  modelTokens?: number;
  /** The call's own abort signal (track-call): the face's signal, and the kill switch's. */
  signal?: AbortSignal;
  /** Takes the call out of the in-flight registry (the pipeline calls it once the call is over). */
  release?: () => void;
  /** The audit entry recording the attempt (written before the tool runs). */
  attempt?: AuditEntry;
  result?: CallToolResult;
}

/** What inspect-output found in the result and did about it. */
export interface ResultInspectionState {
  action: ResultInspection['action'];
  findings: ResultFindings;
  classifierError?: string;
}

export type { SecurityAlert };

/** One step of the pipeline: throws a WardenError to deny; returns to pass the call on. */
export interface Step {
  readonly name: string;
  run(state: CallState): Promise<void>;
}

/** The outcome a face turns back into its protocol. */
export type ToolCallResult =
  | { ok: true; traceId: string; result: CallToolResult }
  | { ok: false; traceId: string; error: WardenError };

/** What the steps need from the rest of Warden (ports, so steps stay testable). */
export interface PipelineDeps {
  tokens: {
    verify(token: string): Promise<{ agent: Agent; session: Session; claims: { scope: string } }>;
  };
  sessions: {
    claimCall(id: string): Promise<{ calls: number; taint: number } | null>;
    /** Adds taint bits to a session; true when any was new (issue #7). Absent = taint is not recorded. */
    addTaint?(id: string, bits: number): Promise<boolean>;
    markExpiryLogged(id: string): Promise<boolean>;
  };
  tools: {
    listTools(): AggregatedTool[];
    /**
     * Why an upstream tool that is not listed is withheld (tool pinning: never approved, quarantined,
     * or its pin unreadable); undefined for a name no upstream lists. Absent = nothing is withheld.
     */
    withheld?(name: string): 'pending' | 'quarantined' | 'unverified' | undefined;
    callTool(
      name: string,
      args: Record<string, unknown>,
      opts: {
        signal?: AbortSignal;
        timeoutMs?: number;
        userId?: string;
        onProgress?: (progress: UpstreamProgress) => void;
        session?: SessionScope;
      },
    ): Promise<CallToolResult>;
  };
  audit: {
    append(input: AuditInput, opts?: { durable?: boolean; retain?: boolean }): Promise<AuditEntry>;
  };
  /**
   * Keys the markers of secrets found in arguments for the audit copy (issue #9): `hmac-sha256:<hex>`
   * of the matched text. Absent = plain markers.
   */
  auditHmac?: { of(value: string): string };
  /**
   * Whether the audit log can be written now (issue #9). While it cannot, calls are refused at
   * once with AUDIT_UNAVAILABLE. Absent = always assumed writable (the attempt entry still guards).
   */
  auditHealth?: { readonly writable: boolean };
  /** The configured risk class of a tool (public name). */
  riskOf(toolName: string): RiskClass;
  /**
   * The Cedar policy engine (src/policy); `authorize` throws only to fail closed.
   * Absent = the agents' allow/deny lists alone (unit tests of other steps); the gateway always sets it.
   */
  policy?: { authorize(input: AuthzInput): AuthzDecision; noteUse(sessionId: string, tool: string): void };
  /** A tool's config (argument rules, forbidden keys, resource scopes); absent = none configured (unit tests). */
  toolConfig?(toolName: string): ToolConfig | undefined;
  clock: Clock;
  limits: { maxJsonDepth: number };
  /** Rate limits and cost budgets (src/limits); absent = none (unit tests of unrelated steps). */
  limiter?: Pick<Limiter, 'checkCaller' | 'checkTool' | 'chargeBudgets'>;
  trustProxy?: boolean;
  /** Step and call timings (src/metrics); absent = not measured (unit tests). */
  metrics?: PipelineMetrics;
  /** Spans per call and per step (src/tracing); absent = tracing off, and no span is ever made. */
  tracer?: CallTracer;
  /**
   * The approval queue (src/approvals); absent = no human channel, so high-risk calls are
   * refused (fail closed) and medium ones run unflagged.
   */
  approvals?: {
    requestFor(ask: ApprovalAsk): Promise<{ approval: Approval; created: boolean }>;
    flag(ask: ApprovalAsk): Promise<Approval>;
    get(id: string): Promise<Approval | undefined>;
    wait(id: string, opts: { signal?: AbortSignal; onTick?: () => void; tickMs?: number }): Promise<Approval>;
    consume(id: string, traceId: string): Promise<boolean>;
    /** Until when an approved request may be used by its call. */
    usableUntil(approval: Approval): number;
    unconsume(id: string, traceId: string): Promise<void>;
  };
  /** How held calls wait by default, and how often they hear progress. */
  approvalSettings?: { mode: ApprovalMode; progressIntervalMs: number };
  /**
   * The detectors (issue #7): what inspect-input scores on the arguments, what inspect-output does
   * to results, and the operator's classifier. Absent = no inspection (unit tests of other steps).
   */
  inspection?: {
    arguments: { injection: boolean; secrets: boolean; pii: boolean };
    results: InspectionConfig['results'];
    classifier?: {
      on: ReadonlyArray<'arguments' | 'results'>;
      classify(text: string, source: 'input' | 'tool-result'): Promise<ClassifierVerdict>;
    };
  };
  /** The calls running in this process, for the kill switch (src/monitor); absent = not tracked (unit tests). */
  inFlight?: Pick<InFlightCalls, 'enter'>;
  /**
   * Circuit breakers per session and agent (src/monitor/breakers.ts): `check` refuses with
   * CIRCUIT_OPEN; `record` hears how each call that ran ended (never throws). Absent = none.
   */
  breakers?: {
    check(state: CallState): Promise<void>;
    record(state: CallState, error: WardenError | null): Promise<void>;
  };
  /** Raises an alert to the operators (notifiers); never throws, never waits. */
  alert?(alert: SecurityAlert): void;
  /** Operator log for what must not pass silently (an audit entry that could not be written). */
  log?: {
    error(fields: Record<string, unknown>, message: string): void;
    warn?(fields: Record<string, unknown>, message: string): void;
  };
}
