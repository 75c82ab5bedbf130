/**
 * Each anomaly rule on both dialects: one history where it fires and one just
 * under its threshold where it does not. Histories are written through the
 * real audit log; the monitor reads them back from the store.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../../test/helpers/dialects.js';
import type { Store } from '../../store/index.js';
import { calls, denials, drain, forAgent, H, harness, history, MIN, T0, unique } from './fixtures/harness.js';

describeEachDialect('anomaly rules', (target) => {
  let store: Store;
  beforeAll(async () => {
    store = await target.open();
  });
  afterAll(async () => {
    await store?.close();
    await target.cleanup();
  });

  /** An agent of its own type with 24 hours of 10 calls of `tool` (1,000 bytes, 100 tokens each). */
  async function learned(section: unknown = {}, extra: { tokens?: number | null } = {}) {
    const h = harness(store, section);
    const who = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    const tokens = extra.tokens === undefined ? 100 : (extra.tokens ?? undefined);
    await history(h, { ...who, resultBytes: 1000, ...(tokens === undefined ? {} : { tokens }) });
    return { h, who };
  }

  it('learns a history silently: nothing older than one window is judged', async () => {
    const { h, who } = await learned();
    expect(forAgent(await drain(h), who.agent)).toEqual([]);
    const view = await h.monitor.baseline({ scope: 'agent', key: who.agent });
    expect(view.tools).toHaveLength(1);
    expect(view.tools[0]).toMatchObject({
      tool: 'lookup_order',
      learned: {
        calls: 240,
        resultBytes: 240_000,
        modelTokens: 24_000,
        reportingCalls: 240,
        activeWindows: 24,
      },
      perWindow: { calls: 10, resultBytes: 10_000, modelTokens: 1000 },
      current: { calls: 0 },
    });
  });

  it('frequency: 31 calls in the window against a baseline of 10 fires (> 3×), once', async () => {
    const { h, who } = await learned();
    await calls(h, 31, who);
    const raised = forAgent(await drain(h), who.agent);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      rule: 'frequency',
      tool: 'lookup_order',
      metric: 'calls',
      observed: 31,
      baseline: 10,
      threshold: 3,
      factor: 3.1,
      windowStart: T0,
      windowMs: H,
      severity: 'low',
      response: 'alert',
      sessionId: `${who.agent}-session`,
      details: { baselineScope: 'agent', baselineCalls: 240, baselineWindows: 24 },
    });
    // More of the same in the same window: it fired already.
    await calls(h, 20, who);
    expect(forAgent(await drain(h), who.agent)).toEqual([]);
    // The next window is judged afresh.
    h.clock.set(T0 + H + MIN);
    await calls(h, 45, who);
    expect(forAgent(await drain(h), who.agent).map((a) => [a.rule, a.windowStart])).toEqual([
      ['frequency', T0 + H],
    ]);
  });

  it('frequency: 30 calls (exactly 3×) does not fire', async () => {
    const { h, who } = await learned();
    await calls(h, 30, who);
    expect(forAgent(await drain(h), who.agent)).toEqual([]);
  });

  it('frequency: a baseline of one call is no evidence — the 4th call is not an anomaly', async () => {
    const h = harness(store);
    const who = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    await history(h, { ...who, perHour: 1, hours: 1 });
    await calls(h, 4, who);
    expect(forAgent(await drain(h), who.agent)).toEqual([]);
    // Lower the bar and the same history is enough.
    const h2 = harness(store, { anomalies: { minBaselineCalls: 1, minBaselineWindows: 1 } });
    const other = { ...who, agent: unique('agent'), type: unique('type') };
    await history(h2, { ...other, perHour: 1, hours: 1 });
    await calls(h2, 4, other);
    expect(forAgent(await drain(h2), other.agent).map((a) => a.rule)).toEqual(['frequency']);
  });

  it('volume: 50,001 bytes in the window against 10,000 fires (> 5×); 50,000 does not', async () => {
    const { h, who } = await learned();
    await calls(h, 1, { ...who, resultBytes: 50_000 });
    expect(forAgent(await drain(h), who.agent)).toEqual([]);
    await calls(h, 1, { ...who, resultBytes: 1 });
    const raised = forAgent(await drain(h), who.agent);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      rule: 'volume',
      metric: 'resultBytes',
      observed: 50_001,
      baseline: 10_000,
      threshold: 5,
    });
  });

  it('token burn: 10,001 model tokens against 1,000 fires (> 10×); 10,000 does not', async () => {
    const { h, who } = await learned();
    await calls(h, 1, { ...who, tokens: 10_000 });
    expect(forAgent(await drain(h), who.agent)).toEqual([]);
    await calls(h, 1, { ...who, tokens: 1 });
    const raised = forAgent(await drain(h), who.agent);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      rule: 'token-burn',
      metric: 'modelTokens',
      observed: 10_001,
      baseline: 1000,
      threshold: 10,
      details: { reportingCalls: 2, baselineReportingCalls: 240, baselineWindows: 24 },
    });
    // The audit entry carries the numbers under names the log does not redact.
    const [entry] = await h.audit.read({ event: 'ANOMALY_DETECTED', agentId: who.agent });
    expect(entry?.data).toMatchObject({ rule: 'token-burn', metric: 'modelTokens', observed: 10_001 });
  });

  it('token burn: absent tokens are unknown, never zero', async () => {
    // A history that never reported tokens has no token baseline: a huge report is not judged.
    const { h, who } = await learned({}, { tokens: null });
    await drain(h);
    const view = await h.monitor.baseline({ scope: 'agent', key: who.agent });
    expect(view.tools[0]?.learned.modelTokens).toBeNull();
    expect(view.tools[0]?.perWindow.modelTokens).toBeNull();
    await calls(h, 1, { ...who, tokens: 1_000_000 });
    expect(forAgent(await drain(h), who.agent)).toEqual([]);

    // A window whose calls report nothing is unknown, however many calls it has (below 3×).
    const learnedOne = await learned();
    await calls(learnedOne.h, 25, learnedOne.who);
    expect(forAgent(await drain(learnedOne.h), learnedOne.who.agent)).toEqual([]);
    const now = await learnedOne.h.monitor.baseline({ scope: 'agent', key: learnedOne.who.agent });
    expect(now.tools[0]?.current).toMatchObject({ calls: 25, modelTokens: null });

    // Calls without a report do not dilute a baseline either: 12 of 24 hours reported.
    const h3 = harness(store);
    const w3 = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    for (let k = 24; k >= 1; k--) {
      h3.clock.set(T0 - k * H + MIN);
      await calls(h3, 10, { ...w3, ...(k % 2 === 0 ? { tokens: 100 } : {}) });
    }
    h3.clock.set(T0 + 10 * MIN);
    await drain(h3);
    const v3b = await h3.monitor.baseline({ scope: 'agent', key: w3.agent });
    expect(v3b.tools[0]?.perWindow).toMatchObject({ calls: 10, modelTokens: 1000 });
    expect(v3b.tools[0]?.learned).toMatchObject({ calls: 240, reportingCalls: 120, modelTokens: 12_000 });
  });

  it('first use: a tool the type never ran fires; one it ran does not', async () => {
    const { h, who } = await learned();
    await calls(h, 1, who);
    expect(forAgent(await drain(h), who.agent)).toEqual([]);
    // Another agent of the same type, new to the gateway, uses the type's tool: known.
    const sibling = { ...who, agent: unique('agent') };
    await calls(h, 1, sibling);
    expect(forAgent(await drain(h), sibling.agent)).toEqual([]);
    await calls(h, 2, { ...who, tool: 'issue_refund' });
    await calls(h, 1, { ...sibling, tool: 'issue_refund' });
    const raised = [...forAgent(await drain(h), who.agent), ...forAgent(await drain(h), sibling.agent)];
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      rule: 'first-use',
      tool: 'issue_refund',
      agentId: who.agent,
      metric: 'firstUse',
      details: { scope: 'type', knownTools: 1 },
    });
    // Ever after, it is known.
    h.clock.set(T0 + 5 * H);
    await calls(h, 1, { ...sibling, tool: 'issue_refund' });
    expect(forAgent(await drain(h), sibling.agent)).toEqual([]);
  });

  it('first use by agent: a tool the type knows is still new to this agent', async () => {
    const { h, who } = await learned({ anomalies: { firstUse: { scope: 'agent' } } });
    await drain(h);
    const sibling = { ...who, agent: unique('agent') };
    // The sibling is itself new: learning for a day, so its first tools are learned quietly...
    await calls(h, 1, sibling);
    expect(forAgent(await drain(h), sibling.agent)).toEqual([]);
    // ...while the established agent's new tool fires.
    await calls(h, 1, { ...who, tool: 'check_shipping_status' });
    expect(forAgent(await drain(h), who.agent).map((a) => [a.rule, a.details.scope])).toEqual([
      ['first-use', 'agent'],
    ]);
  });

  it('off-hours: activity at 18:30 Paris on a Wednesday fires (08:00-18:00); 17:59 does not', async () => {
    const section = {
      anomalies: { offHours: { enabled: true, timezone: 'Europe/Paris', hours: '08:00-18:00' } },
    };
    const h = harness(store, section);
    const who = { agent: unique('agent'), type: unique('type'), tool: 'lookup_order' };
    h.clock.set(Date.UTC(2026, 10, 25, 16, 59)); // 17:59 in Paris (UTC+1)
    await calls(h, 3, who);
    await denials(h, 1, who);
    expect(forAgent(await drain(h), who.agent)).toEqual([]);
    h.clock.set(Date.UTC(2026, 10, 25, 17, 30)); // 18:30
    await calls(h, 2, who);
    h.clock.advance(10 * MIN);
    await calls(h, 2, who);
    const raised = forAgent(await drain(h), who.agent);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      rule: 'off-hours',
      tool: null,
      metric: 'localTime',
      windowStart: Date.UTC(2026, 10, 25, 17),
      details: {
        localTime: 'Wed 18:30',
        timezone: 'Europe/Paris',
        activeHours: '08:00-18:00',
        activeDays: 'Mon,Tue,Wed,Thu,Fri',
      },
    });
    // Saturday noon is outside the active days.
    h.clock.set(Date.UTC(2026, 10, 28, 11, 0));
    await denials(h, 1, who);
    expect(forAgent(await drain(h), who.agent).map((a) => a.details.localTime)).toEqual(['Sat 12:00']);
  });

  it('denial burst: 10 denials within 5 minutes fire, also across ticks; 9 do not', async () => {
    const h = harness(store);
    const who = { agent: unique('agent'), type: unique('type'), tool: 'delete_account' };
    await denials(h, 9, who);
    h.clock.advance(4 * MIN);
    expect(forAgent(await drain(h), who.agent)).toEqual([]);
    // Ten over six minutes are not a burst either.
    h.clock.advance(2 * MIN);
    await denials(h, 1, who);
    expect(forAgent(await drain(h), who.agent)).toEqual([]);
    // Then 5 and 4 more: the 5 minutes up to the last hold 1 + 5 + 4 = 10.
    h.clock.advance(MIN);
    await denials(h, 5, who);
    h.clock.advance(MIN);
    await denials(h, 4, { ...who, tool: 'bulk_message' });
    const raised = forAgent(await drain(h), who.agent);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      rule: 'denial-burst',
      tool: null,
      metric: 'denials',
      observed: 10,
      threshold: 10,
      details: { withinMs: 5 * MIN, lastTool: 'bulk_message' },
    });
  });
});
