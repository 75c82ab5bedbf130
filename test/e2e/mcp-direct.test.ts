/**
 * Issue #4: a plain tools/call is answered on the direct path (one JSON
 * response, without the SDK's server and transport), and everything else
 * still goes through the SDK: progress, requests the transport refuses,
 * malformed calls. Cancellation and closing a session abort direct calls.
 * Real gateway, real SDK upstreams, real SDK agent clients.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WardenConfig } from '../../src/config/types.js';
import { httpUpstream } from '../helpers/content-upstream.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type RelayUpstream, startRelayUpstream } from '../helpers/relay-upstream.js';
import { until } from '../helpers/wait.js';

const waitFor = (f: () => boolean, ms: number) => until(() => (f() ? true : undefined), ms);

let up: RelayUpstream;
let t: TestGateway;

beforeAll(async () => {
  up = await startRelayUpstream();
  t = await startTestGateway(makeTarget('sqlite'), (config: WardenConfig) => {
    config.upstreams.push(httpUpstream('relay', up.url));
    const demo = config.agents.find((a) => a.id === 'demo-support')!;
    demo.allowedTools.push('wait_for_cancel', 'progress_steps');
  });
  await waitFor(() => t.gw.pool.listTools().some((x) => x.name === 'wait_for_cancel'), 10_000);
}, 60_000);

afterAll(async () => {
  await t?.close();
  await up?.close();
});

interface Seen {
  method: string;
  contentType: string | null;
  status: number;
  body: Promise<string>;
}

/** An SDK client whose HTTP exchanges are recorded: what each POST carried and how it was answered. */
async function recordingClient(token: string): Promise<{ client: Client; seen: Seen[] }> {
  const seen: Seen[] = [];
  const client = new Client({ name: 'direct-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${t.gw.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        if (init?.method === 'POST') {
          const method = (JSON.parse(String(init.body)) as { method?: string }).method ?? '(response)';
          seen.push({
            method,
            contentType: res.headers.get('content-type'),
            status: res.status,
            body: res.clone().text(),
          });
        }
        return res;
      },
    }),
  );
  return { client, seen };
}

const calls = (seen: Seen[]) => seen.filter((s) => s.method === 'tools/call');

describe('the direct path for tools/call', () => {
  it('answers a plain call as one JSON response, with the result the SDK path gives', async () => {
    const { client, seen } = await recordingClient(await t.operatorToken('demo-support'));
    const args = { name: 'lookup_order', arguments: { orderId: 'ORD-4F8K2P1Z' } };
    const direct = (await client.callTool(args)) as CallToolResult;
    // Asking for progress needs the SDK's event stream: the same call goes the SDK's way.
    const viaSdk = (await client.callTool(args, undefined, { onprogress: () => {} })) as CallToolResult;
    const [first, second] = calls(seen);
    expect(first?.contentType).toBe('application/json');
    expect(second?.contentType).toBe('text/event-stream');
    expect(direct.isError).toBeFalsy();
    expect(direct.content).toEqual(viaSdk.content);
    expect(direct.structuredContent).toEqual(viaSdk.structuredContent);
    // Both audited alike: an attempt and a successful outcome each, under two trace ids.
    const entries = await t.gw.audit.read({ event: 'TOOL_CALL', limit: 10 });
    const session = entries[0]!.sessionId;
    const mine = entries.filter((e) => e.sessionId === session && e.toolName === 'lookup_order');
    expect(mine.map((e) => e.result).sort()).toEqual(['pending', 'pending', 'success', 'success']);
    expect(new Set(mine.map((e) => e.traceId)).size).toBe(2);
    await client.close();
  });

  it('returns a refusal as a tool error carrying its code and trace id', async () => {
    const { client, seen } = await recordingClient(await t.operatorToken('analyst-1'));
    const r = (await client.callTool({
      name: 'check_shipping_status',
      arguments: { orderId: 'ORD-4F8K2P1Z' },
    })) as CallToolResult;
    expect(calls(seen)[0]?.contentType).toBe('application/json');
    expect(r.isError).toBe(true);
    const error = (r._meta as Record<string, { code: string; traceId: string }>)['warden/error'];
    expect(error?.code).toBe('TOOL_NOT_ALLOWED');
    expect(error?.traceId).toMatch(/\S/);
    const denied = await t.gw.audit.read({ event: 'TOOL_DENIED', agentId: 'analyst-1', limit: 5 });
    expect(denied.some((e) => e.traceId === error?.traceId)).toBe(true);
    await client.close();
  });

  it('aborts a cancelled call upstream, ends its response without an answer, and the session goes on', async () => {
    const { client, seen } = await recordingClient(await t.operatorToken('demo-support'));
    const controller = new AbortController();
    const call = client.callTool(
      { name: 'wait_for_cancel', arguments: { tag: 'direct-cancel' } },
      undefined,
      {
        signal: controller.signal,
      },
    );
    await waitFor(() => up.waiting.includes('direct-cancel'), 5_000);
    controller.abort();
    await expect(call).rejects.toThrow();
    await waitFor(() => up.cancelled.includes('direct-cancel'), 5_000);
    await waitFor(() => calls(seen).length === 1, 5_000);
    const cancelled = calls(seen)[0]!;
    expect(cancelled.contentType).toBe('text/event-stream');
    expect(await cancelled.body).toBe('');
    const next = (await client.callTool({
      name: 'lookup_order',
      arguments: { orderId: 'ORD-4F8K2P1Z' },
    })) as CallToolResult;
    expect(next.isError).toBeFalsy();
    await client.close();
  });

  it('aborts the calls in flight when the agent ends its MCP session', async () => {
    const { client } = await recordingClient(await t.operatorToken('demo-support'));
    const call = client.callTool({ name: 'wait_for_cancel', arguments: { tag: 'direct-close' } });
    call.catch(() => {}); // its answer never comes: the session is gone
    await waitFor(() => up.waiting.includes('direct-close'), 5_000);
    await (client.transport as StreamableHTTPClientTransport).terminateSession();
    await waitFor(() => up.cancelled.includes('direct-close'), 5_000);
    await client.close();
  });
});

describe('what the direct path leaves to the SDK', () => {
  /** An initialized MCP session for raw requests: its id and the headers a client sends. */
  async function rawSession(): Promise<{
    post(body: unknown, headers?: Record<string, string>): Promise<Response>;
  }> {
    const token = await t.operatorToken('demo-support');
    const base = {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
    };
    const init = await fetch(`${t.gw.url}/mcp`, {
      method: 'POST',
      headers: base,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    });
    await init.text();
    const sid = init.headers.get('mcp-session-id')!;
    expect(sid).toMatch(/\S/);
    return {
      post: (body, headers = {}) =>
        fetch(`${t.gw.url}/mcp`, {
          method: 'POST',
          headers: { ...base, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-06-18', ...headers },
          body: JSON.stringify(body),
        }),
    };
  }
  const lookup = (id: number, params: Record<string, unknown> = {}) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'lookup_order', arguments: { orderId: 'ORD-4F8K2P1Z' }, ...params },
  });

  it('refuses what the SDK transport refuses, as it does', async () => {
    const s = await rawSession();
    const ok = await s.post(lookup(1));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('application/json');
    expect(((await ok.json()) as { id: number; result: CallToolResult }).id).toBe(1);

    const notAcceptable = await s.post(lookup(2), { Accept: 'application/json' });
    expect(notAcceptable.status).toBe(406);
    const badVersion = await s.post(lookup(3), { 'MCP-Protocol-Version': '1999-01-01' });
    expect(badVersion.status).toBe(400);
    expect(await badVersion.text()).toMatch(/Unsupported protocol version/);
  });

  it('leaves a malformed call to the SDK, which answers it with a JSON-RPC error', async () => {
    const s = await rawSession();
    const r = await s.post({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 42 } });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const text = await r.text();
    expect(text).toMatch(/"id":4/);
    expect(text).toMatch(/"code":-32603/);
  });

  it('a cancellation whose reason is not a string still aborts the call, and is accepted', async () => {
    const s = await rawSession();
    const call = s.post({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'wait_for_cancel', arguments: { tag: 'raw-cancel' } },
    });
    await waitFor(() => up.waiting.includes('raw-cancel'), 5_000);
    const cancel = await s.post({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 7, reason: { not: 'a string' } },
    });
    expect(cancel.status).toBe(202);
    await waitFor(() => up.cancelled.includes('raw-cancel'), 5_000);
    const answered = await call;
    expect(answered.headers.get('content-type')).toBe('text/event-stream');
    expect(await answered.text()).toBe('');
  });

  it('answers a string id and keeps the arguments exactly as sent', async () => {
    const s = await rawSession();
    const r = await s.post({
      jsonrpc: '2.0',
      id: 'call-a',
      method: 'tools/call',
      params: {
        name: 'lookup_order',
        arguments: JSON.parse('{"orderId":"ORD-4F8K2P1Z","__proto__":{"x":1}}'),
      },
    });
    expect(r.headers.get('content-type')).toBe('application/json');
    const body = (await r.json()) as { id: string; result: CallToolResult };
    expect(body.id).toBe('call-a');
    // The forbidden key is seen although JSON.parse made it an own property the SDK would drop.
    expect(body.result.isError).toBe(true);
    expect(JSON.stringify(body.result._meta)).toMatch(/__proto__/);
  });
});
