/**
 * Circuit breakers end to end (issue #8): a real gateway on a real store (both
 * dialects), a real MCP upstream over HTTP whose tool the test makes fail, an
 * agent on the MCP SDK client and on REST. N failing calls open the session's
 * breaker, the next call is refused with CIRCUIT_OPEN on both faces without
 * reaching the upstream; an operator reset or the cool-down lets calls through
 * again; failures spread over sessions open the agent's breaker.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/index.js';
import { toolDefaults } from '../../src/config/constants.js';
import type { WardenConfig } from '../../src/config/types.js';
import { byEvent, dataOf, expectCleanError, OPERATORS, request, wardenError } from '../helpers/approvals.js';
import {
  type ContentUpstream,
  httpUpstream,
  startContentUpstream,
  stringTool,
} from '../helpers/content-upstream.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const AGENT = 'flaky-caller';

describeEachDialect('circuit breakers', (target) => {
  let t: TestGateway;
  let up: ContentUpstream;
  /** What the upstream tool does now. */
  let failing = true;

  beforeAll(async () => {
    up = await startContentUpstream({
      flaky: {
        tool: stringTool('flaky', ['q']),
        respond: () =>
          failing
            ? { content: [{ type: 'text', text: 'backend exploded' }], isError: true }
            : { content: [{ type: 'text', text: 'fine' }] },
      },
    });
    t = await startTestGateway(target, (config: WardenConfig) => {
      config.upstreams.push(httpUpstream('flaky-up', up.url));
      config.tools['flaky'] = toolDefaults('low');
      config.operators = OPERATORS.map((o) => ({ ...o, roles: [...o.roles] }));
      const demo = config.agents.find((a) => a.id === 'demo-support')!;
      config.agents.push({ ...demo, id: AGENT, type: 'batch', allowedTools: ['flaky'], deniedTools: [] });
      config.breakers.session = { ...config.breakers.session, maxConsecutiveFailures: 3, coolDownMs: 60_000 };
      config.breakers.agent = { ...config.breakers.agent, maxConsecutiveFailures: 6, coolDownMs: null };
      // The upstream here reports its failures as tool errors (isError), which count only when asked.
      config.breakers.countToolErrors = true;
    });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await up?.close();
    await target.cleanup();
  });

  const callMcp = async (token: string) =>
    (await (await t.mcp(token)).callTool({ name: 'flaky', arguments: { q: 'x' } })) as CallToolResult;
  const callRest = (token: string) =>
    request(`${t.gw.url}/v1/tool-calls`, { token, json: { toolName: 'flaky', parameters: { q: 'x' } } });
  const entries = async (event: AuditEntry['event']) => byEvent(await t.gw.audit.read(), event);

  it('opens the session breaker after N failing calls: CIRCUIT_OPEN over MCP and REST, the upstream is not called', async () => {
    failing = true;
    const token = await t.operatorToken(AGENT);
    const client = await t.mcp(token);
    for (let i = 0; i < 3; i++) {
      const r = (await client.callTool({ name: 'flaky', arguments: { q: `${i}` } })) as CallToolResult;
      // The tool's own error result reaches the agent as it was: the breaker only counts it.
      expect(r.isError).toBe(true);
      expect(wardenError(r)).toBeUndefined();
    }
    const reached = up.calls.length;
    const refused = (await client.callTool({ name: 'flaky', arguments: { q: '3' } })) as CallToolResult;
    expect(refused.isError).toBe(true);
    expect(wardenError(refused)).toMatchObject({
      code: 'CIRCUIT_OPEN',
      rule: 'breaker.session.failures',
      scope: 'session',
      reason: 'failures',
      retryAfterSeconds: 60,
    });
    const rest = await callRest(token);
    expect(expectCleanError(rest, 503, 'CIRCUIT_OPEN')).toMatchObject({ rule: 'breaker.session.failures' });
    expect(rest.headers.get('retry-after')).toBe('60');
    expect(up.calls.length).toBe(reached);

    const opened = await entries('CIRCUIT_OPENED');
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({ actorType: 'SYSTEM', agentId: AGENT, toolName: 'flaky' });
    expect(dataOf(opened[0])).toMatchObject({ scope: 'session', reason: 'failures', count: 3, threshold: 3 });
    const metrics = await (await fetch(`${t.gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^warden_circuit_breakers_open\{scope="session"\} 1$/m);
    expect(metrics).toMatch(/^warden_circuit_breaker_trips_total\{scope="session",reason="failures"\} 1$/m);
    const denied = (await entries('TOOL_DENIED')).filter((e) => e.decision?.code === 'CIRCUIT_OPEN');
    expect(denied.map((e) => e.decision?.rule)).toEqual([
      'breaker.session.failures',
      'breaker.session.failures',
    ]);

    // An operator resets it (what POST /admin/v1/sessions/:id/breaker/reset calls): calls go through again.
    const [open] = (await t.gw.breakers.status()).filter((b) => b.scope === 'session');
    expect(open).toMatchObject({ agentId: AGENT, reason: 'failures' });
    failing = false;
    expect((await t.gw.breakers.reset({ sessionId: open!.id }, 'root')).closed).toBe(true);
    const after = await callMcp(token);
    expect(after.isError).toBeFalsy();
    expect(after.content).toEqual([{ type: 'text', text: 'fine' }]);
    const closed = await entries('CIRCUIT_CLOSED');
    expect(closed.map((e) => [e.actorType, e.actorId, dataOf(e).reason])).toEqual([
      ['HUMAN', 'root', 'operator'],
    ]);
  });

  it('closes by itself once the cool-down has passed', async () => {
    failing = true;
    const token = await t.operatorToken(AGENT);
    for (let i = 0; i < 3; i++) expect((await callRest(token)).status).toBe(200);
    expect((await callRest(token)).error?.code).toBe('CIRCUIT_OPEN');
    t.clock.advance(60_000);
    failing = false;
    const r = await callRest(token);
    expect([r.status, r.body?.result?.content]).toEqual([200, [{ type: 'text', text: 'fine' }]]);
    const coolDowns = (await entries('CIRCUIT_CLOSED')).filter((e) => dataOf(e).reason === 'cool-down');
    expect(coolDowns).toHaveLength(1);
    expect(coolDowns[0]?.actorType).toBe('SYSTEM');
  });

  it("opens the agent's breaker on failures spread over its sessions, for every session, until reset", async () => {
    failing = true;
    const tokens = await Promise.all([1, 2, 3].map(() => t.operatorToken(AGENT)));
    // Two failures in each of three sessions: no session breaker, six in a row for the agent.
    for (const token of tokens) for (let i = 0; i < 2; i++) expect((await callRest(token)).status).toBe(200);
    failing = false;
    const fresh = await t.operatorToken(AGENT);
    const refused = await callRest(fresh);
    const body = expectCleanError(refused, 503, 'CIRCUIT_OPEN');
    // coolDown null: only an operator closes it, so there is no Retry-After to promise.
    expect(body).toMatchObject({ rule: 'breaker.agent.failures', scope: 'agent', reason: 'failures' });
    expect(body).not.toHaveProperty('retryAfterSeconds');
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(await t.gw.breakers.status()).toContainEqual({
      scope: 'agent',
      id: AGENT,
      agentId: AGENT,
      reason: 'failures',
      openUntil: null,
    });
    // The admin API: anyone watching lists it; only an admin resets it.
    const op = async (id: string) => (await t.gw.operatorTokens.issue(id, 600_000)).token;
    const listed = await request(`${t.gw.url}/admin/v1/breakers`, { token: await op('carol') });
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body.breakers).toContainEqual(
      expect.objectContaining({ scope: 'agent', id: AGENT, reason: 'failures', untilReset: true }),
    );
    const shown = await request(`${t.gw.url}/admin/v1/agents/${AGENT}`, { token: await op('carol') });
    expect(shown.body.agent.breaker).toEqual({ open: true, reason: 'failures', untilReset: true });
    const reset = (who: string, id = AGENT) =>
      op(who).then((token) =>
        request(`${t.gw.url}/admin/v1/agents/${id}/breaker/reset`, { token, json: {} }),
      );
    expect((await reset('alice')).status).toBe(403);
    expectCleanError(await reset('root', 'no-such-agent'), 404, 'NOT_FOUND');
    const done = await reset('root');
    expect(done.status, done.text).toBe(200);
    expect(done.body).toMatchObject({ repeated: false, breaker: { closed: true, scope: 'agent' } });
    expect((await reset('root')).body).toMatchObject({ repeated: true });
    expect((await callRest(fresh)).status).toBe(200);
  });
});
