import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { dialectOf, redactUrl, type Store } from './index.js';
import { GENESIS_HASH } from './migrations.js';

describeEachDialect('store', (target) => {
  let store: Store;
  beforeAll(async () => {
    store = await target.open();
  });
  afterAll(async () => {
    await store.close();
    await target.cleanup();
  });

  it('migrates to a schema with the audit head at genesis', async () => {
    const head = await store.db.selectFrom('audit_head').selectAll().executeTakeFirstOrThrow();
    expect(head).toEqual({ id: 1, seq: 0, hash: GENESIS_HASH });
  });

  it('returns BIGINT epoch milliseconds as numbers', async () => {
    const t = 1_795_000_000_123;
    await store.db
      .insertInto('signing_keys')
      .values({
        kid: 'k1',
        alg: 'EdDSA',
        private_jwk: '{}',
        public_jwk: '{}',
        created_at: t,
        retired_at: null,
      })
      .execute();
    const row = await store.db
      .selectFrom('signing_keys')
      .selectAll()
      .where('kid', '=', 'k1')
      .executeTakeFirstOrThrow();
    expect(row.created_at).toBe(t);
  });

  it('refuses UPDATE and DELETE on the audit log (append-only at the database)', async () => {
    await store.db
      .insertInto('audit_log')
      .values({
        seq: 1,
        id: 'a1',
        ts: 1,
        trace_id: 't',
        event: 'TOOL_CALL',
        actor_type: 'AI_AGENT',
        actor_id: null,
        agent_id: null,
        agent_type: null,
        session_id: null,
        trigger_user_id: null,
        trigger_source: null,
        tool_name: null,
        parameters: null,
        reasoning: null,
        decision: null,
        result: null,
        latency_ms: null,
        data: null,
        prev_hash: GENESIS_HASH,
        hash: 'h',
      })
      .execute();
    await expect(store.db.updateTable('audit_log').set({ event: 'X' }).execute()).rejects.toThrow(
      /append-only/,
    );
    await expect(store.db.deleteFrom('audit_log').execute()).rejects.toThrow(/append-only/);
    const n = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM audit_log`.execute(store.db);
    expect(Number(n.rows[0]?.n)).toBe(1);
  });
});

it('names the dialect and redacts passwords', () => {
  expect(dialectOf('sqlite:/tmp/x.db')).toBe('sqlite');
  expect(dialectOf('postgres://u:p@h/db')).toBe('postgres');
  expect(() => dialectOf('mysql://x')).toThrow(/store.url/);
  expect(redactUrl('postgres://u:secret@h:5432/db')).not.toContain('secret');
});
