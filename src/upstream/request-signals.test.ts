import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ListeningServer, listenLoopback } from './fixtures/serve.js';
import { perRequestSignals } from './request-signals.js';

describe('perRequestSignals', () => {
  let server: ListeningServer;
  let base: string;
  beforeAll(async () => {
    server = await listenLoopback(
      createServer((req, res) => {
        if (req.url === '/json') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        } else if (req.url === '/sse') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: first\n\n'); // and then stays open
        } else if (req.url === '/sse-short') {
          res.writeHead(200, { 'content-type': 'text/event-stream' }).end('data: only\n\n');
        } // '/hang': never answers
      }),
    );
    base = server.base;
  });
  afterAll(() => server.close());

  it('keeps one listener on the shared signal however many requests pass', async () => {
    const shared = new AbortController();
    const f = perRequestSignals(fetch);
    for (let i = 0; i < 300; i++) {
      const r = await f(`${base}/json`, { signal: shared.signal });
      expect(await r.json()).toEqual({ ok: true });
    }
    const streamed = await f(`${base}/sse-short`, { signal: shared.signal });
    expect(await streamed.text()).toBe('data: only\n\n');
    expect(getEventListeners(shared.signal, 'abort').length).toBe(1);
    // The unwrapped fetch, for contrast, leaves one behind per request until GC.
    const bare = new AbortController();
    for (let i = 0; i < 20; i++) await (await fetch(`${base}/json`, { signal: bare.signal })).json();
    expect(getEventListeners(bare.signal, 'abort').length).toBeGreaterThan(1);
  });

  it('aborting the shared signal aborts a request in flight and an open event stream', async () => {
    const shared = new AbortController();
    const f = perRequestSignals(fetch);
    const pending = f(`${base}/hang`, { signal: shared.signal });
    const stream = await f(`${base}/sse`, { signal: shared.signal });
    const reader = stream.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: first\n\n');
    const next = reader.read();
    shared.abort(new Error('transport closed'));
    await expect(pending).rejects.toThrow();
    await expect(next).rejects.toThrow();
  });

  it('passes requests without a signal, or with an aborted one, straight through', async () => {
    const f = perRequestSignals(fetch);
    expect(await (await f(`${base}/json`)).json()).toEqual({ ok: true });
    const aborted = AbortSignal.abort();
    await expect(f(`${base}/json`, { signal: aborted })).rejects.toThrow();
  });
});
