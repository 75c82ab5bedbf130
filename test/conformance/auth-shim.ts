/**
 * A loopback HTTP forwarder that adds `Authorization: Bearer <token>` to every request:
 * the part an agent's MCP client plays in front of Warden, for the conformance CLI, which
 * cannot send headers of its own.
 *
 * Everything else passes unchanged in both directions — method (POST, GET, DELETE), path,
 * every end-to-end header including Host, Origin, Mcp-Session-Id, Mcp-Protocol-Version,
 * Last-Event-ID and Accept — and bodies are streamed, never buffered (SSE answers to a POST
 * and the long-lived GET stream flow event by event). A client that goes away aborts the
 * forwarded request; an upstream that fails mid-answer cuts the client's answer.
 */
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/** Hop-by-hop headers (RFC 9110 §7.6.1): meaningful per connection, so never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k)) continue;
    out[k] = v;
  }
  return out;
}

export interface AuthShim {
  /** The shim's URL for `path` (default /mcp), e.g. http://127.0.0.1:40001/mcp */
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface AuthShimOptions {
  /** Where to forward: an origin such as http://127.0.0.1:8787 (a path on it is ignored; the request's is kept). */
  target: string;
  /**
   * The bearer token to add. A function is asked once per MCP session: for each request that
   * carries no Mcp-Session-Id the shim knows (an initialize), and the token it gives is reused for
   * every later request of the session the answer opens (an agent session bounds how many MCP
   * sessions it may hold, so a long suite needs several tokens).
   */
  token: string | (() => string | Promise<string>);
  /** Listen port (0 or absent: a free one). */
  port?: number;
  /** Path shown in `url` (default /mcp). */
  path?: string;
  /** Give up on an upstream that sends no response headers within this long (default 60 s). */
  headersTimeoutMs?: number;
}

/** Start the shim on 127.0.0.1; resolves once it listens. */
export async function startAuthShim(opts: AuthShimOptions): Promise<AuthShim> {
  const target = new URL(opts.target);
  if (target.protocol !== 'http:') throw new Error(`auth shim: target must be http://, got ${opts.target}`);
  const tokenOf = typeof opts.token === 'function' ? opts.token : () => opts.token as string;
  /** The token each MCP session was opened with. */
  const sessionTokens = new Map<string, string>();
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const headersTimeout = opts.headersTimeoutMs ?? 60_000;

  const forward = async (req: IncomingMessage, res: ServerResponse) => {
    const sid = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sid) ? sid[0] : sid;
    const token = (sessionId !== undefined ? sessionTokens.get(sessionId) : undefined) ?? (await tokenOf());
    const headers = endToEnd(req.headers);
    headers.authorization = `Bearer ${token}`;
    const up = request({
      agent,
      host: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port || 80,
      method: req.method,
      path: req.url ?? '/',
      headers, // Host included, as the client sent it
      setHost: false,
    });
    let answered = false;
    const headerTimer = setTimeout(() => {
      if (!answered) up.destroy(new Error(`no response headers within ${headersTimeout} ms`));
    }, headersTimeout);
    headerTimer.unref();

    up.on('response', (upRes) => {
      answered = true;
      clearTimeout(headerTimer);
      const opened = upRes.headers['mcp-session-id'];
      if (typeof opened === 'string' && !sessionTokens.has(opened)) sessionTokens.set(opened, token);
      if (req.method === 'DELETE' && sessionId !== undefined && (upRes.statusCode ?? 500) < 300) {
        sessionTokens.delete(sessionId);
      }
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, endToEnd(upRes.headers));
      res.flushHeaders(); // an SSE stream's headers go out before its first event
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
      upRes.on('aborted', () => res.destroy());
    });
    up.on('error', (e) => {
      clearTimeout(headerTimer);
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            jsonrpc: '2.0',
            error: { code: -32000, message: `auth shim: ${e.message}` },
            id: null,
          }),
        );
      } else res.destroy();
    });
    // The client went away (or the answer is complete): an unfinished upstream request is aborted.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.on('aborted', () => up.destroy());
    req.pipe(up);
  };

  const server = createServer((req, res) => {
    forward(req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        const message = `auth shim: no token: ${e instanceof Error ? e.message : String(e)}`;
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
      } else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}${opts.path ?? '/mcp'}`,
    port,
    close() {
      closing ??= new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
        agent.destroy();
      });
      return closing;
    },
  };
}
