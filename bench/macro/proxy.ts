/**
 * Configuration B: a bare pass-through MCP proxy on the same SDK, with no
 * checks at all — the floor for any gateway built on this stack. One shared
 * upstream client; the face is the SDK's Streamable HTTP server transport.
 *   --mode stateless  a server and transport per request (the SDK's stateless pattern; the default)
 *   --mode stateful   one server and transport per MCP session (Warden's architecture)
 * Run: `npx tsx bench/macro/proxy.ts --upstream http://127.0.0.1:PORT/mcp --port 0`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  isInitializeRequest,
  ListToolsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { perRequestSignals } from '../../src/upstream/request-signals.js';
import { announce, arg } from './payload.js';

const upstreamUrl = arg('--upstream');
if (!upstreamUrl) throw new Error('--upstream URL is required');
const mode = arg('--mode', 'stateless');

const upstream = new Client({ name: 'bench-proxy', version: '1.0.0' }, { capabilities: {} });
// The same per-request abort signals as Warden's pool (src/upstream/request-signals.ts): without
// them, abort listeners pile up on the transport's signal and the floor sinks as the run goes on.
await upstream.connect(
  new StreamableHTTPClientTransport(new URL(upstreamUrl), { fetch: perRequestSignals(fetch) }),
);

function build(): Server {
  const server = new Server({ name: 'bench-proxy', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, (req) => upstream.listTools(req.params));
  server.setRequestHandler(CallToolRequestSchema, (req, extra) =>
    upstream.request({ method: 'tools/call', params: req.params }, CallToolResultSchema, {
      signal: extra.signal,
    }),
  );
  return server;
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const sessions = new Map<string, StreamableHTTPServerTransport>();

const http = createServer(async (req, res) => {
  try {
    if (mode === 'stateless') {
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      const server = build();
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, await body(req));
      return;
    }
    const sid = req.headers['mcp-session-id'];
    const existing = typeof sid === 'string' ? sessions.get(sid) : undefined;
    if (existing) {
      await existing.handleRequest(req, res, req.method === 'POST' ? await body(req) : undefined);
      return;
    }
    const parsed = req.method === 'POST' ? await body(req) : undefined;
    if (!isInitializeRequest(parsed)) {
      res.writeHead(404).end();
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
    });
    await build().connect(transport);
    await transport.handleRequest(req, res, parsed);
  } catch {
    if (!res.headersSent) res.writeHead(500).end();
  }
});
http.keepAliveTimeout = 60_000;
http.listen(Number(arg('--port', '0')), '127.0.0.1', () => announce((http.address() as AddressInfo).port));
