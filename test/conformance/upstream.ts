/**
 * The MCP server the conformance suite (@modelcontextprotocol/conformance) is run against:
 * written from the suite's scenario descriptions, on the official SDK's low-level `Server`
 * and its Streamable HTTP transport (stateful: one server and one transport per session).
 *
 * It implements every server scenario: the test_* tools (text, image, audio, embedded
 * resource, mixed content, logging, progress, error, sampling, elicitation, SEP-1034/1330
 * elicitation schemas, JSON Schema 2020-12, reconnection), the test:// resources and
 * template, subscribe/unsubscribe, the test_* prompts, completion and logging/setLevel,
 * and DNS-rebinding protection (Host and Origin must be localhost, 127.0.0.1 or [::1]).
 *
 *   npx tsx test/conformance/upstream.ts --port N [--host 127.0.0.1]
 *
 * prints `listening http://HOST:N/mcp` once it accepts connections and exits on SIGTERM/SIGINT.
 */
import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { EventStore } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  type GetPromptResult,
  isInitializeRequest,
  type JSONRPCMessage,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  type LoggingLevel,
  McpError,
  ReadResourceRequestSchema,
  type ReadResourceResult,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  type Tool,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

/** A 1×1 red PNG. */
export const RED_PIXEL_PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';

/** A tiny valid WAV: 8 kHz, 8-bit mono, 8 samples of silence. */
function tinyWav(): string {
  const samples = Buffer.alloc(8, 0x80);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + samples.length, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16); // fmt chunk size
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(8000, 24); // sample rate
  h.writeUInt32LE(8000, 28); // byte rate
  h.writeUInt16LE(1, 32); // block align
  h.writeUInt16LE(8, 34); // bits per sample
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(samples.length, 40);
  return Buffer.concat([h, samples]).toString('base64');
}
const WAV = tinyWav();

const LEVELS: LoggingLevel[] = [
  'debug',
  'info',
  'notice',
  'warning',
  'error',
  'critical',
  'alert',
  'emergency',
];

const noArgs = { type: 'object', properties: {} } as const;

const TOOLS: Tool[] = [
  { name: 'test_simple_text', description: 'Returns a simple text response', inputSchema: noArgs },
  { name: 'test_image_content', description: 'Returns a 1x1 PNG image', inputSchema: noArgs },
  { name: 'test_audio_content', description: 'Returns a tiny WAV clip', inputSchema: noArgs },
  { name: 'test_embedded_resource', description: 'Returns an embedded text resource', inputSchema: noArgs },
  {
    name: 'test_multiple_content_types',
    description: 'Returns text, an image and an embedded resource',
    inputSchema: noArgs,
  },
  {
    name: 'test_tool_with_logging',
    description: 'Sends three log messages while it runs',
    inputSchema: noArgs,
  },
  {
    name: 'test_tool_with_progress',
    description: 'Reports progress 0, 50 and 100 of 100',
    inputSchema: noArgs,
  },
  { name: 'test_error_handling', description: 'Always returns a tool error', inputSchema: noArgs },
  {
    name: 'test_sampling',
    description: 'Asks the client for an LLM completion of the prompt',
    inputSchema: {
      type: 'object',
      properties: { prompt: { type: 'string', description: 'The prompt to send to the LLM' } },
      required: ['prompt'],
    },
  },
  {
    name: 'test_elicitation',
    description: 'Asks the user for a username and an email address',
    inputSchema: {
      type: 'object',
      properties: { message: { type: 'string', description: 'The message to show the user' } },
      required: ['message'],
    },
  },
  {
    name: 'test_elicitation_sep1034_defaults',
    description: 'Elicitation whose schema has defaults for every primitive type',
    inputSchema: noArgs,
  },
  {
    name: 'test_elicitation_sep1330_enums',
    description: 'Elicitation whose schema has the five enum variants',
    inputSchema: noArgs,
  },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: {
        address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } },
      },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
      additionalProperties: false,
    },
  },
  {
    name: 'test_reconnection',
    description: 'Closes its SSE stream mid-call, then answers on the resumed stream',
    inputSchema: noArgs,
  },
];

const RESOURCES = [
  {
    uri: 'test://static-text',
    name: 'static-text',
    description: 'A static text resource',
    mimeType: 'text/plain',
  },
  {
    uri: 'test://static-binary',
    name: 'static-binary',
    description: 'A static binary resource (a PNG)',
    mimeType: 'image/png',
  },
  {
    uri: 'test://watched-resource',
    name: 'watched-resource',
    description: 'A resource clients may subscribe to',
    mimeType: 'text/plain',
  },
];

const TEMPLATE = /^test:\/\/template\/([^/]+)\/data$/;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const text = (t: string) => ({ type: 'text' as const, text: t });

/** One MCP server for one session. */
function createSessionServer(): Server {
  const server = new Server(
    { name: 'warden-conformance-upstream', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        completions: {},
        logging: {},
      },
    },
  );
  let logLevel: LoggingLevel = 'info';
  const subscriptions = new Set<string>();

  server.setRequestHandler(SetLevelRequestSchema, async (req) => {
    logLevel = req.params.level;
    return {};
  });

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const args = (req.params.arguments ?? {}) as Record<string, unknown>;
    const log = async (level: LoggingLevel, data: string) => {
      if (LEVELS.indexOf(level) < LEVELS.indexOf(logLevel)) return;
      await extra.sendNotification({
        method: 'notifications/message',
        params: { level, logger: 'conformance', data },
      });
    };
    switch (req.params.name) {
      case 'test_simple_text':
        return { content: [text('This is a simple text response for testing.')] };
      case 'test_image_content':
        return { content: [{ type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' }] };
      case 'test_audio_content':
        return { content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] };
      case 'test_embedded_resource':
        return {
          content: [
            {
              type: 'resource',
              resource: {
                uri: 'test://embedded-resource',
                mimeType: 'text/plain',
                text: 'This is an embedded resource content.',
              },
            },
          ],
        };
      case 'test_multiple_content_types':
        return {
          content: [
            text('Multiple content types test:'),
            { type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' },
            {
              type: 'resource',
              resource: {
                uri: 'test://mixed-content-resource',
                mimeType: 'application/json',
                text: JSON.stringify({ test: 'data', value: 123 }),
              },
            },
          ],
        };
      case 'test_tool_with_logging':
        await log('info', 'Tool execution started');
        await sleep(50);
        await log('info', 'Tool processing data');
        await sleep(50);
        await log('info', 'Tool execution completed');
        return { content: [text('Tool with logging executed successfully')] };
      case 'test_tool_with_progress': {
        const token = req.params._meta?.progressToken;
        for (const progress of [0, 50, 100]) {
          if (token !== undefined) {
            await extra.sendNotification({
              method: 'notifications/progress',
              params: { progressToken: token, progress, total: 100 },
            });
          }
          if (progress < 100) await sleep(50);
        }
        return { content: [text('Tool with progress executed successfully')] };
      }
      case 'test_error_handling':
        return { isError: true, content: [text('This tool intentionally returns an error for testing')] };
      case 'test_sampling': {
        if (typeof args.prompt !== 'string')
          throw new McpError(ErrorCode.InvalidParams, 'prompt: expected a string');
        if (!server.getClientCapabilities()?.sampling) {
          return { isError: true, content: [text('The client does not support sampling')] };
        }
        const res = await extra.sendRequest(
          {
            method: 'sampling/createMessage',
            params: { messages: [{ role: 'user', content: text(args.prompt) }], maxTokens: 100 },
          },
          CreateMessageResultSchema,
        );
        const reply = res.content.type === 'text' ? res.content.text : `[${res.content.type}]`;
        return { content: [text(`LLM response: ${reply}`)] };
      }
      case 'test_elicitation': {
        if (typeof args.message !== 'string')
          throw new McpError(ErrorCode.InvalidParams, 'message: expected a string');
        if (!server.getClientCapabilities()?.elicitation) {
          return { isError: true, content: [text('The client does not support elicitation')] };
        }
        const res = await extra.sendRequest(
          {
            method: 'elicitation/create',
            params: {
              message: args.message,
              requestedSchema: {
                type: 'object',
                properties: {
                  username: { type: 'string', description: "User's response" },
                  email: { type: 'string', description: "User's email address" },
                },
                required: ['username', 'email'],
              },
            },
          },
          ElicitResultSchema,
        );
        return {
          content: [
            text(`User response: action=${res.action}, content=${JSON.stringify(res.content ?? {})}`),
          ],
        };
      }
      case 'test_elicitation_sep1034_defaults': {
        const res = await extra.sendRequest(
          {
            method: 'elicitation/create',
            params: {
              message: 'Please review the defaults',
              requestedSchema: {
                type: 'object',
                properties: {
                  name: { type: 'string', default: 'John Doe' },
                  age: { type: 'integer', default: 30 },
                  score: { type: 'number', default: 95.5 },
                  status: { type: 'string', enum: ['active', 'inactive', 'pending'], default: 'active' },
                  verified: { type: 'boolean', default: true },
                },
              },
            },
          },
          ElicitResultSchema,
        );
        return {
          content: [
            text(`Elicitation completed: action=${res.action}, content=${JSON.stringify(res.content ?? {})}`),
          ],
        };
      }
      case 'test_elicitation_sep1330_enums': {
        const res = await extra.sendRequest(
          {
            method: 'elicitation/create',
            params: {
              message: 'Please choose',
              requestedSchema: {
                type: 'object',
                properties: {
                  untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
                  titledSingle: {
                    type: 'string',
                    oneOf: [
                      { const: 'value1', title: 'First Option' },
                      { const: 'value2', title: 'Second Option' },
                      { const: 'value3', title: 'Third Option' },
                    ],
                  },
                  legacyEnum: {
                    type: 'string',
                    enum: ['opt1', 'opt2', 'opt3'],
                    enumNames: ['Option One', 'Option Two', 'Option Three'],
                  },
                  untitledMulti: {
                    type: 'array',
                    items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
                  },
                  titledMulti: {
                    type: 'array',
                    items: {
                      anyOf: [
                        { const: 'value1', title: 'First Choice' },
                        { const: 'value2', title: 'Second Choice' },
                        { const: 'value3', title: 'Third Choice' },
                      ],
                    },
                  },
                },
              },
            },
          },
          ElicitResultSchema,
        );
        return {
          content: [
            text(`Elicitation completed: action=${res.action}, content=${JSON.stringify(res.content ?? {})}`),
          ],
        };
      }
      case 'json_schema_2020_12_tool':
        return { content: [text(`Received: ${JSON.stringify(args)}`)] };
      case 'test_reconnection':
        // The SDK offers closeSSEStream only with an event store and protocol ≥ 2025-11-25;
        // otherwise the answer simply comes on the POST stream.
        await sleep(50);
        extra.closeSSEStream?.();
        await sleep(150);
        return { content: [text('Reconnection test completed')] };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${req.params.name}`);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: RESOURCES }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [
      {
        uriTemplate: 'test://template/{id}/data',
        name: 'template-data',
        description: 'Data for an id',
        mimeType: 'application/json',
      },
    ],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, async (req): Promise<ReadResourceResult> => {
    const uri = req.params.uri;
    if (uri === 'test://static-text') {
      return {
        contents: [{ uri, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }],
      };
    }
    if (uri === 'test://static-binary')
      return { contents: [{ uri, mimeType: 'image/png', blob: RED_PIXEL_PNG }] };
    if (uri === 'test://watched-resource') {
      return { contents: [{ uri, mimeType: 'text/plain', text: 'Watched resource content.' }] };
    }
    const m = TEMPLATE.exec(uri);
    if (m) {
      const id = decodeURIComponent(m[1] ?? '');
      return {
        contents: [
          {
            uri,
            mimeType: 'application/json',
            text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
          },
        ],
      };
    }
    throw new McpError(-32002, `Resource not found: ${uri}`, { uri });
  });
  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, async () => ({
    prompts: [
      { name: 'test_simple_prompt', description: 'A simple prompt without arguments' },
      {
        name: 'test_prompt_with_arguments',
        description: 'A prompt with two required arguments',
        arguments: [
          { name: 'arg1', description: 'First test argument', required: true },
          { name: 'arg2', description: 'Second test argument', required: true },
        ],
      },
      {
        name: 'test_prompt_with_embedded_resource',
        description: 'A prompt embedding a resource',
        arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
      },
      { name: 'test_prompt_with_image', description: 'A prompt with an image' },
    ],
  }));
  server.setRequestHandler(GetPromptRequestSchema, async (req): Promise<GetPromptResult> => {
    const args = req.params.arguments ?? {};
    const need = (name: string): string => {
      const v = args[name];
      if (typeof v !== 'string')
        throw new McpError(ErrorCode.InvalidParams, `Missing required argument: ${name}`);
      return v;
    };
    switch (req.params.name) {
      case 'test_simple_prompt':
        return { messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }] };
      case 'test_prompt_with_arguments':
        return {
          messages: [
            {
              role: 'user',
              content: text(`Prompt with arguments: arg1='${need('arg1')}', arg2='${need('arg2')}'`),
            },
          ],
        };
      case 'test_prompt_with_embedded_resource':
        return {
          messages: [
            {
              role: 'user',
              content: {
                type: 'resource',
                resource: {
                  uri: need('resourceUri'),
                  mimeType: 'text/plain',
                  text: 'Embedded resource content for testing.',
                },
              },
            },
            { role: 'user', content: text('Please process the embedded resource above.') },
          ],
        };
      case 'test_prompt_with_image':
        return {
          messages: [
            { role: 'user', content: { type: 'image', data: RED_PIXEL_PNG, mimeType: 'image/png' } },
            { role: 'user', content: text('Please analyze the image above.') },
          ],
        };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${req.params.name}`);
    }
  });

  server.setRequestHandler(CompleteRequestSchema, async (req) => {
    const { ref, argument } = req.params;
    let pool: string[] = [];
    if (ref.type === 'ref/prompt' && ref.name === 'test_prompt_with_arguments') {
      pool = argument.name === 'arg1' ? ['paris', 'park', 'party'] : ['hello', 'help', 'world'];
    } else if (
      ref.type === 'ref/resource' &&
      ref.uri === 'test://template/{id}/data' &&
      argument.name === 'id'
    ) {
      pool = ['123', '456', '789'];
    }
    const values = pool.filter((v) => v.startsWith(argument.value));
    return { completion: { values, total: values.length, hasMore: false } };
  });

  return server;
}

/** Resumability for SSE streams (priming events, replay after Last-Event-ID). */
class MemoryEventStore implements EventStore {
  private readonly events = new Map<string, { streamId: string; message: JSONRPCMessage }>();
  private seq = 0;
  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}_${String(++this.seq).padStart(10, '0')}`;
    this.events.set(id, { streamId, message });
    if (this.events.size > 10_000) {
      const first = this.events.keys().next().value;
      if (first !== undefined) this.events.delete(first);
    }
    return id;
  }
  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.events.get(eventId)?.streamId;
  }
  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const last = this.events.get(lastEventId);
    if (!last) return '';
    let after = false;
    for (const [id, e] of this.events) {
      if (id === lastEventId) {
        after = true;
        continue;
      }
      // Priming events are stored as {} and never replayed.
      if (after && e.streamId === last.streamId && Object.keys(e.message).length > 0)
        await send(id, e.message);
    }
    return last.streamId;
  }
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Hostname of a Host header value (`name[:port]`, IPv6 in brackets), lower-cased. */
function hostnameOf(host: string): string | undefined {
  try {
    return new URL(`http://${host}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** DNS-rebinding protection: Host (and Origin, when sent) must name the loopback. */
function rebindingRefusal(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  const name = host === undefined ? undefined : hostnameOf(host);
  if (name === undefined || !LOOPBACK_NAMES.has(name)) return `Invalid Host header: ${host ?? '(none)'}`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let oname: string | undefined;
    try {
      oname = new URL(origin).hostname.toLowerCase();
    } catch {
      oname = undefined;
    }
    if (oname === undefined || !LOOPBACK_NAMES.has(oname)) return `Invalid Origin header: ${origin}`;
  } else if (origin === 'null') {
    return 'Invalid Origin header: null';
  }
  return undefined;
}

function jsonError(res: ServerResponse, status: number, code: number, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

const MAX_BODY = 4 * 1024 * 1024;

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new Error('Parse error: body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

export interface ConformanceUpstream {
  /** The MCP endpoint, e.g. http://127.0.0.1:41234/mcp */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Start the server (port 0 or absent: a free one); resolves once it listens. */
export async function startConformanceUpstream(
  opts: { port?: number; host?: string } = {},
): Promise<ConformanceUpstream> {
  const host = opts.host ?? '127.0.0.1';
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; server: Server }>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/mcp') {
      jsonError(res, 404, -32000, 'Not found: the MCP endpoint is /mcp');
      return;
    }
    const refusal = rebindingRefusal(req);
    if (refusal) {
      jsonError(res, 403, -32000, `Forbidden: ${refusal}`);
      return;
    }
    const sid = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sid) ? sid[0] : sid;
    if (sessionId !== undefined) {
      const s = sessions.get(sessionId);
      if (!s) {
        jsonError(res, 404, -32001, 'Session not found');
        return;
      }
      await s.transport.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') {
      jsonError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      return;
    }
    let body: unknown;
    try {
      body = await readJson(req);
    } catch (e) {
      jsonError(res, 400, -32700, (e as Error).message);
      return;
    }
    const isInit = Array.isArray(body) ? body.some((m) => isInitializeRequest(m)) : isInitializeRequest(body);
    if (!isInit) {
      jsonError(res, 400, -32000, 'Bad Request: no valid session ID provided');
      return;
    }
    const server = createSessionServer();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new MemoryEventStore(),
      retryInterval: 500,
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      jsonError(res, 500, -32603, `Internal error: ${e instanceof Error ? e.message : String(e)}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? 0, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${port}/mcp`,
    port,
    close() {
      closing ??= (async () => {
        const all = [...sessions.values()];
        sessions.clear();
        await Promise.allSettled(all.map((s) => s.server.close()));
        await new Promise<void>((r) => {
          http.close(() => r());
          http.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}

function parseCli(argv: string[]): { port: number; host: string } {
  let port: number | undefined;
  let host = '127.0.0.1';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--port') {
      const v = value();
      port = Number(v);
      if (!/^\d+$/.test(v) || port > 65535)
        throw new Error(`--port: expected 0-65535, got ${JSON.stringify(v)}`);
    } else if (a === '--host') host = value();
    else if (a === '--help' || a === '-h') {
      console.log('usage: tsx test/conformance/upstream.ts --port N [--host 127.0.0.1]');
      process.exit(0);
    } else throw new Error(`unknown argument ${JSON.stringify(a)} (usage: --port N [--host H])`);
  }
  if (port === undefined) throw new Error('--port N is required (0 picks a free port)');
  return { port, host };
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  let opts: { port: number; host: string };
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (e) {
    console.error(`upstream: ${(e as Error).message}`);
    process.exit(2);
  }
  startConformanceUpstream(opts).then(
    (up) => {
      console.log(`listening ${up.url}`);
      const stop = () => {
        up.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
        setTimeout(() => process.exit(1), 5000).unref();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (e: unknown) => {
      console.error(`upstream: cannot listen: ${(e as Error).message}`);
      process.exit(1);
    },
  );
}
