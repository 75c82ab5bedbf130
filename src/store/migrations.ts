/**
 * Schema migrations, run on start by `openStore`. Append new migrations; never
 * edit a published one. Each runs in a transaction (Kysely's Migrator).
 */

import { randomUUID } from 'node:crypto';
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { StoreDialect } from './db.js';

/** The genesis hash: the `prev_hash` of the first audit entry. */
export const GENESIS_HASH = '0'.repeat(64);

const m001: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('agents')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('environment', 'text', (c) => c.notNull())
      .addColumn('owner', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('max_concurrent_sessions', 'integer', (c) => c.notNull())
      .addColumn('allowed_tools', 'text', (c) => c.notNull())
      .addColumn('denied_tools', 'text', (c) => c.notNull())
      .addColumn('public_jwk', 'text')
      .addColumn('constraints', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('disabled_reason', 'text')
      .addColumn('source', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.id'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .addColumn('revoked_reason', 'text')
      .addColumn('call_count', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('max_tool_calls', 'integer', (c) => c.notNull())
      .addColumn('allowed_cidrs', 'text', (c) => c.notNull())
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('issued_via', 'text', (c) => c.notNull())
      .addColumn('client_ip', 'text')
      .addColumn('expiry_logged', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createIndex('sessions_agent_expiry')
      .on('sessions')
      .columns(['agent_id', 'expires_at'])
      .execute();

    await db.schema
      .createTable('signing_keys')
      .addColumn('kid', 'text', (c) => c.primaryKey())
      .addColumn('alg', 'text', (c) => c.notNull())
      .addColumn('private_jwk', 'text', (c) => c.notNull())
      .addColumn('public_jwk', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('retired_at', 'bigint')
      .execute();

    await db.schema
      .createTable('oidc_models')
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .addColumn('consumed_at', 'bigint')
      .addColumn('grant_id', 'text')
      .addColumn('uid', 'text')
      .addColumn('user_code', 'text')
      .addPrimaryKeyConstraint('oidc_models_pk', ['model', 'id'])
      .execute();
    await db.schema.createIndex('oidc_models_grant').on('oidc_models').column('grant_id').execute();
    await db.schema.createIndex('oidc_models_uid').on('oidc_models').column('uid').execute();
    await db.schema.createIndex('oidc_models_expiry').on('oidc_models').column('expires_at').execute();

    await db.schema
      .createTable('audit_log')
      .addColumn('seq', 'bigint', (c) => c.primaryKey())
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('trace_id', 'text', (c) => c.notNull())
      .addColumn('event', 'text', (c) => c.notNull())
      .addColumn('actor_type', 'text', (c) => c.notNull())
      .addColumn('actor_id', 'text')
      .addColumn('agent_id', 'text')
      .addColumn('agent_type', 'text')
      .addColumn('session_id', 'text')
      .addColumn('trigger_user_id', 'text')
      .addColumn('trigger_source', 'text')
      .addColumn('tool_name', 'text')
      .addColumn('parameters', 'text')
      .addColumn('reasoning', 'text')
      .addColumn('decision', 'text')
      .addColumn('result', 'text')
      .addColumn('latency_ms', 'integer')
      .addColumn('data', 'text')
      .addColumn('prev_hash', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('audit_log_trace').on('audit_log').column('trace_id').execute();
    await db.schema.createIndex('audit_log_agent').on('audit_log').columns(['agent_id', 'ts']).execute();

    await db.schema
      .createTable('audit_head')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .execute();
    await sql`INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ${GENESIS_HASH})`.execute(db);
  },
};

/** Append-only enforcement in the database itself: a second layer behind the hash chain. */
const m002 = (dialect: StoreDialect): Migration => ({
  async up(db: Kysely<unknown>) {
    if (dialect === 'sqlite') {
      await sql`CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`.execute(db);
      await sql`CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`.execute(db);
      return;
    }
    await sql`CREATE OR REPLACE FUNCTION warden_audit_append_only() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql`.execute(db);
    await sql`CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
      FOR EACH ROW EXECUTE FUNCTION warden_audit_append_only()`.execute(db);
  },
});

/** Resource-scope patterns an agent may request (issue #3); existing agents hold none. */
const m003AgentScopes: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('agents')
      .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]'))
      .execute();
  },
};

/**
 * Human in the loop (issue #5): approval requests and review flags, the notifier
 * outbox (retries survive restarts; dead letters stay visible), the chat messages
 * to update once a request is decided, and the user a session acts for.
 */
const m004Approvals: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('approvals')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('trace_id', 'text', (c) => c.notNull())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('agent_type', 'text', (c) => c.notNull())
      .addColumn('session_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text')
      .addColumn('tool_name', 'text', (c) => c.notNull())
      .addColumn('risk', 'text', (c) => c.notNull())
      .addColumn('configured_risk', 'text', (c) => c.notNull())
      .addColumn('arguments', 'text', (c) => c.notNull())
      .addColumn('arguments_hash', 'text', (c) => c.notNull())
      .addColumn('reasoning', 'text')
      .addColumn('rule', 'text', (c) => c.notNull())
      .addColumn('policy_ids', 'text', (c) => c.notNull())
      .addColumn('audit_seq', 'bigint')
      .addColumn('decided_at', 'bigint')
      .addColumn('decided_by', 'text')
      .addColumn('decided_via', 'text')
      .addColumn('decision_comment', 'text')
      .addColumn('argument_patch', 'text')
      .addColumn('verdict', 'text')
      .addColumn('consumed_at', 'bigint')
      .addColumn('consumed_trace_id', 'text')
      .execute();
    await db.schema
      .createIndex('approvals_status')
      .on('approvals')
      .columns(['status', 'expires_at'])
      .execute();
    await db.schema
      .createIndex('approvals_match')
      .on('approvals')
      .columns(['agent_id', 'tool_name', 'arguments_hash'])
      .execute();
    await db.schema.createIndex('approvals_created').on('approvals').column('created_at').execute();

    await db.schema
      .createTable('notification_outbox')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('event', 'text', (c) => c.notNull())
      .addColumn('approval_id', 'text')
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('notification_outbox_due')
      .on('notification_outbox')
      .columns(['status', 'next_attempt_at'])
      .execute();

    await db.schema
      .createTable('notifier_messages')
      .addColumn('approval_id', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('channel', 'text', (c) => c.notNull())
      .addColumn('message_ts', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('notifier_messages_pk', ['approval_id', 'target'])
      .execute();

    await db.schema.alterTable('sessions').addColumn('user_id', 'text').execute();
  },
};

/**
 * Users and their delegated grants (issue #6): the embedded user store, one row per
 * grant a user gave an agent through the consent page, the grant a session was opened
 * under (revoking the grant ends its sessions), and each agent's delegation settings.
 */
const m005Users: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('display_name', 'text', (c) => c.notNull())
      .addColumn('email', 'text')
      .addColumn('password_hash', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('locked_until', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('last_login_at', 'bigint')
      .execute();

    await db.schema
      .createTable('user_grants')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('client_id', 'text', (c) => c.notNull())
      .addColumn('client_name', 'text')
      .addColumn('redirect_host', 'text')
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('last_used_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .addColumn('revoked_by', 'text')
      .execute();
    await db.schema
      .createIndex('user_grants_user')
      .on('user_grants')
      .columns(['user_id', 'created_at'])
      .execute();

    await db.schema.alterTable('sessions').addColumn('grant_id', 'text').execute();
    await db.schema.createIndex('sessions_grant').on('sessions').column('grant_id').execute();
    await db.schema.alterTable('agents').addColumn('delegation', 'text').execute();
  },
};

/** Users' own tokens at upstream authorization servers (issue #6), encrypted; one row per user and issuer. */
const m006UpstreamTokens: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('upstream_tokens')
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('issuer', 'text', (c) => c.notNull())
      .addColumn('sealed', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('upstream_tokens_pk', ['user_id', 'issuer'])
      .execute();
    await db.schema.createIndex('upstream_tokens_issuer').on('upstream_tokens').column('issuer').execute();
  },
};

/**
 * Session taint (issue #7): bit flags a session collects as its calls return
 * untrusted content (1) or private data (2); never cleared while the session lives.
 */
const m007SessionTaint: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('sessions')
      .addColumn('taint', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
  },
};

/**
 * Tool-definition pinning (issue #7): the approved hash of each upstream tool's
 * definition, and the definition awaiting an operator when it is new or changed.
 */
const m008ToolPins: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('tool_pins')
      .addColumn('upstream', 'text', (c) => c.notNull())
      .addColumn('tool', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('approved_hash', 'text')
      .addColumn('approved_definition', 'text')
      .addColumn('approved_by', 'text')
      .addColumn('approved_at', 'bigint')
      .addColumn('pending_hash', 'text')
      .addColumn('pending_definition', 'text')
      .addColumn('inspection', 'text')
      .addColumn('first_seen_at', 'bigint', (c) => c.notNull())
      .addColumn('changed_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('tool_pins_pk', ['upstream', 'tool'])
      .execute();
  },
};

/**
 * Behavioural baselines and anomalies (issue #8, src/monitor/anomaly): hourly
 * buckets per agent and per agent type, the tools each has ever run, the read
 * position in the audit log (advanced by compare-and-set, so one process
 * handles each batch), and the anomalies raised (de-duplicated by `dedup`).
 */
const m009Monitoring: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('monitor_buckets')
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('tool', 'text', (c) => c.notNull())
      .addColumn('hour', 'bigint', (c) => c.notNull())
      .addColumn('agent_type', 'text', (c) => c.notNull())
      .addColumn('calls', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('result_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('tokens', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('token_calls', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('denials', 'integer', (c) => c.notNull().defaultTo(0))
      .addPrimaryKeyConstraint('monitor_buckets_pk', ['scope', 'key', 'tool', 'hour'])
      .execute();
    await db.schema.createIndex('monitor_buckets_hour').on('monitor_buckets').column('hour').execute();
    // A new agent is compared with its type's agents: their rows by type, tool and hour.
    await db.schema
      .createIndex('monitor_buckets_type')
      .on('monitor_buckets')
      .columns(['scope', 'agent_type', 'tool', 'hour'])
      .execute();
    await db.schema
      .createTable('monitor_tools')
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('tool', 'text', (c) => c.notNull())
      .addColumn('first_seen', 'bigint', (c) => c.notNull())
      .addColumn('last_seen', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('monitor_tools_pk', ['scope', 'key', 'tool'])
      .execute();
    await db.schema
      .createTable('monitor_cursors')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('anomalies')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('agent_type', 'text')
      .addColumn('session_id', 'text')
      .addColumn('tool', 'text')
      .addColumn('rule', 'text', (c) => c.notNull())
      .addColumn('severity', 'text', (c) => c.notNull())
      .addColumn('response', 'text', (c) => c.notNull())
      .addColumn('window_start', 'bigint', (c) => c.notNull())
      .addColumn('dedup', 'text', (c) => c.notNull().unique())
      .addColumn('numbers', 'text', (c) => c.notNull())
      .addColumn('trace_id', 'text', (c) => c.notNull())
      .addColumn('trigger_seq', 'bigint', (c) => c.notNull())
      .addColumn('claimed_at', 'bigint', (c) => c.notNull())
      .addColumn('responded_at', 'bigint')
      .addColumn('response_error', 'text')
      .addColumn('audit_seq', 'bigint')
      .execute();
    await db.schema.createIndex('anomalies_agent').on('anomalies').columns(['agent_id', 'ts']).execute();
    await db.schema.createIndex('anomalies_ts').on('anomalies').column('ts').execute();
    // Anomalies not yet audited are few: a partial index finds those a crashed process left.
    await db.schema
      .createIndex('anomalies_unaudited')
      .on('anomalies')
      .column('claimed_at')
      .where(sql.ref('audit_seq'), 'is', null)
      .execute();
  },
};

/**
 * Circuit breakers (issue #8): the open state lives on the session and agent rows
 * that every call reads already (token verify), so every replica sees it at once.
 * `breaker_open_until` null = closed; `breaker_cost` in cost micro-units (src/limits).
 */
const m010CircuitBreakers: Migration = {
  async up(db: Kysely<unknown>) {
    for (const table of ['sessions', 'agents']) {
      await db.schema.alterTable(table).addColumn('breaker_open_until', 'bigint').execute();
      await db.schema.alterTable(table).addColumn('breaker_reason', 'text').execute();
      await db.schema
        .alterTable(table)
        .addColumn('breaker_cost', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      // Open breakers are few: a partial index lists them without scanning every session.
      await db.schema
        .createIndex(`${table}_breaker_open`)
        .on(table)
        .column('breaker_open_until')
        .where(sql.ref('breaker_open_until'), 'is not', null)
        .execute();
    }
    // The agent's cost is counted per window (breakers.agent.costWindow): when its window began.
    await db.schema.alterTable('agents').addColumn('breaker_cost_since', 'bigint').execute();
  },
};

/**
 * Tamper-evident audit, second layer (issue #9): an RFC 9162 Merkle tree over the
 * entries (leaf i = entry seq i+1), built in the background. `audit_tree` is the
 * builder's cursor (one row: the size built and the right-edge subtree roots to
 * extend from) and the log's id, which every checkpoint names; `audit_tree_node`
 * keeps the roots of complete subtrees every 8 levels (tiles of 256), so a proof
 * reads at most a few hundred rows however long the log; `audit_checkpoint` holds
 * the signed tree heads. `audit_prune` records each retention prune: entries up to
 * `through_seq` were archived and deleted, and the right edge there, bound by the
 * signed checkpoint at that size, lets the rest of the log verify on its own.
 * audit_log's append-only trigger now lets a row go only once a prune covers it.
 */
const m011AuditTree = (dialect: StoreDialect): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('audit_tree')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('log_id', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('head_hash', 'text', (c) => c.notNull())
      .addColumn('frontier', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db
      .insertInto('audit_tree' as never)
      .values({
        id: 1,
        log_id: randomUUID(),
        size: 0,
        head_hash: GENESIS_HASH,
        frontier: '[]',
        updated_at: Date.now(),
      } as never)
      .execute();
    await db.schema
      .createTable('audit_tree_node')
      .addColumn('level', 'integer', (c) => c.notNull())
      .addColumn('idx', 'bigint', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('audit_tree_node_pk', ['level', 'idx'])
      .execute();
    await db.schema
      .createTable('audit_checkpoint')
      .addColumn('tree_size', 'bigint', (c) => c.primaryKey())
      .addColumn('root_hash', 'text', (c) => c.notNull())
      .addColumn('head_hash', 'text', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('kid', 'text', (c) => c.notNull())
      .addColumn('jws', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('audit_prune')
      .addColumn('through_seq', 'bigint', (c) => c.primaryKey())
      .addColumn('through_hash', 'text', (c) => c.notNull())
      .addColumn('frontier', 'text', (c) => c.notNull())
      .addColumn('archive_name', 'text', (c) => c.notNull())
      .addColumn('archive_sha256', 'text', (c) => c.notNull())
      .addColumn('pruned_at', 'bigint', (c) => c.notNull())
      .addColumn('pruned_by', 'text', (c) => c.notNull())
      .execute();
    if (dialect === 'sqlite') {
      await sql`DROP TRIGGER audit_log_no_delete`.execute(db);
      await sql`CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        WHEN old.seq > (SELECT coalesce(max(through_seq), 0) FROM audit_prune)
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`.execute(db);
      for (const t of ['audit_checkpoint', 'audit_prune']) {
        await sql`CREATE TRIGGER ${sql.raw(`${t}_append_only`)} BEFORE UPDATE ON ${sql.table(t)}
          BEGIN SELECT RAISE(ABORT, ${sql.lit(`${t} is append-only`)}); END`.execute(db);
        await sql`CREATE TRIGGER ${sql.raw(`${t}_no_delete`)} BEFORE DELETE ON ${sql.table(t)}
          BEGIN SELECT RAISE(ABORT, ${sql.lit(`${t} is append-only`)}); END`.execute(db);
      }
      return;
    }
    await sql`CREATE OR REPLACE FUNCTION warden_audit_append_only() RETURNS trigger AS $$
      BEGIN
        IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_log'
           AND OLD.seq <= (SELECT coalesce(max(through_seq), 0) FROM audit_prune) THEN
          RETURN OLD;
        END IF;
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
      END; $$ LANGUAGE plpgsql`.execute(db);
    for (const t of ['audit_checkpoint', 'audit_prune']) {
      await sql`CREATE TRIGGER ${sql.raw(`${t}_append_only`)} BEFORE UPDATE OR DELETE ON ${sql.table(t)}
        FOR EACH ROW EXECUTE FUNCTION warden_audit_append_only()`.execute(db);
    }
  },
});

/**
 * Audit sinks (issue #9, src/audit/sinks.ts): per configured sink, the last seq
 * delivered (the cursor only moves on a receiver's 2xx) and a lease — which process
 * delivers now, and until when — taken and renewed by compare-and-set, so replicas
 * on one PostgreSQL do not deliver the same entries twice.
 */
const m012AuditSinks: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('audit_sink_cursor')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('leased_by', 'text')
      .addColumn('lease_until', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('last_error', 'text')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
  },
};

/** Bring the schema up to date; throws with the failing migration's name. */
export async function migrate(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  // Kysely looks for its migration tables in every schema unless told which one;
  // with several schemas in one database (tests, tenants) it would find another's.
  let migrationTableSchema: string | undefined;
  if (dialect === 'postgres') {
    const r = await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db);
    migrationTableSchema = r.rows[0]?.s;
  }
  const provider: MigrationProvider = {
    async getMigrations() {
      return {
        '001_spine': m001,
        '002_audit_append_only': m002(dialect),
        '003_agent_scopes': m003AgentScopes,
        '004_approvals': m004Approvals,
        '005_users': m005Users,
        '006_upstream_tokens': m006UpstreamTokens,
        '007_session_taint': m007SessionTaint,
        '008_tool_pins': m008ToolPins,
        '009_monitoring': m009Monitoring,
        '010_circuit_breakers': m010CircuitBreakers,
        '011_audit_tree': m011AuditTree(dialect),
        '012_audit_sinks': m012AuditSinks,
      };
    },
  };
  const migrator = new Migrator({ db, provider, ...(migrationTableSchema ? { migrationTableSchema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}
