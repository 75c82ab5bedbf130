/**
 * The load generator: a separate process (forked by bench/run.ts, driven over
 * IPC) that opens N MCP sessions with the official SDK client and calls the
 * echo tool in a closed loop from each, recording every call's latency.
 * Warden sessions get their tokens through Warden's real OAuth endpoint
 * (client_credentials + private_key_jwt); tokens are reused across runs until
 * 10 minutes old.
 */
import { Agent, request } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { requestSessionToken } from '../../src/identity/index.js';
import { perRequestSignals } from '../../src/upstream/request-signals.js';

export interface AuthSpec {
  tokenEndpoint: string;
  agents: Array<{ id: string; privateJwk: Record<string, unknown> }>;
}

export type Command =
  | {
      type: 'run';
      url: string;
      sessions: number;
      warmupMs: number;
      durationMs: number;
      size: number;
      auth?: AuthSpec;
    }
  | {
      type: 'capacity';
      url: string;
      connections: number;
      warmupMs: number;
      durationMs: number;
      size: number;
      auth?: AuthSpec;
    }
  | { type: 'idle'; url: string; sessions: number; concurrency: number; auth?: AuthSpec }
  | { type: 'close-idle' }
  | { type: 'exit' };

export interface RunReply {
  calls: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  /** Each measured call's latency in ms, in completion order. */
  latencies: number[];
}

const TOKEN_REUSE_MS = 10 * 60_000;
const tokens = new Map<string, { token: string; at: number }>();

async function tokenFor(auth: AuthSpec | undefined, slot: number): Promise<string | undefined> {
  if (!auth) return undefined;
  const key = `${auth.tokenEndpoint}#${slot}`;
  const cached = tokens.get(key);
  if (cached && Date.now() - cached.at < TOKEN_REUSE_MS) return cached.token;
  const agent = auth.agents[slot % auth.agents.length]!;
  const r = await requestSessionToken({
    tokenEndpoint: auth.tokenEndpoint,
    agentId: agent.id,
    privateJwk: agent.privateJwk,
  });
  tokens.set(key, { token: r.access_token, at: Date.now() });
  return r.access_token;
}

async function open(url: string, token: string | undefined) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: token ? { headers: { authorization: `Bearer ${token}` } } : {},
    // Without it the client piles an abort listener per call on its transport's signal and slows down.
    fetch: perRequestSignals(fetch),
  });
  const client = new Client({ name: 'bench-loadgen', version: '1.0.0' }, { capabilities: {} });
  await client.connect(transport);
  return { client, transport };
}

async function shut(s: { client: Client; transport: StreamableHTTPClientTransport }): Promise<void> {
  await s.transport.terminateSession().catch(() => {});
  await s.client.close().catch(() => {});
}

/** Run `fn` over 0..n-1 with at most `limit` in flight. */
async function pool<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/**
 * Each worker calls in a closed loop until the window ends; a call that starts after the
 * warm-up and ends inside the window is measured. `call` returns an error text, or nothing.
 */
async function closedLoop<W>(
  workers: W[],
  window: { warmupMs: number; durationMs: number },
  call: (worker: W) => Promise<string | undefined>,
): Promise<RunReply> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now() + window.warmupMs;
  const end = start + window.durationMs;
  await Promise.all(
    workers.map(async (w) => {
      while (performance.now() < end) {
        const t = performance.now();
        let error: string | undefined;
        try {
          error = await call(w);
        } catch (e) {
          error = e instanceof Error ? e.message : String(e);
        }
        const done = performance.now();
        firstError ??= error;
        if (t >= start && done <= end) {
          if (error !== undefined) errors++;
          else latencies.push(done - t);
        }
      }
    }),
  );
  return {
    calls: latencies.length,
    errors,
    ...(firstError ? { firstError } : {}),
    elapsedMs: window.durationMs,
    latencies,
  };
}

async function run(cmd: Extract<Command, { type: 'run' }>): Promise<RunReply> {
  const sessions = await pool(cmd.sessions, 16, async (i) => open(cmd.url, await tokenFor(cmd.auth, i)));
  const reply = await closedLoop(sessions, cmd, async ({ client }) => {
    const r = await client.callTool({ name: 'echo', arguments: { size: cmd.size, tag: 'bench' } });
    return r.isError ? JSON.stringify(r.content).slice(0, 300) : undefined;
  });
  await pool(sessions.length, 16, (i) => shut(sessions[i]!));
  return reply;
}

/**
 * The capacity client: pre-built JSON-RPC bodies over keep-alive HTTP (no SDK,
 * no schema parsing), so that the figure is the server's, not the client's.
 */
async function capacity(cmd: Extract<Command, { type: 'capacity' }>): Promise<RunReply> {
  const agent = new Agent({ keepAlive: true, maxSockets: cmd.connections });
  const target = new URL(cmd.url);
  const post = (body: string, headers: Record<string, string>) =>
    new Promise<{ status: number; headers: Record<string, unknown>; text: string }>((resolve, reject) => {
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'content-length': Buffer.byteLength(body),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString(),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const conns = await pool(cmd.connections, 16, async (i) => {
    const token = await tokenFor(cmd.auth, 2_000_000 + i);
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const init = await post(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'cap', version: '1' },
        },
      }),
      headers,
    );
    if (init.status !== 200) throw new Error(`initialize: HTTP ${init.status} ${init.text.slice(0, 200)}`);
    const sid = init.headers['mcp-session-id'];
    if (typeof sid === 'string') headers['mcp-session-id'] = sid;
    headers['mcp-protocol-version'] = '2025-06-18';
    await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers);
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'echo', arguments: { size: cmd.size, tag: 'bench' } },
    });
    return { headers, body };
  });
  const reply = await closedLoop(conns, cmd, async ({ headers, body }) => {
    const r = await post(body, headers);
    const ok = r.status === 200 && r.text.includes('"result"') && !r.text.includes('"isError":true');
    return ok ? undefined : `HTTP ${r.status} ${r.text.slice(0, 300)}`;
  });
  await pool(conns.length, 16, async (i) => {
    const h = conns[i]!.headers;
    if (!h['mcp-session-id']) return;
    await new Promise<void>((resolve) => {
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'DELETE',
          headers: h,
        },
        (res) => res.resume().on('end', resolve),
      );
      req.on('error', () => resolve());
      req.end();
    });
  });
  agent.destroy();
  return reply;
}

let idle: Array<{ client: Client; transport: StreamableHTTPClientTransport }> = [];

process.on('message', async (cmd: Command) => {
  try {
    if (cmd.type === 'run') process.send!({ ok: true, reply: await run(cmd) });
    else if (cmd.type === 'capacity') process.send!({ ok: true, reply: await capacity(cmd) });
    else if (cmd.type === 'idle') {
      const opened = await pool(cmd.sessions, cmd.concurrency, async (i) =>
        open(cmd.url, await tokenFor(cmd.auth, 1_000_000 + i)),
      );
      idle.push(...opened);
      process.send!({ ok: true, reply: { opened: opened.length } });
    } else if (cmd.type === 'close-idle') {
      await pool(idle.length, 32, (i) => shut(idle[i]!));
      const closed = idle.length;
      idle = [];
      process.send!({ ok: true, reply: { closed } });
    } else process.exit(0);
  } catch (e) {
    process.send!({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
process.send?.({ ready: true });
