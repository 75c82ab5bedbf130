/**
 * Issue #8, anomalies and their automatic responses end to end on both store
 * dialects: a real gateway whose monitor learns from its own audit log, agents
 * on REST, the admin API. Usage reported by agents lands in the audit log; a
 * burst of denials holds the session (every further call needs a human), a
 * repeat quarantines it, and a rule configured to kill takes the agent down.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/index.js';
import { toolDefaults } from '../../src/config/constants.js';
import type { WardenConfig } from '../../src/config/types.js';
import { byEvent, dataOf, expectCleanError, OPERATORS, request } from '../helpers/approvals.js';
import {
  type ContentUpstream,
  httpUpstream,
  startContentUpstream,
  stringTool,
} from '../helpers/content-upstream.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

describeEachDialect('anomalies and automatic responses', (target) => {
  let t: TestGateway;
  let up: ContentUpstream;
  const entries = async (event: AuditEntry['event'], agentId?: string) =>
    byEvent(await t.gw.audit.read({ limit: 5000, ...(agentId ? { agentId } : {}) }), event);
  const rest = (token: string, toolName: string, extra: Record<string, unknown> = {}) =>
    request(`${t.gw.url}/v1/tool-calls`, { token, json: { toolName, parameters: { q: 'x' }, ...extra } });
  const operator = async (id: string) => (await t.gw.operatorTokens.issue(id, 600_000)).token;

  beforeAll(async () => {
    up = await startContentUpstream({
      search: {
        tool: stringTool('search', ['q']),
        respond: () => ({ content: [{ type: 'text', text: 'result '.repeat(50) }] }),
      },
      export_all: {
        tool: stringTool('export_all', ['q']),
        respond: () => ({ content: [{ type: 'text', text: 'exported' }] }),
      },
    });
    t = await startTestGateway(target, (config: WardenConfig) => {
      config.operators = OPERATORS.map((o) => ({ ...o, roles: [...o.roles] }));
      config.approvals.mode = 'pending';
      config.upstreams.push(httpUpstream('data', up.url));
      config.tools['search'] = toolDefaults('low');
      config.tools['export_all'] = toolDefaults('low');
      const demo = config.agents.find((a) => a.id === 'demo-support')!;
      // `search` allowed, `export_all` denied by the agent's list: calling it is a denial.
      for (const id of ['probe-1', 'probe-2']) {
        config.agents.push({
          ...demo,
          id,
          type: 'prober',
          allowedTools: ['search'],
          deniedTools: ['export_all'],
        });
      }
      config.agents.push({
        ...demo,
        id: 'newcomer',
        type: 'fresh-type',
        allowedTools: ['search'],
        deniedTools: [],
      });
      config.monitoring.intervalMs = 3_600_000; // the test ticks the monitor itself
      config.monitoring.anomalies.denialBurst = { enabled: true, count: 3, withinMs: 5 * 60_000 };
      config.monitoring.newAgents = { mode: 'strict', learnForMs: 0 };
      config.monitoring.severity = { ...config.monitoring.severity, medium: 2, high: 3 };
      config.monitoring.responses = {
        low: 'hold-session',
        medium: 'quarantine-session',
        high: 'quarantine-session',
        // A brand-new agent type reaching for a tool: kill it (an operator's explicit choice).
        byRule: { 'first-use': { low: 'kill-agent', medium: 'kill-agent', high: 'kill-agent' } },
      };
    });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await up?.close();
  });

  it('records what the agent reports its model spent, and the size of each result; refuses malformed usage', async () => {
    const token = await t.operatorToken('probe-2');
    const ok = await rest(token, 'search', { usage: { tokens: 1234 } });
    expect(ok.status, ok.text).toBe(200);
    const outcome = (await entries('TOOL_CALL', 'probe-2')).find((e) => dataOf(e).phase === 'outcome');
    expect(dataOf(outcome)).toMatchObject({ tokens: 1234 });
    expect(dataOf(outcome).resultBytes).toBeGreaterThan(350);
    const unknown = await rest(token, 'search');
    expect(unknown.status).toBe(200);
    const last = (await entries('TOOL_CALL', 'probe-2')).filter((e) => dataOf(e).phase === 'outcome').at(-1);
    expect(dataOf(last)).not.toHaveProperty('tokens');
    expectCleanError(await rest(token, 'search', { usage: { tokens: -5 } }), 400, 'INVALID_REQUEST');
    expectCleanError(await rest(token, 'search', { usage: 'lots' }), 400, 'INVALID_REQUEST');
  });

  it('a burst of denials holds the session: the next call needs a human; a second burst quarantines it', async () => {
    // Two minutes before an hour boundary: the second burst below lands in the next window (windows
    // are clock hours) while the session (15 minutes at most) is still alive.
    const HOUR = 3_600_000;
    t.clock.advance(HOUR - (t.clock.now() % HOUR) - 120_000);
    const token = await t.operatorToken('probe-1');
    for (let i = 0; i < 2; i++) expect((await rest(token, 'export_all')).status).toBe(403);
    // Just under the threshold (3 denials) the monitor stays quiet.
    const quiet = await t.gw.anomalies.tick();
    expect(quiet.filter((a) => a.agentId === 'probe-1')).toEqual([]);
    expect(await entries('ANOMALY_DETECTED', 'probe-1')).toHaveLength(0);
    expect((await rest(token, 'export_all')).status).toBe(403);
    const raised = await t.gw.anomalies.tick();
    expect(raised.map((a) => [a.agentId, a.rule, a.severity, a.response])).toContainEqual([
      'probe-1',
      'denial-burst',
      'low',
      'hold-session',
    ]);
    const detected = await entries('ANOMALY_DETECTED', 'probe-1');
    expect(detected).toHaveLength(1);
    expect(detected[0]).toMatchObject({ actorType: 'SYSTEM', actorId: 'monitoring' });
    expect(dataOf(detected[0])).toMatchObject({ rule: 'denial-burst', response: 'hold-session' });

    // Held: a low-risk call that ran freely before now waits for a human.
    const heldCall = await rest(token, 'search');
    expect(heldCall.status, heldCall.text).toBe(202);
    expect(heldCall.error?.code).toBe('APPROVAL_PENDING');
    const approval = await t.gw.approvals.get(String(heldCall.error?.approvalId));
    expect(approval).toMatchObject({ rule: 'anomaly.hold', toolName: 'search', agentId: 'probe-1' });
    // Another agent of the same type is not held.
    expect((await rest(await t.operatorToken('probe-1'), 'search')).status).toBe(200);

    // A second burst from the same session: severity medium, quarantined.
    for (let i = 0; i < 4; i++) await rest(token, 'export_all');
    t.clock.advance(3 * 60_000); // past the hour: a new window, so this burst is its own
    for (let i = 0; i < 4; i++) await rest(token, 'export_all');
    const second = await t.gw.anomalies.tick();
    expect(second.filter((a) => a.agentId === 'probe-1').map((a) => a.response)).toContain(
      'quarantine-session',
    );
    expectCleanError(await rest(token, 'search'), 401, 'SESSION_REVOKED');
    const killed = await entries('SESSION_KILLED', 'probe-1');
    expect(killed[0]).toMatchObject({ actorType: 'SYSTEM', actorId: 'monitoring' });
  });

  it('a brand-new agent type reaching for a tool is killed when the operator configured it so', async () => {
    const token = await t.operatorToken('newcomer');
    expect((await rest(token, 'search')).status).toBe(200);
    const raised = await t.gw.anomalies.tick();
    expect(raised.map((a) => [a.agentId, a.rule, a.response])).toContainEqual([
      'newcomer',
      'first-use',
      'kill-agent',
    ]);
    expectCleanError(await rest(token, 'search'), 401, 'AGENT_KILLED');
    const kill = (await entries('AGENT_KILLED', 'newcomer'))[0];
    expect(kill).toMatchObject({ actorType: 'SYSTEM', actorId: 'monitoring' });
    expect(String(dataOf(kill).reason)).toContain('first-use');
  });

  it('operators list anomalies and baselines; bad queries are clean errors', async () => {
    const carol = await operator('carol');
    const list = await request(`${t.gw.url}/admin/v1/anomalies?agent=probe-1`, { token: carol });
    expect(list.status, list.text).toBe(200);
    expect(list.body.anomalies.length).toBeGreaterThanOrEqual(2);
    for (const a of list.body.anomalies)
      expect(a).toMatchObject({ agentId: 'probe-1', rule: 'denial-burst' });
    const baseline = await request(`${t.gw.url}/admin/v1/baselines/type/prober`, { token: carol });
    expect(baseline.status, baseline.text).toBe(200);
    expect(baseline.body.baseline).toMatchObject({ scope: 'type', key: 'prober' });
    expect(baseline.body.baseline.tools.map((x: { tool: string }) => x.tool)).toContain('search');
    expectCleanError(
      await request(`${t.gw.url}/admin/v1/baselines/planet/x`, { token: carol }),
      404,
      'NOT_FOUND',
    );
    expectCleanError(
      await request(`${t.gw.url}/admin/v1/anomalies?limit=-1`, { token: carol }),
      400,
      'INVALID_REQUEST',
    );
    const metrics = await fetch(`${t.gw.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/warden_anomalies_total\{rule="denial-burst",severity="low"\} [1-9]/);
  });
});
