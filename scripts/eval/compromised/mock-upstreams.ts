/**
 * InjecAgent's 38 toolkits as MCP servers (official SDK, Streamable HTTP on
 * loopback), one endpoint per toolkit at `/<toolkit>/mcp`, each listing its
 * tools with their real parameter schemas. What a tool answers:
 *
 * - a scripted response, when the evaluation set one for that tool (the user
 *   tool's response for the case being run, a benign sequence's responses);
 * - for reads of private data, the simulated response InjecAgent recorded
 *   for those arguments;
 * - otherwise a plain success.
 *
 * Every call that reaches a tool is recorded: that, not what the gateway
 * says, is the evidence that an attacker's call executed. Cases run one at a
 * time, so what arrives during a case belongs to it.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { serveLoopback } from '../../../src/upstream/fixtures/serve.js';
import { type Corpus, simulatedResponse } from './corpus.js';

export interface ReceivedCall {
  tool: string;
  arguments: Record<string, unknown>;
}

export interface MockUpstreams {
  /** `{ toolkit, url }` per toolkit. */
  endpoints: Array<{ toolkit: string; url: string }>;
  /** Answer calls to `tool` with `text` until {@link unscript}. */
  script(tool: string, text: string): void;
  unscript(tool: string): void;
  /** Start a new recording: the calls received from now on, as they arrive. */
  record(): ReceivedCall[];
  /** Every call received, for totals. */
  readonly total: number;
  close(): Promise<void>;
}

export async function startMockUpstreams(corpus: Corpus): Promise<MockUpstreams> {
  const scripted = new Map<string, string>();
  let recording: ReceivedCall[] = [];
  let total = 0;
  const kits = new Map(corpus.toolkits.map((k) => [k.name, k]));
  const http = await serveLoopback(async (req) => {
    const kitName = new URL(req.url).pathname.split('/')[1] ?? '';
    const kit = kits.get(kitName);
    if (!kit) return new Response('unknown toolkit', { status: 404 });
    const server = new Server(
      { name: `injecagent-${kit.name}`, version: '1.0.0' },
      { capabilities: { tools: {} } },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: kit.tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema })),
    }));
    server.setRequestHandler(CallToolRequestSchema, (r) => {
      const name = r.params.name;
      const args = (r.params.arguments ?? {}) as Record<string, unknown>;
      total++;
      recording.push({ tool: name, arguments: args });
      const text = scripted.get(name);
      if (text !== undefined) return { content: [{ type: 'text', text }] };
      const simulated = simulatedResponse(corpus, name, args);
      if (simulated !== undefined) {
        // The file holds most responses as JSON text already.
        const body = typeof simulated === 'string' ? simulated : JSON.stringify(simulated);
        return { content: [{ type: 'text', text: body }] };
      }
      return { content: [{ type: 'text', text: JSON.stringify({ success: true }) }] };
    });
    const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true });
    await server.connect(transport);
    return transport.handleRequest(req);
  });
  const base = `http://127.0.0.1:${http.port}`;
  return {
    endpoints: corpus.toolkits.map((k) => ({ toolkit: k.name, url: `${base}/${k.name}/mcp` })),
    script: (tool, text) => void scripted.set(tool, text),
    unscript: (tool) => void scripted.delete(tool),
    record() {
      recording = [];
      return recording;
    },
    get total() {
      return total;
    },
    close: http.close,
  };
}
