/** Public types of the upstream pool. */
import type { HttpUpstreamConfig, SecretRef } from '../config/types.js';
import type { UserOAuth } from './user-oauth.js';

/** A tool as Warden publishes it: public name plus where it really lives. */
export interface AggregatedTool {
  /** Public name: the upstream's name, or `<upstream>__<tool>` when two upstreams share it. */
  name: string;
  /** Upstream (config) name. */
  upstream: string;
  /** The tool's name at the upstream. */
  upstreamName: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

export type UpstreamState = 'up' | 'down' | 'connecting';

/** One upstream's health, for /readyz and the admin API. */
export interface UpstreamStatus {
  name: string;
  transport: 'stdio' | 'http';
  state: UpstreamState;
  /** Tools last listed by this upstream (kept while it is down). */
  tools: number;
  /** Operator-facing reason of the last failure; never a secret, but not for agents either. */
  lastError?: string;
}

/** Resolves a secret reference to its value (env var, file, …); injected by the caller. */
export type SecretResolver = (ref: SecretRef) => Promise<string>;

/** The subset of a pino logger the pool uses. */
export interface PoolLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export interface CallToolOptions {
  /** Aborts the upstream request (the upstream gets notifications/cancelled). */
  signal?: AbortSignal;
  /** Overrides the upstream's configured per-call timeout. */
  timeoutMs?: number;
  /** The user the call is made for: upstreams with per-user credentials use this user's own account. */
  userId?: string | null;
  /** Progress the upstream reports for this call (notifications/progress), in its own numbers. */
  onProgress?: (progress: UpstreamProgress) => void;
  /**
   * The agent's MCP session the call comes from (issue #10): when it takes session-scoped
   * upstream connections, the call runs on its own one, so what the upstream asks back (sampling,
   * elicitation, roots) and logs reaches this session and no other.
   */
  session?: SessionScope;
}

/** One progress notification from an upstream. */
export interface UpstreamProgress {
  progress: number;
  total?: number;
  message?: string;
}

/** What the pool needs of an agent's MCP session to route a call (src/upstream/session.ts has one). */
export interface SessionScope {
  /** The session's own connection to `parent`'s upstream, or undefined to use the shared one. */
  connectionFor(
    parent: import('./connection.js').UpstreamConnection,
  ): Promise<import('./connection.js').UpstreamConnection | undefined>;
  /** Marks a call of this session in flight at `upstream` (what the upstream asks back is related to it). */
  track(upstream: string): () => void;
}

export interface ReconnectOptions {
  /** First retry delay after a failure. Default 500 ms. */
  initialMs?: number;
  /** Cap of the exponential backoff. Default 30 s. */
  maxMs?: number;
}

export interface UpstreamPoolOptions {
  resolveSecret: SecretResolver;
  logger?: PoolLogger;
  reconnect?: ReconnectOptions;
  /** Jitter source in [0, 1); injected so tests can pin it. Default Math.random. */
  random?: () => number;
  /** Per-user credentials (credentials.userOAuth): each such upstream's OAuth client and who connected. */
  userOAuth?: {
    client(config: HttpUpstreamConfig): UserOAuth;
    knownUsers(issuer: string): Promise<string[]>;
  };
}
