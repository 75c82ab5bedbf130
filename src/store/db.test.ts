import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDialect, makeTarget } from '../../test/helpers/dialects.js';
import { cachingDatabase, fixedQuery } from './db.js';
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

  /** The durability setting the store's connection has right now, as the database reports it. */
  async function durability(db = store.db): Promise<string> {
    if (target.dialect === 'sqlite') {
      const r = await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(db);
      return ['OFF', 'NORMAL', 'FULL', 'EXTRA'][r.rows[0]!.synchronous]!;
    }
    const r = await sql<{ synchronous_commit: string }>`SHOW synchronous_commit`.execute(db);
    return r.rows[0]!.synchronous_commit;
  }

  it('relaxes SQLite commit durability only inside relaxed(), restoring it even when fn throws', async () => {
    const strict = target.dialect === 'sqlite' ? 'FULL' : 'on';
    // PostgreSQL runs fn as is: one statement's commit is not worth a transaction's round trips.
    const loose = target.dialect === 'sqlite' ? 'NORMAL' : 'on';
    expect(await durability()).toBe(strict);
    expect(await store.relaxed((db) => durability(db))).toBe(loose);
    expect(await durability()).toBe(strict);
    await expect(
      store.relaxed(async (db) => {
        await durability(db);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await durability()).toBe(strict);
    // A transaction inside relaxed() commits (SQLite: on the held connection).
    if (target.dialect === 'sqlite') {
      await store.relaxed((db) =>
        db.transaction().execute((trx) =>
          trx
            .updateTable('audit_head')
            .set((eb) => ({ seq: eb.ref('seq') }))
            .where('id', '=', 1)
            .execute(),
        ),
      );
      expect(await durability()).toBe(strict);
    }
  });

  it('offers raw synchronous access to SQLite stores only', () => {
    expect(store.sqlite !== undefined).toBe(target.dialect === 'sqlite');
  });

  it('fixedQuery runs a query built once with new values, keeping its own constants in place', async () => {
    await store.db
      .insertInto('signing_keys')
      .values(
        ['fq1', 'fq2'].map((kid, i) => ({
          kid,
          alg: 'EdDSA',
          private_jwk: '{}',
          public_jwk: '{}',
          created_at: 100 + i,
          retired_at: null,
        })),
      )
      .execute();
    // A constant (the alg) before and after the runtime value, as the claim's `+ 1` is.
    const q = fixedQuery((arg) =>
      store.db
        .selectFrom('signing_keys')
        .select(['kid', 'created_at'])
        .where('alg', '=', 'EdDSA')
        .where('kid', '=', arg(0))
        .where('created_at', '>', 50),
    );
    expect((await q(store.db, ['fq2'])).rows).toEqual([{ kid: 'fq2', created_at: 101 }]);
    expect((await q(store.db, ['fq1'])).rows).toEqual([{ kid: 'fq1', created_at: 100 }]);
    expect((await q(store.db, ['nope'])).rows).toEqual([]);
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

describe('statement cache (SQLite)', () => {
  it('reuses a prepared statement, never one still being iterated, and stays bounded', () => {
    const raw = new SqliteDatabase(':memory:');
    const db = cachingDatabase(raw, 3);
    raw.exec('CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3)');
    const text = 'SELECT n FROM t ORDER BY n';
    const first = db.prepare(text);
    expect(db.prepare(text)).toBe(first);
    const seen: number[] = [];
    for (const row of first.iterate([]) as IterableIterator<{ n: number }>) {
      // While `first` is busy, the same SQL gets a statement of its own that works.
      const other = db.prepare(text);
      expect(other).not.toBe(first);
      expect((other.all([]) as unknown[]).length).toBe(3);
      seen.push(row.n);
    }
    expect(seen).toEqual([1, 2, 3]);
    expect(db.prepare(text)).toBe(first);
    // Bounded: three other statements push the oldest out.
    for (const k of [1, 2, 3]) db.prepare(`SELECT ${k}`);
    expect(db.prepare(text)).not.toBe(first);
    db.close();
  });
});

describe('raw SQLite access (store.sqlite)', () => {
  const target = makeTarget('sqlite');
  let store: Store;
  let raw: NonNullable<Store['sqlite']>;
  let n = 0;
  beforeAll(async () => {
    store = await target.open();
    raw = store.sqlite!;
  });
  afterAll(async () => {
    await store.close();
    await target.cleanup();
  });

  const insertKey =
    'INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)';
  const key = (kid: string) => [kid, 'EdDSA', '{}', '{}', ++n, null];
  const kids = async (prefix: string) =>
    (
      await store.db
        .selectFrom('signing_keys')
        .select('kid')
        .where('kid', 'like', `${prefix}%`)
        .orderBy('kid')
        .execute()
    ).map((r) => r.kid);
  const synchronous = (prepare: (sql: string) => { get(): unknown }) =>
    (prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous;
  const gate = () => {
    let open!: () => void;
    const opened = new Promise<void>((r) => {
      open = r;
    });
    return { open, opened };
  };

  it('waits for a Kysely transaction open on the same store, then runs after it commits (not inside it)', async () => {
    const held = gate();
    const begun = gate();
    const order: string[] = [];
    const kysely = store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('signing_keys')
        .values({
          kid: 'ser-1',
          alg: 'EdDSA',
          private_jwk: '{}',
          public_jwk: '{}',
          created_at: 1,
          retired_at: null,
        })
        .execute();
      begun.open();
      await held.opened; // the transaction awaits between statements, holding the connection
      await trx
        .insertInto('signing_keys')
        .values({
          kid: 'ser-2',
          alg: 'EdDSA',
          private_jwk: '{}',
          public_jwk: '{}',
          created_at: 2,
          retired_at: null,
        })
        .execute();
      order.push('kysely');
    });
    await begun.opened;
    const written = raw.run(
      (prepare) => {
        order.push('raw');
        prepare(insertKey).run(key('ser-3'));
        // Both rows of the Kysely transaction are there: it committed before this began.
        return (
          prepare("SELECT COUNT(*) AS n FROM signing_keys WHERE kid LIKE 'ser-%'").get() as { n: number }
        ).n;
      },
      { transaction: true },
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual([]);
    held.open();
    await kysely;
    expect(await written).toBe(3);
    expect(order).toEqual(['kysely', 'raw']);
    expect(await kids('ser-')).toEqual(['ser-1', 'ser-2', 'ser-3']);
  });

  it('rolls back everything it wrote when fn throws, and the error surfaces as thrown', async () => {
    const failing = raw.run(
      (prepare) => {
        prepare(insertKey).run(key('rb-1'));
        prepare(insertKey).run(key('rb-2'));
        prepare(insertKey).run(key('rb-1')); // duplicate primary key
      },
      { transaction: true, relaxed: true },
    );
    await expect(failing).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_CONSTRAINT/) });
    await expect(
      raw.run(
        () => {
          throw new Error('boom');
        },
        { transaction: true },
      ),
    ).rejects.toThrow('boom');
    expect(await kids('rb-')).toEqual([]);
    // Nothing left open: the connection takes the next transaction.
    await raw.run((prepare) => prepare(insertKey).run(key('rb-3')), { transaction: true });
    expect(await kids('rb-')).toEqual(['rb-3']);
  });

  it('relaxed commits at synchronous = NORMAL and restores FULL after success and after a throw', async () => {
    expect(await raw.run(synchronous)).toBe(2);
    expect(await raw.run(synchronous, { relaxed: true })).toBe(1);
    expect(await raw.run(synchronous, { relaxed: true, transaction: true })).toBe(1);
    expect(await raw.run(synchronous)).toBe(2);
    await expect(
      raw.run(
        (prepare) => {
          prepare(insertKey).run(key('rx-1'));
          throw new Error('boom');
        },
        { relaxed: true, transaction: true },
      ),
    ).rejects.toThrow('boom');
    const r = await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(store.db);
    expect(r.rows[0]?.synchronous).toBe(2);
    expect(await kids('rx-')).toEqual([]);
  });

  it('a relaxed run whose FULL restore failed does not leave the next run at NORMAL', async () => {
    // The cached statement that puts FULL back fails once, as a closed or broken connection would.
    const restore = await raw.run((prepare) => prepare('PRAGMA synchronous = FULL'));
    const real = restore.run.bind(restore);
    restore.run = (() => {
      restore.run = real;
      throw new Error('restore failed');
    }) as typeof restore.run;
    await expect(raw.run(synchronous, { relaxed: true })).rejects.toThrow('restore failed');
    // Still NORMAL on the connection; the next run puts FULL back before its own work.
    expect(await raw.run(synchronous)).toBe(2);
    expect(
      await raw.run((prepare) => prepare(insertKey).run(key('rs-1')), { transaction: true }),
    ).toBeTruthy();
    expect(await kids('rs-')).toEqual(['rs-1']);
  });

  it('refuses to nest into a transaction someone left open, and refuses an async fn', async () => {
    await raw.run((prepare) => prepare('BEGIN').run());
    let ran = false;
    await expect(
      raw.run(
        () => {
          ran = true;
        },
        { transaction: true },
      ),
    ).rejects.toThrow(/already open/);
    expect(ran).toBe(false);
    await sql`ROLLBACK`.execute(store.db);
    await expect(raw.run(async () => 1)).rejects.toThrow(/synchronous/);
    await expect(raw.run(async () => 1, { transaction: true })).rejects.toThrow(/promise/);
  });
});
