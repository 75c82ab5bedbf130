/**
 * Session-scoped upstream connections (issue #10). An upstream may ask the
 * client back — sampling (the agent's model), elicitation (its user), roots
 * (its workspace) — and logs while it works. Over one connection shared by
 * every agent nothing says whose call that was, so an agent session whose
 * client declared such a feature gets its own upstream session per HTTP
 * upstream: whatever that connection receives belongs to this agent session
 * and to no other, structurally, not by matching ids.
 *
 * The connection declares the agent's capabilities less what the operator
 * did not allow for that upstream (`upstreams[].relay`); a request outside
 * them is refused and audited. Sessions that declare none of these features
 * share the pool's connection (the fast path), where upstream log messages
 * are not forwarded.
 */
import type {
  ClientCapabilities,
  LoggingLevel,
  Notification,
  Request,
  RequestId,
  Result,
} from '@modelcontextprotocol/sdk/types.js';
import { EmptyResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { SessionLink, UpstreamConnection } from './connection.js';
import type { SessionScope, UpstreamProgress } from './types.js';

/** What an upstream may send the agent unasked; anything else is dropped. */
const FORWARDED_NOTIFICATIONS = new Set(['notifications/message']);

/** RFC 5424 severities in MCP's order (logging/setLevel). */
const LEVELS: readonly LoggingLevel[] = [
  'debug',
  'info',
  'notice',
  'warning',
  'error',
  'critical',
  'alert',
  'emergency',
];

/** How a server-to-client request ended, for the audit log. */
export interface RelayRecord {
  upstream: string;
  method: string;
  outcome: 'relayed' | 'refused' | 'failed';
  /** Why it was refused or failed. */
  reason?: string;
  /** What can be recorded of the answer without its content (e.g. elicitation's action, sampling's model). */
  summary?: Record<string, string | number | boolean>;
  /** The trace id of the agent's call it happened during, if any. */
  traceId?: string;
}

/** The agent's MCP session, as seen from its upstream connections. */
export interface Downstream {
  /** What the agent's client declared at initialize (undefined before). */
  capabilities(): ClientCapabilities | undefined;
  /** Sends a request to the agent's client, on the stream of `relatedRequestId` when there is one. */
  request(
    request: Request,
    relatedRequestId: RequestId | undefined,
    signal: AbortSignal,
    onProgress?: (progress: UpstreamProgress) => void,
  ): Promise<Result>;
  /** Sends a notification to the agent's client. */
  notify(notification: Notification, relatedRequestId: RequestId | undefined): void;
  /** Audits one server-to-client request. */
  record(record: RelayRecord): void;
}

/** What this needs of the pool. */
export interface SessionConnectionFactory {
  sessionConnection(parent: UpstreamConnection, link: Omit<SessionLink, 'parent'>): UpstreamConnection;
}

/** One agent MCP session's own upstream connections, opened on first use and closed with the session. */
export class SessionUpstreams {
  private readonly conns = new Map<string, UpstreamConnection>();
  /** Agent calls in flight, per upstream (newest last): what the upstream asks back relates to them. */
  private readonly inFlight = new Map<string, Array<{ requestId: RequestId; traceId: string }>>();
  private level: LoggingLevel | undefined;
  private closed = false;

  constructor(
    private readonly pool: SessionConnectionFactory,
    private readonly downstream: Downstream,
  ) {}

  /** Open session-scoped connections (for tests and metrics). */
  get size(): number {
    return this.conns.size;
  }

  /**
   * Whether this session takes its own upstream connections at all (its client declared sampling,
   * elicitation or roots). Sessions that do not stay on the shared connections and are not
   * tracked per call: the fast path.
   */
  scoped(): boolean {
    const agent = this.downstream.capabilities();
    return !this.closed && agent !== undefined && Boolean(agent.sampling || agent.elicitation || agent.roots);
  }

  /** The scope the pool routes one agent request (`requestId`, audited under `traceId`) with. */
  forCall(requestId: RequestId, traceId: string): SessionScope {
    return {
      connectionFor: (parent) => this.connectionFor(parent),
      track: (upstream) => {
        const call = { requestId, traceId };
        const list = this.inFlight.get(upstream) ?? [];
        list.push(call);
        this.inFlight.set(upstream, list);
        return () => {
          const i = list.lastIndexOf(call);
          if (i >= 0) list.splice(i, 1);
          if (list.length === 0) this.inFlight.delete(upstream);
        };
      },
    };
  }

  /** The capabilities a session-scoped connection to `parent` declares; undefined = use the shared one. */
  private wanted(parent: UpstreamConnection): ClientCapabilities | undefined {
    const config = parent.config;
    if (config.transport !== 'http' || config.credentials.userOAuth) return undefined;
    if (!this.scoped()) return undefined;
    const agent = this.downstream.capabilities()!;
    const allowed = config.relay;
    return {
      ...(agent.sampling && allowed?.sampling ? { sampling: agent.sampling } : {}),
      ...(agent.elicitation && allowed?.elicitation ? { elicitation: agent.elicitation } : {}),
      ...(agent.roots && allowed?.roots ? { roots: agent.roots } : {}),
    };
  }

  /** This session's connection to `parent`'s upstream (connected), or undefined for the shared one. */
  async connectionFor(parent: UpstreamConnection): Promise<UpstreamConnection | undefined> {
    const capabilities = this.wanted(parent);
    if (!capabilities) return undefined;
    let conn = this.conns.get(parent.name);
    if (!conn) {
      const upstream = parent.name;
      conn = this.pool.sessionConnection(parent, {
        capabilities,
        request: (req, signal, onProgress) => this.relay(upstream, req, signal, onProgress),
        refused: (req) => {
          const reason = `Warden does not relay ${req.method} from upstream ${upstream} to this agent`;
          this.downstream.record({
            upstream,
            method: req.method,
            outcome: 'refused',
            reason,
            ...this.trace(upstream),
          });
          return reason;
        },
        notify: (n) => this.forward(upstream, n),
      });
      this.conns.set(upstream, conn);
    }
    if (conn.state !== 'up') {
      await conn.connect();
      if (conn.snapshot().state === 'up' && this.level) await this.applyLevel(conn, this.level);
    }
    // Still down: the call fails with UPSTREAM_UNAVAILABLE, never falls back to the shared connection.
    return conn;
  }

  /** logging/setLevel from the agent: filters what is forwarded and is passed on to open connections. */
  async setLogLevel(level: LoggingLevel): Promise<void> {
    this.level = level;
    await Promise.all([...this.conns.values()].map((c) => this.applyLevel(c, level)));
  }

  private async applyLevel(conn: UpstreamConnection, level: LoggingLevel): Promise<void> {
    if (conn.state !== 'up' || !conn.serverCapabilities()?.logging) return;
    await conn.request({ method: 'logging/setLevel', params: { level } }, EmptyResultSchema).catch(() => {}); // the level is still applied here, to what is forwarded
  }

  private related(upstream: string): RequestId | undefined {
    const list = this.inFlight.get(upstream);
    return list?.[list.length - 1]?.requestId;
  }

  private trace(upstream: string): { traceId?: string } {
    const list = this.inFlight.get(upstream);
    const call = list?.[list.length - 1];
    return call ? { traceId: call.traceId } : {};
  }

  private async relay(
    upstream: string,
    req: Request,
    signal: AbortSignal,
    onProgress?: (progress: UpstreamProgress) => void,
  ): Promise<Result> {
    try {
      const result = await this.downstream.request(req, this.related(upstream), signal, onProgress);
      this.downstream.record({
        upstream,
        method: req.method,
        outcome: 'relayed',
        summary: summarize(result),
        ...this.trace(upstream),
      });
      return result;
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      this.downstream.record({
        upstream,
        method: req.method,
        outcome: 'failed',
        reason,
        ...this.trace(upstream),
      });
      throw e;
    }
  }

  private forward(upstream: string, n: Notification): void {
    if (!FORWARDED_NOTIFICATIONS.has(n.method)) return;
    if (n.method === 'notifications/message' && this.level) {
      const level = (n.params as { level?: unknown } | undefined)?.level;
      const at = LEVELS.indexOf(level as LoggingLevel);
      if (at >= 0 && at < LEVELS.indexOf(this.level)) return;
    }
    this.downstream.notify(n, this.related(upstream));
  }

  /** Closes every connection of this session (its upstream sessions end with it). */
  async close(): Promise<void> {
    this.closed = true;
    const conns = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(conns.map((c) => c.close()));
  }
}

/** What an answer says without its content: elicitation's action, sampling's model and stop reason, roots' count. */
function summarize(result: Result): Record<string, string | number | boolean> {
  const r = result as { action?: unknown; model?: unknown; stopReason?: unknown; roots?: unknown };
  const out: Record<string, string | number | boolean> = {};
  if (typeof r.action === 'string') out['action'] = r.action;
  if (typeof r.model === 'string') out['model'] = r.model.slice(0, 100);
  if (typeof r.stopReason === 'string') out['stopReason'] = r.stopReason.slice(0, 50);
  if (Array.isArray(r.roots)) out['roots'] = r.roots.length;
  return out;
}
