/**
 * The monitor's tables on both dialects: the cursor's compare-and-set, bucket
 * and tool upserts, the per-(agent, window) type statistics, and how audit
 * entries are read back.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../../test/helpers/dialects.js';
import { AuditLog } from '../../audit/index.js';
import type { Store } from '../../store/index.js';
import { ManualClock } from '../../util/clock.js';
import { H, T0 } from './fixtures/harness.js';
import { emptyHour } from './stats.js';
import { type BucketDelta, MonitorStore } from './store.js';

describeEachDialect('MonitorStore', (target) => {
  let a: Store;
  let b: Store;
  beforeAll(async () => {
    a = await target.open();
    b = await target.open(); // a second process on the same database
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await target.cleanup();
  });

  const bucket = (over: Partial<BucketDelta>): BucketDelta => ({
    scope: 'agent',
    key: 'a1',
    tool: 'x',
    hour: T0,
    agentType: 'support',
    ...emptyHour(),
    calls: 1,
    ...over,
  });

  it('moves the cursor by compare-and-set: of two commits from one position, one wins', async () => {
    const one = new MonitorStore(a);
    // SQLite: two connections of one process would stall each other in the busy handler (a test
    // artefact); through one connection the transactions queue and the CAS still decides.
    const two = new MonitorStore(target.dialect === 'postgres' ? b : a);
    await one.ensureCursor(T0);
    await two.ensureCursor(T0); // idempotent
    expect(await one.cursor()).toBe(0);
    const deltas = [bucket({ calls: 2, resultBytes: 10, tokens: 5, tokenCalls: 1 })];
    const results = await Promise.all([
      one.commit(0, 10, T0, deltas, [], []),
      two.commit(0, 10, T0, deltas, [], []),
    ]);
    expect(results.filter((r) => r === null)).toHaveLength(1);
    expect(await two.cursor()).toBe(10);
    // A stale position is refused, and nothing it carried is written.
    expect(await one.commit(0, 20, T0, [bucket({ calls: 100 })], [], [])).toBeNull();
    expect(await one.commit(10, 20, T0, [bucket({ calls: 1, denials: 3 })], [], [])).toEqual(new Set());
    const [row] = await a.db.selectFrom('monitor_buckets').selectAll().where('key', '=', 'a1').execute();
    expect(row).toMatchObject({ tool: 'x', agent_type: 'support' });
    expect([row?.calls, row?.result_bytes, row?.tokens, row?.token_calls, row?.denials].map(Number)).toEqual([
      3, 10, 5, 1, 3,
    ]);
  });

  it('keeps the first and last use of a tool whatever order entries arrive in', async () => {
    const s = new MonitorStore(a);
    const from = await s.cursor();
    const seen = (first: number, last: number) => ({
      scope: 'type' as const,
      key: 'support',
      tool: 'x',
      first,
      last,
    });
    await s.commit(from, from + 1, T0, [], [seen(T0, T0 + 10)], []);
    await s.commit(from + 1, from + 2, T0, [], [seen(T0 - 5, T0 + 5)], []);
    const known = await s.knownTools('type', ['support', 'nobody']);
    expect(known.get('support')?.get('x')).toMatchObject({ first: T0 - 5, last: T0 + 10 });
    expect(known.has('nobody')).toBe(false);
  });

  it('reads a type per (agent, window): whole-hour windows, token windows counted apart', async () => {
    const s = new MonitorStore(a);
    const from = await s.cursor();
    const rows = [
      // agent p: 2 hours in one 2-hour window, one of them reporting tokens
      bucket({ key: 'p', agentType: 'ops', hour: T0 - 4 * H, calls: 4, tokens: 40, tokenCalls: 2 }),
      bucket({ key: 'p', agentType: 'ops', hour: T0 - 3 * H, calls: 2 }),
      // agent q: one hour in another window; a denial-only hour does not make a window
      bucket({ key: 'q', agentType: 'ops', hour: T0 - 2 * H, calls: 6, resultBytes: 600 }),
      bucket({ key: 'q', agentType: 'ops', hour: T0 - 1 * H, calls: 0, denials: 2 }),
      // the current window and another type are left out
      bucket({ key: 'p', agentType: 'ops', hour: T0, calls: 50 }),
      bucket({ key: 'r', agentType: 'other', hour: T0 - 2 * H, calls: 9 }),
    ];
    expect(await s.commit(from, from + 1, T0, rows, [], [])).not.toBeNull();
    const stats = await s.typeStats('ops', ['x'], T0 - 24 * H, T0, 2 * H);
    expect(stats.get('x')).toEqual({
      calls: 12,
      resultBytes: 600,
      tokens: 40,
      tokenCalls: 2,
      denials: 0,
      windows: 2,
      tokenWindows: 1,
    });
    expect((await s.typeStats('ops', undefined, T0 - 24 * H, T0, H)).get('x')?.windows).toBe(3);
    expect(await s.typeStats('ops', [], T0 - 24 * H, T0, H)).toEqual(new Map());
  });

  it('reads outcomes (not attempts) and denials, with tokens absent as unknown', async () => {
    const clock = new ManualClock(T0);
    const audit = new AuditLog(a, { clock });
    const s = new MonitorStore(a);
    const start = (await audit.head()).seq;
    const who = {
      actorType: 'AI_AGENT' as const,
      agentId: 'rd',
      agentType: 'ops',
      sessionId: 's1',
      toolName: 'x',
    };
    await audit.appendMany([
      { ...who, traceId: 't1', event: 'TOOL_CALL', data: { phase: 'attempt' } },
      { ...who, traceId: 't1', event: 'TOOL_CALL', data: { phase: 'outcome', resultBytes: 12, tokens: 7 } },
      {
        ...who,
        traceId: 't2',
        event: 'TOOL_CALL',
        data: { phase: 'outcome', resultBytes: -1, tokens: 'many' },
      },
      { ...who, traceId: 't3', event: 'RATE_LIMITED', toolName: null },
      { ...who, traceId: 't4', event: 'SESSION_CREATED' },
      { ...who, traceId: 't5', event: 'TOOL_DENIED', agentId: null },
    ]);
    const events = await s.events(start, start + 100);
    expect(events.map((e) => [e.traceId, e.kind, e.tool, e.resultBytes, e.tokens])).toEqual([
      ['t1', 'call', 'x', 12, 7],
      ['t2', 'call', 'x', 0, null],
      ['t3', 'denial', '', 0, null],
    ]);
    expect(await s.events(start, start + 1)).toEqual([]);
  });
});
