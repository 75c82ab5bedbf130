/**
 * Table types for Kysely. Times are epoch milliseconds (BIGINT); lists and
 * objects are JSON text so both dialects store them the same way.
 */
import type { Generated } from 'kysely';

export interface AgentsTable {
  id: string;
  type: string;
  version: string;
  environment: string;
  owner: string;
  created_at: number;
  updated_at: number;
  expires_at: number;
  max_concurrent_sessions: number;
  /** JSON string[] */
  allowed_tools: string;
  /** JSON string[] */
  denied_tools: string;
  /** JSON string[]: resource-scope patterns the agent may request (migration 003). */
  scopes: string;
  /** JSON public JWK, or null when the agent has no key (operator-issued tokens only). */
  public_jwk: string | null;
  /** JSON AgentConstraints */
  constraints: string;
  status: 'active' | 'disabled';
  disabled_reason: string | null;
  /** Where the agent was declared: 'config' (synced on start) or 'cli'/'api'. */
  source: string;
}

export interface SessionsTable {
  id: string;
  agent_id: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
  call_count: Generated<number>;
  max_tool_calls: number;
  /** JSON string[] of CIDRs; [] = any address. */
  allowed_cidrs: string;
  /** JSON string[] */
  scopes: string;
  /** 'client_credentials' | 'operator' */
  issued_via: string;
  /** The client IP the token was requested from, when known. */
  client_ip: string | null;
  /** 1 once SESSION_EXPIRED has been audited. */
  expiry_logged: Generated<number>;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  /** JSON private JWK. */
  private_jwk: string;
  /** JSON public JWK. */
  public_jwk: string;
  created_at: number;
  /** When the key stopped signing (rotation); null = the active key. */
  retired_at: number | null;
}

/** oidc-provider's models (ReplayDetection, AccessToken, Grant, …), persisted through our store. */
export interface OidcModelsTable {
  model: string;
  id: string;
  /** JSON payload */
  payload: string;
  expires_at: number | null;
  consumed_at: number | null;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
}

export interface AuditLogTable {
  /** Position in the chain, 1-based, gap-free; assigned by the writer under the head lock. */
  seq: number;
  id: string;
  ts: number;
  trace_id: string;
  event: string;
  /** 'AI_AGENT' | 'HUMAN' | 'SYSTEM' */
  actor_type: string;
  actor_id: string | null;
  agent_id: string | null;
  agent_type: string | null;
  session_id: string | null;
  trigger_user_id: string | null;
  trigger_source: string | null;
  tool_name: string | null;
  /** JSON, redacted parameters */
  parameters: string | null;
  reasoning: string | null;
  /** JSON { allowed, code?, rule?, reasons[] } */
  decision: string | null;
  /** 'success' | 'failure' | 'denied' | 'timeout' | 'pending' */
  result: string | null;
  latency_ms: number | null;
  /** JSON, anything else the event carries */
  data: string | null;
  prev_hash: string;
  hash: string;
}

/** One row (id = 1): the chain head, locked by every append. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

export interface Database {
  agents: AgentsTable;
  sessions: SessionsTable;
  signing_keys: SigningKeysTable;
  oidc_models: OidcModelsTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
}
