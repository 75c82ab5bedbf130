/**
 * Checks what an HTTP upstream sends back on each request's own HTTP response
 * (issue #10, upstream misbehaviour), in the transport's fetch chain.
 *
 * The SDK matches answers to calls by id over the whole shared connection, and
 * loosely (`Number(id)`): an upstream answering request A's POST with request
 * B's id would hand B's caller A's data. This wrapper knows which request each
 * POST carries, so on that POST's response (a JSON body or an event stream) it:
 *
 * - drops every response (result / error) whose id is not strictly one of the
 *   POST's request ids (same JSON type and value), or that answers one twice;
 *   requests and notifications pass (server-to-client requests are legitimate);
 * - re-addresses an error with a null id (the upstream could not read the
 *   request) to the one request of the POST;
 * - bounds the bytes read (`maxResultBytes`): past it the request is aborted and
 *   the call gets a JSON-RPC error naming the limit;
 * - answers a request whose event stream ended or broke before its answer
 *   (and cannot be resumed: no event ids) with a ConnectionClosed error at
 *   once, rather than leaving the call to time out;
 * - aborts a request's HTTP exchange once the SDK sends notifications/cancelled
 *   for it (timeout, caller abort), so a hung upstream holds no socket.
 *
 * A standalone GET stream carries no responses (MCP: only when it resumes a
 * POST's stream, matched here by Last-Event-ID); any other is dropped.
 *
 * Event streams are re-emitted from what was parsed here, so the SDK's parser
 * only ever sees events this one kept: no parser differential to exploit.
 */
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { readStreamText } from '../util/http-body.js';
import type { PoolLogger } from './types.js';

type Id = string | number;

/** JSON-RPC error code of an injected "result too large" error (server-defined range). */
export const RESULT_TOO_LARGE = -32010;
/** Message of the error injected when a response ends without the request's answer. */
export const CLOSED_BEFORE_ANSWER = 'upstream closed the response stream before answering';
/** How long a cancelled request's exchange is kept open for its notifications/cancelled to be sent first. */
const CANCEL_GRACE_MS = 1_000;

export interface ResponseGuardOptions {
  /** The upstream's name, for the logs (never the content). */
  upstream: string;
  /** Bytes of one response body (a POST's) or of one event (a GET stream's) read at most. */
  maxResultBytes: number;
  logger: Pick<PoolLogger, 'warn'>;
}

/** One POST's requests, until they are answered, cancelled or their response ended. */
interface Exchange {
  pending: Set<Id>;
  controller: AbortController;
  /** Last event id its stream sent: the SDK may resume it with a GET carrying it as Last-Event-ID. */
  lastEventId?: string;
  cancelled: boolean;
}

/** What the body of one POST (or resuming GET) carries. */
interface Outgoing {
  requests: Id[];
  cancels: Id[];
}

const isId = (v: unknown): v is Id => typeof v === 'string' || typeof v === 'number';

function outgoing(body: string): Outgoing | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const out: Outgoing = { requests: [], cancels: [] };
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    if (typeof m !== 'object' || m === null) continue;
    const { method, id, params } = m as { method?: unknown; id?: unknown; params?: { requestId?: unknown } };
    if (typeof method !== 'string') continue;
    if (isId(id)) out.requests.push(id);
    else if (method === 'notifications/cancelled' && isId(params?.requestId))
      out.cancels.push(params.requestId);
  }
  return out;
}

/** A JSON-RPC response (a result or an error), as opposed to a request or a notification. */
function isResponse(m: unknown): m is { id?: unknown; error?: unknown } {
  return (
    typeof m === 'object' &&
    m !== null &&
    !Array.isArray(m) &&
    !('method' in m) &&
    ('result' in m || 'error' in m)
  );
}

/** False only for text that cannot hold a "result" or "error" key: no such word, no escape. */
const mayBeResponse = (data: string) =>
  data.includes('"result"') || data.includes('"error"') || data.includes('\\');

const errorMessage = (id: Id, code: number, message: string) => ({
  jsonrpc: '2.0' as const,
  id,
  error: { code, message },
});

function mediaType(res: Response): string {
  const ct = res.headers.get('content-type') ?? '';
  const semi = ct.indexOf(';');
  return (semi === -1 ? ct : ct.slice(0, semi)).trim().toLowerCase();
}

/** Wraps `inner` (the fetch of one transport) with the checks above; its state is that transport's. */
export function responseGuard(inner: FetchLike, options: ResponseGuardOptions): FetchLike {
  const { upstream, maxResultBytes: limit, logger } = options;
  const inflight = new Map<Id, Exchange>();
  const tooLarge = `upstream result exceeds maxResultBytes (${limit} bytes) of upstream ${upstream}`;

  const warnDropped = (count: number, where: string) =>
    logger.warn(
      { upstream, dropped: count, where },
      'upstream sent responses for other requests; dropped (issue #10)',
    );
  const warnTooLarge = () =>
    logger.warn(
      { upstream, maxResultBytes: limit },
      'upstream result exceeds maxResultBytes; request aborted',
    );

  function settle(ex: Exchange, id: Id): void {
    ex.pending.delete(id);
    if (inflight.get(id) === ex) inflight.delete(id);
  }

  function forget(ex: Exchange): void {
    for (const id of ex.pending) if (inflight.get(id) === ex) inflight.delete(id);
    ex.pending.clear();
  }

  function cancel(id: Id): void {
    const ex = inflight.get(id);
    if (!ex) return;
    settle(ex, id);
    if (ex.pending.size === 0) {
      ex.cancelled = true;
      ex.controller.abort(new DOMException('the call was cancelled', 'AbortError'));
    }
  }

  /** A controller for one exchange, aborted also by the caller's signal (a per-request one: see request-signals.ts). */
  function controllerFor(signal: AbortSignal | null | undefined): {
    controller: AbortController;
    unlink: () => void;
  } {
    const controller = new AbortController();
    if (!signal) return { controller, unlink: () => {} };
    if (signal.aborted) {
      controller.abort(signal.reason);
      return { controller, unlink: () => {} };
    }
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    return { controller, unlink: () => signal.removeEventListener('abort', onAbort) };
  }

  async function post(url: string | URL, init: RequestInit, sent: Outgoing): Promise<Response> {
    const { controller, unlink } = controllerFor(init.signal);
    const ex: Exchange = { pending: new Set(), controller, cancelled: false };
    for (const id of sent.requests) {
      ex.pending.add(id);
      inflight.set(id, ex);
    }
    let res: Response;
    try {
      res = await inner(url, { ...init, signal: controller.signal });
    } catch (e) {
      unlink();
      forget(ex);
      throw e;
    }
    const type = mediaType(res);
    if (
      !res.ok ||
      res.status === 202 ||
      !res.body ||
      (type !== 'application/json' && type !== 'text/event-stream')
    ) {
      // The SDK fails the call on these by itself; a body it reads (an error text) is still bounded.
      unlink();
      forget(ex);
      return res.body && res.status >= 400 ? bounded(res, limit) : res;
    }
    if (type === 'application/json') {
      try {
        return await guardJson(res, ex, controller);
      } finally {
        unlink();
        forget(ex);
      }
    }
    return withBody(res, guardSse(res.body, ex, { total: true }, unlink));
  }

  async function guardJson(res: Response, ex: Exchange, controller: AbortController): Promise<Response> {
    const text = await readText(res, limit);
    if (text === undefined) {
      controller.abort(new DOMException('result too large', 'AbortError'));
      warnTooLarge();
      return jsonResponse(
        res,
        [...ex.pending].map((id) => errorMessage(id, RESULT_TOO_LARGE, tooLarge)),
      );
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      return textResponse(res, text); // the SDK refuses it by itself, at once
    }
    const messages = Array.isArray(data) ? data : [data];
    let dropped = 0;
    let readdressed = false;
    const kept: unknown[] = [];
    for (const m of messages) {
      if (isResponse(m)) {
        const before = m.id;
        const id = addressOf(m, ex);
        if (id === undefined) {
          dropped++;
          continue;
        }
        if (before !== id) readdressed = true;
        settle(ex, id);
      }
      kept.push(m);
    }
    if (dropped > 0) warnDropped(dropped, 'json');
    if (dropped === 0 && !readdressed) return textResponse(res, text, data);
    // A request left unanswered times out as it would with no answer at all (and is cancelled then).
    return jsonResponse(res, Array.isArray(data) || kept.length !== 1 ? kept : kept[0]);
  }

  /** The request id `m` answers, if it is one still pending on this exchange; null-id errors go to a lone request. */
  function addressOf(m: { id?: unknown; error?: unknown }, ex: Exchange): Id | undefined {
    const id = m.id;
    if (isId(id)) return ex.pending.has(id) ? id : undefined;
    if ((id === null || id === undefined) && 'error' in m && ex.pending.size === 1) {
      const only = ex.pending.values().next().value as Id;
      m.id = only;
      return only;
    }
    return undefined;
  }

  /**
   * The event stream of `ex`, re-emitted with only the events kept. `total`: `limit` bounds the
   * whole stream (a POST's response), else each event (a GET stream, which lives long).
   */
  function guardSse(
    body: ReadableStream<Uint8Array>,
    ex: Exchange,
    opts: { total: boolean },
    done: () => void,
  ): ReadableStream<Uint8Array> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let bytes = 0;
    let dropped = 0;
    let resumable = false;
    let out = '';
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      done();
      if (dropped > 1) warnDropped(dropped, 'event-stream');
    };
    const emitIdOnly = (id: string | undefined) => {
      if (id) out += `id: ${id}\ndata: \n\n`;
    };
    const parser = new SseParser({
      maxPending: limit,
      onRetry: (value) => {
        out += `retry: ${value}\n\n`;
      },
      onEvent: (event) => {
        if (event.id) {
          resumable = true;
          ex.lastEventId = event.id;
        }
        if (event.event !== undefined && event.event !== 'message') return emitIdOnly(event.id);
        let m: unknown;
        // Only text naming a result or an error (literally, or through an escape) can be a response.
        if (mayBeResponse(event.data)) {
          try {
            m = JSON.parse(event.data);
          } catch {
            m = undefined; // not JSON: the SDK reports it and moves on
          }
        }
        if (isResponse(m)) {
          const before = m.id;
          const id = addressOf(m, ex);
          if (id === undefined) {
            if (++dropped === 1) warnDropped(1, 'event-stream');
            return emitIdOnly(event.id);
          }
          settle(ex, id);
          if (before !== id) event.data = JSON.stringify(m); // a null-id error, re-addressed
        }
        out += serialize(event);
      },
    });
    /** Errors for the requests still pending, when their answer cannot come any more. */
    const unanswered = (code: number, message: string) => {
      let s = '';
      for (const id of ex.pending)
        s += `event: message\ndata: ${JSON.stringify(errorMessage(id, code, message))}\n\n`;
      forget(ex);
      return s;
    };
    const flush = (c: ReadableStreamDefaultController<Uint8Array>) => {
      if (out !== '') {
        c.enqueue(encoder.encode(out));
        out = '';
      }
    };
    return new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          for (;;) {
            let r: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>;
            try {
              r = await reader.read();
            } catch (e) {
              flush(c);
              finish();
              if (ex.cancelled) {
                forget(ex);
                return c.close(); // nobody waits for it any more
              }
              if (ex.controller.signal.aborted) {
                forget(ex); // the transport is closing: the SDK fails every pending call itself
                return c.error(e);
              }
              if (!resumable) {
                // Cut short and not resumable: the answer cannot come any more.
                out += unanswered(ErrorCode.ConnectionClosed, CLOSED_BEFORE_ANSWER);
                flush(c);
                return c.close();
              }
              return c.error(e); // resumable: the SDK resumes it (a GET with Last-Event-ID)
            }
            if (r.done) {
              parser.feed(decoder.decode());
              parser.end();
              if (!resumable) out += unanswered(ErrorCode.ConnectionClosed, CLOSED_BEFORE_ANSWER);
              else if (ex.pending.size === 0) forget(ex);
              flush(c);
              finish();
              return c.close();
            }
            const chunk = r.value;
            bytes += chunk.byteLength;
            const over = opts.total && bytes > limit;
            // Past the limit, only the bytes within it are parsed (an answer there still counts).
            parser.feed(
              decoder.decode(over ? chunk.subarray(0, limit - (bytes - chunk.byteLength)) : chunk, {
                stream: !over,
              }),
            );
            if (over || parser.oversize) {
              warnTooLarge();
              ex.controller.abort(new DOMException('result too large', 'AbortError'));
              reader.cancel().catch(() => {});
              out += unanswered(RESULT_TOO_LARGE, tooLarge);
              flush(c);
              finish();
              return c.close();
            }
            if (out !== '') return flush(c);
          }
        },
        cancel(reason) {
          finish();
          if (!resumable) forget(ex);
          return reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
  }

  function get(url: string | URL, init: RequestInit): Promise<Response> {
    const last = new Headers(init.headers).get('last-event-id');
    let resumed: Exchange | undefined;
    if (last !== null) {
      for (const ex of inflight.values()) {
        if (ex.lastEventId === last) {
          resumed = ex;
          break;
        }
      }
    }
    // A fresh or standalone stream answers nothing: its exchange expects no id.
    const ex: Exchange = resumed ?? {
      pending: new Set(),
      controller: new AbortController(),
      cancelled: false,
    };
    const { controller, unlink } = controllerFor(init.signal);
    ex.controller = controller;
    return inner(url, { ...init, signal: controller.signal }).then(
      (res) => {
        if (!res.ok || !res.body || mediaType(res) !== 'text/event-stream') {
          unlink();
          return res;
        }
        return withBody(res, guardSse(res.body, ex, { total: false }, unlink));
      },
      (e: unknown) => {
        unlink();
        throw e;
      },
    );
  }

  return async (url, init) => {
    const method = (init?.method ?? 'GET').toUpperCase();
    if (method === 'GET' && init) return get(url, init);
    if (method !== 'POST' || typeof init?.body !== 'string') return inner(url, init);
    const sent = outgoing(init.body);
    if (!sent) return inner(url, init);
    if (sent.cancels.length > 0) {
      // Sent first, so the upstream hears why; then the cancelled requests' exchanges are cut.
      const cut = () => {
        for (const id of sent.cancels) cancel(id);
      };
      const grace = setTimeout(cut, CANCEL_GRACE_MS);
      grace.unref();
      const send = sent.requests.length > 0 ? post(url, init, sent) : inner(url, init);
      return send.finally(() => {
        clearTimeout(grace);
        cut();
      });
    }
    if (sent.requests.length === 0) return inner(url, init);
    return post(url, init, sent);
  };
}

/** `res`'s body as text, or undefined past `limit` bytes (then the body is cancelled). */
async function readText(res: Response, limit: number): Promise<string | undefined> {
  const declared = res.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared) && !res.headers.has('content-encoding')) {
    // fetch enforces the announced length: no need to count.
    if (Number(declared) > limit) {
      await res.body?.cancel().catch(() => {});
      return undefined;
    }
    return res.text();
  }
  return readStreamText(res.body as ReadableStream<Uint8Array>, limit);
}

/** A body read past `limit` bytes errors (for bodies the SDK reads whole, e.g. an HTTP error's text). */
function bounded(res: Response, limit: number): Response {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let size = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        const { done, value } = await reader.read();
        if (done) return c.close();
        size += value.byteLength;
        if (size > limit) {
          await reader.cancel().catch(() => {});
          return c.error(new Error(`upstream response larger than ${limit} bytes`));
        }
        c.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  return withBody(res, body);
}

function withBody(res: Response, body: ConstructorParameters<typeof Response>[0]): Response {
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/**
 * The body already read, handed to the SDK as a Response; with `parsed`, its json() returns that
 * value instead of parsing the same text a second time (the SDK calls json() once, then validates).
 */
function textResponse(res: Response, text: string, parsed?: unknown): Response {
  if (parsed === undefined) return withBody(res, text);
  // No body stream to build: the text and the value are at hand.
  const out = withBody(res, null);
  Object.defineProperty(out, 'json', { value: () => Promise.resolve(parsed) });
  Object.defineProperty(out, 'text', { value: () => Promise.resolve(text) });
  return out;
}

function jsonResponse(res: Response, data: unknown): Response {
  return textResponse(res, JSON.stringify(data), data);
}

/** One server-sent event as the SDK's parser (eventsource-parser) dispatches it: only events with data lines. */
export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/** `event` as SSE text that parses back to the same event; no field value holds a line break. */
export function serialize(event: SseEvent): string {
  let s = '';
  if (event.id !== undefined) s += `id: ${event.id}\n`;
  if (event.event !== undefined) s += `event: ${event.event}\n`;
  for (const line of event.data.split('\n')) s += `data: ${line}\n`;
  return `${s}\n`;
}

/**
 * An incremental SSE parser (WHATWG HTML "server-sent events" line rules; an event's id, like
 * eventsource-parser's, is the id field of its own block): lines end in CRLF, LF or CR, also
 * across chunks; a trailing event with no blank line after it is never dispatched; comments and
 * unknown fields are ignored. The text before the next line break is bounded by `maxPending`.
 */
export class SseParser {
  /** Set once an incomplete line plus the event's data exceeded maxPending (nothing more is parsed). */
  oversize = false;
  private fragments: string[] = [];
  private fragmentsLength = 0;
  private skipLF = false;
  private data: string[] = [];
  private dataLength = 0;
  private id: string | undefined;
  private event: string | undefined;

  constructor(
    private readonly handlers: {
      maxPending: number;
      onEvent: (event: SseEvent) => void;
      onRetry?: (value: string) => void;
    },
  ) {}

  feed(chunk: string): void {
    if (this.oversize || chunk === '') return;
    let start = 0;
    if (this.skipLF) {
      this.skipLF = false;
      if (chunk.charCodeAt(0) === 10) start = 1;
    }
    const lf0 = chunk.indexOf('\n', start);
    const cr0 = chunk.indexOf('\r', start);
    if (lf0 === -1 && cr0 === -1) {
      this.fragments.push(start === 0 ? chunk : chunk.slice(start));
      this.fragmentsLength += chunk.length - start;
      this.checkSize();
      return;
    }
    let s = chunk;
    let offset = 0;
    if (this.fragments.length > 0) {
      const head = this.fragments.join('');
      this.fragments = [];
      this.fragmentsLength = 0;
      s = head + chunk.slice(start);
      offset = head.length - start;
      start = 0;
    }
    let lf = lf0 === -1 ? -1 : lf0 + offset;
    let cr = cr0 === -1 ? -1 : cr0 + offset;
    let i = start;
    for (;;) {
      if (lf !== -1 && lf < i) lf = s.indexOf('\n', i);
      if (cr !== -1 && cr < i) cr = s.indexOf('\r', i);
      const end = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
      if (end === -1) break;
      this.line(s, i, end);
      if (this.oversize) return;
      i = end + 1;
      if (s.charCodeAt(end) === 13) {
        if (i === s.length) this.skipLF = true;
        else if (s.charCodeAt(i) === 10) i++;
      }
    }
    if (i < s.length) {
      this.fragments.push(s.slice(i));
      this.fragmentsLength = s.length - i;
      this.checkSize();
    }
  }

  /** The stream ended: an incomplete event is discarded (as browsers and the SDK do). */
  end(): void {
    this.fragments = [];
    this.fragmentsLength = 0;
    this.reset();
  }

  private checkSize(): void {
    if (this.fragmentsLength + this.dataLength > this.handlers.maxPending) {
      this.oversize = true;
      this.fragments = [];
      this.reset();
    }
  }

  private reset(): void {
    this.data = [];
    this.dataLength = 0;
    this.id = undefined;
    this.event = undefined;
  }

  private line(s: string, start: number, end: number): void {
    if (start === end) {
      if (this.data.length > 0) {
        this.handlers.onEvent({ id: this.id, event: this.event, data: this.data.join('\n') });
      }
      this.reset();
      return;
    }
    if (s.charCodeAt(start) === 58) return; // ':' a comment
    const colon = s.indexOf(':', start);
    let field: string;
    let value: string;
    if (colon === -1 || colon >= end) {
      field = s.slice(start, end);
      value = '';
    } else {
      field = s.slice(start, colon);
      value = s.slice(s.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1, end);
    }
    switch (field) {
      case 'data':
        this.data.push(value);
        this.dataLength += value.length + 1;
        if (this.dataLength > this.handlers.maxPending) {
          this.oversize = true;
          this.reset();
        }
        return;
      case 'event':
        this.event = value === '' ? undefined : value;
        return;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        return;
      case 'retry':
        if (/^\d+$/.test(value)) this.handlers.onRetry?.(value);
        return;
      default:
        return;
    }
  }
}
