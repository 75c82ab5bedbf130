/**
 * End to end: the official MCP SDK client over real HTTP, a real gateway, a real
 * upstream process, on both store dialects.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runAgent } from '../../examples/agent-client.js';
import { verifyChain } from '../../src/audit/index.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const errorCode = (r: CallToolResult) =>
  (r._meta as Record<string, { code?: string; rule?: string }> | undefined)?.['warden/error'];

describeEachDialect('gateway e2e', (target) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway(target);
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  it('answers 401 with RFC 9728 resource metadata when the token is missing', async () => {
    const res = await fetch(`${t.gw.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
    });
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toContain(`resource_metadata="${t.gw.url}/.well-known/oauth-protected-resource"`);
    const body = (await res.json()) as { error: { code: string; traceId: string } };
    expect(body.error.code).toBe('UNAUTHENTICATED');
    expect(body.error.traceId).toMatch(/\w{8,}/);
    const meta = (await (await fetch(`${t.gw.url}/.well-known/oauth-protected-resource`)).json()) as {
      resource: string;
      authorization_servers: string[];
    };
    expect(meta.resource).toBe(t.gw.url);
    expect(meta.authorization_servers).toEqual([`${t.gw.url}/oauth`]);
  });

  it('lists only the tools the session may call and runs an allowed call', async () => {
    const client = await t.mcp(await t.oauthToken('demo-support'));
    const listed = (await client.listTools()).tools;
    const names = listed.map((x) => x.name).sort();
    expect(names).toEqual(['check_shipping_status', 'create_support_ticket', 'issue_refund', 'lookup_order']);
    // Each tool says beforehand how much human attention a call takes (its configured class).
    const risk = Object.fromEntries(listed.map((x) => [x.name, x._meta?.['warden/risk']]));
    expect(risk).toEqual({
      check_shipping_status: 'low',
      create_support_ticket: 'medium',
      issue_refund: 'high',
      lookup_order: 'low',
    });
    const r = (await client.callTool({
      name: 'lookup_order',
      arguments: { orderId: 'ORD-4F8K2P1Z' },
    })) as CallToolResult;
    expect(r.isError).toBeFalsy();
    expect(JSON.stringify(r.content)).toContain('ORD-4F8K2P1Z');
    const calls = await t.gw.audit.read({ event: 'TOOL_CALL', limit: 100 });
    const mine = calls.filter((e) => e.toolName === 'lookup_order');
    expect(mine.map((e) => e.result)).toEqual(['pending', 'success']);
    expect(mine[0]!.seq).toBeLessThan(mine[1]!.seq);
  });

  it('denies a denied tool with its rule, and audits the denial', async () => {
    const client = await t.mcp(await t.oauthToken('demo-support'));
    const r = (await client.callTool({
      name: 'bulk_message',
      arguments: { audience: 'all_customers', message: 'phish' },
    })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(errorCode(r)?.code).toBe('TOOL_DENIED');
    const denied = await t.gw.audit.read({ event: 'TOOL_DENIED', limit: 100 });
    const entry = denied.find((e) => e.toolName === 'bulk_message');
    expect(entry?.decision?.rule).toBe('agent.deniedTools:bulk_message');
    expect(entry?.agentId).toBe('demo-support');
  });

  it('refuses look-alike tool names (case, whitespace, homoglyphs, zero-width)', async () => {
    const client = await t.mcp(await t.oauthToken('demo-support'));
    for (const name of [
      'Bulk_Message',
      ' bulk_message',
      'bulk_messag\u0435',
      'bulk\u200b_message',
      'ｂｕｌｋ_message',
    ]) {
      const r = (await client.callTool({ name, arguments: {} })) as CallToolResult;
      expect(r.isError, name).toBe(true);
      expect(errorCode(r)?.code, name).toBe('TOOL_UNKNOWN');
      expect(errorCode(r)?.rule, name).toBe('tool.confusable-name');
    }
    const unknown = (await client.callTool({ name: 'no_such_tool', arguments: {} })) as CallToolResult;
    expect(errorCode(unknown)?.rule).toBe('tool.unknown');
  });

  it('does not let another token ride an MCP session', async () => {
    const tokenA = await t.oauthToken('demo-support');
    const tokenB = await t.oauthToken('demo-support');
    const init = await fetch(`${t.gw.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${tokenA}`,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    expect(init.status).toBe(200);
    const sid = init.headers.get('mcp-session-id');
    expect(sid).toBeTruthy();
    await init.body?.cancel();
    const ride = await fetch(`${t.gw.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${tokenB}`,
        'mcp-session-id': sid!,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }),
    });
    expect(ride.status).toBe(403);
    expect(((await ride.json()) as { error: { code: string } }).error.code).toBe('MCP_SESSION_MISMATCH');
  });

  it('ends the session when the token expires mid-session, and audits SESSION_EXPIRED once', async () => {
    const token = await t.operatorToken('analyst-1', 60_000);
    const client = await t.mcp(token);
    const ok = (await client.callTool({
      name: 'lookup_order',
      arguments: { orderId: 'ORD-4F8K2P1Z' },
    })) as CallToolResult;
    expect(ok.isError).toBeFalsy();
    t.clock.advance(61_000 + 60_000); // past expiry and any skew allowance
    await expect(
      client.callTool({ name: 'lookup_order', arguments: { orderId: 'ORD-4F8K2P1Z' } }),
    ).rejects.toThrow(/TOKEN_EXPIRED/);
    const rest = await fetch(`${t.gw.url}/v1/tool-calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ toolName: 'lookup_order', parameters: { orderId: 'ORD-4F8K2P1Z' } }),
    });
    expect(rest.status).toBe(401);
    expect(((await rest.json()) as { error: { code: string } }).error.code).toBe('TOKEN_EXPIRED');
    const expired = await t.gw.audit.read({ event: 'SESSION_EXPIRED', agentId: 'analyst-1', limit: 10 });
    expect(expired).toHaveLength(1);
    t.clock.set(Date.now());
  });

  it('runs the agent example from docs/agents.md, recording the stated reasoning', async () => {
    const out = await runAgent(t.gw.url, 'demo-support', t.keys['demo-support']!);
    expect(out.expiresIn).toBeLessThanOrEqual(900);
    expect(out.tools).toContain('lookup_order');
    expect(out.result.isError).toBeFalsy();
    // The attempt and the outcome (lookup_order also taints the session: SESSION_TAINTED between them).
    const calls = (await t.gw.audit.latest(3)).filter((e) => e.event === 'TOOL_CALL');
    expect(calls.map((e) => e.reasoning)).toEqual([
      'the customer asked where their keyboard is',
      'the customer asked where their keyboard is',
    ]);
  });

  it('keeps an intact audit chain', async () => {
    const r = await verifyChain(t.gw.store);
    expect(r.problem).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.entries).toBeGreaterThan(5);
  });
});
