/**
 * An upstream MCP server whose tool definitions a test rewrites while the gateway
 * runs: stateful Streamable HTTP (so it can push notifications/tools/list_changed
 * on the gateway's GET stream), on an ephemeral port. Each call answers with the
 * tool's name and arguments.
 */
import { randomUUID } from 'node:crypto';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { serveLoopback } from '../../src/upstream/fixtures/serve.js';

export interface MutableUpstream {
  url: string;
  /** Names of the tools called so far, in order. */
  calls: string[];
  /** Replaces the tool list and notifies every connected client (tools/list_changed). */
  setTools(tools: Tool[]): Promise<void>;
  close(): Promise<void>;
}

/** A tool with an object input schema of string properties. */
export function tool(name: string, description: string, props: Record<string, string> = {}): Tool {
  return {
    name,
    description,
    inputSchema: {
      type: 'object',
      properties: Object.fromEntries(
        Object.entries(props).map(([k, d]) => [k, { type: 'string', description: d }]),
      ),
    },
  };
}

/** Starts the upstream with `initial` tools. */
export async function startMutableUpstream(initial: Tool[]): Promise<MutableUpstream> {
  let tools = initial;
  const calls: string[] = [];
  const sessions = new Map<string, { server: Server; transport: WebStandardStreamableHTTPServerTransport }>();

  const open = async () => {
    const server = new Server(
      { name: 'mutable-upstream', version: '1.0.0' },
      { capabilities: { tools: { listChanged: true } } },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools }));
    server.setRequestHandler(CallToolRequestSchema, (req) => {
      calls.push(req.params.name);
      return {
        content: [{ type: 'text', text: `${req.params.name} ${JSON.stringify(req.params.arguments ?? {})}` }],
      };
    });
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, { server, transport }),
      onsessionclosed: (id) => void sessions.delete(id),
    });
    await server.connect(transport);
    return transport;
  };

  const http = await serveLoopback(async (req) => {
    const id = req.headers.get('mcp-session-id');
    const transport = id ? sessions.get(id)?.transport : await open();
    if (!transport) return new Response('unknown session', { status: 404 });
    return transport.handleRequest(req);
  });

  return {
    url: `http://127.0.0.1:${http.port}/mcp`,
    calls,
    async setTools(next) {
      tools = next;
      await Promise.all([...sessions.values()].map((s) => s.server.sendToolListChanged().catch(() => {})));
    },
    close: () => {
      for (const s of sessions.values()) void s.transport.close().catch(() => {});
      return http.close();
    },
  };
}
