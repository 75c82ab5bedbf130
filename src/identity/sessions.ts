/**
 * Sessions: the unit a token is bound to. Every counter that guards a session
 * (concurrent sessions per agent, tool calls per session, the once-only expiry
 * audit) is enforced by the database in one statement or under a row lock, so
 * N replicas sharing PostgreSQL cannot over-issue or over-spend.
 */
import { type Kysely, type Selectable, sql } from 'kysely';
import { WardenError } from '../errors.js';
import {
  type AgentsTable,
  type Database,
  fixedQuery,
  type SessionsTable,
  type SqliteAccess,
  type SqliteStatement,
  type Store,
} from '../store/index.js';
import { type Clock, randomId, systemClock } from '../util/clock.js';
import { assertUsable, rowToAgent } from './agents.js';
import type { Agent, Session } from './types.js';

/** What the issuer decides about a new session once it has seen the (locked) agent. */
/**
 * Taint bits of a session (`sessions.taint`): 1 untrusted content ingested, 2 private data read,
 * 4 held by monitoring (an anomaly's response: every further call needs a human, issue #8).
 */
export const TAINT = { untrusted: 1, privateData: 2, anomalyHold: 4 } as const;

/** What claiming a call tells the pipeline: the session's call count after the claim, and its taint bits. */
export interface CallClaim {
  calls: number;
  taint: number;
}

export interface NewSession {
  expiresAt: number;
  scopes: string[];
  maxToolCalls: number;
  allowedCidrs: string[];
  issuedVia: Session['issuedVia'];
  clientIp: string | null;
  userId?: string | null;
  grantId?: string | null;
}

/** Maps a `sessions` row to a Session. */
export function rowToSession(row: Selectable<SessionsTable>): Session {
  return {
    id: row.id,
    agentId: row.agent_id,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    revokedReason: row.revoked_reason,
    callCount: Number(row.call_count),
    maxToolCalls: row.max_tool_calls,
    allowedCidrs: JSON.parse(row.allowed_cidrs) as string[],
    scopes: JSON.parse(row.scopes) as string[],
    issuedVia:
      row.issued_via === 'client_credentials' ||
      row.issued_via === 'token_exchange' ||
      row.issued_via === 'authorization_code'
        ? row.issued_via
        : 'operator',
    clientIp: row.client_ip,
    userId: row.user_id ?? null,
    grantId: row.grant_id ?? null,
    expiryLogged: Number(row.expiry_logged) === 1,
    breakerOpenUntil: row.breaker_open_until == null ? null : Number(row.breaker_open_until),
    breakerReason: row.breaker_reason ?? null,
  };
}

/** Session rows, backed by the store. */
export class SessionStore {
  /** Claims waiting for the next flush (see claimCall). */
  private claims: Array<{ id: string; resolve(n: CallClaim | null): void; reject(e: unknown): void }> = [];

  /** Run on every tool call: built once. */
  private readonly byId;
  private readonly claimQuery;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock = systemClock,
  ) {
    this.byId = fixedQuery((arg) => store.db.selectFrom('sessions').selectAll().where('id', '=', arg(0)));
    this.claimQuery = fixedQuery((arg) =>
      store.db
        .updateTable('sessions')
        .set((eb) => ({ call_count: eb('call_count', '+', 1) }))
        .where('id', '=', arg(0))
        .where((eb) => eb('call_count', '<', eb.ref('max_tool_calls')))
        .returning(['call_count', 'taint'])
        // PostgreSQL: the statement's own commit skips the WAL-flush wait (no extra round trip).
        .$if(store.dialect === 'postgres', (q) =>
          q.returning(sql<string>`set_config('synchronous_commit', 'off', true)`.as('relaxed')),
        ),
    );
  }

  /** The session with `id`, or undefined. */
  async get(id: string): Promise<Session | undefined> {
    const row = (await this.byId(this.store.db, [id])).rows[0];
    return row ? rowToSession(row) : undefined;
  }

  /** Sessions of `agentId` that are neither revoked nor expired at `now`. */
  async countActive(agentId: string, now: number): Promise<number> {
    const row = await this.store.db
      .selectFrom('sessions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('agent_id', '=', agentId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /**
   * Creates a session for a usable agent, enforcing its maxConcurrentSessions
   * atomically: the agent row is locked first (PostgreSQL `FOR UPDATE`; SQLite
   * takes the write lock by writing first), so two issuers for the same agent
   * count and insert one after the other. Throws AGENT_* or SESSION_LIMIT_EXCEEDED.
   */
  async open(
    agentId: string,
    build: (agent: Agent, now: number) => NewSession,
  ): Promise<{ agent: Agent; session: Session }> {
    return this.store.db.transaction().execute(async (trx) => {
      let row: Selectable<AgentsTable> | undefined;
      if (this.store.dialect === 'postgres') {
        row = await trx
          .selectFrom('agents')
          .selectAll()
          .where('id', '=', agentId)
          .forUpdate()
          .executeTakeFirst();
      } else {
        // A deferred SQLite transaction that reads first can deadlock on upgrade; a
        // no-op write takes the RESERVED lock up front (other processes wait on busy_timeout).
        await trx
          .updateTable('agents')
          .set((eb) => ({ updated_at: eb.ref('updated_at') }))
          .where('id', '=', agentId)
          .execute();
        row = await trx.selectFrom('agents').selectAll().where('id', '=', agentId).executeTakeFirst();
      }
      const now = this.clock.now();
      const agent = assertUsable(row ? rowToAgent(row) : undefined, agentId, now);
      const counted = await trx
        .selectFrom('sessions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('agent_id', '=', agentId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      const active = Number(counted?.n ?? 0);
      if (active >= agent.maxConcurrentSessions) {
        throw new WardenError('SESSION_LIMIT_EXCEEDED', 'Too many concurrent sessions for this agent', {
          detail: `agent ${agentId} has ${active} active sessions (max ${agent.maxConcurrentSessions})`,
          data: { maxConcurrentSessions: agent.maxConcurrentSessions },
        });
      }
      const draft = build(agent, now);
      const session: Session = {
        id: randomId('ses'),
        agentId,
        createdAt: now,
        expiresAt: draft.expiresAt,
        revokedAt: null,
        revokedReason: null,
        callCount: 0,
        maxToolCalls: draft.maxToolCalls,
        allowedCidrs: draft.allowedCidrs,
        scopes: draft.scopes,
        issuedVia: draft.issuedVia,
        clientIp: draft.clientIp,
        userId: draft.userId ?? null,
        grantId: draft.grantId ?? null,
        expiryLogged: false,
      };
      await trx
        .insertInto('sessions')
        .values({
          id: session.id,
          agent_id: agentId,
          created_at: session.createdAt,
          expires_at: session.expiresAt,
          revoked_at: null,
          revoked_reason: null,
          max_tool_calls: session.maxToolCalls,
          allowed_cidrs: JSON.stringify(session.allowedCidrs),
          scopes: JSON.stringify(session.scopes),
          issued_via: session.issuedVia,
          client_ip: session.clientIp,
          user_id: session.userId,
          grant_id: session.grantId,
        })
        .execute();
      return { agent, session };
    });
  }

  /**
   * Atomic: increments iff callCount < maxToolCalls; returns the new count, or null when the limit is reached.
   * Relaxed durability: a claim is made durable by the synchronous commit that follows it
   * before anything runs (the attempt or denial entry); a claim lost to a power cut
   * belonged to a call that never ran.
   */
  claimCall(id: string): Promise<CallClaim | null> {
    const sqlite = this.store.sqlite;
    // PostgreSQL: one autocommit statement per claim, side by side on the pool.
    if (!sqlite) return this.claimOne(this.store.db, id);
    // SQLite: claims made in the same turn of the event loop share one commit.
    return new Promise((resolve, reject) => {
      this.claims.push({ id, resolve, reject });
      if (this.claims.length === 1) setImmediate(() => void this.flushClaims(sqlite));
    });
  }

  private async claimOne(db: Kysely<Database>, id: string): Promise<CallClaim | null> {
    return claimOf((await this.claimQuery(db, [id])).rows[0]);
  }

  /** A session's taint bits now (0 for an unknown session): what resource and prompt policies see. */
  async taintOf(id: string): Promise<number> {
    const row = await this.store.db
      .selectFrom('sessions')
      .select('taint')
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? Number(row.taint) : 0;
  }

  /**
   * Adds taint bits to a session (issue #7); true when any bit was new. Committed
   * durably before the caller hands the result that tainted the session to the agent.
   */
  async addTaint(id: string, bits: number): Promise<boolean> {
    const res = await this.store.db
      .updateTable('sessions')
      .set((eb) => ({ taint: sql<number>`${eb.ref('taint')} | ${bits}` }))
      .where('id', '=', id)
      .where(sql<boolean>`(taint & ${bits}) <> ${bits}`)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * The claims gathered so far, in one synchronous better-sqlite3 run once the connection is
   * held (issue #4); several share one IMMEDIATE transaction: all claimed or none.
   */
  private async flushClaims(sqlite: SqliteAccess): Promise<void> {
    const batch = this.claims.splice(0);
    try {
      const counts = await sqlite.run((prepare) => batch.map((c) => this.claimSqlite(prepare, c.id)), {
        transaction: batch.length > 1,
        relaxed: true,
      });
      batch.forEach((c, i) => {
        c.resolve(counts[i] ?? null);
      });
    } catch (e) {
      // Nothing was claimed (the transaction rolled back): every caller fails closed.
      for (const c of batch) c.reject(e);
    }
  }

  /** claimOne on the raw SQLite connection: the same statement, run synchronously. */
  private claimSqlite(prepare: (sql: string) => SqliteStatement, id: string): CallClaim | null {
    return claimOf(
      prepare(this.claimQuery.sql).get(this.claimQuery.parameters([id])) as ClaimRow | undefined,
    );
  }

  /** Revokes a session (the first revocation and its reason are kept); NOT_FOUND when absent. */
  async revoke(id: string, reason: string): Promise<void> {
    const res = await this.store.db
      .updateTable('sessions')
      .set({ revoked_at: this.clock.now(), revoked_reason: reason })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0 && !(await this.get(id))) {
      throw new WardenError('NOT_FOUND', `Session ${id} not found`);
    }
  }

  /** Revokes every live (unrevoked, unexpired) session of an agent; returns how many were revoked. */
  async revokeAllForAgent(agentId: string, reason: string): Promise<number> {
    const now = this.clock.now();
    const res = await this.store.db
      .updateTable('sessions')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('agent_id', '=', agentId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  /** Of `ids`, the sessions that are revoked, with the reason (the kill switch's store poll). */
  async revokedAmong(ids: readonly string[]): Promise<Array<{ id: string; reason: string | null }>> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('sessions')
      .select(['id', 'revoked_reason'])
      .where('id', 'in', [...ids])
      .where('revoked_at', 'is not', null)
      .execute();
    return rows.map((r) => ({ id: r.id, reason: r.revoked_reason }));
  }

  /** Live sessions of an agent, newest first (the admin API). */
  async listForAgent(
    agentId: string,
    opts: { includeEnded?: boolean; limit?: number } = {},
  ): Promise<Session[]> {
    const now = this.clock.now();
    let q = this.store.db.selectFrom('sessions').selectAll().where('agent_id', '=', agentId);
    if (!opts.includeEnded) q = q.where('revoked_at', 'is', null).where('expires_at', '>', now);
    const rows = await q
      .orderBy('created_at', 'desc')
      .limit(Math.min(Math.max(opts.limit ?? 100, 1), 1000))
      .execute();
    return rows.map(rowToSession);
  }

  /** Revokes every live session opened under a user's grant; returns the ids revoked. */
  async revokeAllForGrant(grantId: string, reason: string): Promise<string[]> {
    const now = this.clock.now();
    const rows = await this.store.db
      .updateTable('sessions')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('grant_id', '=', grantId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .returning('id')
      .execute();
    return rows.map((r) => r.id);
  }

  /** Marks expiry audited; true only for the first caller (so SESSION_EXPIRED is written once). */
  async markExpiryLogged(id: string): Promise<boolean> {
    const res = await this.store.db
      .updateTable('sessions')
      .set({ expiry_logged: 1 })
      .where('id', '=', id)
      .where('expiry_logged', '=', 0)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }
}

/** What the claim statement returns for a session that had a call left. */
type ClaimRow = { call_count: number; taint: number };

/** The claim a returned row means; no row: the session has no call left (or does not exist). */
function claimOf(row: ClaimRow | undefined): CallClaim | null {
  return row ? { calls: Number(row.call_count), taint: Number(row.taint) } : null;
}
