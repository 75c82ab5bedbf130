/**
 * An upstream reached with each user's own account (credentials.userOAuth):
 * one SDK connection per user, carrying that user's access token, opened on
 * the user's first call and closed when idle. Its tools are learned from a
 * user's connection (at start, from users who connected before); until some
 * user has connected, it publishes none.
 */
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { HttpUpstreamConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { type Clock, systemClock } from '../util/clock.js';
import { type ConnectionDeps, UpstreamConnection } from './connection.js';
import type { CallToolOptions, UpstreamState } from './types.js';
import { authorizationRequired, type UserOAuth } from './user-oauth.js';

/** Users' connections kept open at most (least recently used closed first). */
const MAX_CONNECTIONS = 500;
/** A user's connection unused this long is closed. */
const IDLE_MS = 10 * 60_000;

export class PerUserUpstream {
  tools: readonly Tool[] = [];
  private readonly conns = new Map<string, { conn: UpstreamConnection; usedAt: number }>();
  private readonly opening = new Map<string, Promise<UpstreamConnection | undefined>>();
  private lastError: string | undefined;
  private readonly sweeper: NodeJS.Timeout;
  private readonly clock: Clock;

  constructor(
    readonly config: HttpUpstreamConfig,
    private readonly deps: ConnectionDeps,
    readonly oauthClient: UserOAuth,
    private readonly knownUsers: () => Promise<string[]>,
    clock?: Clock,
  ) {
    this.clock = clock ?? systemClock;
    this.sweeper = setInterval(() => void this.sweep(), 60_000);
    this.sweeper.unref();
  }

  get name(): string {
    return this.config.name;
  }

  /** Learns the tools from a user who connected before, if any; never rejects. */
  async connect(): Promise<void> {
    for (const userId of await this.knownUsers().catch(() => [])) {
      if (await this.open(userId).catch(() => undefined)) return;
    }
  }

  /** Opens (or reuses) the user's connection; undefined when it cannot be opened. */
  private open(userId: string): Promise<UpstreamConnection | undefined> {
    const held = this.conns.get(userId);
    if (held && held.conn.state === 'up') {
      held.usedAt = this.clock.now();
      return Promise.resolve(held.conn);
    }
    let p = this.opening.get(userId);
    if (!p) {
      p = this.openNew(userId, held?.conn).finally(() => this.opening.delete(userId));
      this.opening.set(userId, p);
    }
    return p;
  }

  private async openNew(userId: string, old: UpstreamConnection | undefined) {
    if (old) {
      this.conns.delete(userId);
      await old.close();
    }
    if (this.conns.size >= MAX_CONNECTIONS) {
      const oldest = [...this.conns].sort((a, b) => a[1].usedAt - b[1].usedAt)[0];
      if (oldest) {
        this.conns.delete(oldest[0]);
        await oldest[1].conn.close();
      }
    }
    const conn: UpstreamConnection = new UpstreamConnection(this.config, {
      ...this.deps,
      bearer: (stale) => this.oauthClient.accessToken(userId, stale),
      onToolsChanged: () => this.learn(conn),
    });
    await conn.connect();
    if (conn.state !== 'up') {
      // No background retries for a user's connection: the next call tries again.
      this.lastError = conn.lastError;
      await conn.close();
      return undefined;
    }
    this.lastError = undefined;
    this.conns.set(userId, { conn, usedAt: this.clock.now() });
    this.learn(conn);
    return conn;
  }

  private learn(conn: UpstreamConnection): void {
    if (JSON.stringify(conn.tools) === JSON.stringify(this.tools)) return;
    this.tools = conn.tools;
    this.deps.onToolsChanged();
  }

  /** Calls `tool` with the user's own account; UPSTREAM_AUTHORIZATION_REQUIRED when they have not connected. */
  async callTool(
    tool: string,
    args: Record<string, unknown>,
    options: CallToolOptions = {},
  ): Promise<CallToolResult> {
    const userId = options.userId;
    if (!userId) throw authorizationRequired(this.name, 'the session acts for no user');
    await this.oauthClient.accessToken(userId); // not connected, or no longer refreshable: say so first
    const conn = await this.open(userId);
    if (!conn) {
      throw new WardenError('UPSTREAM_UNAVAILABLE', 'The tool is temporarily unavailable', {
        detail: `${this.name} for ${userId}: ${this.lastError ?? 'connection failed'}`,
      });
    }
    return conn.callTool(tool, args, options);
  }

  /**
   * A user connected or disconnected: their old connection closes now; a user who just
   * connected gets a new one at once, which also teaches the upstream's tools to the gateway.
   */
  async userChanged(userId: string, connected: boolean): Promise<void> {
    const held = this.conns.get(userId);
    this.conns.delete(userId);
    await held?.conn.close();
    if (connected) await this.open(userId).catch(() => undefined);
  }

  /** Up unless the last attempt to open a user's connection failed (users connect on demand). */
  snapshot(): { state: UpstreamState; tools: number; lastError?: string } {
    return {
      state: this.lastError === undefined ? 'up' : 'down',
      tools: this.tools.length,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    };
  }

  private async sweep(): Promise<void> {
    const cutoff = this.clock.now() - IDLE_MS;
    for (const [userId, held] of this.conns) {
      if (held.usedAt < cutoff) {
        this.conns.delete(userId);
        await held.conn.close().catch(() => {});
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(all.map((h) => h.conn.close()));
  }
}
