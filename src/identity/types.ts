/**
 * The identity model: agents (non-human identities, the article's AgentIdentity
 * plus a credential) and the sessions their tokens are bound to.
 * Times are epoch milliseconds.
 */
import type { JWK, JWTPayload } from 'jose';

export type { JWK } from 'jose';

/** A registered agent. */
export interface Agent {
  id: string;
  type: string;
  version: string;
  environment: string;
  owner: string;
  createdAt: number;
  updatedAt: number;
  /** Mandatory expiry: an agent identity is never forever. */
  expiresAt: number;
  maxConcurrentSessions: number;
  allowedTools: string[];
  deniedTools: string[];
  /** Resource-scope patterns the agent may request (`orders:read:user:*`); see scopes.ts. */
  scopes: string[];
  /** Verifies the agent's private_key_jwt assertions; null = operator-issued tokens only. */
  publicJwk: JWK | null;
  constraints: { maxToolCalls?: number; allowedCidrs?: string[] };
  /** Which OAuth clients may act as this agent for users who consent; null = no delegated logins. */
  delegation: AgentDelegation | null;
  /** `killed`: stopped by the kill switch (issue #8); like `disabled`, but refused as AGENT_KILLED. */
  status: 'active' | 'disabled' | 'killed';
  disabledReason: string | null;
  /** Where it was declared: 'config' (synced on start), 'cli', 'api'. */
  source: string;
  /**
   * The agent's circuit breaker (issue #8, src/monitor/breakers.ts): open until then (epoch ms;
   * UNTIL_RESET = until an operator resets it). Null or absent = closed.
   */
  breakerOpenUntil?: number | null;
  /** Why the breaker opened (failures | cost | wall-time); null when closed. */
  breakerReason?: string | null;
}

/**
 * Delegated logins (issue #6): users log in at Warden's consent page through an
 * OAuth client (a stock MCP client) and grant it access as this agent, for them.
 */
export interface AgentDelegation {
  /**
   * OAuth clients that may act as the agent: `dynamic` (any client registered through
   * dynamic client registration), exact client ID metadata document URLs
   * (`https://app.example.com/oauth/client.json`), or `*` (any of those).
   */
  clients: string[];
  /** Users who may grant it: exact ids (`alice`, `corp:bob`), `<provider>:*`, or `*` (anyone who can log in). */
  users: string[];
}

/** What a caller supplies to register an agent; the registry owns the rest. */
export type AgentInput = Omit<
  Agent,
  | 'createdAt'
  | 'updatedAt'
  | 'status'
  | 'disabledReason'
  | 'source'
  | 'scopes'
  | 'delegation'
  | 'breakerOpenUntil'
  | 'breakerReason'
> & {
  /** Resource-scope patterns; absent = none. */
  scopes?: string[];
  /** Delegated logins; absent = none. */
  delegation?: AgentDelegation | null;
};

/** A session: what one short-lived token is bound to (DESIGN.md "Identity and credentials"). */
export interface Session {
  id: string;
  agentId: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  revokedReason: string | null;
  callCount: number;
  maxToolCalls: number;
  /** CIDRs the session may be used from; [] = any address. */
  allowedCidrs: string[];
  scopes: string[];
  /** How the session was opened; `token_exchange` = an agent acting for a user (RFC 8693). */
  issuedVia: 'client_credentials' | 'operator' | 'token_exchange' | 'authorization_code';
  clientIp: string | null;
  /**
   * The user the agent acts for in this session (null = its own account). Set by an operator
   * (`token issue --user`) today, by delegated OAuth grants later; approvals use it for
   * separation of duties and policies see it as `context.user`.
   */
  userId: string | null;
  /** The user's grant (consent page) the session was opened under; revoking the grant ends it. */
  grantId: string | null;
  /** True once SESSION_EXPIRED has been audited. */
  expiryLogged: boolean;
  /** The session's circuit breaker (issue #8): open until then (UNTIL_RESET = until reset); null or absent = closed. */
  breakerOpenUntil?: number | null;
  /** Why the breaker opened (failures | cost | wall-time); null when closed. */
  breakerReason?: string | null;
}

/** The constraints claim (`cnst`) a session token carries. */
export interface ConstraintsClaim {
  max_tool_calls: number;
  allowed_cidrs: string[];
}

/** The claims of a Warden session token, whichever path (operator or OAuth) issued it. */
export type SessionClaims = JWTPayload & {
  iss: string;
  aud: string;
  /** The agent; or, when the agent acts for a user (delegation), the user. */
  sub: string;
  /** RFC 8693 §4.1: present when the agent acts for a user — the agent is the actor. */
  act?: { sub: string };
  /** Always the agent (the OAuth client). */
  client_id: string;
  sid: string;
  scope: string;
  jti: string;
  iat: number;
  exp: number;
  cnst: ConstraintsClaim;
  agent_type: string;
};

/** A freshly issued session token. */
export interface IssuedToken {
  token: string;
  sessionId: string;
  agentId: string;
  expiresAt: number;
  scopes: string[];
  tokenType: 'Bearer';
}

/** Signing algorithms Warden issues and accepts for its own tokens (never `none`, never HS*). */
export type SigningAlg = 'EdDSA' | 'ES256';

/** Hard maximum lifetime of a session token, whatever the config says (DESIGN.md). */
export const HARD_MAX_TOKEN_TTL_MS = 15 * 60_000;
