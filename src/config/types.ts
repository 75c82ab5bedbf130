/**
 * The validated, resolved shape of Warden's configuration. `schema.ts` (zod)
 * produces it from `warden.yaml`; `defaults.ts` builds the embedded default.
 * Durations are milliseconds; times are epoch milliseconds.
 */

/** A reference to a secret: never the secret itself (secrets are not written in config files). */
export type SecretRef = { env: string } | { file: string };

/** Tool risk classes (DESIGN.md "Human in the loop"). */
export type RiskClass = 'low' | 'medium' | 'high' | 'critical';

export interface ServerConfig {
  host: string;
  port: number;
  /** Base URL clients use to reach the gateway; issuer and token audience derive from it. */
  publicUrl: string;
  /** Request bodies over this size get 413. */
  bodyLimitBytes: number;
  /** Request headers over this size (all together) get 431; tokens carry one scope per allowed tool. */
  headerLimitBytes: number;
  /** JSON nested deeper than this is rejected (NESTING_TOO_DEEP). */
  maxJsonDepth: number;
  /** Honour X-Forwarded-For for the client IP (only behind a trusted proxy). */
  trustProxy: boolean;
  /** Serve Prometheus metrics at /metrics. */
  metrics: boolean;
  /**
   * DNS-rebinding protection of the agent faces (/mcp, /v1): host names a request's Host header may
   * carry besides IP literals, localhost and publicUrl's host. Lower case, no port.
   */
  allowedHosts?: string[];
  /** Origins (scheme://host[:port]) a browser request may come from besides loopback ones and publicUrl's. */
  allowedOrigins?: string[];
}

export interface StoreConfig {
  /** `sqlite:<path>` (relative to dataDir when not absolute) or `postgres://…`. Resolved: no refs left. */
  url: string;
}

export interface TokenConfig {
  /** Session-token lifetime; at most 15 minutes (hard maximum, enforced at load). */
  ttlMs: number;
  alg: 'EdDSA' | 'ES256';
  /** A signing key older than this is rotated; old keys stay published until their tokens expire. */
  rotateAfterMs: number;
  /** Default per-session tool-call limit when an agent sets none. */
  maxToolCalls: number;
  /** Allowed clock skew when verifying. */
  clockSkewMs: number;
}

interface UpstreamBase {
  /** Unique upstream name; also the collision prefix (`<name>__<tool>`). */
  name: string;
  /** Per-call timeout. */
  timeoutMs: number;
  /** Connect timeout. */
  connectTimeoutMs: number;
}

export interface StdioUpstreamConfig extends UpstreamBase {
  transport: 'stdio';
  command: string;
  args: string[];
  cwd?: string;
  /** Non-secret environment for the child. */
  env: Record<string, string>;
  /** Secret environment for the child, resolved from refs when the process starts. */
  credentials: { env: Record<string, SecretRef> };
}

/** An upstream's OAuth client credentials: the gateway obtains and renews the access token itself. */
export interface UpstreamOAuthConfig {
  tokenUrl: string;
  clientId: string;
  clientSecret: SecretRef;
  scope?: string;
  /** RFC 8707 resource indicator for the token. */
  resource?: string;
  /** `audience` parameter some providers use instead of `resource`. */
  audience?: string;
}

export interface HttpUpstreamConfig extends UpstreamBase {
  transport: 'http';
  url: string;
  /**
   * Secret headers (e.g. Authorization), resolved per call and injected by the gateway;
   * and/or OAuth client credentials, whose access token goes in `Authorization: Bearer`.
   */
  credentials: {
    headers: Record<string, SecretRef & { prefix?: string }>;
    oauth?: UpstreamOAuthConfig;
    /** Each user's own account at the upstream (issue #6): their token is attached to their calls. */
    userOAuth?: UpstreamUserOAuthConfig;
  };
  /**
   * The agent's client features this upstream may use: its sampling, elicitation and roots requests
   * are relayed to the calling agent's own MCP session, and refused (and audited) otherwise. Absent = all off.
   */
  relay?: RelayConfig;
  /**
   * Bytes of one response read at most (a POST's whole JSON body or event stream, one event of
   * the GET stream); past it the request is aborted and the call fails. Absent = 16 MiB.
   */
  maxResultBytes?: number;
}

/** Server-to-client features an upstream may use through Warden (all off by default). */
export interface RelayConfig {
  sampling: boolean;
  elicitation: boolean;
  roots: boolean;
}

/** Per-user credentials: users connect their account at `issuer`; Warden keeps their tokens, encrypted. */
export interface UpstreamUserOAuthConfig {
  /** The upstream's authorization server (RFC 8414 / OpenID discovery). */
  issuer: string;
  clientId: string;
  /** Absent = a public client (PKCE only). */
  clientSecret?: SecretRef;
  scopes: string[];
  /** RFC 8707 resource indicator; default the upstream's URL. */
  resource?: string;
}

export type UpstreamConfig = StdioUpstreamConfig | HttpUpstreamConfig;

export interface AgentConstraints {
  /** Maximum tool calls in one session. */
  maxToolCalls?: number;
  /** Client addresses allowed to use the session (CIDR list); absent = any. */
  allowedCidrs?: string[];
}

/** An agent declared in config (the article's AgentIdentity plus its credential). */
/** The `oauth:` section: dynamic registration, client metadata documents, grant lifetimes. */
export interface OAuthConfig {
  registration: boolean;
  clientMetadataDocuments: boolean;
  /** Lower-case host names whose client metadata documents may resolve to private addresses. */
  allowPrivateClientHosts: string[];
  grantTtlMs: number;
  refreshTokenTtlMs: number;
  loginSessionTtlMs: number;
  /** 32 random bytes (base64/base64url) that encrypt users' upstream tokens at rest; needed with userOAuth. */
  tokenKey?: SecretRef;
}

export interface AgentConfig {
  id: string;
  type: string;
  version: string;
  environment: string;
  owner: string;
  /** Mandatory expiry (epoch ms). */
  expiresAt: number;
  maxConcurrentSessions: number;
  allowedTools: string[];
  deniedTools: string[];
  /** Resource-scope patterns the agent may hold (e.g. `orders:read:user:*`), granted on request. */
  scopes?: string[];
  /** Public JWK used to verify the agent's private_key_jwt assertions; absent = operator-issued tokens only. */
  publicJwk?: Record<string, unknown>;
  constraints: AgentConstraints;
  /** Users may log in through these OAuth clients and let them act as this agent for them (issue #6). */
  delegation?: { clients: string[]; users: string[] } | null;
}

/** Constraints on one tool argument, on top of the upstream's JSON Schema (issue #3). */
export interface ArgumentRule {
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object';
  /** A regular expression the whole string value must match (write `^…$`). */
  pattern?: string;
  enum?: Array<string | number | boolean>;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
}

export interface ToolConfig {
  risk: RiskClass;
  /** Free labels policies can match on (e.g. read, write, external, money). */
  tags: string[];
  /** Cost units charged per call, for budgets. */
  cost: number;
  /** Per-argument constraints (rejected, never rewritten). */
  arguments: Record<string, ArgumentRule>;
  /** Argument keys refused anywhere in the arguments (besides __proto__, constructor, prototype). */
  forbiddenKeys: string[];
  /**
   * Resource scopes the call needs, as templates over argument values, e.g.
   * `orders:read:user:{userId}`: the token must carry that scope (or a broader one).
   */
  resourceScopes: string[];
  /** Approval settings for this tool (timeout, self-approval); absent = the approvals section's. */
  approval?: ToolApprovalConfig;
  /** What the tool does with data (issue #7): drives session taint and policies on `resource.capabilities`. */
  capabilities?: ToolCapability[];
  /** Arguments holding the addresses or phone numbers the tool sends to (`context.recipients`). */
  recipients?: string[];
}

export type {
  ApprovalMode,
  ApprovalNotifyEvent,
  ApprovalsConfig,
  IdentityProviderConfig,
  NotifiersConfig,
  NotifyEvent,
  OperatorConfig,
  OperatorRole,
  SlackNotifierConfig,
  ToolApprovalConfig,
  WebhookNotifierConfig,
} from './approval-types.js';
export type { LimitsConfig } from './limits-types.js';
export type { PolicyConfig } from './policy-types.js';
export type { AuditConfig, AuditKeyRef, AuditPublishWebhook, AuditSinkWebhook } from './schema-audit.js';
export type {
  AnomalyResponseKind,
  AnomalyRule,
  AnomalySeverity,
  MonitoringConfig,
  MonitorWeekday,
} from './schema-monitoring.js';

import type {
  ApprovalsConfig,
  IdentityProviderConfig,
  NotifiersConfig,
  OperatorConfig,
  ToolApprovalConfig,
} from './approval-types.js';
import type { LimitsConfig } from './limits-types.js';
import type { PolicyConfig } from './policy-types.js';
import type { AuditConfig } from './schema-audit.js';
import type { BreakersConfig } from './schema-breakers.js';
import type { InspectionConfig, TaintConfig, ToolCapability } from './schema-inspection.js';
import type { MonitoringConfig } from './schema-monitoring.js';
import type { PinningConfig } from './schema-pinning.js';
import type { TracingConfig } from './schema-tracing.js';

export interface WardenConfig {
  /** Absolute path of the config file, or null for the embedded default. */
  source: string | null;
  /** Directory for local state (SQLite, keys); absolute. Default `<cwd>/.warden`. */
  dataDir: string;
  server: ServerConfig;
  store: StoreConfig;
  tokens: TokenConfig;
  upstreams: UpstreamConfig[];
  agents: AgentConfig[];
  tools: Record<string, ToolConfig>;
  /** Cedar policy files and the YAML shorthand compiled to Cedar (issue #3). */
  policy: PolicyConfig;
  /** Rate limits and cost budgets (issue #3). */
  limits: LimitsConfig;
  /** Human in the loop: timeouts, waiting mode, separation of duties (issue #5). */
  approvals: ApprovalsConfig;
  /** Humans who may use the admin API (approvers, admins, auditors). */
  operators: OperatorConfig[];
  /** Where approval requests and decisions are announced (Slack, webhooks). */
  notifiers: NotifiersConfig;
  /** External identity providers whose user tokens agents may exchange (RFC 8693). */
  identityProviders: IdentityProviderConfig[];
  /** Users' delegated logins at the embedded authorization server (issue #6). */
  oauth: OAuthConfig;
  /** Detectors on arguments and results (issue #7). */
  inspection: InspectionConfig;
  /** What tainted sessions may still do with tools that communicate externally (issue #7). */
  taint: TaintConfig;
  /** Tool-definition pinning: how a tool seen for the first time is approved (issue #7). */
  pinning: PinningConfig;
  /** Behavioural baselines, anomaly rules and automatic responses (issue #8). */
  monitoring: MonitoringConfig;
  /** Circuit breakers per session and per agent: failures, cost, wall time (issue #8). */
  breakers: BreakersConfig;
  /** OpenTelemetry spans per call and per pipeline step; off by default (issue #8). */
  tracing: TracingConfig;
  /** Merkle checkpoints, HMAC of sensitive values, SIEM sinks, retention (issue #9). */
  audit: AuditConfig;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}
