/**
 * The support desk over stateless Streamable HTTP at /mcp (tests, benchmarks,
 * and a remote-upstream demo). Run directly: `tsx examples/support-desk/http.ts`
 * with PORT, HOST and SUPPORT_DESK_BEARER in the environment.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { Hono } from 'hono';
import { SupportDesk } from './desk.js';
import { createSupportDeskServer, safeEqual } from './server.js';

export interface SupportDeskHttpOptions {
  /** 0 picks a free port. */
  port: number;
  host: string;
  /** When set, requests without `Authorization: Bearer <it>` (or a token it accepts) get 401. */
  requiredBearer?: string | ((token: string) => boolean);
  /** Answer with plain JSON instead of an SSE stream (the SDK's default is SSE). */
  jsonResponse?: boolean;
}

export interface SupportDeskHttp {
  /** The MCP endpoint, e.g. http://127.0.0.1:41234/mcp. */
  url: string;
  /** The desk's state, shared by every request (tests inspect it). */
  desk: SupportDesk;
  close(): Promise<void>;
}

/** Starts the support desk on stateless Streamable HTTP; resolves once it listens. */
export async function startSupportDeskHttp(options: SupportDeskHttpOptions): Promise<SupportDeskHttp> {
  const desk = new SupportDesk();
  const app = new Hono();

  app.use('/mcp', async (c, next) => {
    if (options.requiredBearer === undefined) return next();
    const header = c.req.header('authorization') ?? '';
    const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    const required = options.requiredBearer;
    const ok = typeof required === 'function' ? required(token) : safeEqual(token, required);
    if (!ok) {
      return c.json({ error: 'unauthorized' }, 401, { 'WWW-Authenticate': 'Bearer realm="support-desk"' });
    }
    return next();
  });

  // Stateless mode: the SDK's transport cannot be reused across requests, so each
  // request gets its own transport and server; the desk (the state) is shared.
  app.all('/mcp', async (c) => {
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: options.jsonResponse ?? false,
    });
    const server = createSupportDeskServer({ desk });
    await server.connect(transport);
    return transport.handleRequest(c.req.raw);
  });

  const { server, port } = await new Promise<{ server: Server; port: number }>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: options.port, hostname: options.host }, (info: AddressInfo) =>
      resolve({ server: s as Server, port: info.port }),
    );
    s.once('error', reject);
  });

  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/mcp`,
    desk,
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive sockets of clients would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bearer = process.env['SUPPORT_DESK_BEARER'];
  const started = await startSupportDeskHttp({
    port: Number(process.env['PORT'] ?? 8788),
    host: process.env['HOST'] ?? '127.0.0.1',
    ...(bearer ? { requiredBearer: bearer } : {}),
  });
  process.stderr.write(`support-desk: listening on ${started.url}\n`);
}
