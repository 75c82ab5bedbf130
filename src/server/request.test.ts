import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBodyText } from './request.js';

/** A server whose handler hands each request's body read (from the Node request) to the test. */
describe('readBodyText from the Node request', () => {
  let server: Server;
  let port: number;
  const reads: Array<Promise<string>> = [];
  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const read = readBodyText(new Request('http://x/', { method: 'POST', headers }), 1024, req);
      reads.push(read);
      read.then(
        (text) => res.end(`got ${text.length}`),
        (e: unknown) => res.end(`refused ${(e as { code?: string }).code}`),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

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
