/**
 * A stateful Streamable-HTTP upstream (one SDK server per MCP session) whose
 * tools use what MCP lets a server do during a call: report progress, log,
 * ask the client's model (sampling), ask its user (elicitation), list its
 * roots, and notice cancellation. For the relay tests of issue #10.
 */
import { randomUUID } from 'node:crypto';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ListRootsResultSchema,
  ListToolsRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { serveLoopback } from '../../src/upstream/fixtures/serve.js';

export interface RelayUpstream {
  url: string;
  /** Upstream MCP sessions opened so far. */
  sessions(): number;
  /** Upstream MCP sessions open now. */
  open(): number;
  /** Calls that saw their cancellation (notifications/cancelled), by the `tag` argument. */
  cancelled: string[];
  /** Calls of wait_for_cancel that have started, by the `tag` argument. */
  waiting: string[];
  close(): Promise<void>;
}

const tool = (name: string, props: string[] = []): Tool => ({
  name,
  description: `Relay test tool ${name}.`,
  inputSchema: {
    type: 'object',
    properties: Object.fromEntries(props.map((p) => [p, { type: 'string' }])),
  },
});

const TOOLS: Tool[] = [
  tool('progress_steps'),
  tool('log_steps', ['tag']),
  tool('ask_model', ['prompt']),
  tool('ask_user', ['message']),
  tool('ask_user_with_progress'),
  tool('list_roots'),
  tool('wait_for_cancel', ['tag']),
];

const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startRelayUpstream(): Promise<RelayUpstream> {
  const transports = new Map<string, WebStandardStreamableHTTPServerTransport>();
  const cancelled: string[] = [];
  const waiting: string[] = [];
  let opened = 0;

  const newSession = async () => {
    const server = new Server(
      { name: 'relay-upstream', version: '1.0.0' },
      { capabilities: { tools: {}, logging: {} } },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
    server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
      const args = (req.params.arguments ?? {}) as Record<string, string>;
      const token = req.params._meta?.progressToken;
      switch (req.params.name) {
        case 'progress_steps': {
          for (const progress of [0, 50, 100]) {
            if (token !== undefined) {
              await extra.sendNotification({
                method: 'notifications/progress',
                params: { progressToken: token, progress, total: 100 },
              });
            }
            await sleep(20);
          }
          return text('progress done');
        }
        case 'log_steps': {
          for (const level of ['debug', 'info', 'error'] as const) {
            await extra.sendNotification({
              method: 'notifications/message',
              params: { level, logger: 'relay', data: `${args['tag']}:${level}` },
            });
          }
          await sleep(20);
          return text(`logged ${args['tag']}`);
        }
        case 'ask_model': {
          try {
            const r = await extra.sendRequest(
              {
                method: 'sampling/createMessage',
                params: {
                  messages: [{ role: 'user', content: { type: 'text', text: args['prompt'] ?? '' } }],
                  maxTokens: 50,
                },
              },
              CreateMessageResultSchema,
            );
            const c = r.content as { type: string; text?: string };
            return text(`model said: ${c.text ?? ''}`);
          } catch (e) {
            return {
              isError: true,
              content: [{ type: 'text', text: `sampling failed: ${(e as Error).message}` }],
            };
          }
        }
        case 'ask_user': {
          try {
            const r = await extra.sendRequest(
              {
                method: 'elicitation/create',
                params: {
                  message: args['message'] ?? '',
                  requestedSchema: {
                    type: 'object',
                    properties: { name: { type: 'string' } },
                    required: ['name'],
                  },
                },
              },
              ElicitResultSchema,
            );
            return text(`user ${r.action}: ${JSON.stringify(r.content ?? {})}`);
          } catch (e) {
            return {
              isError: true,
              content: [{ type: 'text', text: `elicitation failed: ${(e as Error).message}` }],
            };
          }
        }
        case 'ask_user_with_progress': {
          // The client reports progress on our request: it must come back through Warden.
          const seen: number[] = [];
          const r = await extra.sendRequest(
            {
              method: 'elicitation/create',
              params: { message: 'slow form', requestedSchema: { type: 'object', properties: {} } },
            },
            ElicitResultSchema,
            { onprogress: (p) => seen.push(p.progress) },
          );
          return text(`user ${r.action}; progress seen: ${seen.join(',')}`);
        }
        case 'list_roots': {
          try {
            const r = await extra.sendRequest({ method: 'roots/list' }, ListRootsResultSchema);
            return text(`roots: ${r.roots.map((x) => x.uri).join(',')}`);
          } catch (e) {
            return {
              isError: true,
              content: [{ type: 'text', text: `roots failed: ${(e as Error).message}` }],
            };
          }
        }
        case 'wait_for_cancel': {
          waiting.push(args['tag'] ?? '');
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 10_000);
            extra.signal.addEventListener('abort', () => {
              clearTimeout(timer);
              cancelled.push(args['tag'] ?? '');
              resolve();
            });
          });
          return text('waited');
        }
        default:
          return { isError: true, content: [{ type: 'text', text: 'no such tool' }] };
      }
    });
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        opened++;
        transports.set(id, transport);
      },
      onsessionclosed: (id) => {
        transports.delete(id);
      },
    });
    await server.connect(transport);
    return transport;
  };

  const http = await serveLoopback(async (req) => {
    const id = req.headers.get('mcp-session-id');
    if (id) {
      const t = transports.get(id);
      if (!t) return new Response('unknown session', { status: 404 });
      return t.handleRequest(req);
    }
    return (await newSession()).handleRequest(req);
  });
  return {
    url: `http://127.0.0.1:${http.port}/mcp`,
    sessions: () => opened,
    open: () => transports.size,
    cancelled,
    waiting,
    async close() {
      for (const t of transports.values()) await t.close().catch(() => {});
      await http.close();
    },
  };
}
