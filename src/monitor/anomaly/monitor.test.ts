/**
 * The monitor around the rules, on both dialects: new agents and agent types,
 * severity and responses, a failing responder, incremental reading, and
 * exactly-once processing by two monitors (two connection pools, as two
 * gateway processes) on one database.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../../test/helpers/dialects.js';
import type { Store } from '../../store/index.js';
import { ManualClock } from '../../util/clock.js';
import { calls, denials, drain, forAgent, H, harness, history, MIN, T0, unique } from './fixtures/harness.js';
import { AnomalyMonitor } from './monitor.js';

describeEachDialect('AnomalyMonitor', (target) => {
  let store: Store;
  let second: Store;
  beforeAll(async () => {
    store = await target.open();
    second = await target.open(); // another process on the same database
  });
  afterAll(async () => {
    await store?.close();
    await second?.close();
    await target.cleanup();
  });

  const cursor = async () =>
    Number(
      (
        await store.db
          .selectFrom('monitor_cursors')
          .select('seq')
          .where('name', '=', 'anomaly')
          .executeTakeFirst()
      )?.seq ?? 0,
    );

  it('reads incrementally: a tick with nothing new changes nothing and raises nothing', async () => {
    const h = harness(store);
    const who = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    await history(h, who);
    await calls(h, 31, who);
    expect(forAgent(await drain(h), who.agent).map((a) => a.rule)).toEqual(['frequency']);
    const at = await cursor();
    const buckets = await store.db
      .selectFrom('monitor_buckets')
      .selectAll()
      .where('key', '=', who.agent)
      .execute();
    h.clock.advance(MIN);
    expect(await h.monitor.tick()).toEqual([]);
    expect(await cursor()).toBe(at);
    expect(
      await store.db.selectFrom('monitor_buckets').selectAll().where('key', '=', who.agent).execute(),
    ).toEqual(buckets);
    // The attempt entries were read but not counted: 240 + 31 calls, not twice that.
    const total = buckets.reduce((n, b) => n + Number(b.calls), 0);
    expect(total).toBe(271);
    // A fresh monitor (a restart) starts from the stored cursor, not from the beginning.
    const restarted = harness(store, {}, h.clock);
    expect(await restarted.monitor.tick()).toEqual([]);
    expect(await cursor()).toBe(at);
  });

  it('new agent type, learn (default): first use is quiet for learnFor; denial bursts and off-hours are not', async () => {
    const h = harness(store, { anomalies: { offHours: { enabled: true, hours: '00:00-24:00' } } });
    const who = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    await calls(h, 1, who);
    await calls(h, 1, { ...who, tool: 'issue_refund' });
    await denials(h, 10, { ...who, tool: 'delete_account' });
    expect(forAgent(await drain(h), who.agent).map((a) => a.rule)).toEqual(['denial-burst']);
    expect((await h.monitor.baseline({ scope: 'type', key: who.type })).learning).toBe(true);
    // A day later the type has a tool set, and a new tool is an anomaly.
    h.clock.advance(24 * H);
    await calls(h, 1, { ...who, tool: 'bulk_message' });
    await calls(h, 1, who);
    expect(forAgent(await drain(h), who.agent).map((a) => [a.rule, a.tool])).toEqual([
      ['first-use', 'bulk_message'],
    ]);
    expect((await h.monitor.baseline({ scope: 'type', key: who.type })).learning).toBe(false);
    // Saturday is not an active day: off-hours fires for a new type from its first call.
    const fresh = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    h.clock.set(Date.UTC(2026, 10, 28, 12));
    await calls(h, 1, fresh);
    expect(forAgent(await drain(h), fresh.agent).map((a) => a.rule)).toEqual(['off-hours']);
  });

  it('new agent type, strict: every tool it runs is a first use', async () => {
    const h = harness(store, { newAgents: { mode: 'strict' } });
    const who = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    await calls(h, 3, who);
    await calls(h, 1, { ...who, tool: 'issue_refund' });
    const raised = forAgent(await drain(h), who.agent);
    expect(raised.map((a) => [a.rule, a.tool, a.details.knownTools])).toEqual([
      ['first-use', 'lookup_order', 0],
      ['first-use', 'issue_refund', 0],
    ]);
  });

  it('new agent of a known type: judged against the type per agent until it has its own baseline', async () => {
    const h = harness(store);
    const type = unique('type');
    const veteran = { agent: unique('agent'), type, tool: 'lookup_order' };
    const other = { agent: unique('agent'), type, tool: 'lookup_order' };
    await history(h, { ...veteran, perHour: 10 });
    await history(h, { ...other, perHour: 20 });
    await drain(h);
    const typeView = await h.monitor.baseline({ scope: 'type', key: type });
    // Per (agent, window): (240 + 480) / 48, not the type's 30 per window.
    expect(typeView.tools[0]?.perWindow.calls).toBe(15);
    const rookie = { agent: unique('agent'), type, tool: 'lookup_order' };
    await calls(h, 45, rookie);
    expect(forAgent(await drain(h), rookie.agent)).toEqual([]);
    await calls(h, 1, rookie);
    const raised = forAgent(await drain(h), rookie.agent);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      rule: 'frequency',
      observed: 46,
      baseline: 15,
      details: { baselineScope: 'type', baselineCalls: 720, baselineWindows: 48 },
    });
  });

  it('severity rises with the agent’s anomalies in the period; responses follow it, byRule overrides', async () => {
    const h = harness(store, {
      newAgents: { mode: 'strict' },
      severity: { period: '1h' },
      responses: { byRule: { 'denial-burst': { low: 'kill-agent' } } },
    });
    const who = { agent: unique('agent'), type: unique('type'), tool: 't1' };
    await calls(h, 1, who);
    await calls(h, 1, { ...who, tool: 't2' });
    await calls(h, 1, { ...who, tool: 't3' });
    await calls(h, 1, { ...who, tool: 't4', session: 'other-session' });
    const raised = forAgent(await drain(h), who.agent);
    expect(raised.map((a) => [a.tool, a.count, a.severity, a.response])).toEqual([
      ['t1', 1, 'low', 'alert'],
      ['t2', 2, 'medium', 'hold-session'],
      ['t3', 3, 'high', 'quarantine-session'],
      ['t4', 4, 'high', 'quarantine-session'],
    ]);
    // Every anomaly alerts; the response comes on top, for the session that set it off.
    expect(
      h.responder.calls.filter((c) => c.kind === 'alert' && c.anomaly.agentId === who.agent),
    ).toHaveLength(4);
    expect(h.responder.actions(who.agent)).toEqual([
      'hold-session',
      'quarantine-session',
      'quarantine-session',
    ]);
    expect(h.responder.calls.at(-1)?.anomaly.sessionId).toBe('other-session');
    // An hour later the count starts again, and a rule's own response applies.
    h.clock.advance(2 * H);
    await denials(h, 10, who);
    const later = forAgent(await drain(h), who.agent);
    expect(later.map((a) => [a.rule, a.severity, a.response])).toEqual([
      ['denial-burst', 'low', 'kill-agent'],
    ]);
    expect(h.responder.actions(who.agent).at(-1)).toBe('kill-agent');
    // Each is audited with its numbers and its response.
    const audited = await h.audit.read({ event: 'ANOMALY_DETECTED', agentId: who.agent });
    expect(audited).toHaveLength(5);
    expect(audited[4]).toMatchObject({
      actorType: 'SYSTEM',
      agentId: who.agent,
      agentType: who.type,
      sessionId: `${who.agent}-session`,
      result: null,
      data: { rule: 'denial-burst', severity: 'low', response: 'kill-agent', observed: 10, threshold: 10 },
    });
    const listed = await h.monitor.list({ agentId: who.agent });
    expect(listed).toHaveLength(5);
    expect(listed.every((a) => a.auditSeq !== null && a.respondedAt !== null)).toBe(true);
    expect(await h.monitor.list({ agentId: who.agent, since: T0 + H, limit: 10 })).toHaveLength(1);
  });

  it('caps anomalies per agent per tick, counting what was held back', async () => {
    const h = harness(store, { newAgents: { mode: 'strict' }, anomalies: { maxPerAgent: 2 } });
    const who = { agent: unique('agent'), type: unique('type'), tool: 't0' };
    for (let i = 0; i < 6; i++) await calls(h, 1, { ...who, tool: `t${i}` });
    const raised = forAgent(await drain(h), who.agent);
    expect(raised.map((a) => a.tool)).toEqual(['t0', 't1']);
    expect(raised[1]?.details.suppressed).toBe(4);
    expect(h.logs.warn.some(([, m]) => m.includes('held back'))).toBe(true);
    // The caps hold for the tick, however many batches (of 10 entries, 5 calls) it reads.
    const small = harness(store, {
      batchSize: 10,
      newAgents: { mode: 'strict' },
      anomalies: { maxPerAgent: 3, maxPerTick: 5 },
    });
    const [one, two] = [unique('agent'), unique('agent')];
    for (let i = 0; i < 8; i++) await calls(small, 1, { agent: one, type: unique('type'), tool: `u${i}` });
    expect(forAgent(await small.monitor.tick(), one)).toHaveLength(3);
    for (let i = 0; i < 8; i++) {
      await calls(small, 1, { agent: two, type: unique('type'), tool: `u${i}` });
      await calls(small, 1, { agent: unique('agent'), type: unique('type'), tool: `u${i}` });
    }
    expect(await small.monitor.tick()).toHaveLength(5);
  });

  it('a failing response is logged, stored and audited, and monitoring goes on', async () => {
    const h = harness(store, {
      newAgents: { mode: 'strict' },
      responses: { low: 'hold-session' },
    });
    h.responder.fail.hold = new Error('approvals store down');
    const who = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    await calls(h, 1, who);
    const raised = forAgent(await drain(h), who.agent);
    expect(raised).toHaveLength(1);
    expect(h.logs.error.some(([o, m]) => m === 'anomaly response failed' && 'anomalyId' in o)).toBe(true);
    const [record] = await h.monitor.list({ agentId: who.agent });
    expect(record?.responseError).toBe('Error: approvals store down');
    const [entry] = await h.audit.read({ event: 'ANOMALY_DETECTED', agentId: who.agent });
    expect(entry?.data).toMatchObject({
      response: 'hold-session',
      responseError: 'Error: approvals store down',
    });
    // The loop carries on.
    await calls(h, 1, { ...who, tool: 'issue_refund' });
    expect(forAgent(await drain(h), who.agent)).toHaveLength(1);
  });

  it('an anomaly whose process died before auditing it is finished once by another, not answered twice', async () => {
    const clock = new ManualClock(T0);
    const h = harness(store, { newAgents: { mode: 'strict' } }, clock);
    const who = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    await calls(h, 1, who);
    // A monitor whose audit writes fail: it commits and responds, but cannot audit.
    const broken = new AnomalyMonitor({
      store,
      audit: { append: () => Promise.reject(new Error('audit unavailable')) },
      config: h.config,
      clock,
      log: { warn: () => {}, error: () => {} },
      respond: h.responder,
    });
    expect(forAgent(await broken.tick(), who.agent)).toHaveLength(1);
    const [left] = await h.monitor.list({ agentId: who.agent });
    expect(left).toMatchObject({ auditSeq: null });
    expect(left?.respondedAt).not.toBeNull();
    // Within the claim lease nobody takes it over; after it, a healthy monitor audits it.
    await h.monitor.tick();
    expect((await h.monitor.list({ agentId: who.agent }))[0]?.auditSeq).toBeNull();
    clock.advance(61_000);
    await h.monitor.tick();
    const [done] = await h.monitor.list({ agentId: who.agent });
    expect(done?.auditSeq).not.toBeNull();
    expect(await h.audit.read({ event: 'ANOMALY_DETECTED', agentId: who.agent })).toHaveLength(1);
    expect(h.responder.calls.filter((c) => c.anomaly.agentId === who.agent)).toHaveLength(1);
    await broken.close();
  });

  it('two monitors on one database, ticking together, process each batch once and raise each anomaly once', async () => {
    const section = { batchSize: 25, newAgents: { mode: 'strict' } };
    const clock = new ManualClock(T0);
    const a = harness(store, section, clock);
    // SQLite: two connections in one process would block each other's event loop in the busy
    // handler (a test artefact; processes do not share one); the monitors share the connection,
    // so the cursor's compare-and-set is still what keeps them apart.
    const b = harness(target.dialect === 'postgres' ? second : store, section, clock);
    const agents = [unique('agent'), unique('agent'), unique('agent')];
    const type = unique('type');
    await drain(a);
    const before = await cursor();
    // 3 agents × 4 tools × 10 calls (20 entries each), and a denial burst each.
    for (const agent of agents) {
      for (let t = 0; t < 4; t++) await calls(a, 10, { agent, type, tool: `tool-${t}` });
      await denials(a, 10, { agent, type, tool: 'delete_account' });
    }
    const raised = [];
    for (let i = 0; i < 10; i++) {
      const [ra, rb] = await Promise.all([a.monitor.tick(), b.monitor.tick()]);
      raised.push(...ra, ...rb);
      clock.advance(1000);
    }
    const mine = raised.filter((x) => agents.includes(x.agentId));
    // First use by type: 4 tools once for the type; a burst per agent.
    expect(mine.filter((x) => x.rule === 'first-use')).toHaveLength(4);
    expect(mine.filter((x) => x.rule === 'denial-burst')).toHaveLength(3);
    expect(new Set(mine.map((x) => x.id)).size).toBe(mine.length);
    const stored = await store.db
      .selectFrom('anomalies')
      .select('rule')
      .where('agent_id', 'in', agents)
      .execute();
    expect(stored).toHaveLength(7);
    const audited = await a.audit.read({ event: 'ANOMALY_DETECTED', limit: 1000, afterSeq: before });
    expect(audited.filter((e) => agents.includes(e.agentId ?? ''))).toHaveLength(7);
    // Every call counted once, at both scopes.
    const sum = async (scope: string, keys: string[]) =>
      (
        await store.db
          .selectFrom('monitor_buckets')
          .select(['calls', 'denials'])
          .where('scope', '=', scope)
          .where('key', 'in', keys)
          .execute()
      ).reduce(
        (acc, r) => ({ calls: acc.calls + Number(r.calls), denials: acc.denials + Number(r.denials) }),
        {
          calls: 0,
          denials: 0,
        },
      );
    expect(await sum('agent', agents)).toEqual({ calls: 120, denials: 30 });
    expect(await sum('type', [type])).toEqual({ calls: 120, denials: 30 });
    await a.monitor.close();
    await b.monitor.close();
  });

  it('hostile values in entries do not stall the monitor', async () => {
    const h = harness(store);
    const who = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    // 1,000 CJK characters that do not compress: 3,000 bytes, under the audit log's cut, past a
    // PostgreSQL index entry (about 2,700 bytes).
    const longTool = Array.from({ length: 1000 }, (_, i) =>
      String.fromCharCode(0x4e00 + ((i * 7919) % 20_000)),
    ).join('');
    await denials(h, 1, { ...who, tool: longTool });
    await denials(h, 1, { ...who, tool: `${longTool}!` });
    await calls(h, 1, { ...who, tokens: 1e300, resultBytes: Number.MAX_VALUE });
    await calls(h, 1, { ...who, tokens: 10.6, resultBytes: 0.4 });
    await drain(h);
    const rows = await store.db
      .selectFrom('monitor_buckets')
      .selectAll()
      .where('key', '=', who.agent)
      .execute();
    const denied = rows.filter((r) => Number(r.denials) > 0);
    expect(denied).toHaveLength(2); // two names, cut, still apart
    expect(denied.every((r) => Buffer.byteLength(r.tool) < 300)).toBe(true);
    const called = rows.find((r) => r.tool === 'lookup_order');
    expect([called?.tokens, called?.result_bytes].map(Number)).toEqual([1e12 + 11, 1e12]);
  });

  it('start() runs in the background without overlapping, and close() stops it', async () => {
    const h = harness(store, { interval: '100ms', newAgents: { mode: 'strict' } });
    const who = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    await calls(h, 1, who);
    h.monitor.start();
    h.monitor.start(); // a second start is a no-op
    for (let i = 0; i < 100 && (await h.monitor.list({ agentId: who.agent })).length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await h.monitor.close();
    expect(await h.monitor.list({ agentId: who.agent })).toHaveLength(1);
    const disabled = harness(store, { enabled: false });
    disabled.monitor.start();
    expect(await disabled.monitor.tick()).toEqual([]);
    await disabled.monitor.close();
  });
});
