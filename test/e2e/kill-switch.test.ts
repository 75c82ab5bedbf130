/**
 * Issue #8, the kill switch, end to end on both store dialects: a real gateway,
 * a real slow MCP upstream over HTTP, the official SDK client, the admin API
 * with operator tokens. A kill aborts the agent's call in flight, voids its
 * tokens, refuses new sessions, ends an approval wait denied, and is audited
 * once however often it is pulled.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toolDefaults } from '../../src/config/constants.js';
import type { WardenConfig } from '../../src/config/types.js';
import {
  byEvent,
  dataOf,
  expectCleanError,
  request,
  wardenError,
  withApprovals,
} from '../helpers/approvals.js';
import {
  type ContentUpstream,
  httpUpstream,
  startContentUpstream,
  stringTool,
} from '../helpers/content-upstream.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

/** Far longer than any test waits: a call that returns sooner was aborted. */
const SLOW_MS = 30_000;

describeEachDialect('kill switch', (target) => {
  let t: TestGateway;
  let up: ContentUpstream;
  const timers = new Set<NodeJS.Timeout>();
  const operator = async (id: string) => (await t.gw.operatorTokens.issue(id, 600_000)).token;
  const admin = (path: string, token: string, json?: unknown) =>
    request(`${t.gw.url}${path}`, {
      token,
      ...(json === undefined ? { method: 'POST', json: {} } : { json }),
    });
  const rest = (token: string, toolName: string, parameters: Record<string, unknown> = {}) =>
    request(`${t.gw.url}/v1/tool-calls`, { token, json: { toolName, parameters } });

  beforeAll(async () => {
    up = await startContentUpstream({
      slow_op: {
        tool: stringTool('slow_op', ['tag']),
        respond: (a) =>
          new Promise<CallToolResult>((resolve) => {
            const timer = setTimeout(
              () => resolve({ content: [{ type: 'text', text: `done ${a['tag']}` }] }),
              SLOW_MS,
            );
            timers.add(timer);
          }),
      },
      quick: {
        tool: stringTool('quick', ['tag']),
        respond: (a) => ({ content: [{ type: 'text', text: `ok ${String(a['tag'])}` }] }),
      },
      wire: {
        tool: stringTool('wire', ['amount']),
        respond: () => ({ content: [{ type: 'text', text: 'wired' }] }),
      },
    });
    t = await startTestGateway(target, (config: WardenConfig) => {
      withApprovals(config);
      config.approvals.timeoutMs = 60_000;
      config.upstreams.push(httpUpstream('ops', up.url, 60_000));
      config.tools['slow_op'] = toolDefaults('low');
      config.tools['quick'] = toolDefaults('low');
      config.tools['wire'] = toolDefaults('high');
      const demo = config.agents.find((a) => a.id === 'demo-support')!;
      for (const id of ['runner', 'bystander']) {
        config.agents.push({
          ...demo,
          id,
          type: 'ops-bot',
          allowedTools: ['slow_op', 'quick', 'wire'],
          deniedTools: [],
        });
      }
    });
  }, 60_000);

  afterAll(async () => {
    for (const timer of timers) clearTimeout(timer);
    await t?.close();
    await up?.close();
  });

  it('refuses bad kill requests cleanly: no token, an agent token, an auditor, no reason, an unknown agent', async () => {
    const agentToken = await t.operatorToken('runner');
    expectCleanError(
      await admin('/admin/v1/agents/runner/kill', '', { reason: 'x' }),
      401,
      'OPERATOR_UNAUTHENTICATED',
    );
    expectCleanError(
      await admin('/admin/v1/agents/runner/kill', agentToken, { reason: 'x' }),
      403,
      'AGENT_TOKEN_REFUSED',
    );
    const carol = await operator('carol');
    expect((await admin('/admin/v1/agents/runner/kill', carol, { reason: 'x' })).status).toBe(403);
    const alice = await operator('alice');
    const noReason = expectCleanError(
      await admin('/admin/v1/agents/runner/kill', alice, {}),
      400,
      'INVALID_REQUEST',
    );
    expect(noReason.message).toContain('reason');
    expectCleanError(
      await admin('/admin/v1/agents/nobody-here/kill', alice, { reason: 'x' }),
      404,
      'NOT_FOUND',
    );
    // Nothing was stopped by any of that.
    const ok = await rest(agentToken, 'quick', { tag: 'still-alive' });
    expect(ok.status, ok.text).toBe(200);
    expect((await t.gw.agents.get('runner'))?.status).toBe('active');
  });

  it('kills an agent mid-call: the call is aborted, its token refused, new sessions refused; audited once', async () => {
    const token = await t.operatorToken('runner');
    const client = await t.mcp(token);
    const before = up.calls.length;
    const inFlight = client.callTool({ name: 'slow_op', arguments: { tag: 'doomed' } });
    // The upstream has the call: it is really in flight.
    await until(() => (up.calls.length > before ? true : undefined));
    expect(t.gw.inFlight.size).toBe(1);

    const alice = await operator('alice');
    const seen = await request(`${t.gw.url}/admin/v1/agents/runner`, { token: alice });
    expect(seen.body).toMatchObject({ agent: { status: 'active' }, callsInFlightHere: 1 });
    const idle = await request(`${t.gw.url}/admin/v1/agents/bystander`, { token: alice });
    expect(idle.body.callsInFlightHere).toBe(0);
    const killed = await admin('/admin/v1/agents/runner/kill', alice, { reason: 'mass-mailing customers' });
    expect(killed.status, killed.text).toBe(200);
    expect(killed.body.kill).toMatchObject({
      scope: 'agent',
      agentId: 'runner',
      repeated: false,
      callsAborted: 1,
      sessionsRevoked: expect.any(Number),
    });
    expect(killed.body.kill.sessionsRevoked).toBeGreaterThanOrEqual(1);

    const result = (await inFlight) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(wardenError(result)?.code).toBe('AGENT_KILLED');
    expect(t.gw.inFlight.size).toBe(0);
    await client.close().catch(() => {});

    // The old token: refused by name, on both faces.
    expectCleanError(await rest(token, 'quick', { tag: 'after' }), 401, 'AGENT_KILLED');
    // A new session: refused, by both ways of getting one.
    await expect(t.operatorToken('runner')).rejects.toMatchObject({ code: 'AGENT_KILLED' });
    await expect(t.oauthToken('runner')).rejects.toThrow();

    // Kill again: nothing new to stop, answered `repeated`, not audited twice.
    const again = await admin('/admin/v1/agents/runner/kill', alice, { reason: 'pressed twice' });
    expect(again.status).toBe(200);
    expect(again.body.kill).toMatchObject({ repeated: true, sessionsRevoked: 0, callsAborted: 0 });

    const entries = await t.gw.audit.read({ agentId: 'runner', limit: 1000 });
    const kills = byEvent(entries, 'AGENT_KILLED');
    expect(kills).toHaveLength(1);
    expect(kills[0]).toMatchObject({ actorType: 'HUMAN', actorId: 'alice', result: 'success' });
    expect(dataOf(kills[0])).toMatchObject({ reason: 'mass-mailing customers', callsAborted: 1 });
    // The aborted call's outcome is on record, with the kill's code.
    const outcome = entries.find(
      (e) => e.event === 'TOOL_CALL' && dataOf(e).phase === 'outcome' && e.toolName === 'slow_op',
    );
    expect(dataOf(outcome)).toMatchObject({ errorCode: 'AGENT_KILLED' });
    // A bystander agent was untouched.
    const other = await rest(await t.operatorToken('bystander'), 'quick', { tag: 'fine' });
    expect(other.status, other.text).toBe(200);
  });

  it('only an admin revives; the revived agent works with a new session, old ones stay revoked', async () => {
    const alice = await operator('alice');
    expect((await admin('/admin/v1/agents/runner/enable', alice, { reason: 'fixed' })).status).toBe(403);
    const root = await operator('root');
    const revived = await admin('/admin/v1/agents/runner/enable', root, {
      reason: 'prompt fixed, keys rotated',
    });
    expect(revived.status, revived.text).toBe(200);
    expect(revived.body).toMatchObject({ repeated: false, agent: { status: 'active' } });
    const ok = await rest(await t.operatorToken('runner'), 'quick', { tag: 'back' });
    expect(ok.status, ok.text).toBe(200);
    const enabled = byEvent(await t.gw.audit.read({ agentId: 'runner', limit: 1000 }), 'AGENT_ENABLED');
    expect(enabled).toHaveLength(1);
    expect(dataOf(enabled[0])).toMatchObject({ previousStatus: 'killed' });
  });

  it('a kill during an approval wait ends the wait denied, and the request is denied for good', async () => {
    const token = await t.operatorToken('runner');
    const waiting = rest(token, 'wire', { amount: '1000000' });
    const approval = await until(async () => {
      const list = await t.gw.approvals.list({ agentId: 'runner', status: 'pending' });
      return list[0];
    });
    await until(() => (t.gw.approvals.waiting > 0 ? true : undefined));
    const root = await operator('root');
    const killed = await admin('/admin/v1/agents/runner/kill', root, { reason: 'asked to wire a million' });
    expect(killed.body.kill).toMatchObject({ approvalsDenied: 1, callsAborted: 1 });
    const answer = await waiting;
    expectCleanError(answer, 401, 'AGENT_KILLED');
    const after = await t.gw.approvals.get(approval.id);
    expect(after).toMatchObject({ status: 'denied', decidedVia: 'system' });
    // An approver arriving late cannot approve it.
    const bob = await operator('bob');
    const late = await admin(`/admin/v1/approvals/${approval.id}/approve`, bob, {});
    expect(late.status).toBe(409);
    await admin('/admin/v1/agents/runner/enable', root, { reason: 'test over' });
  });

  it("kills one session: its call aborts, the agent's other session carries on", async () => {
    const doomed = await t.operatorToken('runner');
    const spared = await t.operatorToken('runner');
    const sessions = await request(`${t.gw.url}/admin/v1/sessions?agent=runner`, {
      token: await operator('carol'),
    });
    expect(sessions.status, sessions.text).toBe(200);
    const before = up.calls.length;
    const slow = rest(doomed, 'slow_op', { tag: 'one-session' });
    await until(() => (up.calls.length > before ? true : undefined));
    const sid = await until(() => {
      const live = t.gw.inFlight.live();
      return live.sessions[0];
    });
    const alice = await operator('alice');
    const k = await admin(`/admin/v1/sessions/${sid}/kill`, alice, { reason: 'looping on one ticket' });
    expect(k.status, k.text).toBe(200);
    expect(k.body.kill).toMatchObject({ scope: 'session', sessionId: sid, callsAborted: 1 });
    expectCleanError(await slow, 401, 'SESSION_REVOKED');
    expectCleanError(await rest(doomed, 'quick', { tag: 'x' }), 401, 'SESSION_REVOKED');
    const ok = await rest(spared, 'quick', { tag: 'y' });
    expect(ok.status, ok.text).toBe(200);
    const killedEntries = byEvent(await t.gw.audit.read({ sessionId: sid, limit: 100 }), 'SESSION_KILLED');
    expect(killedEntries).toHaveLength(1);
    expectCleanError(
      await admin('/admin/v1/sessions/ses_nope/kill', alice, { reason: 'x' }),
      404,
      'NOT_FOUND',
    );
  });

  it('lists agents and sessions, and answers audit queries by agent, event and time', async () => {
    const carol = await operator('carol');
    const agents = await request(`${t.gw.url}/admin/v1/agents`, { token: carol });
    expect(agents.status, agents.text).toBe(200);
    expect(agents.body.agents.map((a: { id: string }) => a.id)).toEqual(
      expect.arrayContaining(['runner', 'bystander']),
    );
    const one = await request(`${t.gw.url}/admin/v1/agents/runner`, { token: carol });
    expect(one.body.agent).toMatchObject({ id: 'runner', status: 'active' });
    expect(JSON.stringify(one.body)).not.toContain('"d"');
    const q = await request(
      `${t.gw.url}/admin/v1/audit?agent=runner&event=AGENT_KILLED&since=${new Date(Date.now() - 3_600_000).toISOString()}`,
      { token: carol },
    );
    expect(q.status, q.text).toBe(200);
    expect(q.body.entries.length).toBeGreaterThanOrEqual(2);
    for (const e of q.body.entries) expect(e).toMatchObject({ event: 'AGENT_KILLED', agentId: 'runner' });
    expectCleanError(
      await request(`${t.gw.url}/admin/v1/audit?limit=0`, { token: carol }),
      400,
      'INVALID_REQUEST',
    );
    expectCleanError(
      await request(`${t.gw.url}/admin/v1/audit?event=drop table`, { token: carol }),
      400,
      'INVALID_REQUEST',
    );
    // Approvers decide calls; reading the audit log is for auditors and admins.
    expect((await request(`${t.gw.url}/admin/v1/audit`, { token: await operator('alice') })).status).toBe(
      403,
    );
  });
});
