import { createServer, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ListeningServer, listenLoopback } from '../upstream/fixtures/serve.js';
import { type NodeBindings, readBodyText } from './request.js';

/** A server whose handler hands each request's body read (from the Node request) to the test. */
describe('readBodyText from the Node request', () => {
  let server: ListeningServer;
  let port: number;
  const reads: Array<Promise<string>> = [];
  beforeAll(async () => {
    server = await listenLoopback(
      createServer((req: IncomingMessage, res) => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
        const read = readBodyText(new Request('http://x/', { method: 'POST', headers }), 1024, req);
        reads.push(read);
        read.then(
          (text) => res.end(`got ${text.length}`),
          (e: unknown) => res.end(`refused ${(e as { code?: string }).code}`),
        );
      }),
    );
    port = server.port;
  });
  afterAll(() => server.close());

  it('reads a body of declared length', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'x'.repeat(300) });
    expect(await res.text()).toBe('got 300');
  });

  it('settles (refuses) when the client goes away before the declared length arrives', async () => {
    const before = reads.length;
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n${'y'.repeat(100)}`);
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    await expect.poll(() => reads.length).toBe(before + 1);
    // Node reports the cut as an 'error' on the request (ECONNRESET): the read is refused, not left waiting.
    await expect(reads[before]).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});

describe('readBodyText behind @hono/node-server', () => {
  let server: ListeningServer;
  let base: string;
  beforeAll(async () => {
    const app = new Hono<{ Bindings: NodeBindings }>();
    app.post('/read', async (c) => {
      const text = await readBodyText(c.req.raw, 1024, c.env?.incoming);
      // node-server keeps the full web Request it builds under a symbol; none should be built.
      const built = Object.getOwnPropertySymbols(c.req.raw).some(
        (k) => k.description === 'requestCache' && (c.req.raw as unknown as Record<symbol, unknown>)[k],
      );
      return c.json({ length: text.length, built });
    });
    app.post('/read-twice', async (c) => {
      await c.req.raw.text();
      try {
        return c.json({ text: await readBodyText(c.req.raw, 1024, c.env?.incoming) });
      } catch (e) {
        return c.json({ error: (e as Error).name });
      }
    });
    server = await listenLoopback(createServer(getRequestListener(app.fetch)));
    base = server.base;
  });
  afterAll(() => server.close());

  it('reads a declared-length body from the Node request without building the web Request', async () => {
    const res = await fetch(`${base}/read`, { method: 'POST', body: 'z'.repeat(200) });
    expect(await res.json()).toEqual({ length: 200, built: false });
  });

  it('does not read again a body the web Request already read', async () => {
    const res = await fetch(`${base}/read-twice`, { method: 'POST', body: 'z'.repeat(200) });
    expect(await res.json()).toEqual({ error: 'TypeError' });
  });
});
