/**
 * An upstream "MCP server" written by hand on node:http, not with the SDK, so
 * that it can misbehave on purpose. It speaks stateless Streamable HTTP
 * properly for initialize, notifications, ping and tools/list (JSON answers, no
 * Mcp-Session-Id), and each tool breaks the protocol in its own way: a body
 * that is not JSON-RPC, an answer for an id nobody asked, a notification flood,
 * no answer at all, a socket dropped mid-call, a result of many megabytes,
 * answers crossed between two concurrent calls.
 *
 * In-process: `startRawUpstream()`. As a child process (to kill it mid-call):
 * `node --import tsx raw-upstream.ts <port>`, which prints one JSON line per
 * event on stdout (`listening`, `call`). Every loop here is bounded in count
 * and time, and it listens on 127.0.0.1 only.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';

type Id = string | number;

interface Message {
  jsonrpc?: unknown;
  id?: Id;
  method?: unknown;
  params?: { name?: unknown; arguments?: Record<string, unknown> } & Record<string, unknown>;
}

/** One tools/call the upstream received, and how its HTTP exchange ended. */
export interface RawCall {
  name: string;
  args: Record<string, unknown>;
  id: Id;
  at: number;
  /** 'server': the upstream finished (or destroyed) it; 'client': the gateway hung up first. */
  endedBy?: 'server' | 'client';
  endedAt?: number;
  /** Notifications written (flood tools). */
  notifications: number;
}

export interface RawUpstream {
  url: string;
  port: number;
  calls: RawCall[];
  /** Requests ids the gateway sent notifications/cancelled for. */
  cancelled: Id[];
  /** The calls of `name` so far. */
  callsOf(name: string): RawCall[];
  close(): Promise<void>;
}

const str = { type: 'string' } as const;
const tool = (name: string, description: string, props: string[] = []) => ({
  name,
  description,
  inputSchema: {
    type: 'object',
    properties: Object.fromEntries(props.map((p) => [p, str])),
  },
});

/** What the upstream publishes. */
export const RAW_TOOLS = [
  tool('raw_echo', 'Answers properly: echo of `text`.', ['text']),
  tool('malformed', 'Answers 200 with a body that is not a JSON-RPC response.', ['kind']),
  tool('wrong_id', 'Answers for an id that was never asked (`mode` never | later).', ['mode']),
  tool('flood', 'Streams `count` notifications (SSE) before its result.', ['count']),
  tool('flood_forever', 'Streams notifications (SSE) and never the result.'),
  tool('hang', 'Never answers.'),
  tool('hang_sse', 'Opens an event stream and never sends anything on it.'),
  tool('die', 'Destroys the socket as soon as the call arrives.'),
  tool('die_midstream', 'Starts an event stream, writes half an event, destroys the socket.'),
  tool('huge', 'A text result of `mb` megabytes, streamed.', ['mb']),
  tool('crossed', 'Holds two calls, then answers each with the id of the other.', ['who']),
  tool('reverse', 'Holds two calls, then answers them properly, the later one first.', ['who']),
  tool('slow', 'Answers properly after `ms` milliseconds (bounded to 10 s).', ['ms', 'text']),
];

/** Hard bounds of the misbehaving loops, whatever a test asks for. */
const MAX_FLOOD = 200_000;
const FLOOD_FOREVER_MS = 6_000;
const MAX_HUGE_MB = 200;
const MAX_BODY = 1024 * 1024;

const text = (t: string) => ({ content: [{ type: 'text', text: t }] });
const result = (id: Id, value: unknown) => JSON.stringify({ jsonrpc: '2.0', id, result: value });

function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function startSse(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
}

const sseEvent = (data: string) => `event: message\ndata: ${data}\n\n`;

/** Writes `chunk`, waiting for drain when the socket buffer is full; false once the response is gone. */
function write(res: ServerResponse, chunk: string): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  if (res.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts the upstream on 127.0.0.1:`port` (0 picks a free one); `onEvent` hears every call (child mode). */
export async function startRawUpstream(
  port = 0,
  onEvent: (event: Record<string, unknown>) => void = () => {},
  /** Published tool names get this prefix (two of these behind one gateway must not collide). */
  prefix = '',
): Promise<RawUpstream> {
  const tools = RAW_TOOLS.map((t) => ({ ...t, name: `${prefix}${t.name}` }));
  const calls: RawCall[] = [];
  const cancelled: Id[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  /** Held calls of `crossed` / `reverse`, answered once two are in. */
  const held: Record<string, Array<{ call: RawCall; res: ServerResponse }>> = { crossed: [], reverse: [] };

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  async function callTool(call: RawCall, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { id, args } = call;
    switch (call.name) {
      case 'raw_echo':
        return sendJson(res, 200, result(id, text(`raw_echo:${String(args.text ?? '')}`)));
      case 'slow': {
        const ms = Math.min(10_000, Math.max(0, Number(args.ms) || 0));
        later(ms, () => sendJson(res, 200, result(id, text(`slow:${String(args.text ?? '')}`))));
        return;
      }
      case 'malformed': {
        const bodies: Record<string, string> = {
          'not-json': 'this is not json {',
          'not-jsonrpc': JSON.stringify({ hello: 'world', id }),
          truncated: `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"content":[{"type":"te`,
          'bad-result': JSON.stringify({ jsonrpc: '2.0', id, result: { content: 'not an array' } }),
          empty: '',
        };
        return sendJson(res, 200, bodies[String(args.kind)] ?? bodies['not-json']!);
      }
      case 'wrong_id': {
        const stray = text('STRAY-RESULT nobody asked for');
        if (args.mode === 'later') {
          startSse(res);
          await write(res, sseEvent(result(`stray-${String(id)}`, stray)));
          await write(res, sseEvent(result(987_654_321, stray)));
          await sleep(50);
          await write(res, sseEvent(result(id, text('wrong_id: the real answer'))));
          res.end();
          return;
        }
        // A JSON answer for an id that was never asked; the real one is never answered.
        return sendJson(res, 200, result(987_654_321, stray));
      }
      case 'flood':
      case 'flood_forever': {
        const forever = call.name === 'flood_forever';
        const count = forever ? MAX_FLOOD : Math.min(MAX_FLOOD, Math.max(0, Number(args.count) || 0));
        const until = Date.now() + FLOOD_FOREVER_MS;
        startSse(res);
        let batch = '';
        for (let i = 0; i < count && Date.now() < until; i++) {
          batch +=
            i % 2 === 0
              ? sseEvent(
                  JSON.stringify({
                    jsonrpc: '2.0',
                    method: 'notifications/message',
                    params: { level: 'info', data: `flood ${i}` },
                  }),
                )
              : sseEvent(
                  JSON.stringify({
                    jsonrpc: '2.0',
                    method: 'notifications/progress',
                    params: { progressToken: `unknown-${i}`, progress: i },
                  }),
                );
          call.notifications++;
          if (i % 200 === 199) {
            if (!(await write(res, batch))) return;
            batch = '';
            // Give the other connections (and the gateway) a turn.
            if (forever) await sleep(1);
          }
        }
        if (!(await write(res, batch))) return;
        if (forever) return void res.end();
        await write(res, sseEvent(result(id, text(`flood done after ${call.notifications}`))));
        res.end();
        return;
      }
      case 'hang':
        return; // never answered: ends when the gateway hangs up or the upstream closes
      case 'hang_sse':
        startSse(res);
        return;
      case 'die':
        call.endedBy = 'server';
        call.endedAt = Date.now();
        req.socket.destroy();
        return;
      case 'die_midstream':
        startSse(res);
        await write(res, `event: message\ndata: {"jsonrpc":"2.0","id":${JSON.stringify(id)},"resu`);
        later(20, () => {
          call.endedBy = 'server';
          call.endedAt = Date.now();
          req.socket.destroy();
        });
        return;
      case 'huge': {
        const mb = Math.min(MAX_HUGE_MB, Math.max(1, Number(args.mb) || 1));
        res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no length announced
        if (
          !(await write(
            res,
            `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"content":[{"type":"text","text":"`,
          ))
        )
          return;
        const chunk = 'huge-data '.repeat(6_554).slice(0, 64 * 1024);
        for (let i = 0; i < mb * 16; i++) if (!(await write(res, chunk))) return;
        await write(res, '"}]}}');
        res.end();
        return;
      }
      case 'crossed':
      case 'reverse': {
        const queue = held[call.name]!;
        queue.push({ call, res });
        if (queue.length < 2) return;
        const [a, b] = queue.splice(0, 2) as [(typeof queue)[0], (typeof queue)[0]];
        const own = (c: RawCall) => text(`${call.name}: private data of ${String(c.args.who)}`);
        if (call.name === 'crossed') {
          // Each POST is answered with the other POST's request id, carrying its own caller's data.
          sendJson(a.res, 200, result(b.call.id, own(a.call)));
          sendJson(b.res, 200, result(a.call.id, own(b.call)));
        } else {
          sendJson(b.res, 200, result(b.call.id, own(b.call)));
          later(50, () => sendJson(a.res, 200, result(a.call.id, own(a.call))));
        }
        return;
      }
      default:
        return sendJson(
          res,
          200,
          JSON.stringify({
            jsonrpc: '2.0',
            id,
            error: { code: -32602, message: `unknown tool ${call.name}` },
          }),
        );
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const body = await readBody(req);
    let msg: Message;
    try {
      msg = JSON.parse(body ?? '') as Message;
    } catch {
      sendJson(
        res,
        400,
        JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse' } }),
      );
      return;
    }
    if (msg.id === undefined) {
      if (msg.method === 'notifications/cancelled') cancelled.push(msg.params?.requestId as Id);
      res.writeHead(202).end();
      return;
    }
    const id = msg.id;
    switch (msg.method) {
      case 'initialize':
        return sendJson(
          res,
          200,
          result(id, {
            protocolVersion:
              typeof msg.params?.protocolVersion === 'string' ? msg.params.protocolVersion : '2025-06-18',
            capabilities: { tools: {} },
            serverInfo: { name: 'raw-upstream', version: '1.0.0' },
          }),
        );
      case 'ping':
        return sendJson(res, 200, result(id, {}));
      case 'tools/list':
        return sendJson(res, 200, result(id, { tools }));
      case 'tools/call': {
        const called = String(msg.params?.name);
        const call: RawCall = {
          name: called.startsWith(prefix) ? called.slice(prefix.length) : called,
          args: msg.params?.arguments ?? {},
          id,
          at: Date.now(),
          notifications: 0,
        };
        calls.push(call);
        res.on('close', () => {
          call.endedBy ??= res.writableFinished ? 'server' : 'client';
          call.endedAt ??= Date.now();
        });
        onEvent({ event: 'call', name: call.name, id });
        return callTool(call, req, res);
      }
      default:
        return sendJson(
          res,
          200,
          JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32601, message: 'method not found' } }),
        );
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  onEvent({ event: 'listening', port: bound });
  return {
    url: `http://127.0.0.1:${bound}/mcp`,
    port: bound,
    calls,
    cancelled,
    callsOf: (name) => calls.filter((c) => c.name === name),
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** How to run this file as its own process: `[command, ...args]` for `spawn`, port appended by the caller. */
export function rawUpstreamCommand(): { command: string; args: string[] } {
  let loader = 'tsx';
  try {
    loader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  } catch {
    // resolved by name from the cwd then
  }
  return { command: process.execPath, args: ['--import', loader, fileURLToPath(import.meta.url)] };
}

// Child mode: `node --import tsx raw-upstream.ts <port> [prefix]`; exits when stdin closes (its parent went away).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.argv[2] ?? 0);
  const print = (e: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(e)}\n`);
  const up = await startRawUpstream(port, print, process.argv[3] ?? '');
  process.stdin.resume();
  process.stdin.on('end', () => void up.close().then(() => process.exit(0)));
  const hardStop = setTimeout(() => process.exit(0), 120_000);
  hardStop.unref();
}
