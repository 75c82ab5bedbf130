/**
 * Tampering as an attacker with database admin rights would do it: first
 * switch off the append-only triggers, then edit rows directly.
 */
import { sql } from 'kysely';
import { afterAll, afterEach, expect, it } from 'vitest';
import { type DialectTarget, describeEachDialect, makeTarget } from '../../test/helpers/dialects.js';
import type { AuditLogTable, Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { fromRow, hashText, sha256Hex, toRow } from './entry.js';
import { type AuditInput, AuditLog, entryHash, verifyChain } from './index.js';

const N = 10;

function call(i: number): AuditInput {
  return {
    traceId: `tr_${i}`,
    event: i % 3 === 0 ? 'TOOL_DENIED' : 'TOOL_CALL',
    actorType: 'AI_AGENT',
    agentId: 'demo-support',
    toolName: i % 3 === 0 ? 'delete_account' : 'lookup_order',
    parameters: { orderId: `ORD-${String(i).padStart(8, '0')}` },
    decision: { allowed: i % 3 !== 0, reasons: [] },
    result: i % 3 === 0 ? 'denied' : 'success',
  };
}

/** Switch off the append-only triggers, as a DB admin can. */
async function unlock(store: Store): Promise<void> {
  if (store.dialect === 'sqlite') {
    await sql`DROP TRIGGER audit_log_no_update`.execute(store.db);
    await sql`DROP TRIGGER audit_log_no_delete`.execute(store.db);
  } else {
    await sql`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`.execute(store.db);
  }
}

async function rows(store: Store): Promise<AuditLogTable[]> {
  return store.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
}

/** Replace the whole log with `next` (an attacker rewriting history). */
async function rewrite(store: Store, next: AuditLogTable[]): Promise<void> {
  await store.db.deleteFrom('audit_log').execute();
  for (const r of next) await store.db.insertInto('audit_log').values(r).execute();
}

async function setHead(store: Store, seq: number, hash: string): Promise<void> {
  await store.db.updateTable('audit_head').set({ seq, hash }).where('id', '=', 1).execute();
}

/** `value` with every object's keys in reverse order: valid JSON, the same value, not canonical. */
function reversed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversed);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reversed(v)]),
  );
}

/** A JSON column spelled as the writer spelled it before storing canonical text (insertion order). */
function legacy(text: string | null): string | null {
  return text === null ? null : JSON.stringify(reversed(JSON.parse(text)));
}

describeEachDialect('audit verify', (base) => {
  const opened: { store?: Store; target: DialectTarget }[] = [];

  /** A fresh, empty store; its target is recorded first so a failed open is cleaned up too. */
  async function open(): Promise<Store> {
    const slot: { store?: Store; target: DialectTarget } = { target: makeTarget(base.dialect) };
    opened.push(slot);
    slot.store = await slot.target.open();
    return slot.store;
  }

  /** A fresh log of N entries, unlocked for tampering. */
  async function fresh(): Promise<Store> {
    const store = await open();
    const clock = new ManualClock();
    const log = new AuditLog(store, { clock });
    for (let i = 1; i <= N; i++) {
      await log.append(call(i));
      clock.advance(1000);
    }
    await unlock(store);
    return store;
  }

  afterEach(async () => {
    for (const { store, target } of opened.splice(0)) {
      await store?.close();
      await target.cleanup();
    }
  });
  afterAll(() => base.cleanup());

  it('passes an intact log, reporting progress per page', async () => {
    const store = await fresh();
    const progress: [number, number][] = [];
    const v = await verifyChain(store, { pageSize: 3, onProgress: (d, t) => progress.push([d, t]) });
    const last = (await rows(store)).at(-1);
    expect(v).toMatchObject({ ok: true, entries: N, headSeq: N, headHash: last?.hash });
    expect(v.problem).toBeUndefined();
    expect(progress).toEqual([
      [3, N],
      [6, N],
      [9, N],
      [10, N],
    ]);
  });

  it('passes an empty log', async () => {
    const store = await open();
    expect(await verifyChain(store)).toMatchObject({ ok: true, entries: 0, headSeq: 0 });
  });

  it('reports a modified field at its seq', async () => {
    const store = await fresh();
    await store.db.updateTable('audit_log').set({ tool_name: 'issue_refund' }).where('seq', '=', 4).execute();
    const v = await verifyChain(store, { pageSize: 2 });
    expect(v).toMatchObject({ ok: false, entries: 3, problem: { seq: 4, kind: 'modified' } });
  });

  it('reports a JSON column that no longer parses as modified', async () => {
    const store = await fresh();
    await store.db
      .updateTable('audit_log')
      .set({ decision: '{"allowed":tru' })
      .where('seq', '=', 2)
      .execute();
    expect((await verifyChain(store)).problem).toMatchObject({ seq: 2, kind: 'modified' });
  });

  it('reports a deleted middle entry', async () => {
    const store = await fresh();
    await store.db.deleteFrom('audit_log').where('seq', '=', 5).execute();
    const v = await verifyChain(store);
    expect(v).toMatchObject({ ok: false, entries: 4, problem: { seq: 5, kind: 'deleted' } });
  });

  it('reports deleted last entries when the head was left alone as truncated', async () => {
    const store = await fresh();
    await store.db.deleteFrom('audit_log').where('seq', '>', 7).execute();
    const v = await verifyChain(store);
    expect(v).toMatchObject({ ok: false, entries: 7, headSeq: N, problem: { seq: 8, kind: 'truncated' } });
  });

  // Known limit of an unkeyed chain: deleting the newest entries AND rewinding the head leaves a
  // shorter chain that is internally consistent. Signed checkpoints catch it (checkpoint.test.ts).
  it('cannot see truncation with the head rewound from the chain alone (checkpoints do)', async () => {
    const store = await fresh();
    const seventh = (await rows(store))[6]!;
    await store.db.deleteFrom('audit_log').where('seq', '>', 7).execute();
    await setHead(store, 7, seventh.hash);
    const v = await verifyChain(store);
    expect(v).toMatchObject({ ok: true, entries: 7, headSeq: 7, headHash: seventh.hash });
  });

  it('reports two entries with swapped contents as reordered', async () => {
    const store = await fresh();
    const all = await rows(store);
    const [five, six] = [all[4]!, all[5]!];
    all[4] = { ...six, seq: 5 };
    all[5] = { ...five, seq: 6 };
    await rewrite(store, all);
    const v = await verifyChain(store);
    expect(v).toMatchObject({ ok: false, entries: 4, problem: { seq: 5, kind: 'reordered' } });
  });

  it('reports a swap of only the data columns as modified', async () => {
    const store = await fresh();
    const all = await rows(store);
    // Entry 2 is an allowed lookup, entry 3 a denied delete: give 2 the content of 3.
    const [two, three] = [all[1]!, all[2]!];
    all[1] = {
      ...two,
      tool_name: three.tool_name,
      event: three.event,
      result: three.result,
      decision: three.decision,
    };
    await rewrite(store, all);
    expect((await verifyChain(store)).problem).toMatchObject({ seq: 2, kind: 'modified' });
  });

  it('reports a deletion hidden by renumbering (and a rewound head) as deleted', async () => {
    const store = await fresh();
    const all = await rows(store);
    const kept = all.filter((r) => r.seq !== 5).map((r) => (r.seq > 5 ? { ...r, seq: r.seq - 1 } : r));
    await rewrite(store, kept);
    await setHead(store, N - 1, all.at(-1)!.hash);
    expect((await verifyChain(store)).problem).toMatchObject({ seq: 5, kind: 'deleted' });
  });

  it('reports a forged entry inserted with a valid hash as inserted', async () => {
    const store = await fresh();
    const all = await rows(store);
    const orig = fromRow(all[4]!);
    const { hash: _h, ...unhashed } = {
      ...orig,
      id: 'forged',
      toolName: 'issue_refund',
      seq: 5,
      prevHash: all[3]!.hash,
    };
    const forged = toRow({ ...unhashed, hash: entryHash(unhashed) });
    const next = [...all.slice(0, 4), forged, ...all.slice(4).map((r) => ({ ...r, seq: r.seq + 1 }))];
    await rewrite(store, next);
    await setHead(store, N + 1, all.at(-1)!.hash);
    const v = await verifyChain(store);
    expect(v).toMatchObject({ ok: false, entries: 5, problem: { seq: 6, kind: 'inserted' } });
  });

  it('reports an entry edited and re-hashed at the break in the chain after it', async () => {
    const store = await fresh();
    const all = await rows(store);
    const orig = fromRow(all[4]!);
    const { hash: _h, ...unhashed } = { ...orig, result: 'failure' as const, toolName: 'delete_account' };
    all[4] = toRow({ ...unhashed, hash: entryHash(unhashed) });
    await rewrite(store, all);
    expect((await verifyChain(store)).problem).toMatchObject({ seq: 6, kind: 'inserted' });
  });

  it('reports a head whose hash differs from the last entry', async () => {
    const store = await fresh();
    await setHead(store, N, 'f'.repeat(64));
    expect((await verifyChain(store)).problem).toMatchObject({ seq: N, kind: 'head-mismatch' });
  });

  it('reports entries written past the head', async () => {
    const store = await fresh();
    const last = fromRow((await rows(store)).at(-1)!);
    const { hash: _h, ...unhashed } = { ...last, id: 'extra', seq: N + 1, prevHash: last.hash };
    await store.db
      .insertInto('audit_log')
      .values(toRow({ ...unhashed, hash: entryHash(unhashed) }))
      .execute();
    expect((await verifyChain(store)).problem).toMatchObject({ seq: N + 1, kind: 'head-mismatch' });
  });

  it('reports a row planted before seq 1 as inserted', async () => {
    const store = await fresh();
    const first = (await rows(store))[0]!;
    await store.db
      .insertInto('audit_log')
      .values({ ...first, seq: 0, id: 'planted' })
      .execute();
    expect((await verifyChain(store)).problem).toMatchObject({ seq: 1, kind: 'inserted' });
  });

  it('verifies a log written before JSON columns were stored canonically, and appends after it', async () => {
    const store = await fresh();
    const all = await rows(store);
    const old = all.map((r) => ({ ...r, parameters: legacy(r.parameters), decision: legacy(r.decision) }));
    expect(old.some((r, i) => r.decision !== all[i]!.decision)).toBe(true);
    await rewrite(store, old);
    for (const pageSize of [1, 3, 1000]) {
      const progress: number[] = [];
      const v = await verifyChain(store, { pageSize, onProgress: (d) => progress.push(d) });
      expect(v).toMatchObject({ ok: true, entries: N });
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
    }
    const log = new AuditLog(store);
    for (let i = 0; i < 25; i++) await log.append(call(100 + i));
    for (const pageSize of [2, 7, 1000]) {
      expect(await verifyChain(store, { pageSize })).toMatchObject({ ok: true, entries: N + 25 });
    }
  });

  it('reports a modified field in a log written before JSON columns were stored canonically', async () => {
    const store = await fresh();
    await rewrite(
      store,
      (await rows(store)).map((r) => ({ ...r, decision: legacy(r.decision) })),
    );
    await store.db.updateTable('audit_log').set({ tool_name: 'issue_refund' }).where('seq', '=', 4).execute();
    const v = await verifyChain(store, { pageSize: 2 });
    expect(v).toMatchObject({ ok: false, entries: 3, problem: { seq: 4, kind: 'modified' } });
  });

  it('still verifies a JSON column respelled with its value unchanged', async () => {
    const store = await fresh();
    const [row] = (await rows(store)).filter((r) => r.seq === 4);
    const respelled = JSON.stringify(JSON.parse(row!.parameters!), null, 2);
    await store.db.updateTable('audit_log').set({ parameters: respelled }).where('seq', '=', 4).execute();
    expect(await verifyChain(store, { pageSize: 3 })).toMatchObject({ ok: true, entries: N });
  });

  it('reports JSON text moved between adjacent columns, the text they make unchanged, as modified', async () => {
    const store = await open();
    const log = new AuditLog(store);
    for (let i = 1; i <= 5; i++)
      await log.append({ ...call(i), data: i === 3 ? { a: 1, decision: 2 } : null });
    await unlock(store);
    const three = (await rows(store))[2]!;
    expect(three.data).toBe('{"a":1,"decision":2}');
    // In the hash text `"data":` is followed by the data column, `,"decision":` and the decision
    // column: cutting data short and moving the rest into decision leaves that text as it was.
    const moved = { data: '{"a":1', decision: `2},"decision":${three.decision}` };
    expect(`${moved.data},"decision":${moved.decision}`).toBe(`${three.data},"decision":${three.decision}`);
    await store.db.updateTable('audit_log').set(moved).where('seq', '=', 3).execute();
    expect((await verifyChain(store)).problem).toMatchObject({ seq: 3, kind: 'modified' });
  });

  it('reports an entry re-hashed over a non-canonical spelling of its JSON as modified', async () => {
    const store = await fresh();
    const five = (await rows(store))[4]!;
    const respelled = ` ${five.parameters}`;
    // The hash the fast path would accept: over the stored text, not the canonical one.
    const entry = fromRow(five);
    const hash = sha256Hex(
      hashText(entry, { parameters: respelled, decision: five.decision, data: five.data }),
    );
    await store.db
      .updateTable('audit_log')
      .set({ parameters: respelled, hash })
      .where('seq', '=', 5)
      .execute();
    for (const pageSize of [1, 4, 5, 1000]) {
      const v = await verifyChain(store, { pageSize });
      expect(v).toMatchObject({ ok: false, entries: 4, problem: { seq: 5, kind: 'modified' } });
    }
  });

  it.runIf(base.dialect === 'sqlite')(
    'reports values of the wrong type planted in SQLite as modified',
    async () => {
      const store = await fresh();
      await store.db
        .updateTable('audit_log')
        .set({ tool_name: Buffer.from('lookup_order') as unknown as string })
        .where('seq', '=', 4)
        .execute();
      await store.db.updateTable('audit_log').set({ ts: 1.5 }).where('seq', '=', 7).execute();
      expect((await verifyChain(store)).problem).toMatchObject({ seq: 4, kind: 'modified' });
      await store.db
        .updateTable('audit_log')
        .set({ tool_name: 'lookup_order' })
        .where('seq', '=', 4)
        .execute();
      expect((await verifyChain(store)).problem).toMatchObject({ seq: 7, kind: 'modified' });
    },
  );

  it('does not mistake appends racing the walk for truncation', async () => {
    const store = await fresh();
    const log = new AuditLog(store);
    const appends = Promise.all(Array.from({ length: 40 }, (_, i) => log.append(call(100 + i))));
    const v = await verifyChain(store, { pageSize: 2 });
    await appends;
    expect(v.ok).toBe(true);
    expect(v.entries).toBe(v.headSeq);
    expect(await verifyChain(store)).toMatchObject({ ok: true, entries: N + 40 });
  });
});
