/** Types of the human-in-the-loop sections (issue #5): `approvals:`, `operators:`, `notifiers:`. */
import type { SecretRef } from './types.js';

/** What a human operator may do. `approver` decides approvals and reviews; `admin` may too. */
export type OperatorRole = 'admin' | 'approver' | 'auditor';

/** A human who may use the admin API (approvals today; agents, kill and audit queries later). */
export interface OperatorConfig {
  id: string;
  name?: string;
  email?: string;
  roles: OperatorRole[];
  /** The operator's Slack user id (U…): Slack button clicks by this user act as this operator. */
  slackUserId?: string;
}

/** How a caller that hits a high-risk tool waits for a human. */
export type ApprovalMode = 'wait' | 'pending';

export interface ApprovalsConfig {
  /** How long a request waits for a decision before it is denied (fail closed). Per tool: tools.<t>.approval.timeout. */
  timeoutMs: number;
  /** Default for callers that do not choose: hold the call (`wait`) or answer "pending" at once (`pending`). */
  mode: ApprovalMode;
  /** A waiting MCP call gets a progress notification this often (when the client sent a progress token). */
  progressIntervalMs: number;
  /** May the user an agent acts for approve that agent's request? Default false (separation of duties). */
  allowSelfApproval: boolean;
  /** Lifetime of operator tokens minted by `warden operator token` (default 8h, at most 24h). */
  operatorTokenTtlMs: number;
}

/** Events about one approval request. */
export type ApprovalNotifyEvent = 'approval.requested' | 'approval.decided' | 'review.flagged';
/** Everything a notifier can subscribe to: approvals, and security alerts (issue #7). */
export type NotifyEvent = ApprovalNotifyEvent | 'security.alert';

export interface SlackNotifierConfig {
  /** Bot token (xoxb-…) for chat.postMessage / chat.update. */
  botToken: SecretRef;
  /** Signing secret that verifies interactive callbacks (X-Slack-Signature). */
  signingSecret: SecretRef;
  /** Channel id the requests are posted to. */
  channel: string;
  /** Slack Web API base URL (default https://slack.com/api; tests point it at a local receiver). */
  apiUrl: string;
  events: NotifyEvent[];
  /** Callbacks whose X-Slack-Request-Timestamp is further from now than this are refused (default 5m). */
  timestampToleranceMs: number;
}

export interface WebhookNotifierConfig {
  name: string;
  url: string;
  /** HMAC-SHA256 key for the `webhook-signature` header (Standard Webhooks). */
  secret: SecretRef;
  events: NotifyEvent[];
  /** Deliveries tried before the notification goes to the dead-letter state. */
  maxAttempts: number;
  timeoutMs: number;
}

export interface NotifiersConfig {
  slack?: SlackNotifierConfig;
  webhooks: WebhookNotifierConfig[];
  /** Backoff between delivery attempts: initial delay, doubled each time up to the maximum (with jitter). */
  retry: { initialDelayMs: number; maxDelayMs: number };
}

/** Per-tool approval settings (`tools.<name>.approval`). */
export interface ToolApprovalConfig {
  /** Overrides approvals.timeout for this tool. */
  timeoutMs?: number;
  /** Overrides approvals.allowSelfApproval for this tool. */
  allowSelfApproval?: boolean;
}

/**
 * An external identity provider (issue #6) whose user tokens an agent may exchange for a
 * session acting for that user (RFC 8693). Users are named `<name>:<user claim>`.
 */
export interface IdentityProviderConfig {
  name: string;
  issuer: string;
  jwksUri: string;
  /** The audience its tokens must carry; absent = Warden's public URL. */
  audience?: string;
  userClaim: string;
  /** Agents that may act for its users without a `may_act` claim naming them. */
  actors: string[];
  algorithms: string[];
  jwksCacheMaxAgeMs: number;
  /**
   * Users may log in to Warden's consent page with this provider (OIDC authorization code +
   * PKCE, Warden as the relying party). Absent = its users only arrive through token exchange.
   */
  login?: {
    clientId: string;
    /** Absent = a public client (PKCE alone protects the code). */
    clientSecret?: SecretRef;
    /** Always includes `openid`. */
    scopes: string[];
    /** Overrides of the discovered endpoints; with both set, discovery is skipped. */
    authorizationEndpoint?: string;
    tokenEndpoint?: string;
    /** The login page's button text. */
    label: string;
  };
}
