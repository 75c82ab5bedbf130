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
  /** 'killed' = stopped by the kill switch (issue #8; text column, no migration). */
  status: 'active' | 'disabled' | 'killed';
  disabled_reason: string | null;
  /** Where the agent was declared: 'config' (synced on start) or 'cli'/'api'. */
  source: string;
  /** JSON AgentDelegation (which OAuth clients may act as the agent for users); null = none (migration 005). */
  delegation: Generated<string | null>;
  /** Circuit breaker (migration 010): open until then (epoch ms; UNTIL_RESET = until an operator resets); null = closed. */
  breaker_open_until: Generated<number | null>;
  /** Why the breaker opened: failures | cost | wall-time; null when closed. */
  breaker_reason: Generated<string | null>;
  /** Cost charged in the current window, in cost micro-units (breakers.agent.maxCost). */
  breaker_cost: Generated<number>;
  /** When the current cost window began; null = nothing charged yet. */
  breaker_cost_since: Generated<number | null>;
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
  /** The user the agent acts for in this session (migration 004); null = none. */
  user_id: Generated<string | null>;
  /** 1 once SESSION_EXPIRED has been audited. */
  expiry_logged: Generated<number>;
  /** The user grant (consent) the session was opened under (migration 005); null = none. */
  grant_id: Generated<string | null>;
  /** Taint bits (migration 007): 1 untrusted content ingested, 2 private data read; 0 = clean. */
  taint: Generated<number>;
  /** Circuit breaker (migration 010): open until then (epoch ms; UNTIL_RESET = until an operator resets); null = closed. */
  breaker_open_until: Generated<number | null>;
  /** Why the breaker opened: failures | cost | wall-time; null when closed. */
  breaker_reason: Generated<string | null>;
  /** Cost charged to the session so far, in cost micro-units (breakers.session.maxCost). */
  breaker_cost: Generated<number>;
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

/** One row (id = 1): the Merkle tree builder's cursor and the log's id (migration 011). */
export interface AuditTreeTable {
  id: number;
  /** Names this log in every checkpoint (a checkpoint of another log never matches). */
  log_id: string;
  /** Leaves (entries) in the tree built so far. */
  size: number;
  /** The chain hash of entry `size` (GENESIS_HASH at 0): the next entry must link to it. */
  head_hash: string;
  /** JSON: hex roots of the perfect subtrees at the right edge, indexed by level (null where the bit is clear). */
  frontier: string;
  updated_at: number;
}

/** The root of a complete subtree of 2^level leaves starting at leaf idx·2^level; levels 8, 16, … (migration 011). */
export interface AuditTreeNodeTable {
  level: number;
  idx: number;
  hash: string;
}

/** A signed tree head (migration 011); the JWS is the authority, the columns are for queries. */
export interface AuditCheckpointTable {
  tree_size: number;
  root_hash: string;
  /** The chain hash of entry `tree_size` (binds the chain to the tree). */
  head_hash: string;
  ts: number;
  kid: string;
  jws: string;
}

/** One retention prune (migration 011): entries up to through_seq were archived and deleted. */
export interface AuditPruneTable {
  through_seq: number;
  /** The chain hash of entry through_seq: the first remaining entry's prev_hash. */
  through_hash: string;
  /** JSON hex roots at the right edge at through_seq (as AuditTreeTable.frontier). */
  frontier: string;
  archive_name: string;
  archive_sha256: string;
  pruned_at: number;
  pruned_by: string;
}

/** An approval request (kind 'approval') or a review flag (kind 'review'); migration 004. */
export interface ApprovalsTable {
  id: string;
  kind: 'approval' | 'review';
  /** approval: pending | approved | denied | expired; review: flagged | reviewed. */
  status: string;
  created_at: number;
  expires_at: number;
  trace_id: string;
  agent_id: string;
  agent_type: string;
  session_id: string;
  /** The user the agent acts for, when it does (separation of duties). */
  user_id: string | null;
  tool_name: string;
  /** The class the call ran or waited under (after policy raised it). */
  risk: string;
  configured_risk: string;
  /** JSON: the arguments, redacted (what approvers see). */
  arguments: string;
  /** SHA-256 hex of the canonical JSON of the arguments as the agent sent them. */
  arguments_hash: string;
  reasoning: string | null;
  /** The rule that asked for the human (risk.high-requires-approval, policy.obligation, …). */
  rule: string;
  /** JSON string[]: the Cedar policies that determined the allow. */
  policy_ids: string;
  /** The audit entry that recorded the request. */
  audit_seq: number | null;
  decided_at: number | null;
  /** `operator:<id>` (a human), or `system:timeout`. */
  decided_by: string | null;
  /** api | cli | slack | timeout */
  decided_via: string | null;
  decision_comment: string | null;
  /** JSON object: top-level argument values an approver replaced (edit before approve). */
  argument_patch: string | null;
  /** review verdict: ok | concern. */
  verdict: string | null;
  /** When an approved request was used by the call it approved (single use). */
  consumed_at: number | null;
  consumed_trace_id: string | null;
}

/** One notification to deliver (at least once) to one target; migration 004. */
export interface NotificationOutboxTable {
  id: string;
  /** `slack` or `webhook:<name>`. */
  target: string;
  event: string;
  approval_id: string | null;
  /** JSON: the event body as delivered. */
  payload: string;
  /** pending | sent | dead */
  status: string;
  attempts: Generated<number>;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

/** A chat message posted about an approval, to update with the outcome; migration 004. */
export interface NotifierMessagesTable {
  approval_id: string;
  target: string;
  channel: string;
  message_ts: string;
  created_at: number;
}

/** A user of the embedded user store (migration 005). */
export interface UsersTable {
  /** Login name: `[a-z0-9][a-z0-9._-]*`, never a colon (external users are `<provider>:<sub>`). */
  id: string;
  display_name: string;
  email: string | null;
  /** `scrypt$…` (see src/users/password.ts); null = cannot log in with a password. */
  password_hash: string | null;
  status: 'active' | 'disabled';
  /** Consecutive failed password logins (reset on success). */
  failed_logins: Generated<number>;
  /** Password logins refused until then (epoch ms); null = not locked. */
  locked_until: number | null;
  created_at: number;
  updated_at: number;
  last_login_at: number | null;
}

/** A grant a user gave an agent (through an OAuth client) on the consent page (migration 005). */
export interface UserGrantsTable {
  /** oidc-provider's grant id. */
  id: string;
  /** Embedded (`alice`) or external (`corp:alice`) user id. */
  user_id: string;
  agent_id: string;
  client_id: string;
  client_name: string | null;
  redirect_host: string | null;
  /** JSON string[]: the scopes the user granted. */
  scopes: string;
  created_at: number;
  updated_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
  /** Who revoked it: the user, or `operator:<id>`. */
  revoked_by: string | null;
}

/** A user's tokens at an upstream's authorization server, sealed (JWE, dir + A256GCM); migration 006. */
export interface UpstreamTokensTable {
  user_id: string;
  issuer: string;
  /** Compact JWE of the token set; its protected header names the user and the issuer. */
  sealed: string;
  /** When the access token expires (epoch ms); null = unknown. */
  expires_at: number | null;
  created_at: number;
  updated_at: number;
}

/** One upstream tool's pinned definition (migration 008); key (upstream, tool). See src/pins. */
export interface ToolPinsTable {
  upstream: string;
  /** The tool's name at the upstream (not the public name, which a collision may prefix). */
  tool: string;
  /** approved | pending (first sight, never approved) | quarantined (changed since approved). */
  status: string;
  /** SHA-256 hex of the approved definition's canonical JSON; null = never approved. */
  approved_hash: string | null;
  /** JSON ToolDefinition that was approved. */
  approved_definition: string | null;
  /** `system:auto` or `operator:<id>`. */
  approved_by: string | null;
  approved_at: number | null;
  /** The definition awaiting an operator (pending, quarantined); null when approved. */
  pending_hash: string | null;
  pending_definition: string | null;
  /** JSON DefinitionInspection (injection score and signals) of the pending, else the approved, definition. */
  inspection: string | null;
  first_seen_at: number;
  /** When the status or the pending definition last changed. */
  changed_at: number;
}

/** Behaviour in one hour (migration 009): per (scope, key, tool, hour start). See src/monitor/anomaly. */
export interface MonitorBucketsTable {
  /** 'agent' (key = agent id) | 'type' (key = agent type). */
  scope: string;
  key: string;
  /** The tool called or denied ('' when a denial named none). */
  tool: string;
  /** Start of the hour, epoch ms. */
  hour: number;
  /** The agent's type (scope 'type': the key itself). */
  agent_type: string;
  /** Tool calls that ran (outcome entries). */
  calls: Generated<number>;
  /** UTF-8 bytes of the results returned to the agent. */
  result_bytes: Generated<number>;
  /** Model tokens the agent reported, summed over the calls that reported them. */
  tokens: Generated<number>;
  /** Calls that reported tokens (a call without a report is unknown, not zero). */
  token_calls: Generated<number>;
  /** TOOL_DENIED and RATE_LIMITED entries. */
  denials: Generated<number>;
}

/** Every tool an agent or agent type ever ran (migration 009): first use is judged against it. */
export interface MonitorToolsTable {
  scope: string;
  key: string;
  tool: string;
  first_seen: number;
  last_seen: number;
}

/** A reader's position in the audit log (migration 009): the last seq it processed. */
export interface MonitorCursorsTable {
  name: string;
  seq: number;
  updated_at: number;
}

/** An anomaly raised by monitoring (migration 009), for the admin API and crash recovery. */
export interface AnomaliesTable {
  id: string;
  /** When it was raised, epoch ms. */
  ts: number;
  agent_id: string;
  agent_type: string | null;
  session_id: string | null;
  /** null for rules about the agent as a whole (off-hours, denial-burst). */
  tool: string | null;
  rule: string;
  /** low | medium | high */
  severity: string;
  /** alert | hold-session | quarantine-session | kill-agent */
  response: string;
  window_start: number;
  /** Unique: a rule fires once per (agent, rule, tool, window); first use once per scope key and tool. */
  dedup: string;
  /** JSON: the numbers behind it (observed, baseline, factor, threshold, …). */
  numbers: string;
  /** The trace of the entry that set it off. */
  trace_id: string;
  trigger_seq: number;
  /** When a process took it on (a crashed process's claim expires and another finishes it). */
  claimed_at: number;
  responded_at: number | null;
  response_error: string | null;
  /** The ANOMALY_DETECTED entry; null until audited. */
  audit_seq: number | null;
}

/** An audit sink's delivery position and lease (migration 012). */
export interface AuditSinkCursorTable {
  /** The sink's configured name. */
  name: string;
  /** The last seq delivered (or filtered out): the next delivery starts after it. */
  seq: number;
  /** The process delivering now (null: nobody). */
  leased_by: string | null;
  /** Epoch ms when that lease lapses unless renewed. */
  lease_until: number;
  /** Consecutive failed deliveries (0 after a success). */
  failures: number;
  /** The last failure's reason (a status or network error, never a body). */
  last_error: string | null;
  updated_at: number;
}

export interface Database {
  anomalies: AnomaliesTable;
  monitor_buckets: MonitorBucketsTable;
  monitor_tools: MonitorToolsTable;
  monitor_cursors: MonitorCursorsTable;
  tool_pins: ToolPinsTable;
  upstream_tokens: UpstreamTokensTable;
  users: UsersTable;
  user_grants: UserGrantsTable;
  approvals: ApprovalsTable;
  notification_outbox: NotificationOutboxTable;
  notifier_messages: NotifierMessagesTable;
  agents: AgentsTable;
  sessions: SessionsTable;
  signing_keys: SigningKeysTable;
  oidc_models: OidcModelsTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  audit_tree: AuditTreeTable;
  audit_tree_node: AuditTreeNodeTable;
  audit_checkpoint: AuditCheckpointTable;
  audit_prune: AuditPruneTable;
  audit_sink_cursor: AuditSinkCursorTable;
}
