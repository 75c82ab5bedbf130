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
  /** JSON nested deeper than this is rejected (NESTING_TOO_DEEP). */
  maxJsonDepth: number;
  /** Honour X-Forwarded-For for the client IP (only behind a trusted proxy). */
  trustProxy: boolean;
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

export interface HttpUpstreamConfig extends UpstreamBase {
  transport: 'http';
  url: string;
  /** Secret headers (e.g. Authorization), resolved per call and injected by the gateway. */
  credentials: { headers: Record<string, SecretRef & { prefix?: string }> };
}

export type UpstreamConfig = StdioUpstreamConfig | HttpUpstreamConfig;

export interface AgentConstraints {
  /** Maximum tool calls in one session. */
  maxToolCalls?: number;
  /** Client addresses allowed to use the session (CIDR list); absent = any. */
  allowedCidrs?: string[];
}

/** An agent declared in config (the article's AgentIdentity plus its credential). */
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
  /** Public JWK used to verify the agent's private_key_jwt assertions; absent = operator-issued tokens only. */
  publicJwk?: Record<string, unknown>;
  constraints: AgentConstraints;
}

export interface ToolConfig {
  risk: RiskClass;
}

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
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}
