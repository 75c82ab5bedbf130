/**
 * One upstream MCP server: its SDK client, its connection state, its tool list
 * and its reconnect loop. The pool owns several and routes calls to them.
 * A connection that dies is marked down at once (calls fail fast with
 * UPSTREAM_UNAVAILABLE instead of queueing) and retried with bounded
 * exponential backoff in the background.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import {
  type CallToolResult,
  CallToolResultSchema,
  type ClientCapabilities,
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ErrorCode,
  ListRootsRequestSchema,
  ListToolsResultSchema,
  LoggingMessageNotificationSchema,
  McpError,
  type Notification,
  PromptListChangedNotificationSchema,
  type Request,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  type Result,
  type ServerCapabilities,
  type Tool,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { JsonSchemaType, JsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import type { UpstreamConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { linkAbort } from './abort.js';
import { type Catalog, EMPTY_CATALOG, listCatalog } from './catalog.js';
import { progressOf } from './progress.js';
import { RESULT_TOO_LARGE } from './response-guard.js';
import { createUpstreamTransport } from './transports.js';
import type {
  CallToolOptions,
  PoolLogger,
  SecretResolver,
  UpstreamProgress,
  UpstreamState,
} from './types.js';

const CLIENT_INFO = { name: 'warden-gateway', version: '0.1.0' };
/** Bounds on tools/list paging, so a broken or hostile upstream cannot loop us forever. */
const MAX_LIST_PAGES = 100;
const MAX_TOOLS = 10_000;
const MAX_ERROR_CHARS = 300;

export interface ConnectionDeps {
  resolveSecret: SecretResolver;
  logger: PoolLogger;
  initialBackoffMs: number;
  maxBackoffMs: number;
  random: () => number;
  /** Called after this upstream's tool list, resources or prompts changed. */
  onToolsChanged: () => void;
  /** `notifications/resources/updated` on the shared connection (subscriptions, issue #10). */
  onResourceUpdated?: (uri: string) => void;
  /** The shared connection is up again (a new upstream session): subscriptions are renewed. */
  onConnected?: () => void;
  /** HTTP only: the bearer token for each request (a user's own); `stale` = the one just refused. */
  bearer?: (stale?: string) => Promise<string>;
  /** Set for a session-scoped connection (issue #10): one agent MCP session's own upstream session. */
  session?: SessionLink;
}

/**
 * What a session-scoped connection relays to its one agent MCP session. The client declares
 * `capabilities` (the agent's own, less what the upstream may not use); every other request the
 * upstream makes is refused through `refused`.
 */
export interface SessionLink {
  /** The shared connection of the same upstream: its tool list and output schemas are used. */
  parent: UpstreamConnection;
  capabilities: ClientCapabilities;
  /** A server-to-client request the client declared (sampling, elicitation, roots): the agent answers. */
  request(request: Request, signal: AbortSignal, onProgress?: (p: UpstreamProgress) => void): Promise<Result>;
  /** A request the client did not declare: audited, then refused with the returned message. */
  refused(request: Request): string;
  /** A notification for the agent (logging, resource updates, list changes). */
  notify(notification: Notification): void;
}

/** The client side of one upstream MCP server. */
export class UpstreamConnection {
  state: UpstreamState = 'down';
  /** Last tools listed; kept while down so public names do not flap during an outage. */
  tools: readonly Tool[] = [];
  /** Last resources, templates and prompts listed (issue #10); kept while down, like tools. */
  catalog: Catalog = EMPTY_CATALOG;
  lastError: string | undefined;
  private client: Client | undefined;
  private stderrTail: () => string[] = () => [];
  private transport: unknown;
  private validators = new Map<string, JsonSchemaValidator<unknown>>();
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private probing = false;
  private closed = false;

  constructor(
    readonly config: UpstreamConfig,
    private readonly deps: ConnectionDeps,
  ) {}

  get name(): string {
    return this.config.name;
  }

  /** One connection attempt (joined if one is running); on failure retries are scheduled. Never rejects. */
  connect(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.connecting ??= this.attemptConnect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async attemptConnect(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.state = 'connecting';
    const { logger } = this.deps;
    let client: Client | undefined;
    try {
      const built = await createUpstreamTransport(
        this.config,
        this.deps.resolveSecret,
        logger,
        this.deps.bearer,
      );
      const link = this.deps.session;
      const c = new Client(CLIENT_INFO, { capabilities: link?.capabilities ?? {} });
      client = c;
      c.onclose = () => this.onClientClosed(c);
      c.onerror = (e) => logger.debug?.({ upstream: this.name, err: e.message }, 'upstream transport error');
      c.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        if (link) void link.parent.refreshTools();
        else if (this.client === c) void this.refreshTools();
      });
      const catalogChanged = () => {
        if (link) void link.parent.refreshCatalog();
        else if (this.client === c) void this.refreshCatalog();
      };
      c.setNotificationHandler(ResourceListChangedNotificationSchema, catalogChanged);
      c.setNotificationHandler(PromptListChangedNotificationSchema, catalogChanged);
      if (!link) {
        c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
          if (this.client === c) this.deps.onResourceUpdated?.(n.params.uri);
        });
      }
      if (link) relayTo(c, link);
      this.client = c;
      this.stderrTail = built.stderrTail;
      this.transport = built.transport;
      await c.connect(built.transport, { timeout: this.config.connectTimeoutMs });
      if (link) {
        // A session's own connection calls the tools its parent lists and checked.
        if (this.closed || this.client !== c) throw new Error('connection closed while connecting');
      } else {
        // An upstream may offer only resources or prompts: it has no tools to list then.
        const tools = c.getServerCapabilities()?.tools
          ? await this.listAllTools(c, this.config.connectTimeoutMs)
          : [];
        if (this.closed || this.client !== c) throw new Error('connection closed while listing tools');
        this.setTools(tools);
        await this.loadCatalog(c, this.config.connectTimeoutMs);
      }
      this.state = 'up';
      this.attempt = 0;
      this.lastError = undefined;
      logger.info({ upstream: this.name, tools: this.tools.length }, 'upstream connected');
      if (!link) this.deps.onConnected?.();
    } catch (e) {
      if (client) {
        if (this.client === client) this.client = undefined;
        await client.close().catch(() => {});
      }
      if (this.closed) return;
      this.state = 'down';
      this.lastError = `connect failed: ${describe(e)}`;
      logger.warn(
        { upstream: this.name, err: this.lastError, stderr: this.stderrTail().slice(-5) },
        'upstream connect failed',
      );
      this.scheduleReconnect();
    }
  }

  private onClientClosed(client: Client): void {
    if (client !== this.client) return; // a client we replaced or closed on purpose
    this.client = undefined;
    // While connecting, the pending connect() sees the failure and handles it.
    if (this.closed || this.state !== 'up') return;
    this.state = 'down';
    this.lastError = 'connection closed';
    this.deps.logger.warn(
      { upstream: this.name, stderr: this.stderrTail().slice(-5) },
      'upstream connection closed; reconnecting',
    );
    this.scheduleReconnect();
  }

  /** Drops a live client whose transport failed (HTTP), and reconnects in the background. */
  private markDown(client: Client, reason: string): void {
    if (client !== this.client || this.closed) return;
    this.client = undefined;
    this.state = 'down';
    this.lastError = reason;
    this.deps.logger.warn({ upstream: this.name, err: reason }, 'upstream failed; reconnecting');
    void client.close().catch(() => {});
    this.scheduleReconnect();
  }

  /**
   * Pings after a network error: one reset socket must not take the upstream down
   * (closing an HTTP client aborts every call in flight on it), a dead server must.
   */
  private probe(client: Client, cause: unknown): void {
    if (this.probing || client !== this.client) return;
    this.probing = true;
    client
      .ping({ timeout: this.config.connectTimeoutMs })
      .then(
        () =>
          this.deps.logger.debug?.(
            { upstream: this.name, err: describe(cause) },
            'transient transport error',
          ),
        (e: unknown) => this.markDown(client, `transport failed: ${describe(cause)}; ping: ${describe(e)}`),
      )
      .finally(() => {
        this.probing = false;
      });
  }

  private scheduleReconnect(): void {
    if (this.closed || this.timer) return;
    const { initialBackoffMs, maxBackoffMs, random } = this.deps;
    const base = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(this.attempt, 30));
    // Equal jitter: replicas that lost the same upstream do not retry in lockstep.
    const delay = Math.round(base / 2 + (random() * base) / 2);
    this.attempt++;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, delay);
    this.timer.unref();
  }

  private async listAllTools(client: Client, timeout: number): Promise<Tool[]> {
    const tools: Tool[] = [];
    const cursors = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const res = await client.request(
        { method: 'tools/list', params: cursor === undefined ? {} : { cursor } },
        ListToolsResultSchema,
        { timeout },
      );
      tools.push(...res.tools);
      if (tools.length > MAX_TOOLS) throw new Error(`more than ${MAX_TOOLS} tools`);
      cursor = res.nextCursor;
      if (cursor === undefined) return tools;
      if (cursors.has(cursor)) throw new Error('tools/list returned a cursor twice');
      cursors.add(cursor);
    }
    throw new Error(`tools/list did not end within ${MAX_LIST_PAGES} pages`);
  }

  private setTools(listed: Tool[]): void {
    const kept: Tool[] = [];
    const validators = new Map<string, JsonSchemaValidator<unknown>>();
    // A fresh validator per list: ajv caches compiled schemas by object, so reusing one
    // across refreshes would keep every old schema alive.
    let ajv: AjvJsonSchemaValidator | undefined;
    for (const t of listed) {
      if (t.execution?.taskSupport === 'required') {
        this.deps.logger.warn(
          { upstream: this.name, tool: t.name },
          'tool requires MCP tasks; not published',
        );
        continue;
      }
      if (t.outputSchema) {
        try {
          ajv ??= new AjvJsonSchemaValidator();
          validators.set(t.name, ajv.getValidator(t.outputSchema as JsonSchemaType));
        } catch (e) {
          // Fail closed: a result we cannot check is a result we do not pass on.
          this.deps.logger.warn(
            { upstream: this.name, tool: t.name, err: describe(e) },
            'invalid output schema; not published',
          );
          continue;
        }
      }
      kept.push(t);
    }
    const changed = JSON.stringify(kept) !== JSON.stringify(this.tools);
    this.tools = kept;
    this.validators = validators;
    if (changed) this.deps.onToolsChanged();
  }

  /** Re-lists the tools (on notifications/tools/list_changed); overlapping requests coalesce. */
  refreshTools(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        const client = this.client;
        if (!client || this.state !== 'up') return;
        try {
          const tools = await this.listAllTools(client, this.config.timeoutMs);
          if (client === this.client) this.setTools(tools);
        } catch (e) {
          this.deps.logger.warn({ upstream: this.name, err: describe(e) }, 'tool list refresh failed');
        }
      } while (this.refreshAgain);
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Lists resources, templates and prompts; a failure keeps the last ones (tools still work). */
  private async loadCatalog(client: Client, timeout: number): Promise<void> {
    try {
      const catalog = await listCatalog(client, timeout);
      if (client !== this.client) return;
      const changed = JSON.stringify(catalog) !== JSON.stringify(this.catalog);
      this.catalog = catalog;
      if (changed) this.deps.onToolsChanged();
    } catch (e) {
      this.deps.logger.warn({ upstream: this.name, err: describe(e) }, 'resource and prompt listing failed');
    }
  }

  /** Re-lists resources, templates and prompts (on their list_changed notifications). */
  async refreshCatalog(): Promise<void> {
    const client = this.client;
    if (!client || this.state !== 'up' || this.deps.session) return;
    await this.loadCatalog(client, this.config.timeoutMs);
  }

  /** Calls `tool` (the upstream's own name); tool errors (`isError`) are returned, failures thrown as WardenError. */
  async callTool(
    tool: string,
    args: Record<string, unknown>,
    options: CallToolOptions = {},
  ): Promise<CallToolResult> {
    const result = await this.request(
      { method: 'tools/call', params: { name: tool, arguments: args } },
      CallToolResultSchema,
      options,
      `tool ${tool}`,
    );
    this.checkOutput(tool, result);
    return result;
  }

  /** What the upstream declared at initialize (undefined while it is not connected). */
  serverCapabilities(): ServerCapabilities | undefined {
    return this.state === 'up' ? this.client?.getServerCapabilities() : undefined;
  }

  /**
   * Any other request (resources, prompts, completion, logging, subscriptions): the same timeout,
   * abort and failure handling as callTool, failures thrown as WardenError.
   */
  async request<T extends AnySchema>(
    request: Request,
    schema: T,
    options: Pick<CallToolOptions, 'signal' | 'timeoutMs' | 'onProgress'> = {},
    /** What errors name (a tool's name; default the method). */
    what: string = request.method,
  ): Promise<SchemaOutput<T>> {
    const client = this.client;
    if (this.state !== 'up' || client === undefined) {
      throw new WardenError('UPSTREAM_UNAVAILABLE', 'Upstream unavailable', {
        detail: `upstream ${this.name} is ${this.state}${this.lastError ? ` (${this.lastError})` : ''}`,
      });
    }
    const timeout = options.timeoutMs ?? this.config.timeoutMs;
    // A controller per call: see abort.ts for why the caller's signal is not passed down as is.
    const controller = new AbortController();
    const unlink = options.signal ? linkAbort(options.signal, controller) : undefined;
    const onProgress = options.onProgress;
    try {
      return await client.request(request, schema, {
        signal: controller.signal,
        timeout,
        ...(onProgress ? { onprogress: (p: UpstreamProgress) => onProgress(progressOf(p)) } : {}),
      });
    } catch (e) {
      throw this.callError(e, client, what, timeout, options.signal);
    } finally {
      unlink?.();
    }
  }

  private checkOutput(tool: string, result: CallToolResult): void {
    if (result.isError) return;
    const validate = (this.deps.session?.parent ?? this).validators.get(tool);
    if (!validate) return;
    const problem =
      result.structuredContent === undefined
        ? 'no structuredContent although the tool declares an output schema'
        : validate(result.structuredContent).errorMessage;
    if (problem !== undefined) {
      throw new WardenError('UPSTREAM_ERROR', 'Upstream returned an invalid result', {
        detail: `upstream ${this.name} tool ${tool}: ${problem}`,
      });
    }
  }

  private callError(
    e: unknown,
    client: Client,
    what: string,
    timeout: number,
    signal: AbortSignal | undefined,
  ): WardenError {
    const where = `upstream ${this.name} ${what}`;
    if (signal?.aborted) return abortError(signal.reason, where);
    if (e instanceof WardenError) return e;
    if (e instanceof McpError) {
      if (e.code === ErrorCode.RequestTimeout) {
        return new WardenError('UPSTREAM_TIMEOUT', 'Upstream timed out', {
          detail: `${where}: no answer within ${timeout} ms`,
          cause: e,
        });
      }
      if (e.code === RESULT_TOO_LARGE) {
        // Injected by the response guard: the upstream sent more than maxResultBytes.
        return new WardenError('UPSTREAM_ERROR', 'Upstream result too large', {
          rule: 'upstream.max-result-bytes',
          detail: `${where}: ${describe(e)}`,
          cause: e,
        });
      }
      if (e.code === ErrorCode.ConnectionClosed) {
        // The call may or may not have run: 502, not 503, so nobody retries it blindly.
        return new WardenError('UPSTREAM_ERROR', 'Upstream connection lost', {
          detail: `${where}: connection closed during the call`,
          cause: e,
        });
      }
      return new WardenError('UPSTREAM_ERROR', 'Upstream error', {
        detail: `${where}: ${describe(e)}`,
        cause: e,
      });
    }
    const failure = transportFailure(e);
    if (failure === 'fatal') this.markDown(client, `transport failed: ${describe(e)}`);
    if (failure === 'suspect') this.probe(client, e);
    if (isRefused(e)) {
      return new WardenError('UPSTREAM_UNAVAILABLE', 'Upstream unavailable', {
        detail: `${where}: ${describe(e)}`,
        cause: e,
      });
    }
    return new WardenError('UPSTREAM_ERROR', 'Upstream error', {
      detail: `${where}: ${describe(e)}`,
      cause: e,
    });
  }

  /** Current health, for status(). */
  snapshot(): { state: UpstreamState; tools: number; lastError?: string } {
    return {
      state: this.state,
      tools: this.tools.length,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    };
  }

  /** Stops retrying and closes the client (a stdio child is ended). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const client = this.client;
    this.client = undefined;
    this.state = 'down';
    this.lastError = 'closed';
    await this.connecting?.catch(() => {});
    // A session's own upstream session ends with it (HTTP DELETE), rather than waiting for the upstream to expire it.
    const transport = this.transport as { terminateSession?: () => Promise<void> } | undefined;
    if (client && this.deps.session && typeof transport?.terminateSession === 'function') {
      await withTimeout(transport.terminateSession(), this.config.connectTimeoutMs).catch(() => {});
    }
    await client?.close().catch(() => {});
  }
}

/** `p`, or a rejection after `ms`. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Installs the relay of a session-scoped client: declared requests go to the agent, the rest are refused. */
function relayTo(c: Client, link: SessionLink): void {
  const caps = link.capabilities;
  const relay = async (
    req: Request,
    extra: { signal: AbortSignal; sendNotification: (n: Notification) => Promise<void> },
  ) => {
    // Progress both ways: the agent's progress on a relayed request goes back under the upstream's token.
    const token = (req.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
    const onProgress =
      typeof token === 'string' || typeof token === 'number'
        ? (p: UpstreamProgress) => {
            void extra
              .sendNotification({ method: 'notifications/progress', params: { progressToken: token, ...p } })
              .catch(() => {});
          }
        : undefined;
    return link.request(req, extra.signal, onProgress);
  };
  // The SDK lets a client handle only what it declared; its own checks stay in front of ours.
  if (caps.sampling) c.setRequestHandler(CreateMessageRequestSchema, relay as never);
  if (caps.elicitation) c.setRequestHandler(ElicitRequestSchema, relay as never);
  if (caps.roots) c.setRequestHandler(ListRootsRequestSchema, relay as never);
  c.fallbackRequestHandler = async (req) => {
    throw new McpError(ErrorCode.MethodNotFound, link.refused(req));
  };
  c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => link.notify(n));
  c.fallbackNotificationHandler = async (n) => link.notify(n);
}

/** An aborted call: a WardenError reason (e.g. the kill switch) is kept; a timeout signal is a timeout. */
function abortError(reason: unknown, where: string): WardenError {
  if (reason instanceof WardenError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new WardenError('UPSTREAM_TIMEOUT', 'Upstream timed out', {
      detail: `${where}: caller deadline passed`,
      cause: reason,
    });
  }
  return new WardenError('UPSTREAM_ERROR', 'Upstream call aborted', {
    detail: `${where}: aborted by the caller (${describe(reason)})`,
    cause: reason,
  });
}

/**
 * How bad an HTTP transport error is. 'fatal': the client is unusable (nobody
 * listening, session gone, credentials rejected). 'suspect': a network error
 * that may be one broken keep-alive socket; worth a probe, not an outage.
 */
function transportFailure(e: unknown): 'fatal' | 'suspect' | undefined {
  if (e instanceof StreamableHTTPError) {
    return e.code === 401 || e.code === 403 || e.code === 404 ? 'fatal' : undefined;
  }
  if (isRefused(e)) return 'fatal';
  return e instanceof TypeError ? 'suspect' : undefined; // fetch() rejects with TypeError on network errors
}

function isRefused(e: unknown): boolean {
  const cause = e instanceof Error ? (e.cause as { code?: unknown } | undefined) : undefined;
  return cause?.code === 'ECONNREFUSED';
}

function describe(e: unknown): string {
  const text =
    e instanceof WardenError && e.detail !== undefined
      ? e.detail
      : e instanceof StreamableHTTPError
        ? `HTTP ${e.code}: ${e.message}`
        : e instanceof Error
          ? `${e.name}: ${e.message}`
          : String(e);
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text;
}
