/**
 * Users' grants (issue #6): what a user allowed on the consent page — this
 * agent, through this OAuth client, with these scopes, for them. One row per
 * oidc-provider grant; the row is the source of truth for "is this grant still
 * alive": revoking it deletes every token of the grant and ends the Warden
 * sessions opened under it, at once.
 */
import type { Selectable } from 'kysely';
import { WardenError } from '../errors.js';
import type { Agent, AgentDelegation, SessionStore } from '../identity/index.js';
import type { Store, UserGrantsTable } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';

/** A user's grant as the consent page recorded it. */
export interface UserGrant {
  id: string;
  userId: string;
  agentId: string;
  clientId: string;
  clientName: string | null;
  redirectHost: string | null;
  scopes: string[];
  createdAt: number;
  updatedAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
  revokedBy: string | null;
}

function rowToGrant(row: Selectable<UserGrantsTable>): UserGrant {
  return {
    id: row.id,
    userId: row.user_id,
    agentId: row.agent_id,
    clientId: row.client_id,
    clientName: row.client_name,
    redirectHost: row.redirect_host,
    scopes: JSON.parse(row.scopes) as string[],
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    revokedBy: row.revoked_by,
  };
}

/** What revoking a grant ended. */
export interface GrantRevocation {
  grant: UserGrant;
  /** Warden sessions ended (their tokens fail on the next call). */
  sessions: string[];
  /** False when the grant was already revoked (nothing changed). */
  changed: boolean;
}

/** The `user_grants` table. */
export class UserGrants {
  constructor(
    private readonly store: Store,
    private readonly sessions: SessionStore,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Records (or, on a repeated consent for the same grant, updates) a user's grant. */
  async record(input: Omit<UserGrant, 'createdAt' | 'updatedAt' | 'lastUsedAt' | 'revokedAt' | 'revokedBy'>) {
    const now = this.clock.now();
    const values = {
      user_id: input.userId,
      agent_id: input.agentId,
      client_id: input.clientId,
      client_name: input.clientName,
      redirect_host: input.redirectHost,
      scopes: JSON.stringify([...new Set(input.scopes)].sort()),
      updated_at: now,
    };
    await this.store.db
      .insertInto('user_grants')
      .values({
        id: input.id,
        ...values,
        created_at: now,
        last_used_at: null,
        revoked_at: null,
        revoked_by: null,
      })
      // A revoked grant stays revoked: oidc-provider never reuses a grant id after revoking it.
      .onConflict((oc) => oc.column('id').doUpdateSet(values).where('user_grants.revoked_at', 'is', null))
      .execute();
    const grant = await this.get(input.id);
    if (!grant || grant.revokedAt !== null) throw new WardenError('CONFLICT', 'This grant was revoked');
    return grant;
  }

  async get(id: string): Promise<UserGrant | undefined> {
    const row = await this.store.db
      .selectFrom('user_grants')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? rowToGrant(row) : undefined;
  }

  /** A user's grants, newest first; revoked ones only when asked. */
  async listForUser(userId: string, opts: { includeRevoked?: boolean } = {}): Promise<UserGrant[]> {
    const rows = await this.store.db
      .selectFrom('user_grants')
      .selectAll()
      .where('user_id', '=', userId)
      .$if(opts.includeRevoked !== true, (q) => q.where('revoked_at', 'is', null))
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(500)
      .execute();
    return rows.map(rowToGrant);
  }

  /** Every grant (operators), newest first, optionally for one agent. */
  async list(
    opts: { agentId?: string; includeRevoked?: boolean; limit?: number } = {},
  ): Promise<UserGrant[]> {
    const rows = await this.store.db
      .selectFrom('user_grants')
      .selectAll()
      .$if(opts.agentId !== undefined, (q) => q.where('agent_id', '=', opts.agentId ?? ''))
      .$if(opts.includeRevoked !== true, (q) => q.where('revoked_at', 'is', null))
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(Math.min(opts.limit ?? 500, 5000))
      .execute();
    return rows.map(rowToGrant);
  }

  /**
   * After a session was opened under a grant: false (and the session revoked) when the grant was
   * revoked meanwhile. Revocation marks the grant, then ends its sessions; this looks again after
   * the session exists — so either this sees the mark, or the revocation sees the session.
   */
  async confirmSession(grantId: string, sessionId: string): Promise<boolean> {
    const grant = await this.get(grantId);
    if (grant && grant.revokedAt === null) return true;
    await this.sessions.revoke(sessionId, 'grant revoked while the session opened').catch(() => {});
    return false;
  }

  /** Notes that a token was issued under the grant. */
  async touch(id: string): Promise<void> {
    await this.store.db
      .updateTable('user_grants')
      .set({ last_used_at: this.clock.now() })
      .where('id', '=', id)
      .execute();
  }

  /**
   * Revokes a grant: the row is marked (first revocation wins), every token
   * and code of the grant is deleted, and its live sessions are revoked.
   * NOT_FOUND when there is no such grant.
   */
  async revoke(id: string, by: string): Promise<GrantRevocation> {
    const now = this.clock.now();
    const updated = await this.store.db
      .updateTable('user_grants')
      .set({ revoked_at: now, revoked_by: by, updated_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    const grant = await this.get(id);
    if (!grant) throw new WardenError('NOT_FOUND', `Grant ${id} not found`);
    // Deleted even when the row was revoked before: a retry after a crash finishes the job.
    await this.store.db.deleteFrom('oidc_models').where('grant_id', '=', id).execute();
    await this.store.db.deleteFrom('oidc_models').where('model', '=', 'Grant').where('id', '=', id).execute();
    const sessions = await this.sessions.revokeAllForGrant(id, `grant revoked by ${by}`);
    return { grant, sessions, changed: Number(updated.numUpdatedRows) === 1 };
  }
}

/** Whether `pattern` (`alice`, `corp:*`, `*`) names `userId`. */
function userMatches(pattern: string, userId: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith(':*')) return userId.startsWith(pattern.slice(0, -1));
  return pattern === userId;
}

/** How an OAuth client came to be known: registered (RFC 7591) or a client ID metadata document. */
export interface DelegatingClient {
  clientId: string;
  kind: 'dynamic' | 'metadata-document';
}

/** Whether the agent's delegation settings let `client` act as it. */
export function clientMayAct(delegation: AgentDelegation | null, client: DelegatingClient): boolean {
  if (!delegation) return false;
  return delegation.clients.some(
    (c) =>
      c === '*' ||
      (c === 'dynamic' && client.kind === 'dynamic') ||
      (client.kind === 'metadata-document' && c === client.clientId),
  );
}

/** Whether the agent's delegation settings let `userId` grant it access. */
export function userMayDelegate(delegation: AgentDelegation | null, userId: string): boolean {
  return delegation?.users.some((p) => userMatches(p, userId)) === true;
}

/** Agents a client may act as (usable ones only), in id order. */
export function agentsForClient(agents: Agent[], client: DelegatingClient, now: number): Agent[] {
  return agents.filter(
    (a) => a.status === 'active' && a.expiresAt > now && clientMayAct(a.delegation, client),
  );
}
