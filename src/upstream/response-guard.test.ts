import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { describe, expect, it } from 'vitest';
import { loadYaml } from '../../test/helpers/config-yaml.js';
import type { HttpUpstreamConfig } from '../config/types.js';
import {
  CLOSED_BEFORE_ANSWER,
  RESULT_TOO_LARGE,
  responseGuard,
  type SseEvent,
  SseParser,
  serialize,
} from './response-guard.js';

const URL_ = 'http://upstream.test/mcp';
const enc = new TextEncoder();

/** A fake upstream: `answer` builds the response to each fetch; every fetch's signal is kept. */
function fakeUpstream(answer: (body: unknown, init: RequestInit) => Response | Promise<Response>) {
  const signals: AbortSignal[] = [];
  const bodies: unknown[] = [];
  const fetch: FetchLike = async (_url, init) => {
    signals.push(init!.signal!);
    const body = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    bodies.push(body);
    return answer(body, init!);
  };
  return { fetch, signals, bodies };
}

function guarded(inner: FetchLike, maxResultBytes = 1024 * 1024) {
  const warnings: Array<{ obj: object; msg: string }> = [];
  const f = responseGuard(inner, {
    upstream: 'up',
    maxResultBytes,
    logger: { warn: (obj, msg) => warnings.push({ obj, msg }) },
  });
  return { f, warnings };
}

const post = (f: FetchLike, message: unknown, signal = new AbortController().signal) =>
  f(URL_, { method: 'POST', body: JSON.stringify(message), signal });

const request = (id: string | number, method = 'tools/call') => ({ jsonrpc: '2.0', id, method, params: {} });
const result = (id: unknown, text = 'ok') => ({ jsonrpc: '2.0', id, result: { text } });
const json = (body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json', ...headers } });

/** A streamed body of `chunks`, then `end` ('close' or an error thrown at the reader). */
function streamOf(chunks: string[], end: 'close' | Error | 'hang' = 'close'): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) return c.enqueue(enc.encode(chunks[i++]));
      if (end === 'close') return c.close();
      if (end === 'hang') return new Promise(() => {});
      c.error(end);
    },
  });
}

const sse = (body: ReadableStream<Uint8Array>) =>
  new Response(body, { headers: { 'content-type': 'text/event-stream' } });
const event = (m: unknown, id?: string) =>
  `${id ? `id: ${id}\n` : ''}event: message\ndata: ${JSON.stringify(m)}\n\n`;

/** The messages an SSE response re-emitted, parsed as the SDK would. */
async function messagesOf(res: Response): Promise<{ messages: unknown[]; events: SseEvent[] }> {
  const events: SseEvent[] = [];
  const p = new SseParser({ maxPending: 1e9, onEvent: (e) => events.push(e) });
  p.feed(await res.text());
  return {
    events,
    messages: events.filter((e) => e.data !== '').map((e) => JSON.parse(e.data) as unknown),
  };
}

describe('SseParser', () => {
  const parse = (chunks: string[]) => {
    const events: SseEvent[] = [];
    const retries: string[] = [];
    const p = new SseParser({
      maxPending: 1e6,
      onEvent: (e) => events.push(e),
      onRetry: (r) => retries.push(r),
    });
    for (const c of chunks) p.feed(c);
    p.end();
    return { events, retries };
  };

  const text =
    ': comment\r\nid: 7\r\nevent: message\r\ndata: {"a":1}\r\ndata:second\r\n\r\n' +
    'retry: 1500\nretry: soon\ndata\n\n' +
    'id: 8\revent:other\rdata: x\r\r' +
    'unknown: field\nid: with\0nul\ndata: y\n\n' +
    'id: 9\n\n' + // no data line: not dispatched (as the SDK's parser)
    'data: never dispatched';
  const expected = [
    { id: '7', event: 'message', data: '{"a":1}\nsecond' },
    { id: undefined, event: undefined, data: '' },
    { id: '8', event: 'other', data: 'x' },
    { id: undefined, event: undefined, data: 'y' },
  ];

  it('parses line endings, fields, comments and ids as eventsource-parser does', () => {
    expect(parse([text])).toEqual({ events: expected, retries: ['1500'] });
  });

  it('gives the same events however the text is split (every two-chunk split, and one char at a time)', () => {
    for (let i = 0; i <= text.length; i++) {
      expect(parse([text.slice(0, i), text.slice(i)]).events, `split at ${i}`).toEqual(expected);
    }
    expect(parse([...text]).events).toEqual(expected);
  });

  it('re-serialises an event to text that parses back to the same event', () => {
    for (const e of expected) expect(parse([serialize(e)]).events).toEqual([e]);
  });

  it('stops at maxPending: a line or an event that never ends is not buffered without bound', () => {
    const p = new SseParser({ maxPending: 100, onEvent: () => {} });
    for (let i = 0; i < 20 && !p.oversize; i++) p.feed('x'.repeat(10));
    expect(p.oversize).toBe(true);
    const q = new SseParser({ maxPending: 100, onEvent: () => {} });
    for (let i = 0; i < 20 && !q.oversize; i++) q.feed(`data: ${'y'.repeat(10)}\n`);
    expect(q.oversize).toBe(true);
  });
});

describe('responseGuard: JSON responses', () => {
  it('passes the answer to its own request, and hands the SDK the parsed value', async () => {
    const up = fakeUpstream((m) => json(result((m as { id: number }).id, 'mine')));
    const { f, warnings } = guarded(up.fetch);
    const res = await post(f, request(3));
    expect(await res.json()).toEqual(result(3, 'mine'));
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(warnings).toEqual([]);
  });

  it.each([
    ['another request’s id', 4],
    ['the same number as a string', '3'],
    ['a hex string', '0x3'],
    ['a float string', '3.0'],
  ])('drops an answer carrying %s, and says so without its content', async (_why, id) => {
    const up = fakeUpstream(() =>
      json([result(id, 'SECRET'), { jsonrpc: '2.0', method: 'notifications/message' }]),
    );
    const { f, warnings } = guarded(up.fetch);
    const res = await post(f, request(3));
    expect(await res.json()).toEqual([{ jsonrpc: '2.0', method: 'notifications/message' }]);
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings)).not.toContain('SECRET');
    expect(warnings[0]!.obj).toMatchObject({ upstream: 'up', dropped: 1 });
  });

  it('re-addresses an error with a null id to the one request of the POST', async () => {
    const up = fakeUpstream(() =>
      json({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'invalid request' } }),
    );
    const { f } = guarded(up.fetch);
    const res = await post(f, request('a'));
    const expected = { jsonrpc: '2.0', id: 'a', error: { code: -32600, message: 'invalid request' } };
    expect(JSON.parse(await res.text())).toEqual(expected);
    expect(await res.json()).toEqual(expected);
  });

  it('hands a body that is not JSON to the SDK unchanged (it refuses it by itself)', async () => {
    const up = fakeUpstream(
      () => new Response('not json {', { headers: { 'content-type': 'application/json' } }),
    );
    const { f } = guarded(up.fetch);
    await expect((await post(f, request(1))).json()).rejects.toThrow(SyntaxError);
  });

  it.each([
    ['announced (content-length)', true],
    ['chunked', false],
  ])(
    'refuses a body over maxResultBytes, %s: the request is aborted, the call gets an error',
    async (_w, announced) => {
      const big = JSON.stringify(result(1, 'x'.repeat(5000)));
      const up = fakeUpstream(() =>
        announced
          ? json(JSON.parse(big), { 'content-length': String(Buffer.byteLength(big)) })
          : new Response(streamOf([big.slice(0, 2000), big.slice(2000, 4000), big.slice(4000)]), {
              headers: { 'content-type': 'application/json' },
            }),
      );
      const { f, warnings } = guarded(up.fetch, 2048);
      const res = await post(f, request(1));
      const [m] = (await res.json()) as [{ id: number; error: { code: number; message: string } }];
      expect(m.id).toBe(1);
      expect(m.error.code).toBe(RESULT_TOO_LARGE);
      expect(m.error.message).toMatch(/maxResultBytes \(2048 bytes\) of upstream up/);
      expect(up.signals[0]!.aborted).toBe(true);
      expect(warnings[0]!.obj).toEqual({ upstream: 'up', maxResultBytes: 2048 });
    },
  );

  it('leaves notifications, client responses, GETs of other kinds and HTTP errors alone', async () => {
    const up = fakeUpstream(() => new Response(null, { status: 202 }));
    const { f } = guarded(up.fetch);
    expect((await post(f, { jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    expect((await post(f, { jsonrpc: '2.0', id: 5, result: {} })).status).toBe(202);
    const err = fakeUpstream(() => new Response('nope', { status: 500 }));
    expect(await (await post(guarded(err.fetch).f, request(1))).text()).toBe('nope');
  });
});

describe('responseGuard: event streams', () => {
  it('keeps requests, notifications, ids and retry; drops stray answers; keeps the real one', async () => {
    const serverRequest = { jsonrpc: '2.0', id: 0, method: 'sampling/createMessage', params: {} };
    const up = fakeUpstream(() =>
      sse(
        streamOf([
          'retry: 3000\n\n',
          event({ jsonrpc: '2.0', method: 'notifications/progress', params: {} }, 'e1'),
          event(serverRequest),
          event(result('stray-9', 'STRAY')),
          event(result(987, 'STRAY'), 'e2'),
          'data: {"jsonrpc":"2.0","id":1,"res\\u0075lt":{"text":"STRAY escaped"}}\n\n',
          event(result(9, 'real')).slice(0, 10),
          event(result(9, 'real')).slice(10),
          event(result(9, 'again')),
        ]),
      ),
    );
    const { f, warnings } = guarded(up.fetch);
    const res = await post(f, request(9));
    const text = await res.clone().text();
    expect(text).toContain('retry: 3000\n');
    expect(text).not.toContain('STRAY');
    const { messages, events } = await messagesOf(res);
    expect(messages).toEqual([
      { jsonrpc: '2.0', method: 'notifications/progress', params: {} },
      serverRequest,
      result(9, 'real'),
    ]);
    // The dropped answer's event id is still passed on (the SDK's resumption token).
    expect(events.map((e) => e.id).filter(Boolean)).toEqual(['e1', 'e2']);
    expect(warnings).toHaveLength(2); // the first drop at once, then the count at the end (3 strays, 1 repeat)
    expect(warnings[1]!.obj).toMatchObject({ dropped: 4 });
    expect(JSON.stringify(warnings)).not.toContain('STRAY');
  });

  it.each([
    ['ends', 'close' as const],
    ['breaks', new TypeError('terminated')],
  ])('answers at once when a stream that cannot resume %s before the answer', async (_w, end) => {
    const up = fakeUpstream(() =>
      sse(
        streamOf(
          [event({ jsonrpc: '2.0', method: 'notifications/x' }), 'data: {"jsonrpc":"2.0","id":4,"res'],
          end,
        ),
      ),
    );
    const { f } = guarded(up.fetch);
    const { messages } = await messagesOf(await post(f, request(4)));
    expect(messages.at(-1)).toEqual({
      jsonrpc: '2.0',
      id: 4,
      error: { code: -32000, message: CLOSED_BEFORE_ANSWER },
    });
  });

  it('leaves a resumable stream (it sent event ids) to the SDK to resume', async () => {
    const up = fakeUpstream(() =>
      sse(
        streamOf([event({ jsonrpc: '2.0', method: 'notifications/x' }, 'ev-1')], new TypeError('terminated')),
      ),
    );
    const { f } = guarded(up.fetch);
    await expect((await post(f, request(4))).text()).rejects.toThrow('terminated');
  });

  it('cuts a stream over maxResultBytes: the request is aborted, the call gets an error', async () => {
    const note = event({
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { data: 'x'.repeat(200) },
    });
    const up = fakeUpstream(() =>
      sse(
        streamOf(
          Array.from({ length: 100 }, () => note),
          'hang',
        ),
      ),
    );
    const { f } = guarded(up.fetch, 4096);
    const { messages } = await messagesOf(await post(f, request('r')));
    expect(messages.length).toBeLessThan(20);
    expect(messages.at(-1)).toMatchObject({ id: 'r', error: { code: RESULT_TOO_LARGE } });
    expect(up.signals[0]!.aborted).toBe(true);
  });

  it('a standalone GET stream carries no answers; one resuming a POST’s stream carries that request’s', async () => {
    let phase = 'post';
    const up = fakeUpstream((_m, init) => {
      if (phase === 'post')
        return sse(streamOf([event({ jsonrpc: '2.0', method: 'notifications/x' }, 'p-1')]));
      const last = new Headers(init.headers).get('last-event-id');
      return sse(streamOf([event(result(5, `via ${last}`)), event(result(6, 'other'))]));
    });
    const { f } = guarded(up.fetch);
    await (await post(f, request(5))).text(); // ended after an event id, unanswered: resumable
    phase = 'get';
    const get = (last?: string) =>
      f(URL_, {
        method: 'GET',
        headers: last ? { 'last-event-id': last } : {},
        signal: new AbortController().signal,
      });
    expect((await messagesOf(await get())).messages).toEqual([]);
    expect((await messagesOf(await get('p-1'))).messages).toEqual([result(5, 'via p-1')]);
    // Answered: a second resume with the same id gets nothing.
    expect((await messagesOf(await get('p-1'))).messages).toEqual([]);
  });
});

describe('responseGuard: cancellation', () => {
  it('aborts a cancelled request’s exchange once its notifications/cancelled was sent', async () => {
    const order: string[] = [];
    const up = fakeUpstream((m) => {
      const msg = m as { method?: string };
      if (msg.method === 'notifications/cancelled') {
        order.push('cancel sent');
        return new Response(null, { status: 202 });
      }
      return new Promise<Response>(() => {}); // hangs
    });
    const { f } = guarded(up.fetch);
    void post(f, request(11)).catch(() => {});
    void post(f, request(12)).catch(() => {});
    await new Promise((r) => setTimeout(r, 5));
    up.signals[0]!.addEventListener('abort', () => order.push('request aborted'));
    await post(f, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 11 } });
    expect(order).toEqual(['cancel sent', 'request aborted']);
    expect(up.signals[1]!.aborted).toBe(false); // only the one cancelled
    // An id of another type names no request.
    await post(f, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: '12' } });
    expect(up.signals[1]!.aborted).toBe(false);
  });

  it('a cancelled event stream ends quietly', async () => {
    const up = fakeUpstream((m) =>
      (m as { method?: string }).method
        ? (m as { id?: number }).id === undefined
          ? new Response(null, { status: 202 })
          : sse(streamOf([event({ jsonrpc: '2.0', method: 'notifications/x' })], 'hang'))
        : new Response(null, { status: 202 }),
    );
    // The fake stream ignores its signal; the reader sees the abort through the guard's own cancel.
    const { f } = guarded(async (url, init) => {
      const res = await up.fetch(url, init);
      if (!res.body) return res;
      const reader = res.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          const aborted = new Promise<never>((_, reject) =>
            init!.signal!.addEventListener('abort', () => reject(init!.signal!.reason), { once: true }),
          );
          const r = await Promise.race([reader.read(), aborted]);
          if (r.done) c.close();
          else c.enqueue(r.value);
        },
      });
      return new Response(body, { headers: res.headers });
    });
    const res = await post(f, request(21));
    const text = res.text();
    await post(f, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 21 } });
    expect(await text).not.toContain('error');
  });
});

describe('upstreams[].maxResultBytes', () => {
  const load = (extra: string) =>
    loadYaml(`upstreams:\n  - { name: crm, transport: http, url: "https://crm.example.com/mcp"${extra} }\n`);

  it('defaults to 16 MiB (left out of the resolved config), accepts a size', async () => {
    const d = await load('');
    if ('error' in d) throw new Error(d.error);
    expect((d.config.upstreams[0] as HttpUpstreamConfig).maxResultBytes).toBeUndefined();
    const r = await load(', maxResultBytes: 4mb');
    if ('error' in r) throw new Error(r.error);
    expect((r.config.upstreams[0] as HttpUpstreamConfig).maxResultBytes).toBe(4 * 1024 * 1024);
  });

  it.each([['512b'], ['lots'], ['0']])('refuses %s', async (v) => {
    const r = await load(`, maxResultBytes: ${v}`);
    expect('error' in r ? r.error : 'loaded').toMatch(/maxResultBytes/);
  });
});
