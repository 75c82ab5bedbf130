import { createServer } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ListeningServer, listenLoopback } from '../upstream/fixtures/serve.js';
import type { NodeBindings } from './request.js';
import { SECURITY_HEADERS, securityHeaders } from './security-headers.js';

function app(): Hono<{ Bindings: NodeBindings }> {
  const a = new Hono<{ Bindings: NodeBindings }>();
  a.use('*', securityHeaders());
  a.get('/json', (c) => c.json({ ok: true }));
  // A Response built by hand, as the MCP face's direct path builds its answers.
  a.get(
    '/raw',
    () => new Response('{"a":1}', { headers: { 'content-type': 'application/json', 'x-own': '1' } }),
  );
  a.get(
    '/stream',
    () =>
      new Response(new Blob(['data: 1\n\n']).stream(), { headers: { 'content-type': 'text/event-stream' } }),
  );
  a.get('/own', () => new Response('x', { headers: { 'x-frame-options': 'DENY' } }));
  return a;
}

const expectAll = (headers: Headers) => {
  for (const [name, value] of SECURITY_HEADERS) expect(headers.get(name), name).toBe(value);
};

describe('securityHeaders over Node', () => {
  let server: ListeningServer;
  let base: string;
  beforeAll(async () => {
    server = await listenLoopback(createServer(getRequestListener(app().fetch)));
    base = server.base;
  });
  afterAll(() => server.close());

  it.each(['/json', '/raw', '/stream'])('sets every header on %s, keeping the route’s own', async (path) => {
    const res = await fetch(base + path);
    expect(res.status).toBe(200);
    expectAll(res.headers);
    if (path === '/raw') {
      expect(res.headers.get('x-own')).toBe('1');
      expect(res.headers.get('content-type')).toBe('application/json');
    }
    await res.text();
  });

  it('sets them on a not-found answer too, and a route may set a stricter value of its own', async () => {
    const missing = await fetch(`${base}/nothing`);
    expect(missing.status).toBe(404);
    expectAll(missing.headers);
    const own = await fetch(`${base}/own`);
    expect(own.headers.get('x-frame-options')).toBe('DENY');
    expect(own.headers.get('referrer-policy')).toBe('no-referrer');
  });
});

describe('securityHeaders without Node (app.request)', () => {
  it('sets every header on the Response', async () => {
    const res = await app().request('/raw');
    expectAll(res.headers);
    expect(res.headers.get('x-own')).toBe('1');
  });
});
