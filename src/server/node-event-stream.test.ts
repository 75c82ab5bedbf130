import { createServer, type IncomingMessage, request } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import {
  LATEST_PROTOCOL_VERSION,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { listenLoopback } from '../upstream/fixtures/serve.js';
import { serveEventStream } from './node-event-stream.js';
import type { NodeBindings } from './request.js';
import { SECURITY_HEADERS, securityHeaders } from './security-headers.js';

interface Fixture {
  base: string;
  /** What the route returned for each GET: the web response, or Node's response was written directly. */
  served: Array<'node' | 'web'>;
  server: Server;
  transport: WebStandardStreamableHTTPServerTransport;
  close(): Promise<void>;
}

/** One MCP session behind Hono on a real Node server, its GET served as the MCP face serves it. */
async function fixture(
  keepAliveMs?: number,
  beforeServe?: (server: Server) => Promise<void>,
): Promise<Fixture> {
  const server = new Server(
    { name: 't', version: '1' },
    { capabilities: { tools: { listChanged: true }, logging: {} } },
  );
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: () => 'mcp_test',
    ...(keepAliveMs === undefined ? {} : { keepAliveMs }),
  });
  await server.connect(transport);
  const served: Fixture['served'] = [];
  const app = new Hono<{ Bindings: NodeBindings }>();
  app.use('*', securityHeaders());
  app.on(['GET', 'POST', 'DELETE'], '/mcp', async (c) => {
    const response = await transport.handleRequest(c.req.raw);
    const outgoing = c.env?.outgoing;
    if (c.req.method !== 'GET' || !outgoing) return response;
    await beforeServe?.(server);
    const answer = await serveEventStream(transport, response, outgoing);
    served.push(answer === RESPONSE_ALREADY_SENT ? 'node' : 'web');
    return answer;
  });
  const http = await listenLoopback(createServer(getRequestListener(app.fetch)));
  return {
    base: http.base,
    served,
    server,
    transport,
    close: async () => {
      await server.close();
      await http.close();
    },
  };
}

async function initialize(base: string): Promise<void> {
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'c', version: '1' },
      },
    }),
  });
  expect(res.status).toBe(200);
  await res.text();
}

/** A raw GET of the event stream: its response, and everything read from it so far. */
function openStream(
  base: string,
  headers: Record<string, string> = { accept: 'text/event-stream' },
): Promise<{ res: IncomingMessage; text: () => string; ended: Promise<void>; abort: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/mcp`,
      {
        method: 'GET',
        headers: {
          'mcp-session-id': 'mcp_test',
          'mcp-protocol-version': LATEST_PROTOCOL_VERSION,
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        const ended = new Promise<void>((r) => {
          res.on('end', r);
          res.on('close', r);
        });
        resolve({ res, text: () => text, ended, abort: () => req.destroy() });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('serveEventStream', () => {
  let f: Fixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('delivers server notifications to a real SDK client over the Node response', async () => {
    f = await fixture();
    const client = new Client({ name: 'c', version: '1' });
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${f.base}/mcp`)));
    // The client opens its GET stream after initialize; a notification sent before it is open is dropped.
    const mapping = (f.transport as unknown as { _streamMapping: Map<string, unknown> })._streamMapping;
    await until(() => mapping.has('_GET_stream'));
    await f.server.sendToolListChanged();
    await f.server.sendToolListChanged();
    await until(() => changed === 2);
    await client.close();
  });

  it('answers with the stream headers and writes events as the SDK does', async () => {
    f = await fixture();
    await initialize(f.base);
    const s = await openStream(f.base);
    expect(s.res.statusCode).toBe(200);
    expect(f.served).toEqual(['node']);
    expect(s.res.headers['content-type']).toBe('text/event-stream');
    expect(s.res.headers['cache-control']).toBe('no-cache, no-transform');
    expect(s.res.headers['mcp-session-id']).toBe('mcp_test');
    // The security headers set before the route stay on the response written by hand.
    for (const [name, value] of SECURITY_HEADERS) expect(s.res.headers[name], name).toBe(value);
    await f.server.sendToolListChanged();
    await until(() => s.text().includes('\n\n'));
    expect(s.text()).toBe(
      `event: message\ndata: ${JSON.stringify({ method: 'notifications/tools/list_changed', jsonrpc: '2.0' })}\n\n`,
    );
    s.abort();
  });

  it('delivers, in order, what the transport sent on the stream before it was moved to Node', async () => {
    // Sent after the transport opened the stream and before serveEventStream ran (the await between them).
    f = await fixture(undefined, async (server) => {
      await server.sendLoggingMessage({ level: 'info', data: 'early-1' });
      await server.sendLoggingMessage({ level: 'info', data: 'early-2' });
    });
    await initialize(f.base);
    const s = await openStream(f.base);
    expect(s.res.statusCode).toBe(200);
    await f.server.sendLoggingMessage({ level: 'info', data: 'late' });
    await until(() => s.text().includes('late'));
    const data = s
      .text()
      .split('\n\n')
      .filter(Boolean)
      .map((event) => JSON.parse(event.slice(event.indexOf('data: ') + 6)).params.data);
    expect(data).toEqual(['early-1', 'early-2', 'late']);
    s.abort();
  });

  it('refuses a second stream while one is open, and takes a new one after the client hangs up', async () => {
    f = await fixture();
    await initialize(f.base);
    const first = await openStream(f.base);
    expect(first.res.statusCode).toBe(200);
    const second = await openStream(f.base);
    expect(second.res.statusCode).toBe(409);
    await second.ended;
    expect(JSON.parse(second.text()).error.message).toMatch(/Only one SSE stream/);

    first.abort();
    const mapping = (f.transport as unknown as { _streamMapping: Map<string, unknown> })._streamMapping;
    await until(() => !mapping.has('_GET_stream'));
    // Sending with no stream open drops the notification without an error.
    await f.server.sendToolListChanged();
    const third = await openStream(f.base);
    expect(third.res.statusCode).toBe(200);
    expect(f.served).toEqual(['node', 'web', 'node']);
    third.abort();
  });

  it('passes the transport’s refusals through unchanged', async () => {
    f = await fixture();
    await initialize(f.base);
    const wrongAccept = await openStream(f.base, { accept: 'application/json' });
    expect(wrongAccept.res.statusCode).toBe(406);
    await wrongAccept.ended;
    expect(JSON.parse(wrongAccept.text()).error.message).toMatch(/Not Acceptable/);
  });

  it('ends the stream when the session closes', async () => {
    f = await fixture();
    await initialize(f.base);
    const s = await openStream(f.base);
    expect(s.res.statusCode).toBe(200);
    await f.transport.close();
    await s.ended;
    expect(s.res.complete).toBe(true);
  });

  it('keeps an idle stream alive with comment frames at the transport’s interval, and stops on hang-up', async () => {
    f = await fixture(40);
    await initialize(f.base);
    const s = await openStream(f.base);
    await until(() => s.text().split(': keepalive\n\n').length >= 3);
    expect(s.text().replaceAll(': keepalive\n\n', '')).toBe('');
    s.abort();
    const mapping = (f.transport as unknown as { _streamMapping: Map<string, unknown> })._streamMapping;
    await until(() => !mapping.has('_GET_stream'));
  });

  it('returns the web response untouched when the transport is not the shape it knows', async () => {
    const response = new Response('x', { status: 200, headers: { 'content-type': 'text/event-stream' } });
    const stranger = {} as WebStandardStreamableHTTPServerTransport;
    expect(await serveEventStream(stranger, response, {} as never)).toBe(response);
  });
});
