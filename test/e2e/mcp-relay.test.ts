/**
 * Issue #10: what an upstream does during a call reaches the right agent and
 * no other — progress, log messages, sampling, elicitation, roots — and a
 * cancelled call is cancelled upstream. Real gateway, real SDK upstream with
 * MCP sessions, real SDK agent clients.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  type CallToolResult,
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpUpstreamConfig, WardenConfig } from '../../src/config/types.js';
import { httpUpstream } from '../helpers/content-upstream.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type RelayUpstream, startRelayUpstream } from '../helpers/relay-upstream.js';
import { until } from '../helpers/wait.js';

const TOOLS = [
  'progress_steps',
  'log_steps',
  'ask_model',
  'ask_user',
  'ask_user_with_progress',
  'list_roots',
  'wait_for_cancel',
];

const waitFor = (f: () => boolean, ms: number) => until(() => (f() ? true : undefined), ms);

let up: RelayUpstream;
let t: TestGateway;

beforeAll(async () => {
  up = await startRelayUpstream();
  t = await startTestGateway(makeTarget('sqlite'), (config: WardenConfig) => {
    // The same server twice: `open` may use every client feature, `closed` none (the default).
    config.upstreams.push(
      {
        ...(httpUpstream('open', up.url) as HttpUpstreamConfig),
        relay: { sampling: true, elicitation: true, roots: true },
      },
      httpUpstream('closed', up.url),
    );
    const demo = config.agents.find((a) => a.id === 'demo-support')!;
    demo.allowedTools.push(...TOOLS.flatMap((n) => [`open__${n}`, `closed__${n}`]));
  });
  await waitFor(() => t.gw.pool.listTools().some((x) => x.name === 'closed__wait_for_cancel'), 10_000);
}, 60_000);

afterAll(async () => {
  await t?.close();
  await up?.close();
});

interface Agent {
  client: Client;
  logs: string[];
  sampled: string[];
}

/** An agent client that declares sampling, elicitation and roots and answers them with its own `name`. */
async function agent(name: string, capabilities = true): Promise<Agent> {
  const token = await t.operatorToken('demo-support');
  const client = new Client(
    { name, version: '1.0.0' },
    capabilities ? { capabilities: { sampling: {}, elicitation: {}, roots: {} } } : {},
  );
  const a: Agent = { client, logs: [], sampled: [] };
  if (capabilities) {
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      const m = req.params.messages[0]?.content as { text?: string };
      a.sampled.push(m.text ?? '');
      return {
        role: 'assistant',
        model: 'test-model',
        content: { type: 'text', text: `${name} answers ${m.text}` },
      };
    });
    client.setRequestHandler(ElicitRequestSchema, async (req, extra) => {
      const token = req.params._meta?.progressToken;
      if (token !== undefined) {
        for (const progress of [1, 2]) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress },
          });
        }
      }
      return { action: 'accept', content: { name } };
    });
    client.setRequestHandler(ListRootsRequestSchema, async () => ({
      roots: [{ uri: `file:///home/${name}` }],
    }));
  }
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    a.logs.push(String(n.params.data));
  });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${t.gw.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    }),
  );
  return a;
}

const textOf = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

describe('relaying an upstream to its agent (issue #10)', () => {
  it('forwards the upstream progress in order, on the shared and on a session-scoped connection', async () => {
    for (const caps of [false, true]) {
      const a = await agent(`progress-${caps}`, caps);
      const seen: Progress[] = [];
      const r = await a.client.callTool({ name: 'open__progress_steps', arguments: {} }, undefined, {
        onprogress: (p) => seen.push(p),
      });
      expect(textOf(r)).toBe('progress done');
      expect(seen.map((p) => p.progress)).toEqual([0, 50, 100]);
      expect(seen.every((p) => p.total === 100)).toBe(true);
      await a.client.close();
    }
  });

  it('relays sampling, elicitation and roots to the calling session only, and audits each', async () => {
    const [alice, bob] = await Promise.all([agent('alice'), agent('bob')]);
    const [ra, rb] = await Promise.all([
      alice.client.callTool({ name: 'open__ask_model', arguments: { prompt: 'from-alice' } }),
      bob.client.callTool({ name: 'open__ask_model', arguments: { prompt: 'from-bob' } }),
    ]);
    expect(textOf(ra)).toBe('model said: alice answers from-alice');
    expect(textOf(rb)).toBe('model said: bob answers from-bob');
    expect(alice.sampled).toEqual(['from-alice']);
    expect(bob.sampled).toEqual(['from-bob']);

    expect(
      textOf(await alice.client.callTool({ name: 'open__ask_user', arguments: { message: 'who?' } })),
    ).toBe('user accept: {"name":"alice"}');
    expect(textOf(await bob.client.callTool({ name: 'open__list_roots', arguments: {} }))).toBe(
      'roots: file:///home/bob',
    );

    const entries = (await t.gw.audit.read({ event: 'UPSTREAM_REQUEST', limit: 100 })).filter(
      (e) => (e.data as { upstream?: string }).upstream === 'open',
    );
    const methods = entries.map((e) => (e.data as { method: string }).method).sort();
    expect(methods).toEqual([
      'elicitation/create',
      'roots/list',
      'sampling/createMessage',
      'sampling/createMessage',
    ]);
    expect(entries.every((e) => e.result === 'success' && e.actorType === 'SYSTEM')).toBe(true);
    const elicited = entries.find((e) => (e.data as { method: string }).method === 'elicitation/create')!;
    expect(elicited.data).toMatchObject({ answer: { action: 'accept' } });
    const sampled = entries.find((e) => (e.data as { method: string }).method === 'sampling/createMessage')!;
    expect(sampled.data).toMatchObject({ answer: { model: 'test-model' } });
    // Filed under the trace of the tool call it happened during.
    const [call] = (await t.gw.audit.read({ traceId: sampled.traceId })).filter(
      (e) => e.event === 'TOOL_CALL',
    );
    expect(call?.toolName).toBe('open__ask_model');
    // Never the content: the user's answer and the prompts stay out of the log.
    expect(JSON.stringify(entries)).not.toMatch(/alice|bob|from-/);
    await Promise.all([alice.client.close(), bob.client.close()]);
  });

  it("passes the agent's progress on a relayed request back to the upstream", async () => {
    const a = await agent('grace');
    const r = await a.client.callTool({ name: 'open__ask_user_with_progress', arguments: {} });
    expect(textOf(r)).toBe('user accept; progress seen: 1,2');
    await a.client.close();
  });

  it('refuses sampling, elicitation and roots from an upstream the operator did not allow, and audits it', async () => {
    const a = await agent('carol');
    const r = (await a.client.callTool({
      name: 'closed__ask_model',
      arguments: { prompt: 'leak' },
    })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/sampling failed/);
    expect(a.sampled).toEqual([]);
    for (const name of ['closed__ask_user', 'closed__list_roots']) {
      const x = (await a.client.callTool({ name, arguments: { message: 'm' } })) as CallToolResult;
      expect(x.isError).toBe(true);
    }
    const denied = (await t.gw.audit.read({ event: 'UPSTREAM_REQUEST', limit: 100 })).filter(
      (e) => (e.data as { upstream?: string }).upstream === 'closed',
    );
    expect(denied.map((e) => (e.data as { method: string }).method).sort()).toEqual([
      'elicitation/create',
      'roots/list',
      'sampling/createMessage',
    ]);
    expect(denied.every((e) => e.result === 'denied' && e.decision?.code === 'RELAY_DENIED')).toBe(true);
    await a.client.close();
  });

  it('forwards log messages to the calling session only, filtered by its logging level', async () => {
    const [dave, erin] = await Promise.all([agent('dave'), agent('erin')]);
    await dave.client.setLoggingLevel('info');
    await dave.client.callTool({ name: 'open__log_steps', arguments: { tag: 'dave' } });
    await waitFor(() => dave.logs.length >= 2, 5_000);
    expect(dave.logs).toEqual(['dave:info', 'dave:error']);
    expect(erin.logs).toEqual([]);
    await Promise.all([dave.client.close(), erin.client.close()]);
  });

  it('cancels the upstream call when the agent cancels, on both kinds of connection', async () => {
    for (const caps of [false, true]) {
      const a = await agent(`cancel-${caps}`, caps);
      const controller = new AbortController();
      const call = a.client.callTool(
        { name: 'open__wait_for_cancel', arguments: { tag: `tag-${caps}` } },
        undefined,
        {
          signal: controller.signal,
        },
      );
      await new Promise((r) => setTimeout(r, 200));
      controller.abort();
      await expect(call).rejects.toThrow();
      await waitFor(() => up.cancelled.includes(`tag-${caps}`), 5_000);
      await a.client.close();
    }
  });

  it('opens a session-scoped upstream session on first use, reuses it, and ends it with the agent session', async () => {
    const before = up.sessions();
    const a = await agent('frank');
    await a.client.callTool({ name: 'open__progress_steps', arguments: {} });
    expect(up.sessions()).toBe(before + 1); // its own upstream session, opened on first use
    await a.client.callTool({ name: 'open__progress_steps', arguments: {} });
    expect(up.sessions()).toBe(before + 1); // and reused
    const open = up.open();
    await (a.client.transport as StreamableHTTPClientTransport).terminateSession(); // the agent ends its MCP session
    await waitFor(() => up.open() === open - 1, 5_000);
    await a.client.close();
  });
});

describe('MCP sessions per agent session', () => {
  it('closes the least recently used idle MCP session to make room for a new one', async () => {
    const token = await t.operatorToken('demo-support');
    const clients: Client[] = [];
    for (let i = 0; i < 9; i++) {
      const c = new Client({ name: `s${i}`, version: '1.0.0' });
      await c.connect(
        new StreamableHTTPClientTransport(new URL(`${t.gw.url}/mcp`), {
          requestInit: { headers: { Authorization: `Bearer ${token}` } },
        }),
      );
      clients.push(c);
    }
    // The ninth opened (the limit is 8); the first, least recently used, was closed for it.
    await expect(clients[0]!.listTools()).rejects.toThrow(/404|Unknown or expired MCP session/);
    expect((await clients[8]!.listTools()).tools.length).toBeGreaterThan(0);
    expect((await clients[1]!.listTools()).tools.length).toBeGreaterThan(0);
    await Promise.all(clients.map((c) => c.close()));
  });
});

describe('MCP sessions per agent session, opened at once', () => {
  it('holds the limit when two opens race while an evicted session is still closing', async () => {
    const token = await t.operatorToken('demo-support');
    const connect = async (i: number) => {
      const c = new Client({ name: `r${i}`, version: '1.0.0' }, { capabilities: { sampling: {} } });
      c.setRequestHandler(CreateMessageRequestSchema, async () => ({
        role: 'assistant',
        model: 'test',
        content: { type: 'text', text: 'ok' },
      }));
      await c.connect(
        new StreamableHTTPClientTransport(new URL(`${t.gw.url}/mcp`), {
          requestInit: { headers: { Authorization: `Bearer ${token}` } },
        }),
      );
      return c;
    };
    const clients: Client[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await connect(i);
      // Its own upstream session: closing this MCP session now waits on the upstream (I/O).
      await c.callTool({ name: 'open__progress_steps', arguments: {} });
      clients.push(c);
    }
    // Two more at once: each must make room, and neither may count the other's room as its own.
    clients.push(...(await Promise.all([connect(8), connect(9)])));
    const alive = await Promise.all(
      clients.map((c) =>
        c.listTools().then(
          () => true,
          () => false,
        ),
      ),
    );
    expect(alive.filter(Boolean).length).toBeLessThanOrEqual(8);
    expect(alive[8] && alive[9]).toBe(true);
    await Promise.all(clients.map((c) => c.close()));
  });
});

describe('DNS-rebinding protection', () => {
  it('refuses a foreign Host or Origin on /mcp and /v1 before authentication, with a clean error', async () => {
    const { request } = await import('node:http');
    const send = (path: string, headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const u = new URL(path, t.gw.url);
        const req = request(
          {
            host: u.hostname,
            port: u.port,
            path: u.pathname,
            method: 'POST',
            headers: { 'content-type': 'application/json', ...headers },
          },
          (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
    for (const path of ['/mcp', '/v1/tool-calls']) {
      const host = await send(path, { host: 'evil.example.com' });
      expect(host.status, path).toBe(403);
      expect(JSON.parse(host.body).error).toMatchObject({
        code: 'ORIGIN_NOT_ALLOWED',
        traceId: expect.any(String),
      });
      const origin = await send(path, { origin: 'http://evil.example.com' });
      expect(origin.status, path).toBe(403);
      // A loopback Host passes the guard (and then fails on what it lacks: a token, a body).
      expect((await send(path, { host: `localhost:${new URL(t.gw.url).port}` })).status, path).not.toBe(403);
    }
  });
});

describe('protocol versions', () => {
  it('serves a 2025-06-18 client and a 2025-11-25 client alike', async () => {
    const token = await t.operatorToken('demo-support');
    for (const version of ['2025-06-18', '2025-11-25']) {
      const post = (body: object, session?: string) =>
        fetch(`${t.gw.url}/mcp`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            ...(session ? { 'mcp-session-id': session, 'mcp-protocol-version': version } : {}),
          },
          body: JSON.stringify(body),
        });
      const json = async (r: Response) => {
        const text = await r.text();
        const data = text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '{}');
        return JSON.parse(data) as { result?: Record<string, unknown> };
      };
      const init = await post({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: version,
          capabilities: {},
          clientInfo: { name: `v${version}`, version: '1' },
        },
      });
      expect(init.status).toBe(200);
      const session = init.headers.get('mcp-session-id')!;
      expect((await json(init)).result?.['protocolVersion']).toBe(version);
      expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, session)).status).toBe(202);
      const call = await json(
        await post(
          {
            jsonrpc: '2.0',
            id: 2,
            method: 'tools/call',
            params: { name: 'open__progress_steps', arguments: {} },
          },
          session,
        ),
      );
      expect(call.result?.['content']).toEqual([{ type: 'text', text: 'progress done' }]);
    }
  });
});
