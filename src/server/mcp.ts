/**
 * The MCP face: Streamable HTTP at /mcp with the official SDK. Each MCP session
 * is bound to one authenticated agent session; a request carrying another
 * session's token cannot ride it. Tool calls go through the pipeline.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import { isJsonContentType } from '@modelcontextprotocol/sdk/shared/mediaType.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  CreateMessageResultWithToolsSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  isInitializeRequest,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListRootsResultSchema,
  ListToolsRequestSchema,
  type LoggingLevel,
  RELATED_TASK_META_KEY,
  ReadResourceRequestSchema,
  type Request,
  ResultSchema,
  SetLevelRequestSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { Context } from 'hono';
import { errorBody, toWardenError, WardenError } from '../errors.js';
import type { Agent, Session } from '../identity/index.js';
import type { AccessContext, AccessGate } from '../pipeline/access.js';
import { type Pipeline, visibleTools } from '../pipeline/index.js';
import { resultJson } from '../pipeline/result-json.js';
import {
  type AggregatedTool,
  type RelayRecord,
  SessionUpstreams,
  type UpstreamProgress,
} from '../upstream/index.js';
import { progressOf } from '../upstream/progress.js';
import type { SessionConnectionFactory } from '../upstream/session.js';
import type { Clock } from '../util/clock.js';
import { randomId } from '../util/clock.js';
import type { Logger } from './logger.js';
import { serveEventStream } from './node-event-stream.js';
import {
  bearerOf,
  challengeHeaders,
  clientIpOf,
  errorResponse,
  type NodeBindings,
  parseJsonBody,
  readBodyText,
  traceIdOf,
} from './request.js';

/** Who is on the other end of an MCP session. */
interface Principal {
  agent: Agent;
  session: Session;
  scopes: Set<string>;
}

interface McpSession {
  id: string;
  transport: WebStandardStreamableHTTPServerTransport;
  server: Server;
  agentSessionId: string;
  agentId: string;
  /** The agent's type at open, for the audit entries of relayed upstream requests. */
  agentType: string;
  expiresAt: number;
  lastSeen: number;
  /** Tool calls in flight (a session with calls running is never closed to make room). */
  active: number;
  /** Resource URIs this session subscribed to (each counted once at the pool); made on first subscribe. */
  subscriptions?: Set<string>;
  /**
   * Its own upstream connections, when its client declared sampling, elicitation or roots (issue #10):
   * made by its first call that needs them (see `ownUpstreams`), so that other sessions hold none.
   */
  upstreams?: SessionUpstreams;
  /** The level the client set with logging/setLevel, passed on to its own upstream connections. */
  logLevel?: LoggingLevel;
  /** Set once the session is forgotten: nothing is opened for it after that. */
  closed?: boolean;
  /** Tool calls answered on the direct path, by JSON-RPC id: `notifications/cancelled` aborts them (made on first use). */
  direct?: Map<string | number, AbortController>;
}

/** A request schema the SDK server takes a handler for. */
type HandlerSchema = Parameters<Server['setRequestHandler']>[0];

/** What the SDK hands a request handler besides the request (the parts used here). */
interface HandlerExtra {
  sessionId?: string;
  authInfo?: { token?: string; extra?: Record<string, unknown> };
  signal: AbortSignal;
  requestId: string | number;
  sendNotification: (n: {
    method: 'notifications/progress';
    params: Record<string, unknown>;
  }) => Promise<void>;
}

/** A request handler registered on every session's server. */
type SharedHandler = readonly [HandlerSchema, (req: never, extra: HandlerExtra) => Promise<unknown>];

const handler = <S extends HandlerSchema>(
  schema: S,
  handle: (req: SchemaOutput<S>, extra: HandlerExtra) => Promise<unknown>,
): SharedHandler => [schema, handle as (req: never, extra: HandlerExtra) => Promise<unknown>];

/** What a tools/call needs from the HTTP request that carried it. */
interface CallContext {
  token: string | undefined;
  principal: Principal | undefined;
  clientIp: string;
  traceId: string;
  /** The arguments exactly as parsed from JSON (the SDK's zod parse drops an own "__proto__"). */
  rawArguments: unknown;
  signal: AbortSignal;
  requestId: string | number;
  /** Sends a notification on this call's response stream (progress); absent on the direct path. */
  notify?: (n: { method: 'notifications/progress'; params: Record<string, unknown> }) => Promise<void>;
}

/** A tools/call the direct path may answer: the message as sent, checked field by field. */
interface DirectCall {
  id: string | number;
  params: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> };
}

export interface McpFaceDeps {
  pipeline: Pipeline;
  /** Token verification (audits SESSION_EXPIRED itself). */
  verify(
    token: string,
    traceId: string,
  ): Promise<{ agent: Agent; session: Session; claims: { scope: string } }>;
  tools(): AggregatedTool[];
  /** Configured risk class per tool, shown to agents in tools/list (`_meta["warden/risk"]`). */
  riskOf?: (tool: string) => import('../config/types.js').RiskClass;
  audit(input: import('../audit/index.js').AuditInput): Promise<unknown>;
  clock: Clock;
  bodyLimitBytes: number;
  maxJsonDepth: number;
  trustProxy: boolean;
  /** URL of the RFC 9728 protected-resource metadata, advertised on 401. */
  resourceMetadataUrl: string;
  version: string;
  logger: Logger;
  /** Idle MCP sessions are closed after this long. */
  idleTimeoutMs?: number;
  /** Bound on open MCP sessions per agent session (memory is finite). */
  maxPerAgentSession?: number;
  /** Opens session-scoped upstream connections (the pool); absent = every session shares the pool's. */
  upstreams?: SessionConnectionFactory;
  /** How long a relayed sampling or elicitation request may wait for the agent's client. Default 10 min. */
  relayTimeoutMs?: number;
  /** Resources, prompts and completion under policy; absent = not offered. */
  access?: AccessGate;
}

/** JSON-RPC error codes for Warden's errors on non-tool requests. */
function mcpError(e: WardenError, traceId: string): Error {
  const code =
    e.code === 'RESOURCE_UNKNOWN'
      ? -32002 // MCP's "resource not found"
      : e.status === 400 || e.status === 404
        ? ErrorCode.InvalidParams
        : e.status === 403
          ? -32003
          : ErrorCode.InternalError;
  // A plain error carrying code and data: the SDK sends its message as is (an McpError's message
  // already says "MCP error <code>:", which the client would then prefix a second time).
  return Object.assign(new Error(`${e.code}: ${e.message} (trace ${traceId})`), {
    code,
    data: errorBody(e, traceId).error,
  });
}

/** What the agent's client must answer to each server-to-client request Warden relays. */
function relayedResultSchema(req: Request) {
  switch (req.method) {
    case 'sampling/createMessage':
      return (req.params as { tools?: unknown } | undefined)?.tools === undefined
        ? CreateMessageResultSchema
        : CreateMessageResultWithToolsSchema;
    case 'elicitation/create':
      return ElicitResultSchema;
    case 'roots/list':
      return ListRootsResultSchema;
    default:
      return ResultSchema;
  }
}

/** The MCP face: owns the live MCP sessions and answers POST/GET/DELETE /mcp. */
export class McpFace {
  private readonly sessions = new Map<string, McpSession>();
  /** The same sessions by the agent session they are bound to: opening one counts its siblings without a scan of all. */
  private readonly byAgentSession = new Map<string, Set<McpSession>>();
  private readonly validator = new AjvJsonSchemaValidator();
  /** The agent ended its MCP session (DELETE): its own upstream sessions end with it. One for all sessions. */
  private readonly sessionEnded = (sid: string): void => {
    const ended = this.sessions.get(sid);
    if (ended) void this.forget(ended);
  };
  /** Request handlers every session's server shares (see installHandlers). */
  private handlers?: SharedHandler[];
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly deps: McpFaceDeps) {
    this.sweeper = setInterval(() => void this.sweep(), 30_000);
    this.sweeper.unref();
  }

  /** Number of open MCP sessions. */
  get size(): number {
    return this.sessions.size;
  }

  /** Handle one HTTP request to /mcp. */
  async handle(c: Context<{ Bindings: NodeBindings }>): Promise<Response> {
    const traceId = traceIdOf(c);
    const method = c.req.method;
    try {
      if (method === 'POST') {
        const declared = Number(c.req.header('content-length') ?? 'NaN');
        if (Number.isFinite(declared) && declared > this.deps.bodyLimitBytes) {
          throw new WardenError(
            'PAYLOAD_TOO_LARGE',
            `The request body exceeds ${this.deps.bodyLimitBytes} bytes`,
            {
              rule: 'request.body-limit',
            },
          );
        }
      }
      const token = bearerOf(c);
      const principal = await this.authenticate(token, traceId);
      if (method === 'POST') return await this.post(c, token!, principal, traceId);
      if (method === 'GET' || method === 'DELETE') return await this.existing(c, token!, principal, traceId);
      return c.json({ error: { code: 'INVALID_REQUEST', message: 'Method not allowed', traceId } }, 405, {
        Allow: 'GET, POST, DELETE',
      });
    } catch (e) {
      return this.fail(c, toWardenError(e), traceId);
    }
  }

  private async authenticate(token: string | undefined, traceId: string): Promise<Principal> {
    if (!token)
      throw new WardenError('UNAUTHENTICATED', 'A bearer token is required', { rule: 'auth.token-required' });
    const { agent, session, claims } = await this.deps.verify(token, traceId);
    return { agent, session, scopes: new Set(claims.scope.split(' ').filter(Boolean)) };
  }

  private async post(c: Context<{ Bindings: NodeBindings }>, token: string, p: Principal, traceId: string) {
    let body: unknown;
    try {
      body = parseJsonBody(
        await readBodyText(c.req.raw, this.deps.bodyLimitBytes, c.env?.incoming),
        this.deps.maxJsonDepth,
      );
      // JSON-RPC batching was removed from MCP (2025-06-18); refusing it also keeps one
      // HTTP request = one decision in the audit log.
      if (Array.isArray(body)) {
        throw new WardenError('BATCH_NOT_SUPPORTED', 'JSON-RPC batches are not accepted', {
          rule: 'request.batch',
        });
      }
      if (typeof body !== 'object' || body === null || (body as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
        throw new WardenError('INVALID_REQUEST', 'The body is not a JSON-RPC 2.0 message', {
          rule: 'request.jsonrpc',
        });
      }
    } catch (e) {
      const error = toWardenError(e);
      await this.auditRejected(p, traceId, error, c);
      throw error;
    }
    const sessionId = c.req.header('mcp-session-id');
    let session: McpSession;
    if (sessionId === undefined) {
      if (!isInitializeRequest(body)) {
        throw new WardenError('INVALID_REQUEST', 'Mcp-Session-Id is required after initialize', {
          rule: 'mcp.session-required',
        });
      }
      session = await this.open(p);
    } else {
      session = this.bound(sessionId, p);
      const direct = directCall(body, c.req.raw.headers, session, this.wantsOwnUpstreams(session));
      if (direct) {
        session.lastSeen = this.deps.clock.now();
        return this.answerDirect(c, token, p, traceId, session, direct);
      }
      cancelDirect(body, session);
    }
    session.lastSeen = this.deps.clock.now();
    return session.transport.handleRequest(c.req.raw, {
      parsedBody: body,
      authInfo: {
        token,
        clientId: p.agent.id,
        scopes: [...p.scopes],
        expiresAt: Math.floor(p.session.expiresAt / 1000),
        extra: {
          principal: p,
          clientIp: clientIpOf(c, this.deps.trustProxy),
          traceId,
          // The SDK's zod parse drops an own "__proto__" key; the pipeline checks arguments as sent.
          rawArguments: rawToolArguments(body),
        },
      },
    });
  }

  private async existing(
    c: Context<{ Bindings: NodeBindings }>,
    token: string,
    p: Principal,
    traceId: string,
  ) {
    const sessionId = c.req.header('mcp-session-id');
    if (!sessionId) {
      throw new WardenError('INVALID_REQUEST', 'Mcp-Session-Id header is required', {
        rule: 'mcp.session-required',
      });
    }
    const session = this.bound(sessionId, p);
    session.lastSeen = this.deps.clock.now();
    const response = await session.transport.handleRequest(c.req.raw, {
      authInfo: {
        token,
        clientId: p.agent.id,
        scopes: [...p.scopes],
        extra: { principal: p, traceId },
      },
    });
    // The notification stream stays open for the session's life: served on Node's response, not
    // through a web stream (src/server/node-event-stream.ts).
    const outgoing = c.env?.outgoing;
    return c.req.method === 'GET' && outgoing !== undefined
      ? serveEventStream(session.transport, response, outgoing)
      : response;
  }

  /** The MCP session named by the header, if it belongs to the caller's agent session. */
  private bound(sessionId: string, p: Principal): McpSession {
    const s = this.sessions.get(sessionId);
    if (!s)
      throw new WardenError('MCP_SESSION_UNKNOWN', 'Unknown or expired MCP session', { rule: 'mcp.session' });
    if (s.agentSessionId !== p.session.id || s.agentId !== p.agent.id) {
      throw new WardenError('MCP_SESSION_MISMATCH', 'This MCP session belongs to another agent session', {
        rule: 'mcp.session-binding',
        detail: `mcp session ${sessionId} bound to ${s.agentId}/${s.agentSessionId}, token is ${p.agent.id}/${p.session.id}`,
      });
    }
    return s;
  }

  private async open(p: Principal): Promise<McpSession> {
    const max = this.deps.maxPerAgentSession ?? 8;
    // From this count to the new session's registration below nothing is awaited: two opens racing
    // for one agent session cannot both take the same room (closing a session can wait on I/O, and
    // a second open counting during that wait once got a ninth session).
    const mine = [...(this.byAgentSession.get(p.session.id) ?? [])];
    let closing: Promise<void> | undefined;
    if (mine.length >= max) {
      // Clients that close without DELETE (the SDK's close() does not send it) leave sessions behind:
      // the least recently used one with no call in flight makes room. Only this agent session's own.
      const idle = mine.filter((s) => s.active === 0).sort((a, b) => a.lastSeen - b.lastSeen)[0];
      if (idle) {
        this.deps.logger.info(
          { mcpSession: idle.id, agentId: p.agent.id },
          'closing least recently used MCP session',
        );
        // forget() takes it out of the session maps before its first await; the rest is awaited below.
        closing = this.closeSession(idle);
        mine.splice(mine.indexOf(idle), 1);
      }
    }
    if (mine.length >= max) {
      throw new WardenError('SESSION_LIMIT_EXCEEDED', `At most ${max} MCP sessions per agent session`, {
        rule: 'mcp.max-sessions-per-agent-session',
      });
    }
    const id = randomId('mcp');
    const server = new Server(
      { name: 'warden', version: this.deps.version },
      {
        capabilities: {
          tools: { listChanged: true },
          logging: {},
          ...(this.deps.access
            ? {
                resources: { subscribe: true, listChanged: true },
                prompts: { listChanged: true },
                completions: {},
              }
            : {}),
        },
        instructions: 'Warden gateway: every tool call is authorised, limited and audited.',
        // One validator for every session: the SDK otherwise builds an Ajv instance (with
        // its formats) per server, which was most of an idle session's memory.
        jsonSchemaValidator: this.validator,
      },
    );
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      onsessionclosed: this.sessionEnded,
    });
    const entry: McpSession = {
      id,
      transport,
      server,
      agentSessionId: p.session.id,
      agentId: p.agent.id,
      agentType: p.agent.type,
      expiresAt: p.session.expiresAt,
      lastSeen: this.deps.clock.now(),
      active: 0,
    };
    this.installHandlers(server);
    this.sessions.set(id, entry);
    const siblings = this.byAgentSession.get(entry.agentSessionId);
    if (siblings) siblings.add(entry);
    else this.byAgentSession.set(entry.agentSessionId, new Set([entry]));
    try {
      await closing;
      await server.connect(transport);
    } catch (e) {
      await this.closeSession(entry);
      throw e;
    }
    return entry;
  }

  /**
   * The session's own upstream connections when its client declared sampling, elicitation or roots
   * (made on first need), else undefined: the session's calls use the shared connections.
   */
  private ownUpstreams(entry: McpSession): SessionUpstreams | undefined {
    const pool = this.deps.upstreams;
    if (pool === undefined || !this.wantsOwnUpstreams(entry)) return undefined;
    if (entry.upstreams === undefined) {
      entry.upstreams = this.sessionUpstreams(entry, entry.server, pool);
      if (entry.logLevel !== undefined) void entry.upstreams.setLogLevel(entry.logLevel);
    }
    return entry.upstreams;
  }

  /** Whether the session's calls need its own upstream connections (what `ownUpstreams` would give). */
  private wantsOwnUpstreams(entry: McpSession): boolean {
    return this.deps.upstreams !== undefined && entry.closed !== true && relaysToClient(entry.server);
  }

  /** The session's relay: what its own upstream connections ask back goes to this session only. */
  private sessionUpstreams(
    entry: McpSession,
    server: Server,
    pool: SessionConnectionFactory,
  ): SessionUpstreams {
    const timeout = this.deps.relayTimeoutMs ?? 10 * 60_000;
    return new SessionUpstreams(pool, {
      capabilities: () => server.getClientCapabilities(),
      request: (req, relatedRequestId, signal, onProgress) =>
        server.request(req as never, relayedResultSchema(req), {
          signal,
          timeout,
          ...(relatedRequestId === undefined ? {} : { relatedRequestId }),
          // The SDK gives the request its own progress token and routes the agent's progress here.
          ...(onProgress
            ? { onprogress: (p: UpstreamProgress) => onProgress(progressOf(p)), resetTimeoutOnProgress: true }
            : {}),
        }),
      notify: (n, relatedRequestId) => {
        void server
          .notification(n as never, relatedRequestId === undefined ? {} : { relatedRequestId })
          .catch(() => {});
      },
      record: (r) => void this.auditRelay(entry, r),
    });
  }

  /** One server-to-client request, as the audit log records it (never its content). */
  private async auditRelay(entry: McpSession, r: RelayRecord): Promise<void> {
    await this.deps
      .audit({
        traceId: r.traceId ?? randomId(),
        event: 'UPSTREAM_REQUEST',
        actorType: 'SYSTEM',
        actorId: `upstream:${r.upstream}`,
        agentId: entry.agentId,
        agentType: entry.agentType,
        sessionId: entry.agentSessionId,
        result: r.outcome === 'relayed' ? 'success' : r.outcome === 'refused' ? 'denied' : 'failure',
        decision: {
          allowed: r.outcome !== 'refused',
          ...(r.outcome === 'refused' ? { code: 'RELAY_DENIED', rule: 'upstream.relay' } : {}),
          reasons: [r.reason ?? `${r.method} relayed to the agent's MCP session`],
        },
        data: {
          face: 'mcp',
          upstream: r.upstream,
          method: r.method,
          mcpSession: entry.id,
          ...(r.summary ? { answer: r.summary } : {}),
        },
      })
      .catch((e: unknown) =>
        this.deps.logger.warn(
          { err: e instanceof Error ? e.message : String(e), upstream: r.upstream },
          'could not audit a relayed upstream request',
        ),
      );
  }

  /**
   * Every session's request handlers, made once and shared by all of them: each finds its session
   * by the transport's session id. Per-session closures were about a tenth of an idle session's
   * memory (docs/BENCHMARKS.md).
   */
  private installHandlers(server: Server): void {
    this.handlers ??= this.makeHandlers();
    for (const [schema, handler] of this.handlers) server.setRequestHandler(schema, handler as never);
  }

  /** The open session a request arrived on. */
  private sessionOf(extra: { sessionId?: string }): McpSession {
    const s = extra.sessionId === undefined ? undefined : this.sessions.get(extra.sessionId);
    if (!s)
      throw new WardenError('MCP_SESSION_UNKNOWN', 'Unknown or expired MCP session', { rule: 'mcp.session' });
    return s;
  }

  private makeHandlers(): SharedHandler[] {
    const handlers: SharedHandler[] = [
      // The level filters what this session's own upstream connections forward, and is passed on to them.
      handler(SetLevelRequestSchema, async (req, extra) => {
        const entry = this.sessionOf(extra);
        entry.logLevel = req.params.level;
        await entry.upstreams?.setLogLevel(req.params.level);
        return {};
      }),
      handler(ListToolsRequestSchema, async (_req, extra) => {
        const p = extra.authInfo?.extra?.['principal'] as Principal | undefined;
        if (!p) throw new Error('unauthenticated');
        return { tools: visibleTools(this.deps.tools(), p.agent, p.scopes, this.deps.riskOf) };
      }),
      handler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
        const x = extra.authInfo?.extra ?? {};
        return this.runCall(this.sessionOf(extra), req.params, {
          token: extra.authInfo?.token,
          principal: x['principal'] as Principal | undefined,
          clientIp: typeof x['clientIp'] === 'string' ? x['clientIp'] : '',
          traceId: typeof x['traceId'] === 'string' ? x['traceId'] : randomId(),
          rawArguments: x['rawArguments'],
          signal: extra.signal,
          requestId: extra.requestId,
          notify: (n) => extra.sendNotification(n),
        });
      }),
    ];
    if (this.deps.access) handlers.push(...this.accessHandlers(this.deps.access));
    return handlers;
  }

  /** One tools/call through the pipeline, whichever path brought it; Warden's refusals as tool errors. */
  private async runCall(
    entry: McpSession,
    params: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> },
    ctx: CallContext,
  ): Promise<CallToolResult> {
    const { traceId, notify } = ctx;
    const own = this.ownUpstreams(entry);
    const meta = params._meta;
    const progressToken = meta?.['progressToken'];
    const tracksProgress =
      notify !== undefined && (typeof progressToken === 'string' || typeof progressToken === 'number');
    // One increasing sequence per call: approval ticks first, then the upstream's own reports
    // (shifted past the ticks so that progress never goes back). `last`: the last value sent.
    let last: number | undefined;
    let ticks = 0;
    // A call held for a human keeps its request alive with progress notifications
    // (clients that reset their timeout on progress wait as long as the approval does).
    const onProgress = tracksProgress
      ? (message: string) => {
          last = (last ?? 0) + 1;
          ticks = last;
          void notify({
            method: 'notifications/progress',
            params: { progressToken, progress: last, message },
          }).catch(() => {});
        }
      : undefined;
    const onUpstreamProgress = tracksProgress
      ? (p: { progress: number; total?: number; message?: string }) => {
          const value = ticks + p.progress;
          if (last !== undefined && value <= last) return;
          last = value;
          void notify({
            method: 'notifications/progress',
            params: {
              progressToken,
              progress: value,
              ...(p.total === undefined ? {} : { total: ticks + p.total }),
              ...(p.message === undefined ? {} : { message: p.message }),
            },
          }).catch(() => {});
        }
      : undefined;
    entry.active++;
    try {
      const out = await this.deps.pipeline.run({
        token: ctx.token,
        toolName: params.name,
        parameters: ctx.rawArguments !== undefined ? ctx.rawArguments : (params.arguments ?? {}),
        reasoning: typeof meta?.['warden/reasoning'] === 'string' ? meta['warden/reasoning'] : undefined,
        traceId,
        clientIp: ctx.clientIp,
        face: 'mcp',
        signal: ctx.signal,
        ...(meta?.['warden/usage'] === undefined ? {} : { usage: meta['warden/usage'] }),
        ...(meta?.['warden/approvalId'] === undefined ? {} : { approvalId: meta['warden/approvalId'] }),
        ...(meta?.['warden/approval'] === undefined ? {} : { approvalMode: meta['warden/approval'] }),
        ...(onProgress ? { onProgress } : {}),
        ...(onUpstreamProgress ? { onUpstreamProgress } : {}),
        ...(own ? { session: own.forCall(ctx.requestId, traceId) } : {}),
        ...(ctx.principal ? { verified: ctx.principal } : {}),
      });
      if (out.ok) return out.result;
      return toolError(out.error, out.traceId);
    } finally {
      entry.active--;
    }
  }

  /**
   * A plain tools/call answered without the SDK's server and transport: the same pipeline and the
   * same result, as one JSON response (which Streamable HTTP allows in place of an event stream).
   * Only calls that need nothing of the SDK's session machinery come here (see directCall); the
   * SDK's per-message parsing, stream plumbing and result re-validation were a third of the
   * gateway's own time per call (docs/BENCHMARKS.md).
   */
  private async answerDirect(
    c: Context<{ Bindings: NodeBindings }>,
    token: string,
    p: Principal,
    traceId: string,
    entry: McpSession,
    call: DirectCall,
  ): Promise<Response> {
    const controller = new AbortController();
    entry.direct ??= new Map();
    const direct = entry.direct;
    direct.set(call.id, controller);
    let result: CallToolResult;
    try {
      result = await this.runCall(entry, call.params, {
        token,
        principal: p,
        clientIp: clientIpOf(c, this.deps.trustProxy),
        traceId,
        rawArguments: call.params.arguments,
        signal: controller.signal,
        requestId: call.id,
      });
    } finally {
      direct.delete(call.id);
    }
    if (controller.signal.aborted) {
      // A cancelled request gets no response (MCP): an event stream that ends without one.
      return new Response(null, {
        status: 200,
        headers: {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          'mcp-session-id': entry.id,
        },
      });
    }
    // The result's text as the outcome entry measured it (one serialisation per call).
    return new Response(`{"jsonrpc":"2.0","id":${JSON.stringify(call.id)},"result":${resultJson(result)}}`, {
      status: 200,
      headers: { 'content-type': 'application/json', 'mcp-session-id': entry.id },
    });
  }

  /** Resources, prompts and completion, each through the access gate (src/pipeline/access.ts). */
  private accessHandlers(gate: AccessGate): SharedHandler[] {
    /**
     * One request type through the gate: the principal and context the HTTP layer verified for
     * this request, and Warden's errors as JSON-RPC errors carrying its code and trace id.
     */
    const on = <S extends HandlerSchema, R>(
      schema: S,
      handle: (req: SchemaOutput<S>, p: Principal, ctx: AccessContext, entry: McpSession) => Promise<R>,
    ) =>
      handler(schema, async (req, extra) => {
        const x = extra.authInfo?.extra ?? {};
        const traceId = typeof x['traceId'] === 'string' ? x['traceId'] : randomId();
        try {
          const p = x['principal'] as Principal | undefined;
          if (!p) throw new WardenError('UNAUTHENTICATED', 'A bearer token is required');
          const clientIp = typeof x['clientIp'] === 'string' ? x['clientIp'] : '';
          return await handle(req, p, { traceId, clientIp, signal: extra.signal }, this.sessionOf(extra));
        } catch (e) {
          throw mcpError(toWardenError(e), traceId);
        }
      });
    return [
      on(ListResourcesRequestSchema, async (_req, p, ctx) => ({ resources: await gate.resources(p, ctx) })),
      on(ListResourceTemplatesRequestSchema, async (_req, p, ctx) => ({
        resourceTemplates: await gate.templates(p, ctx),
      })),
      on(ReadResourceRequestSchema, (req, p, ctx) => gate.readResource(p, req.params.uri, ctx)),
      on(SubscribeRequestSchema, async (req, p, ctx, entry) => {
        const uri = req.params.uri;
        entry.subscriptions ??= new Set();
        const subscriptions = entry.subscriptions;
        if (subscriptions.has(uri)) return {};
        // Claimed before the await: a second subscribe of the same URI meanwhile counts nothing twice.
        subscriptions.add(uri);
        try {
          await gate.subscribe(p, uri, ctx);
        } catch (e) {
          subscriptions.delete(uri);
          throw e;
        }
        return {};
      }),
      on(UnsubscribeRequestSchema, async (req, _p, _ctx, entry) => {
        if (entry.subscriptions?.delete(req.params.uri)) await gate.unsubscribe(req.params.uri);
        return {};
      }),
      on(ListPromptsRequestSchema, async (_req, p, ctx) => ({ prompts: await gate.prompts(p, ctx) })),
      on(GetPromptRequestSchema, (req, p, ctx) =>
        gate.getPrompt(p, req.params.name, req.params.arguments, ctx),
      ),
      on(CompleteRequestSchema, (req, p, ctx) => gate.complete(p, req.params, ctx)),
    ];
  }

  /** An upstream said a subscribed resource changed: tell the sessions subscribed to it. */
  resourceUpdated(uri: string): void {
    for (const s of this.sessions.values()) {
      if (s.subscriptions?.has(uri)) void s.server.sendResourceUpdated({ uri }).catch(() => {});
    }
  }

  /** The published resources or prompts changed: tell every open session. */
  catalogChanged(kinds: { resources: boolean; prompts: boolean }): void {
    for (const s of this.sessions.values()) {
      if (kinds.resources) void s.server.sendResourceListChanged().catch(() => {});
      if (kinds.prompts) void s.server.sendPromptListChanged().catch(() => {});
    }
  }

  private async auditRejected(
    p: Principal,
    traceId: string,
    error: WardenError,
    c: Context<{ Bindings: NodeBindings }>,
  ) {
    await this.deps
      .audit({
        traceId,
        event: 'REQUEST_REJECTED',
        actorType: 'AI_AGENT',
        actorId: p.agent.id,
        agentId: p.agent.id,
        agentType: p.agent.type,
        sessionId: p.session.id,
        result: 'denied',
        decision: {
          allowed: false,
          code: error.code,
          ...(error.rule ? { rule: error.rule } : {}),
          reasons: [error.message],
        },
        data: { face: 'mcp', clientIp: clientIpOf(c, this.deps.trustProxy) },
      })
      .catch(() => {});
  }

  private fail(c: Context, e: WardenError, traceId: string): Response {
    if (e.status >= 500)
      this.deps.logger.error({ traceId, code: e.code, detail: e.detail }, 'mcp request failed');
    return errorResponse(c, e, traceId, challengeHeaders(e, this.deps.resourceMetadataUrl));
  }

  /** Close MCP sessions whose agent session ended or that sat idle too long. */
  async sweep(): Promise<void> {
    const now = this.deps.clock.now();
    const idle = this.deps.idleTimeoutMs ?? 30 * 60_000;
    for (const s of [...this.sessions.values()]) {
      if (s.expiresAt <= now || now - s.lastSeen > idle) await this.closeSession(s);
    }
  }

  /** The published tool list changed: tell every open MCP session (notifications/tools/list_changed). */
  toolsChanged(): void {
    for (const s of this.sessions.values()) {
      // Sessions without an open GET stream drop it; the client sees the new list on its next tools/list.
      void s.server.sendToolListChanged().catch(() => {});
    }
  }

  /** Close every MCP session of one agent (kill switch). */
  async closeForAgent(agentId: string): Promise<number> {
    const victims = [...this.sessions.values()].filter((s) => s.agentId === agentId);
    for (const s of victims) await this.closeSession(s);
    return victims.length;
  }

  /** Close every MCP session bound to one agent session (revoked, killed). */
  async closeForAgentSession(agentSessionId: string): Promise<number> {
    const victims = [...(this.byAgentSession.get(agentSessionId) ?? [])];
    for (const s of victims) await this.closeSession(s);
    return victims.length;
  }

  private async closeSession(s: McpSession): Promise<void> {
    await this.forget(s);
    await s.transport.close().catch(() => {});
    await s.server.close().catch(() => {});
  }

  /** What a session holds beyond its transport: its own upstream sessions and its subscriptions. */
  private async forget(s: McpSession): Promise<void> {
    this.sessions.delete(s.id);
    const siblings = this.byAgentSession.get(s.agentSessionId);
    if (siblings?.delete(s) && siblings.size === 0) this.byAgentSession.delete(s.agentSessionId);
    // As the SDK does for the calls it runs: a closed session's calls are aborted.
    for (const controller of s.direct?.values() ?? []) controller.abort();
    s.direct?.clear();
    s.closed = true;
    await s.upstreams?.close().catch(() => {});
    const uris = [...(s.subscriptions ?? [])];
    s.subscriptions?.clear();
    for (const uri of uris) await this.deps.access?.unsubscribe(uri).catch(() => {});
  }

  /** Close everything (shutdown). */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const s of [...this.sessions.values()]) await this.closeSession(s);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The tools/call the direct path may answer, or undefined to leave the message to the SDK. Left
 * to it: anything that is not a well-formed plain tools/call; a call asking for progress (its
 * notifications ride the SDK's event stream), a task, or a related task; a session with its own
 * upstream connections (their sampling and elicitation requests are relayed on that stream); an id
 * already in flight; and any request the SDK's transport would refuse (Accept, Content-Type,
 * MCP-Protocol-Version), so that it is refused exactly as before.
 */
function directCall(
  body: unknown,
  headers: Headers,
  entry: McpSession,
  ownUpstreams: boolean,
): DirectCall | undefined {
  const msg = body as Record<string, unknown>;
  if (msg['method'] !== 'tools/call') return undefined;
  for (const key in msg) {
    if (key !== 'jsonrpc' && key !== 'id' && key !== 'method' && key !== 'params') return undefined;
  }
  const id = msg['id'];
  if (!(typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) return undefined;
  if (entry.direct?.has(id) || ownUpstreams) return undefined;
  const params = msg['params'];
  if (!isObject(params) || typeof params['name'] !== 'string' || params['task'] !== undefined)
    return undefined;
  if (params['arguments'] !== undefined && !isObject(params['arguments'])) return undefined;
  const meta = params['_meta'];
  if (
    meta !== undefined &&
    (!isObject(meta) || meta['progressToken'] !== undefined || meta[RELATED_TASK_META_KEY] !== undefined)
  ) {
    return undefined;
  }
  const accept = headers.get('accept');
  if (!accept?.includes('application/json') || !accept.includes('text/event-stream')) return undefined;
  if (!isJsonContentType(headers.get('content-type'))) return undefined;
  const version = headers.get('mcp-protocol-version');
  if (version !== null && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return undefined;
  return { id, params: params as DirectCall['params'] };
}

/** notifications/cancelled for a call on the direct path aborts it (the SDK's own calls it aborts itself). */
function cancelDirect(body: unknown, entry: McpSession): void {
  const msg = body as { method?: unknown; params?: { requestId?: unknown; reason?: unknown } };
  if (msg.method !== 'notifications/cancelled') return;
  const id = msg.params?.requestId;
  if (typeof id !== 'string' && typeof id !== 'number') return;
  // The reason as the SDK reads it (a string or nothing): client text, never another kind of value.
  const reason = msg.params?.reason;
  entry.direct?.get(id)?.abort(typeof reason === 'string' ? reason : undefined);
}

/** The `arguments` of a tools/call message exactly as parsed from JSON, or undefined for anything else. */
function rawToolArguments(body: unknown): unknown {
  const msg = body as { method?: unknown; params?: { arguments?: unknown } };
  return msg.method === 'tools/call' ? msg.params?.arguments : undefined;
}

/**
 * A pipeline error as an MCP tool error result carrying the same code and trace id
 * (in `_meta`, not `structuredContent`: clients validate that against the tool's output schema).
 */
export function toolError(e: WardenError, traceId: string): CallToolResult {
  const body = errorBody(e, traceId);
  return {
    isError: true,
    content: [{ type: 'text', text: `${e.code}: ${e.message} (trace ${traceId})` }],
    _meta: { 'warden/error': body.error },
  };
}

/** Whether a session's client declared what upstreams may ask of it (sampling, elicitation, roots). */
function relaysToClient(server: Server): boolean {
  const agent = server.getClientCapabilities();
  return agent !== undefined && Boolean(agent.sampling || agent.elicitation || agent.roots);
}
