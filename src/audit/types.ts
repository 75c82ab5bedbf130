/**
 * The audit log's public types: what callers hand in (AuditInput), what the
 * chain stores (AuditEntry), and what verification reports.
 */

/** Every kind of event the audit log records. */
export type AuditEvent =
  | 'SESSION_CREATED'
  | 'SESSION_EXPIRED'
  | 'TOOL_CALL'
  | 'TOOL_DENIED'
  | 'RATE_LIMITED'
  | 'POLICY_RELOADED'
  | 'REQUEST_REJECTED'
  | 'AGENT_REGISTERED'
  | 'AGENT_UPDATED'
  | 'AGENT_DISABLED'
  | 'TOKEN_ISSUED'
  | 'SESSION_REVOKED'
  /** A call waits for a human (issue #5). */
  | 'APPROVAL_REQUESTED'
  | 'APPROVAL_GRANTED'
  /** A human said no, or the request timed out (reason in data). */
  | 'APPROVAL_DENIED'
  /** A medium-risk call ran and was queued for review. */
  | 'REVIEW_FLAGGED'
  /** A reviewer recorded a verdict on a flagged call. */
  | 'REVIEW_RECORDED'
  /** An operator created, changed or removed a user of the embedded store (data.action says which). */
  | 'USER_UPDATED'
  /** A person logged in at the authorization server (issue #6), or failed to. */
  | 'USER_LOGIN'
  | 'USER_LOGIN_FAILED'
  /** A user allowed an OAuth client to act as an agent for them, or refused. */
  | 'CONSENT_GRANTED'
  | 'CONSENT_DENIED'
  /** A user's grant was revoked (by the user, an operator, or replay detection). */
  | 'GRANT_REVOKED'
  /** An OAuth client registered itself (RFC 7591). */
  | 'CLIENT_REGISTERED'
  /** A user connected (or disconnected) their own account at an upstream (per-user credentials). */
  | 'UPSTREAM_CONNECTED'
  | 'UPSTREAM_DISCONNECTED'
  /** A session ingested untrusted content or private data (issue #7); data says which tool and why. */
  | 'SESSION_TAINTED'
  /** A secret in a tool's result (or arguments) was redacted before it reached the agent. */
  | 'SECRET_LEAK_PREVENTED'
  /** A tool result carried text that reads as instructions to the agent (indirect injection); data says what was done. */
  | 'INJECTION_DETECTED'
  /**
   * A tool definition was approved (tool pinning): on first sight by the gateway (`data.by: auto`,
   * actor SYSTEM) or by an operator (actor HUMAN); data has the hash and the injection score.
   */
  | 'TOOL_PINNED'
  /** A tool seen for the first time waits for an operator (`data.reason`: operator-mode | injection). */
  | 'TOOL_PENDING'
  /** A tool's definition changed (a "rug pull"): quarantined until re-approved; data has both hashes. */
  | 'TOOL_DEFINITION_CHANGED'
  /** Kill switch (issue #8): an agent's credentials, sessions and in-flight calls were stopped; data says who, why, how many. */
  | 'AGENT_KILLED'
  /** A killed or disabled agent was allowed to authenticate again. */
  | 'AGENT_ENABLED'
  /** One session was stopped (kill switch or an automatic response): revoked, its in-flight calls aborted. */
  | 'SESSION_KILLED'
  /** Monitoring saw behaviour outside the baseline (issue #8); data has the rule, the numbers and the response. */
  | 'ANOMALY_DETECTED'
  /** A circuit breaker opened (consecutive failures, cost, wall time) or was closed again (reset, cool-down). */
  | 'CIRCUIT_OPENED'
  | 'CIRCUIT_CLOSED'
  /** Entries up to data.through were archived (data.archive, data.sha256) and pruned (issue #9). */
  | 'AUDIT_PRUNED'
  /**
   * An investigator looked a value up by its HMAC (issue #9): data has the HMAC and how many
   * entries matched, never the value itself.
   */
  | 'AUDIT_QUERIED'
  /**
   * An upstream asked the agent's client back (issue #10): sampling, elicitation or roots, relayed to
   * the agent's own MCP session or refused (`upstreams[].relay`); data has the upstream and method,
   * and of the answer only its shape (elicitation's action, sampling's model), never its content.
   */
  | 'UPSTREAM_REQUEST'
  /**
   * An agent read an MCP resource or got a prompt (issue #10): the attempt (`data.phase: attempt`,
   * before the upstream is asked), then the outcome with what inspection did; or the denial.
   */
  | 'RESOURCE_READ'
  | 'PROMPT_GET';

/** Every AuditEvent, for checking names given at run time (config, filters). */
export const AUDIT_EVENTS = [
  'SESSION_CREATED',
  'SESSION_EXPIRED',
  'TOOL_CALL',
  'TOOL_DENIED',
  'RATE_LIMITED',
  'POLICY_RELOADED',
  'REQUEST_REJECTED',
  'AGENT_REGISTERED',
  'AGENT_UPDATED',
  'AGENT_DISABLED',
  'TOKEN_ISSUED',
  'SESSION_REVOKED',
  'APPROVAL_REQUESTED',
  'APPROVAL_GRANTED',
  'APPROVAL_DENIED',
  'REVIEW_FLAGGED',
  'REVIEW_RECORDED',
  'USER_UPDATED',
  'USER_LOGIN',
  'USER_LOGIN_FAILED',
  'CONSENT_GRANTED',
  'CONSENT_DENIED',
  'GRANT_REVOKED',
  'CLIENT_REGISTERED',
  'UPSTREAM_CONNECTED',
  'UPSTREAM_DISCONNECTED',
  'SESSION_TAINTED',
  'SECRET_LEAK_PREVENTED',
  'INJECTION_DETECTED',
  'TOOL_PINNED',
  'TOOL_PENDING',
  'TOOL_DEFINITION_CHANGED',
  'AGENT_KILLED',
  'AGENT_ENABLED',
  'SESSION_KILLED',
  'ANOMALY_DETECTED',
  'CIRCUIT_OPENED',
  'CIRCUIT_CLOSED',
  'AUDIT_PRUNED',
  'AUDIT_QUERIED',
  'UPSTREAM_REQUEST',
  'RESOURCE_READ',
  'PROMPT_GET',
] as const satisfies readonly AuditEvent[];

/** Does not compile while an event of the union is missing from AUDIT_EVENTS. */
type AssertNever<T extends never> = T;
export type AuditEventsListed = AssertNever<Exclude<AuditEvent, (typeof AUDIT_EVENTS)[number]>>;

/** Who acted: the article's key distinction between agent and human actions. */
export type ActorType = 'AI_AGENT' | 'HUMAN' | 'SYSTEM';

/** What started the agent's work. */
export type TriggerSource = 'user' | 'schedule' | 'event' | 'agent';

/** How the action ended. */
export type AuditResult = 'success' | 'failure' | 'denied' | 'timeout' | 'pending';

/** A security decision as recorded: a denial names its code and the rule that made it. */
export interface AuditDecision {
  allowed: boolean;
  code?: string;
  rule?: string;
  reasons: string[];
}

/** What a caller hands to `AuditLog.append`; absent optional fields are stored as null. */
export interface AuditInput {
  traceId: string;
  event: AuditEvent;
  actorType: ActorType;
  actorId?: string | null;
  agentId?: string | null;
  agentType?: string | null;
  sessionId?: string | null;
  triggerUserId?: string | null;
  triggerSource?: TriggerSource | null;
  toolName?: string | null;
  /** Redacted by the log before it is stored. */
  parameters?: unknown;
  reasoning?: string | null;
  decision?: AuditDecision | null;
  result?: AuditResult | null;
  latencyMs?: number | null;
  /** Anything else the event carries; redacted like `parameters`. */
  data?: Record<string, unknown> | null;
}

/** Every AuditInput field, present, with null for absent. */
export type AuditRecord = { [K in keyof AuditInput]-?: Exclude<AuditInput[K], undefined> };

/** One stored entry of the chain. `hash` covers every other field (see `entryHash`). */
export interface AuditEntry extends AuditRecord {
  /** Position in the chain, 1-based and gap-free. */
  seq: number;
  id: string;
  /** Epoch milliseconds, taken under the head lock (so ts follows seq within a process). */
  ts: number;
  /** The previous entry's hash (GENESIS_HASH for seq 1). */
  prevHash: string;
  hash: string;
}

/** The first thing wrong with the chain, as found by `verifyChain`. */
export interface VerifyProblem {
  /** The position where verification failed (for 'deleted'/'truncated': the first missing seq). */
  seq: number;
  /**
   * The damage. Beside the chain's own kinds: 'checkpoint-signature' — a checkpoint whose
   * signature does not verify with a trusted key, or whose fields differ from what was signed;
   * 'tree-mismatch' — stored Merkle nodes or the tree builder's state differ from the entries.
   */
  kind:
    | 'modified'
    | 'deleted'
    | 'inserted'
    | 'reordered'
    | 'truncated'
    | 'head-mismatch'
    | 'checkpoint-signature'
    | 'tree-mismatch';
  message: string;
}

/** The outcome of `verifyChain`. */
export interface VerifyResult {
  ok: boolean;
  /** Entries checked and found intact (those before the problem, if any). */
  entries: number;
  headSeq: number;
  headHash: string;
  problem?: VerifyProblem;
  elapsedMs: number;
  /** The Merkle tree and checkpoint layer's report (when verified with trusted keys). */
  tree?: import('./verify-tree.js').TreeVerifyReport;
}
