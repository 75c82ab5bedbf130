/**
 * The benchmark's upstream: a Streamable-HTTP MCP server on the official SDK,
 * stateless (a server and transport per request, the SDK's documented pattern
 * for stateless servers) with one `echo` tool returning `size` bytes.
 * Run: `npx tsx bench/macro/echo-upstream.ts --port 0`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { announce, arg, ECHO_TOOL, payload } from './payload.js';

function build(): Server {
  const server = new Server({ name: 'bench-echo', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [ECHO_TOOL] }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => {
    const size = Number((req.params.arguments as { size?: unknown } | undefined)?.size ?? 1024);
    return { content: [{ type: 'text', text: payload(size) }] };
  });
  return server;
}

const http = createServer(async (req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const server = build();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  res.on('close', () => {
    void transport.close();
    void server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res);
  } catch {
    if (!res.headersSent) res.writeHead(500).end();
  }
});
http.keepAliveTimeout = 60_000;
http.listen(Number(arg('--port', '0')), '127.0.0.1', () => announce((http.address() as AddressInfo).port));
