/**
 * The upstream pool: Warden's MCP client side. It keeps one long-lived SDK
 * client per upstream (connections are reused across calls: building them per
 * request dominated proxy latency in our measurements), publishes their tools
 * under collision-safe public names, and routes each call to its upstream.
 */
import {
  type CallToolResult,
  type CompleteRequest,
  CompleteResultSchema,
  EmptyResultSchema,
  type GetPromptResult,
  GetPromptResultSchema,
  type ReadResourceResult,
  ReadResourceResultSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { UpstreamConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { aggregateTools } from './aggregate.js';
import { type MergedCatalog, mergeCatalogs, routeUri } from './catalog.js';
import { type ConnectionDeps, type SessionLink, UpstreamConnection } from './connection.js';
import { PerUserUpstream } from './per-user.js';
import type {
  AggregatedTool,
  CallToolOptions,
  PoolLogger,
  UpstreamPoolOptions,
  UpstreamStatus,
} from './types.js';
import type { UserOAuth } from './user-oauth.js';

const silent: PoolLogger = { warn: () => {}, info: () => {} };

/** Connections to every configured upstream MCP server, with one aggregated tool list. */
type Upstream = UpstreamConnection | PerUserUpstream;

export class UpstreamPool {
  private readonly connections: Upstream[];
  private readonly logger: PoolLogger;
  private tools: AggregatedTool[] = [];
  private byName = new Map<string, { tool: AggregatedTool; connection: Upstream }>();
  private readonly listeners = new Set<(tools: AggregatedTool[]) => void>();
  private readonly connectionDeps: ConnectionDeps;
  private merged: MergedCatalog = mergeCatalogs([]);
  private readonly catalogListeners = new Set<(kinds: { resources: boolean; prompts: boolean }) => void>();
  private readonly updateListeners = new Set<(uri: string) => void>();
  /** Live subscriptions on the shared connections: URI → number of agent sessions subscribed. */
  private readonly subscriptions = new Map<string, number>();

  constructor(configs: readonly UpstreamConfig[], options: UpstreamPoolOptions) {
    this.logger = options.logger ?? silent;
    const names = new Set<string>();
    for (const c of configs) {
      if (names.has(c.name)) {
        throw new WardenError('CONFIG_INVALID', 'Invalid configuration', {
          detail: `duplicate upstream name ${c.name}`,
        });
      }
      names.add(c.name);
    }
    this.connectionDeps = {
      resolveSecret: options.resolveSecret,
      logger: this.logger,
      initialBackoffMs: options.reconnect?.initialMs ?? 500,
      maxBackoffMs: options.reconnect?.maxMs ?? 30_000,
      random: options.random ?? Math.random,
      onToolsChanged: () => {},
    };
    this.connections = configs.map((config): Upstream => {
      const deps = {
        ...this.connectionDeps,
        onToolsChanged: () => this.rebuild(),
        onResourceUpdated: (uri: string) => {
          for (const l of this.updateListeners) l(uri);
        },
        onConnected: () => void this.resubscribe(config.name),
      };
      if (config.transport === 'http' && config.credentials.userOAuth) {
        const per = options.userOAuth;
        if (!per) {
          throw new WardenError('CONFIG_INVALID', 'Invalid configuration', {
            detail: `upstream ${config.name} uses per-user credentials, which need oauth.tokenKey`,
          });
        }
        const issuer = config.credentials.userOAuth.issuer;
        return new PerUserUpstream(config, deps, per.client(config), () => per.knownUsers(issuer));
      }
      return new UpstreamConnection(config, deps);
    });
  }

  /** The per-user OAuth client of `upstream`, when it uses each user's own account. */
  userOAuth(upstream: string): UserOAuth | undefined {
    const c = this.connections.find((u) => u.name === upstream);
    return c instanceof PerUserUpstream ? c.oauthClient : undefined;
  }

  /** Upstreams that use each user's own account. */
  perUserUpstreams(): Array<{ name: string; oauth: UserOAuth }> {
    return this.connections.flatMap((c) =>
      c instanceof PerUserUpstream ? [{ name: c.name, oauth: c.oauthClient }] : [],
    );
  }

  /** A user connected (or disconnected) their account at `upstream`. */
  async userChanged(upstream: string, userId: string, connected: boolean): Promise<void> {
    const c = this.connections.find((u) => u.name === upstream);
    if (c instanceof PerUserUpstream) await c.userChanged(userId, connected);
  }

  /** Connects every upstream in parallel; resolves when each has connected or failed (failed ones keep retrying). */
  async start(): Promise<void> {
    await Promise.all(this.connections.map((c) => c.connect()));
  }

  /** Closes every upstream (ends stdio children) and stops reconnecting. */
  async close(): Promise<void> {
    await Promise.all(this.connections.map((c) => c.close()));
  }

  /** The published tools, in upstream order. */
  listTools(): AggregatedTool[] {
    return [...this.tools];
  }

  /** The published tool called `publicName`, if any. */
  getTool(publicName: string): AggregatedTool | undefined {
    return this.byName.get(publicName)?.tool;
  }

  /** Subscribes to changes of the published list (e.g. to send notifications/tools/list_changed); returns unsubscribe. */
  onToolsChanged(listener: (tools: AggregatedTool[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Calls a published tool. Tool-level errors come back as results (`isError: true`);
   * failures throw WardenError: TOOL_UNKNOWN, UPSTREAM_UNAVAILABLE, UPSTREAM_TIMEOUT, UPSTREAM_ERROR.
   */
  async callTool(
    publicName: string,
    args: Record<string, unknown>,
    options: CallToolOptions = {},
  ): Promise<CallToolResult> {
    const entry = this.byName.get(publicName);
    if (!entry)
      throw new WardenError('TOOL_UNKNOWN', 'Unknown tool', { detail: `no published tool ${publicName}` });
    const { session, ...rest } = options;
    if (!session) return entry.connection.callTool(entry.tool.upstreamName, args, rest);
    const own =
      entry.connection instanceof UpstreamConnection
        ? await session.connectionFor(entry.connection)
        : undefined;
    const done = session.track(entry.connection.name);
    try {
      return await (own ?? entry.connection).callTool(entry.tool.upstreamName, args, rest);
    } finally {
      done();
    }
  }

  /**
   * A session-scoped connection to `parent`'s upstream (issue #10): same config, its own upstream
   * session, relaying what the upstream asks back to one agent session. The caller owns and closes it.
   */
  sessionConnection(parent: UpstreamConnection, link: Omit<SessionLink, 'parent'>): UpstreamConnection {
    return new UpstreamConnection(parent.config, { ...this.connectionDeps, session: { ...link, parent } });
  }

  /** What is published besides tools: resources (by URI), templates, prompts (issue #10). */
  catalog(): MergedCatalog {
    return this.merged;
  }

  /** Subscribes to changes of the published resources or prompts; returns unsubscribe. */
  onCatalogChanged(listener: (kinds: { resources: boolean; prompts: boolean }) => void): () => void {
    this.catalogListeners.add(listener);
    return () => this.catalogListeners.delete(listener);
  }

  /** Subscribes to `notifications/resources/updated` of subscribed URIs; returns unsubscribe. */
  onResourceUpdated(listener: (uri: string) => void): () => void {
    this.updateListeners.add(listener);
    return () => this.updateListeners.delete(listener);
  }

  /** The shared connection that serves `uri`, or a WardenError (unknown or ambiguous: fail closed). */
  resourceRoute(uri: string): { connection: UpstreamConnection; via: 'resource' | 'template' } {
    const route = routeUri(this.merged, uri);
    const connection = route && this.connections.find((c) => c.name === route.upstream);
    if (!route || !(connection instanceof UpstreamConnection)) {
      throw new WardenError('RESOURCE_UNKNOWN', 'Unknown resource', {
        detail: `no upstream publishes ${uri.slice(0, 300)} (or more than one does)`,
      });
    }
    return { connection, via: route.via };
  }

  /** Reads a published resource at its upstream. */
  async readResource(
    uri: string,
    options: Pick<CallToolOptions, 'signal'> = {},
  ): Promise<ReadResourceResult> {
    const { connection } = this.resourceRoute(uri);
    return connection.request(
      { method: 'resources/read', params: { uri } },
      ReadResourceResultSchema,
      options,
    );
  }

  /** Gets a published prompt (public name) from its upstream. */
  async getPrompt(
    publicName: string,
    args: Record<string, string> | undefined,
    options: Pick<CallToolOptions, 'signal'> = {},
  ): Promise<GetPromptResult> {
    const { connection, upstreamName } = this.promptRoute(publicName);
    return connection.request(
      { method: 'prompts/get', params: { name: upstreamName, ...(args ? { arguments: args } : {}) } },
      GetPromptResultSchema,
      options,
    );
  }

  /** The shared connection and upstream name of a published prompt, or PROMPT_UNKNOWN. */
  promptRoute(publicName: string): {
    connection: UpstreamConnection;
    upstreamName: string;
    upstream: string;
  } {
    const p = this.merged.prompts.get(publicName);
    const connection = p && this.connections.find((c) => c.name === p.upstream);
    if (!p || !(connection instanceof UpstreamConnection)) {
      throw new WardenError('PROMPT_UNKNOWN', 'Unknown prompt', {
        detail: `no published prompt ${publicName}`,
      });
    }
    return { connection, upstreamName: p.upstreamName, upstream: p.upstream };
  }

  /**
   * completion/complete for a published prompt's argument or a resource template's variable,
   * at the upstream that owns it. Anything else is answered with no values.
   */
  async complete(params: CompleteRequest['params'], options: Pick<CallToolOptions, 'signal'> = {}) {
    const ref = params.ref;
    let connection: UpstreamConnection | undefined;
    let upstreamRef: CompleteRequest['params']['ref'] = ref;
    if (ref.type === 'ref/prompt') {
      const route = this.merged.prompts.has(ref.name) ? this.promptRoute(ref.name) : undefined;
      if (route) {
        connection = route.connection;
        upstreamRef = { ...ref, name: route.upstreamName };
      }
    } else {
      const t = this.merged.templates.find((x) => x.template.uriTemplate === ref.uri);
      const owner = t?.upstream ?? routeUri(this.merged, ref.uri)?.upstream;
      const c = owner && this.connections.find((x) => x.name === owner);
      if (c instanceof UpstreamConnection) connection = c;
    }
    if (!connection?.serverCapabilities()?.completions) return { completion: { values: [] } };
    return connection.request(
      { method: 'completion/complete', params: { ...params, ref: upstreamRef } },
      CompleteResultSchema,
      options,
    );
  }

  /** One more agent session subscribed to `uri`: the first subscribes upstream. */
  async subscribe(uri: string): Promise<void> {
    const { connection } = this.resourceRoute(uri);
    const n = this.subscriptions.get(uri) ?? 0;
    if (n === 0 && connection.serverCapabilities()?.resources?.subscribe) {
      await connection.request({ method: 'resources/subscribe', params: { uri } }, EmptyResultSchema);
    }
    this.subscriptions.set(uri, n + 1);
  }

  /** One agent session fewer subscribed to `uri`: the last unsubscribes upstream. */
  async unsubscribe(uri: string): Promise<void> {
    const n = this.subscriptions.get(uri) ?? 0;
    if (n === 0) return;
    if (n > 1) {
      this.subscriptions.set(uri, n - 1);
      return;
    }
    this.subscriptions.delete(uri);
    const route = routeUri(this.merged, uri);
    const connection = route && this.connections.find((c) => c.name === route.upstream);
    if (connection instanceof UpstreamConnection && connection.serverCapabilities()?.resources?.subscribe) {
      // The agent is unsubscribed here whatever the upstream says: at worst it keeps sending updates nobody gets.
      await connection
        .request({ method: 'resources/unsubscribe', params: { uri } }, EmptyResultSchema)
        .catch((e: unknown) =>
          this.logger.warn(
            {
              upstream: connection.name,
              uri: uri.slice(0, 300),
              err: e instanceof Error ? e.message : String(e),
            },
            'upstream refused to unsubscribe',
          ),
        );
    }
  }

  /** A reconnected upstream starts a new session without our subscriptions: ask for them again. */
  private async resubscribe(upstream: string): Promise<void> {
    const connection = this.connections.find((c) => c.name === upstream);
    if (!(connection instanceof UpstreamConnection) || !connection.serverCapabilities()?.resources?.subscribe)
      return;
    for (const uri of this.subscriptions.keys()) {
      if (routeUri(this.merged, uri)?.upstream !== upstream) continue;
      await connection
        .request({ method: 'resources/subscribe', params: { uri } }, EmptyResultSchema)
        .catch((e: unknown) =>
          this.logger.warn(
            { upstream, uri: uri.slice(0, 300), err: e instanceof Error ? e.message : String(e) },
            'could not renew a resource subscription',
          ),
        );
    }
  }

  /** Health of each upstream, for /readyz. */
  status(): UpstreamStatus[] {
    return this.connections.map((c) => ({ name: c.name, transport: c.config.transport, ...c.snapshot() }));
  }

  private rebuildCatalog(): void {
    const merged = mergeCatalogs(
      this.connections.flatMap((c) =>
        c instanceof UpstreamConnection ? [{ upstream: c.name, catalog: c.catalog }] : [],
      ),
    );
    for (const conflict of merged.conflicts)
      this.logger.warn({ conflict }, 'ambiguous resource or prompt; not published');
    const key = (m: MergedCatalog) => ({
      resources: JSON.stringify([
        [...m.resources.values()],
        m.templates.map((t) => [t.upstream, t.template]),
      ]),
      prompts: JSON.stringify([...m.prompts.values()]),
    });
    const before = key(this.merged);
    const after = key(merged);
    this.merged = merged;
    const kinds = {
      resources: before.resources !== after.resources,
      prompts: before.prompts !== after.prompts,
    };
    if (!kinds.resources && !kinds.prompts) return;
    for (const l of this.catalogListeners) {
      try {
        l(kinds);
      } catch (e) {
        this.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'catalog listener failed');
      }
    }
  }

  private rebuild(): void {
    this.rebuildCatalog();
    const { tools, conflicts } = aggregateTools(
      this.connections.map((c) => ({ upstream: c.name, tools: c.tools })),
    );
    for (const conflict of conflicts) {
      this.logger.warn(conflict, 'ambiguous public tool name; not published');
    }
    const byConn = new Map(this.connections.map((c) => [c.name, c]));
    const byName = new Map<string, { tool: AggregatedTool; connection: Upstream }>();
    for (const tool of tools) {
      const connection = byConn.get(tool.upstream);
      if (connection) byName.set(tool.name, { tool, connection });
    }
    const changed = JSON.stringify(tools) !== JSON.stringify(this.tools);
    this.tools = tools;
    this.byName = byName;
    if (!changed) return;
    for (const listener of this.listeners) {
      try {
        listener(this.listTools());
      } catch (e) {
        this.logger.warn(
          { err: e instanceof Error ? e.message : String(e) },
          'tools-changed listener failed',
        );
      }
    }
  }
}
