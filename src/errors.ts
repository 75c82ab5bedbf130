/**
 * The one error base of Warden. Every failure that can reach a client is a
 * WardenError with a stable string code; the faces map it to HTTP / MCP once.
 * `message` is public (sent to clients); `detail` is private (logs only).
 */

/** Every error code Warden can return, with its HTTP status. */
export const ERROR_STATUS = {
  // 202 — not an error to the caller that chose not to wait: the call is held for a human
  APPROVAL_PENDING: 202,
  // 400 — the request itself is wrong
  INVALID_REQUEST: 400,
  INVALID_JSON: 400,
  INVALID_ARGUMENTS: 400,
  BATCH_NOT_SUPPORTED: 400,
  NESTING_TOO_DEEP: 400,
  /** An approver's edited arguments break the tool's schema or argument rules. */
  APPROVAL_ARGUMENTS_INVALID: 400,
  // 401 — who are you?
  UNAUTHENTICATED: 401,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  SESSION_EXPIRED: 401,
  SESSION_REVOKED: 401,
  AGENT_DISABLED: 401,
  AGENT_EXPIRED: 401,
  AGENT_UNKNOWN: 401,
  /** An operator (or an automatic response) stopped the agent: every credential and session is void until re-enabled. */
  AGENT_KILLED: 401,
  /** The admin API needs an operator (human) token. */
  OPERATOR_UNAUTHENTICATED: 401,
  /** A Slack callback whose signature does not verify, is stale, or was seen before. */
  SLACK_SIGNATURE_INVALID: 401,
  SLACK_TIMESTAMP_STALE: 401,
  SLACK_REPLAYED: 401,
  /** A password login at the consent page failed; the message never says why (the reason is in `detail`). */
  LOGIN_FAILED: 401,
  // 403 — you may not
  TOOL_DENIED: 403,
  TOOL_NOT_ALLOWED: 403,
  INSUFFICIENT_SCOPE: 403,
  CLIENT_IP_DENIED: 403,
  MCP_SESSION_MISMATCH: 403,
  /** DNS-rebinding protection: the Host or Origin header names a site this gateway does not serve. */
  ORIGIN_NOT_ALLOWED: 403,
  APPROVAL_REQUIRED: 403,
  POLICY_DENIED: 403,
  /** No policy permits this agent to read the MCP resource (default deny). */
  RESOURCE_NOT_ALLOWED: 403,
  /** No policy permits this agent to get the MCP prompt (default deny). */
  PROMPT_NOT_ALLOWED: 403,
  /** A human said no, or nobody said yes in time (fail closed). */
  APPROVAL_DENIED: 403,
  APPROVAL_TIMEOUT: 403,
  /** The approval presented does not match this call (another agent, tool or arguments). */
  APPROVAL_MISMATCH: 403,
  /** An agent's token on the approval API: agents never approve. */
  AGENT_TOKEN_REFUSED: 403,
  /** The operator lacks the approver role, or is not a known operator. */
  APPROVER_FORBIDDEN: 403,
  /** The tool acts with the user's own upstream account, which the user has not connected (or must reconnect). */
  UPSTREAM_AUTHORIZATION_REQUIRED: 403,
  /** Separation of duties: the user an agent acts for may not approve its request. */
  SELF_APPROVAL_FORBIDDEN: 403,
  /** The tool was never approved (tool pinning: first sight in operator mode, or a flagged description). */
  TOOL_NOT_APPROVED: 403,
  /** The tool's definition changed since it was approved; it is withheld until an operator re-approves it. */
  TOOL_QUARANTINED: 403,
  /** Monitoring holds the session: an anomaly requires a human's approval for every further call. */
  ANOMALY_HOLD: 403,
  // 404
  TOOL_UNKNOWN: 404,
  NOT_FOUND: 404,
  MCP_SESSION_UNKNOWN: 404,
  /** No upstream publishes this resource URI (or more than one does: ambiguous, fail closed). */
  RESOURCE_UNKNOWN: 404,
  /** No upstream publishes a prompt of this name. */
  PROMPT_UNKNOWN: 404,
  APPROVAL_NOT_FOUND: 404,
  /** No such user in the embedded user store. */
  USER_UNKNOWN: 404,
  // 409
  CONFLICT: 409,
  /** The request was decided already (the first decision wins). */
  APPROVAL_ALREADY_DECIDED: 409,
  /** The request expired before this decision, or an approval was already used. */
  APPROVAL_EXPIRED: 409,
  APPROVAL_CONSUMED: 409,
  /** The user id is taken in the embedded user store. */
  USER_EXISTS: 409,
  /** An operator approved a tool naming a hash that is no longer its definition's (it changed again). */
  TOOL_DEFINITION_STALE: 409,
  /** A proof was asked for an entry or size no signed checkpoint covers yet. */
  AUDIT_NOT_CHECKPOINTED: 409,
  // 410
  /** The entries were archived and pruned: their proofs come from the archive file. */
  AUDIT_PRUNED: 410,
  // 413
  PAYLOAD_TOO_LARGE: 413,
  // 429
  CALL_LIMIT_EXCEEDED: 429,
  SESSION_LIMIT_EXCEEDED: 429,
  RATE_LIMITED: 429,
  BUDGET_EXCEEDED: 429,
  // 5xx — fail closed
  UPSTREAM_ERROR: 502,
  /** The tool ran but its result was not passed on: it carries instructions (policy: withhold) or could not be inspected. */
  RESULT_WITHHELD: 502,
  UPSTREAM_UNAVAILABLE: 503,
  /** The session's or agent's circuit breaker is open (failures, cost, wall time): refused until reset or cool-down. */
  CIRCUIT_OPEN: 503,
  UPSTREAM_TIMEOUT: 504,
  AUDIT_UNAVAILABLE: 503,
  STORE_UNAVAILABLE: 503,
  /** Too many audit streams (`GET /admin/v1/audit/stream`) are open on this gateway: retry later. */
  AUDIT_STREAM_LIMIT: 503,
  LIMITS_UNAVAILABLE: 503,
  POLICY_UNAVAILABLE: 503,
  CONFIG_INVALID: 500,
  INTERNAL: 500,
} as const;

/** A stable, narrowable error code. */
export type WardenErrorCode = keyof typeof ERROR_STATUS;

export interface WardenErrorOptions {
  /** Private detail for logs and the audit trail; never sent to a client. */
  detail?: string;
  /** The policy / rule id that decided, for denials. */
  rule?: string;
  /** Extra public fields (e.g. the scopes that were needed). */
  data?: Record<string, unknown>;
  cause?: unknown;
}

/** The base of every error Warden raises on purpose. */
export class WardenError extends Error {
  readonly code: WardenErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly rule: string | undefined;
  readonly data: Record<string, unknown> | undefined;

  constructor(code: WardenErrorCode, message: string, options: WardenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WardenError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.detail = options.detail;
    this.rule = options.rule;
    this.data = options.data;
  }
}

/** True when `e` is a WardenError (optionally of one of `codes`). */
export function isWardenError(e: unknown, ...codes: WardenErrorCode[]): e is WardenError {
  return e instanceof WardenError && (codes.length === 0 || codes.includes(e.code));
}

/** Any thrown value as a WardenError; unknown errors become INTERNAL with a fixed message. */
export function toWardenError(e: unknown): WardenError {
  if (e instanceof WardenError) return e;
  const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  // The store down or locked is not a bug: the caller gets a clear, retryable 503.
  if (isStoreFailure(e))
    return new WardenError('STORE_UNAVAILABLE', 'The store is unavailable', { detail, cause: e });
  return new WardenError('INTERNAL', 'Internal error', { detail, cause: e });
}

/**
 * A failure of the store itself, not of the request: SQLite locked, busy, out of space or
 * read-only; PostgreSQL unreachable, its connection lost, shutting down, out of resources.
 */
export function isStoreFailure(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 8; c = c.cause, depth++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (/^SQLITE_(BUSY|LOCKED|IOERR|FULL|READONLY|CANTOPEN|PROTOCOL)/.test(code)) return true;
      // SQLSTATE classes 08 (connection), 53 (insufficient resources), 57 (operator intervention).
      if (/^(08|53|57)[0-9A-Z]{3}$/.test(code)) return true;
      if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH'].includes(code)) return true;
    }
    if (
      /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(
        c.message,
      )
    ) {
      return true;
    }
  }
  return false;
}

/** The public JSON shape of an error: `{ error: { code, message, traceId } }`. */
export interface ErrorBody {
  error: { code: WardenErrorCode; message: string; traceId: string; rule?: string } & Record<string, unknown>;
}

/** Serialise for a client: public fields only, never a stack or private detail. */
export function errorBody(e: WardenError, traceId: string): ErrorBody {
  return {
    error: {
      code: e.code,
      message: e.message,
      traceId,
      ...(e.rule === undefined ? {} : { rule: e.rule }),
      ...(e.data ?? {}),
    },
  };
}
