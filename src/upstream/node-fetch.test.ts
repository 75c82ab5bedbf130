import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ListeningServer, listenLoopback } from './fixtures/serve.js';
import { handledHere, nodeFetch } from './node-fetch.js';

const POST = { method: 'POST', redirect: 'manual' } as const;

describe('nodeFetch', () => {
  let server: ListeningServer;
  let base: string;
  const seen: { url: string; headers: IncomingMessage['headers']; body: string; port: number }[] = [];
  /** For each connection the server saw close, the path of the last request on it. */
  const closed: string[] = [];
  const lastUrl = new WeakMap<Socket, string>();
  beforeAll(async () => {
    const node = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      lastUrl.set(req.socket, req.url ?? '');
      req.on('end', () => {
        seen.push({
          url: req.url ?? '',
          headers: req.headers,
          body,
          port: (req.socket as Socket).remotePort ?? 0,
        });
        switch (req.url) {
          case '/json':
            res.writeHead(200, 'Fine', { 'content-type': 'application/json', 'x-extra': 'yes' }).end(body);
            return;
          case '/sse':
            res.writeHead(200, { 'content-type': 'text/event-stream' });
            res.write('data: first\n\n'); // and then stays open until the client goes
            return;
          case '/cut': // announces more than it sends, then drops the connection
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
            res.write('{"partial":');
            setTimeout(() => res.socket?.destroy(), 20);
            return;
          case '/redirect':
            res.writeHead(307, { location: '/json' }).end();
            return;
          case '/empty':
            res.writeHead(204).end();
            return;
          case '/gzip':
            res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
            res.end(gzipSync('{"zipped":true}'));
            return;
          case '/big': {
            res.writeHead(200, { 'content-type': 'application/octet-stream' });
            const chunk = Buffer.alloc(64 * 1024, 97);
            let sent = 0;
            const more = () => {
              while (sent < 64) {
                sent++;
                if (!res.write(chunk)) return void res.once('drain', more);
              }
              res.end();
            };
            more();
            return;
          }
          default: // '/hang': never answers
        }
      });
    });
    node.on('connection', (socket: Socket) =>
      socket.on('close', () => closed.push(lastUrl.get(socket) ?? '')),
    );
    server = await listenLoopback(node);
    base = server.base;
  });
  afterAll(() => server.close());

  it('posts the body with its headers and returns the answer as a standard Response', async () => {
    const f = nodeFetch();
    const headers = new Headers({ 'content-type': 'application/json', authorization: 'Bearer t0k' });
    const res = await f(`${base}/json`, { ...POST, headers, body: '{"héllo":1}' });
    expect(res).toBeInstanceOf(Response);
    expect(res.status).toBe(200);
    expect(res.statusText).toBe('Fine');
    expect(res.headers.get('x-extra')).toBe('yes');
    expect(await res.json()).toEqual({ héllo: 1 });
    const got = seen.at(-1)!;
    expect(got.headers.authorization).toBe('Bearer t0k');
    expect(got.headers['content-length']).toBe(String(Buffer.byteLength('{"héllo":1}')));
    expect(got.headers['user-agent']).toBe('warden-gateway');
    // No compression asked for: identity is what comes back from a plain server.
    expect(got.headers['accept-encoding']).toBeUndefined();
  });

  it('reuses one keep-alive connection for calls made one after another', async () => {
    const f = nodeFetch();
    const ports = new Set<number>();
    for (let i = 0; i < 5; i++) {
      await (await f(`${base}/json`, { ...POST, body: '{}' })).text();
      ports.add(seen.at(-1)!.port);
    }
    expect(ports.size).toBe(1);
  });

  it('streams an event stream as it arrives, and an abort while reading errors it and ends the exchange', async () => {
    const f = nodeFetch();
    const controller = new AbortController();
    const res = await f(`${base}/sse`, { ...POST, body: '{}', signal: controller.signal });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: first\n\n');
    const next = reader.read();
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await expect(next).rejects.toBe(reason);
    await expect.poll(() => closed.includes('/sse')).toBe(true);
  });

  it('an abort before the answer rejects with the reason and closes the connection', async () => {
    const f = nodeFetch();
    const controller = new AbortController();
    const pending = f(`${base}/hang`, { ...POST, body: '{}', signal: controller.signal });
    await expect.poll(() => seen.some((s) => s.url === '/hang')).toBe(true);
    const reason = new DOMException('the call was cancelled', 'AbortError');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await expect.poll(() => closed.includes('/hang')).toBe(true);
    // An already aborted signal sends nothing.
    const before = seen.length;
    await expect(f(`${base}/json`, { ...POST, body: '{}', signal: controller.signal })).rejects.toBe(reason);
    expect(seen.length).toBe(before);
  });

  it('a refused connection fails as the global fetch does: TypeError with the socket error as cause', async () => {
    // A port nobody listens on any more.
    const probe = await listenLoopback(createServer());
    const port = probe.port;
    await probe.close();
    const err = await nodeFetch()(`http://127.0.0.1:${port}/`, { ...POST, body: '{}' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect(((err as TypeError).cause as { code?: string }).code).toBe('ECONNREFUSED');
  });

  it('a body cut short errors its stream instead of ending it', async () => {
    const res = await nodeFetch()(`${base}/cut`, { ...POST, body: '{}' });
    await expect(res.text()).rejects.toThrow(TypeError);
  });

  it('returns a redirect as is, never following it', async () => {
    const before = seen.length;
    const res = await nodeFetch()(`${base}/redirect`, { ...POST, body: '{}' });
    expect(res.status).toBe(307);
    expect(res.headers.get('location')).toBe('/json');
    expect(seen.length).toBe(before + 1);
  });

  it('a 204 has no body; a gzip body is decoded', async () => {
    const f = nodeFetch();
    const empty = await f(`${base}/empty`, { ...POST, body: '{}' });
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
    expect(await (await f(`${base}/gzip`, { ...POST, body: '{}' })).json()).toEqual({ zipped: true });
  });

  it('reads a large body in full, and cancelling a reader mid-body releases the connection', async () => {
    const f = nodeFetch();
    const all = await f(`${base}/big`, { ...POST, body: '{}' });
    expect((await all.arrayBuffer()).byteLength).toBe(64 * 64 * 1024);
    const part = await f(`${base}/big`, { ...POST, body: '{}' });
    const reader = part.body!.getReader();
    await reader.read();
    const count = closed.filter((u) => u === '/big').length;
    await reader.cancel();
    await expect.poll(() => closed.filter((u) => u === '/big').length).toBe(count + 1);
  });

  it("checks an https upstream's certificate: a self-signed one is refused before anything is sent", async (ctx) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-tls-'));
    try {
      try {
        // biome-ignore format: the openssl arguments read better on one line
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
      } catch {
        ctx.skip(); // no openssl on this machine
      }
      let requests = 0;
      const tls = await listenLoopback(
        createTlsServer(
          { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
          (_req, res) => {
            requests++;
            res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
          },
        ),
      );
      try {
        const url = `${tls.base}/mcp`;
        const err = await nodeFetch()(url, { ...POST, body: '{}' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TypeError);
        expect(((err as TypeError).cause as { code?: string }).code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
        expect(requests).toBe(0);
      } finally {
        await tls.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a connection not made within the connect timeout fails as a network failure (ETIMEDOUT)', async () => {
    // Accepts TCP and never answers the TLS handshake: the https connection never completes.
    const held: Socket[] = [];
    let ended = 0;
    const silent = createTcpServer((socket) => {
      held.push(socket);
      socket.on('close', () => ended++);
      socket.resume(); // reads (and drops) the client's hello, so the client's close is seen
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as { port: number }).port;
      const started = Date.now();
      const err = await nodeFetch(fetch, { connectTimeoutMs: 200 })(`https://127.0.0.1:${port}/mcp`, {
        ...POST,
        body: '{}',
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TypeError);
      expect(((err as TypeError).cause as { code?: string }).code).toBe('ETIMEDOUT');
      expect(Date.now() - started).toBeLessThan(5_000);
      // The client gave the connection up: nothing is left holding it.
      await expect.poll(() => held.length > 0 && ended === held.length).toBe(true);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('hands anything but a manual-redirect POST with a text body to the fallback', async () => {
    const u = new URL(`${base}/json`);
    expect(handledHere(u, { ...POST, body: '{}' })).toBe(true);
    expect(handledHere(u, { ...POST })).toBe(true);
    expect(handledHere(u, { method: 'POST', body: '{}' })).toBe(false); // would follow redirects
    expect(handledHere(u, { method: 'GET', redirect: 'manual' })).toBe(false);
    expect(handledHere(u, { ...POST, body: new Uint8Array(2) })).toBe(false);
    expect(handledHere(new URL('ftp://example.test/'), { ...POST, body: '{}' })).toBe(false);
    // Never sent as Basic auth: the global fetch refuses the URL, as it always did.
    expect(handledHere(new URL('http://user:pw@127.0.0.1/mcp'), { ...POST, body: '{}' })).toBe(false);
    await expect(nodeFetch()('http://user:pw@127.0.0.1:9/mcp', { ...POST, body: '{}' })).rejects.toThrow(
      TypeError,
    );
    const calls: string[] = [];
    const f = nodeFetch(async (url) => {
      calls.push(String(url));
      return new Response('fallback');
    });
    expect(await (await f(`${base}/json`, { method: 'GET', redirect: 'manual' })).text()).toBe('fallback');
    expect(calls).toEqual([`${base}/json`]);
  });
});
