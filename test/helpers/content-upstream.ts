/**
 * An upstream MCP server (Streamable HTTP, stateless, ephemeral port) whose
 * tools answer with whatever the test says: text, structured content, images.
 * For inspection and taint tests: what comes back is the point.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { WardenConfig } from '../../src/config/types.js';
import { serveLoopback } from '../../src/upstream/fixtures/serve.js';

export interface ContentUpstream {
  url: string;
  /** Each call received: tool name and arguments, in order. */
  calls: Array<{ name: string; arguments: Record<string, unknown> }>;
  close(): Promise<void>;
}

export type Responder = (args: Record<string, unknown>) => CallToolResult | Promise<CallToolResult>;

/** A tool taking string arguments. */
export function stringTool(name: string, props: string[] = [], extra: Partial<Tool> = {}): Tool {
  return {
    name,
    description: `Test tool ${name}.`,
    inputSchema: {
      type: 'object',
      properties: Object.fromEntries(props.map((p) => [p, { type: 'string' }])),
    },
    ...extra,
  };
}

/** Starts the upstream; `tools` maps each tool to its definition and how it answers. */
export async function startContentUpstream(
  tools: Record<string, { tool: Tool; respond: Responder }>,
): Promise<ContentUpstream> {
  const calls: ContentUpstream['calls'] = [];
  const http = await serveLoopback(async (req) => {
    const server = new Server(
      { name: 'content-upstream', version: '1.0.0' },
      { capabilities: { tools: {} } },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: Object.values(tools).map((t) => t.tool),
    }));
    server.setRequestHandler(CallToolRequestSchema, (r) => {
      const args = (r.params.arguments ?? {}) as Record<string, unknown>;
      calls.push({ name: r.params.name, arguments: args });
      const entry = tools[r.params.name];
      if (!entry) return { content: [{ type: 'text', text: 'no such tool' }], isError: true };
      return entry.respond(args);
    });
    const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true });
    await server.connect(transport);
    return transport.handleRequest(req);
  });
  return { url: `http://127.0.0.1:${http.port}/mcp`, calls, close: http.close };
}

/** The config entry of an HTTP upstream at `url` (no credentials), as a test gateway adds it. */
export function httpUpstream(
  name: string,
  url: string,
  timeoutMs = 10_000,
): WardenConfig['upstreams'][number] {
  return {
    name,
    transport: 'http',
    url,
    timeoutMs,
    connectTimeoutMs: 5_000,
    credentials: { headers: {} },
  } as WardenConfig['upstreams'][number];
}
