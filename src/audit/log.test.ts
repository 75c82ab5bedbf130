import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { isWardenError } from '../errors.js';
import { GENESIS_HASH, type Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { type AuditInput, AuditLog, entryHash, verifyChain } from './index.js';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

function call(i: number, extra: Partial<AuditInput> = {}): AuditInput {
  return {
    traceId: `tr_${i}`,
    event: 'TOOL_CALL',
    actorType: 'AI_AGENT',
    agentId: 'demo-support',
    agentType: 'customer-support',
    sessionId: 'ses_1',
    toolName: 'lookup_order',
    parameters: { orderId: 'ORD-ABCD1234' },
    decision: { allowed: true, rule: 'support-read', reasons: ['in allow list'] },
    result: 'success',
    latencyMs: 12,
    ...extra,
  };
}

async function rowCount(store: Store): Promise<number> {
  const r = await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM audit_log`.execute(store.db);
  return Number(r.rows[0]?.n);
}

/** Expect AUDIT_UNAVAILABLE with a private detail and no public leak of it. */
async function expectUnavailable(p: Promise<unknown>): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isWardenError(e, 'AUDIT_UNAVAILABLE')).toBe(true);
  if (isWardenError(e)) {
    expect(e.message).toBe('The audit log is unavailable');
    expect(e.detail).toBeTruthy();
  }
}

describeEachDialect('audit log', (target) => {
  let store: Store;
  let log: AuditLog;
  const clock = new ManualClock(T0);
  let n = 0;
  const ids = (prefix?: string) => `${prefix}_${++n}`;

  beforeAll(async () => {
    store = await target.open();
    log = new AuditLog(store, { clock, ids });
  });
  afterAll(async () => {
    // Clean up even when open() failed, so no half-migrated schema is left behind.
    try {
      await (store as Store | undefined)?.close();
    } finally {
      await target.cleanup();
    }
  });

  it('appends a chained entry and verifies', async () => {
    const e = await log.append(call(1, { actorId: null, reasoning: 'customer asked' }));
    expect(e).toMatchObject({
      seq: 1,
      id: 'aud_1',
      ts: T0,
      prevHash: GENESIS_HASH,
      traceId: 'tr_1',
      actorId: null,
      triggerUserId: null,
      triggerSource: null,
      reasoning: 'customer asked',
      data: null,
      parameters: { orderId: 'ORD-ABCD1234' },
    });
    const { hash, ...rest } = e;
    expect(hash).toBe(entryHash(rest));
    expect(await log.head()).toEqual({ seq: 1, hash });
    clock.advance(1000);
    const e2 = await log.append(call(2, { event: 'TOOL_DENIED', result: 'denied' }));
    expect(e2.prevHash).toBe(hash);
    expect((await log.read()).map((x) => x.seq)).toEqual([1, 2]);
    expect(await log.read()).toEqual([e, e2]);
    const v = await verifyChain(store);
    expect(v).toMatchObject({ ok: true, entries: 2, headSeq: 2, headHash: e2.hash });
  });

  it('reads by filter, page and tail', async () => {
    await log.append(call(3, { agentId: 'other', event: 'SESSION_CREATED', traceId: 'tr_x' }));
    await log.append(call(4, { traceId: 'tr_x' }));
    expect((await log.read({ traceId: 'tr_x' })).map((e) => e.seq)).toEqual([3, 4]);
    expect((await log.read({ agentId: 'other' })).map((e) => e.seq)).toEqual([3]);
    expect((await log.read({ event: 'TOOL_DENIED' })).map((e) => e.seq)).toEqual([2]);
    expect((await log.read({ afterSeq: 1, limit: 2 })).map((e) => e.seq)).toEqual([2, 3]);
    expect((await log.latest(2)).map((e) => e.seq)).toEqual([3, 4]);
  });

  it('keeps 100 concurrent appends gap-free, each resolving to its own entry', async () => {
    const before = (await log.head()).seq;
    const entries = await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(call(1000 + i))));
    entries.forEach((e, i) => {
      expect(e.traceId).toBe(`tr_${1000 + i}`);
    });
    const seqs = entries.map((e) => e.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => before + 1 + i));
    expect((await log.head()).seq).toBe(before + 100);
    expect(await verifyChain(store, { pageSize: 7 })).toMatchObject({ ok: true, entries: before + 100 });
  });

  it('chains non-durable appends (outcome entries) with durable ones in one gap-free, verifiable log', async () => {
    const before = (await log.head()).seq;
    const entries = await Promise.all(
      Array.from({ length: 40 }, (_, i) => log.append(call(2000 + i), { durable: i % 3 === 0 })),
    );
    const seqs = entries.map((e) => e.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => before + 1 + i));
    // Alone in its commit, a non-durable entry is still committed and readable at once.
    const alone = await log.append(call(2100), { durable: false });
    expect((await log.read({ traceId: 'tr_2100' })).map((e) => e.seq)).toEqual([alone.seq]);
    expect(await verifyChain(store, { pageSize: 9 })).toMatchObject({ ok: true, entries: alone.seq });
    // The connection is back to full durability for whoever writes next.
    if (target.dialect === 'sqlite') {
      const r = await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(store.db);
      expect(r.rows[0]?.synchronous).toBe(2);
    } else {
      // set_config(…, true) is local to the batch's transaction: no pooled connection keeps it.
      const shown = await Promise.all(
        Array.from({ length: 4 }, () =>
          sql<{ synchronous_commit: string }>`SHOW synchronous_commit`.execute(store.db),
        ),
      );
      expect(shown.map((r) => r.rows[0]?.synchronous_commit)).toEqual(['on', 'on', 'on', 'on']);
      const lock = await sql<{ lock_timeout: string }>`SHOW lock_timeout`.execute(store.db);
      expect(lock.rows[0]?.lock_timeout).toBe('5s');
    }
  });

  it('two writers on one store (as two gateway processes) interleave into one valid chain', async () => {
    const other = new AuditLog(store, { clock, ids });
    const before = (await log.head()).seq;
    // Alternating, so each writer finds the head moved by the other; then both at once.
    for (let i = 0; i < 6; i++) await (i % 2 ? other : log).append(call(3000 + i), { durable: i % 3 !== 0 });
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (i % 2 ? other : log).append(call(3100 + i), { durable: i % 4 === 0 }),
      ),
    );
    const head = await log.head();
    expect(head.seq).toBe(before + 36);
    expect(await verifyChain(store, { pageSize: 11 })).toMatchObject({ ok: true, entries: head.seq });
    const mine = await log.read({ afterSeq: before, limit: 100 });
    expect(new Set(mine.map((e) => e.seq)).size).toBe(36);
  });

  it('appendMany writes consecutive entries atomically', async () => {
    const before = (await log.head()).seq;
    const entries = await log.appendMany([call(1), call(2), call(3)]);
    expect(entries.map((e) => e.seq)).toEqual([before + 1, before + 2, before + 3]);
    expect(entries[1]?.prevHash).toBe(entries[0]?.hash);
    expect(await log.appendMany([])).toEqual([]);
  });

  it('redacts parameters and data before storing; the hash still verifies', async () => {
    const e = await log.append(
      call(5, {
        parameters: {
          orderId: 'ORD-1',
          password: 'hunter2',
          nested: { apiKey: 'sk-live-1' },
          note: 'x'.repeat(3000),
        },
        data: { authorization: 'Bearer zzz', upstream: 'desk' },
      }),
    );
    const row = await store.db
      .selectFrom('audit_log')
      .select(['parameters', 'data'])
      .where('seq', '=', e.seq)
      .executeTakeFirstOrThrow();
    expect(row.parameters).not.toMatch(/hunter2|sk-live-1/);
    expect(row.data).not.toContain('zzz');
    const params = JSON.parse(row.parameters ?? 'null');
    expect(params).toMatchObject({
      password: '[REDACTED:password]',
      nested: { apiKey: '[REDACTED:api_key]' },
    });
    expect(params.note).toMatch(/\[TRUNCATED:3000 chars\]$/);
    expect(JSON.parse(row.data ?? 'null')).toEqual({
      authorization: '[REDACTED:authorization]',
      upstream: 'desk',
    });
    expect(await verifyChain(store)).toMatchObject({ ok: true });
  });

  it('stores JSON columns as canonical text and returns the entry as reading it back gives it', async () => {
    const e = await log.append(
      call(9, {
        parameters: { zeta: 1, alpha: { b: [2, 1], a: 'é\u2028' }, '10': true, '9': null },
        decision: { allowed: false, reasons: ['denied tool'], rule: 'deny-destructive', code: 'TOOL_DENIED' },
        data: { phase: 'outcome', attemptSeq: 41 },
      }),
    );
    const row = await store.db
      .selectFrom('audit_log')
      .select(['parameters', 'decision', 'data'])
      .where('seq', '=', e.seq)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({
      parameters: '{"10":true,"9":null,"alpha":{"a":"é\u2028","b":[2,1]},"zeta":1}',
      decision: '{"allowed":false,"code":"TOOL_DENIED","reasons":["denied tool"],"rule":"deny-destructive"}',
      data: '{"attemptSeq":41,"phase":"outcome"}',
    });
    const [back] = await log.read({ afterSeq: e.seq - 1, limit: 1 });
    // Same values and the same key order, nested too, so the two serialise alike.
    expect(JSON.stringify(back)).toBe(JSON.stringify(e));
  });

  it('stores hostile values exactly as hashed (NUL, lone surrogates, odd numbers, __proto__)', async () => {
    const e = await log.append(
      call(6, {
        toolName: 'tool\u0000name',
        reasoning: 'half a pair \uD83D here',
        latencyMs: 12.6,
        parameters: JSON.parse('{"__proto__": {"x": 1}, "n": -0, "f": 0.1, "big": 1e300}'),
        data: { fn: () => 1, big: 10n, when: undefined },
      }),
    );
    expect(e.toolName).toBe('tool\uFFFDname');
    expect(e.reasoning).toBe('half a pair \uFFFD here');
    expect(e.latencyMs).toBe(13);
    expect(e.data).toEqual({ fn: '[UNSERIALIZABLE:function]', big: '10' });
    const [back] = await log.read({ afterSeq: e.seq - 1, limit: 1 });
    expect(back).toEqual(e);
    expect(await verifyChain(store)).toMatchObject({ ok: true });
  });

  it('fails only the job with a duplicate id, not the others sharing its commit', async () => {
    const before = (await log.head()).seq;
    const dup = new AuditLog(store, {
      clock,
      ids: (() => {
        const seq = ['d1', 'd2', 'd1', 'd3'];
        return () => seq.shift() ?? 'dx';
      })(),
    });
    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => dup.append(call(i))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const failed = results[2];
    if (failed?.status === 'rejected') expect(isWardenError(failed.reason, 'AUDIT_UNAVAILABLE')).toBe(true);
    expect((await log.head()).seq).toBe(before + 3);
    expect(await verifyChain(store)).toMatchObject({ ok: true, entries: before + 3 });
  });

  it('rolls back the row when the head update fails: nothing half-written', async () => {
    const before = await log.head();
    const failAt = before.seq + 1;
    if (store.dialect === 'sqlite') {
      await sql
        .raw(`CREATE TRIGGER fail_head BEFORE UPDATE ON audit_head WHEN NEW.seq = ${failAt}
          BEGIN SELECT RAISE(ABORT, 'injected head failure'); END`)
        .execute(store.db);
    } else {
      await sql`CREATE FUNCTION fail_head() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'injected head failure'; END; $$ LANGUAGE plpgsql`.execute(store.db);
      await sql
        .raw(`CREATE TRIGGER fail_head BEFORE UPDATE ON audit_head FOR EACH ROW
          WHEN (NEW.seq = ${failAt}) EXECUTE FUNCTION fail_head()`)
        .execute(store.db);
    }
    const rowsBefore = await rowCount(store);
    await expectUnavailable(log.append(call(7)));
    expect(await rowCount(store)).toBe(rowsBefore);
    expect(await log.head()).toEqual(before);
    await sql
      .raw(store.dialect === 'sqlite' ? 'DROP TRIGGER fail_head' : 'DROP TRIGGER fail_head ON audit_head')
      .execute(store.db);
    expect((await log.append(call(8))).seq).toBe(failAt);
    expect(await verifyChain(store)).toMatchObject({ ok: true });
  });

  // Two pools on one database: the head row lock, not the in-process queue, keeps seq gap-free.
  // (SQLite is left out: two connections in one thread would block each other in better-sqlite3's
  // synchronous busy wait; cross-process SQLite is covered by cross-process.test.ts.)
  it.runIf(target.dialect === 'postgres')(
    'serialises appends from two store handles through the head lock',
    async () => {
      const second = await target.open();
      try {
        const other = new AuditLog(second);
        const before = (await log.head()).seq;
        const all = await Promise.all(
          Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? log : other).append(call(i))),
        );
        expect(all.map((e) => e.seq).sort((a, b) => a - b)).toEqual(
          Array.from({ length: 60 }, (_, i) => before + 1 + i),
        );
        expect(await verifyChain(store)).toMatchObject({ ok: true, entries: before + 60 });
      } finally {
        await second.close();
      }
    },
  );
});

describeEachDialect('audit log on a failing store', (target) => {
  afterAll(() => target.cleanup());

  it('throws AUDIT_UNAVAILABLE and writes nothing', async () => {
    const store = await target.open();
    const log = new AuditLog(store);
    await log.append(call(1));
    await store.close();
    await expectUnavailable(log.append(call(2)));
    await expectUnavailable(log.appendMany([call(3), call(4)]));
    await expectUnavailable(log.read());
    await expectUnavailable(log.head());
    await expectUnavailable(verifyChain(store));
    const reopened = await target.open();
    try {
      expect(await rowCount(reopened)).toBe(1);
      expect(await verifyChain(reopened)).toMatchObject({ ok: true, entries: 1, headSeq: 1 });
    } finally {
      await reopened.close();
    }
  });
});
