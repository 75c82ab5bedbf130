/**
 * The fetch under an HTTP upstream's POSTs (every tools/call): node:http with a
 * keep-alive agent, instead of the global fetch (undici).
 *
 * On this stack undici's fetch costs about twice the CPU of a node:http request
 * for the same loopback exchange (its Request, header lists and fetch algorithm
 * run per call), and it ran on every tool call. What the SDK transport and
 * Warden's fetch chain (credentials, trace headers, per-request signals, the
 * response guard) see stays a standard `Response`, so each of them works as it
 * did, and so does their error handling:
 *
 * - a network failure rejects with `TypeError('fetch failed')` whose `cause` is
 *   the socket error (`ECONNREFUSED` and the like), as undici's does;
 * - an abort rejects with the signal's reason, before the answer or while its
 *   body is read, and destroys the socket (a hung upstream holds nothing);
 * - redirects are never followed here: only requests made with
 *   `redirect: 'manual'` (the SDK's, which follows within the origin itself)
 *   come this way;
 * - a connection (TCP, and TLS for https) not made within 10 s fails as a
 *   network failure (undici's connect timeout), so an upstream whose host went
 *   silent is probed and marked down rather than waited on call by call;
 * - the body streams as it arrives with backpressure (event streams, and the
 *   response guard's byte limit, work on it as on undici's), and a gzip,
 *   deflate or brotli body is decoded.
 *
 * Anything else (another method, a stream body, another redirect mode or URL
 * scheme, a URL with credentials) goes to the global fetch unchanged, which
 * behaves as it always did (it refuses a URL with credentials).
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import zlib from 'node:zlib';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';

/** Node's own defaults for its global agents; the timeout lets the agent honour a server's keep-alive hint. */
const AGENT_OPTIONS = { keepAlive: true, scheduling: 'lifo', timeout: 5_000 } as const;
const agents = {
  'http:': new http.Agent(AGENT_OPTIONS),
  'https:': new https.Agent(AGENT_OPTIONS),
};

/** Statuses whose response has no body (fetch refuses to build one for them). */
const NULL_BODY = new Set([101, 204, 205, 304]);

const USER_AGENT = 'warden-gateway';

/** undici's default: how long a new connection (with its TLS handshake) may take. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Whether `init` is a request this module makes itself (else it goes to the global fetch). */
export function handledHere(url: URL, init: RequestInit | undefined): boolean {
  return (
    init?.method === 'POST' &&
    init.redirect === 'manual' &&
    (init.body === undefined || init.body === null || typeof init.body === 'string') &&
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    // node:http would send credentials in the URL as Basic auth; fetch refuses such a URL.
    url.username === '' &&
    url.password === ''
  );
}

/** POSTs over node:http (see above); everything else through `fallback` (the global fetch). */
export function nodeFetch(
  fallback: FetchLike = fetch,
  options: { connectTimeoutMs?: number } = {},
): FetchLike {
  const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  return (input, init) => {
    const url = typeof input === 'string' ? new URL(input) : input;
    if (!handledHere(url, init)) return fallback(input, init);
    return post(url, init as RequestInit & { body?: string | null }, connectTimeoutMs);
  };
}

/** A new socket that is not connected (and through its TLS handshake) within `ms` is destroyed with ETIMEDOUT. */
function boundConnect(socket: Socket, ms: number): void {
  if (!socket.connecting) return; // a kept-alive socket, connected (and through TLS) already
  const ready = socket instanceof TLSSocket ? 'secureConnect' : 'connect';
  const timer = setTimeout(() => {
    const e = Object.assign(new Error(`connect timed out after ${ms} ms`), { code: 'ETIMEDOUT' });
    socket.destroy(e);
  }, ms);
  timer.unref();
  const clear = () => clearTimeout(timer);
  socket.once(ready, clear);
  socket.once('close', clear);
}

function headersOf(init: RequestInit, body: string | undefined): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const given = init.headers;
  if (given instanceof Headers) {
    for (const [name, value] of given) out[name] = value;
  } else if (Array.isArray(given)) {
    for (const pair of given) if (pair[0] !== undefined) out[pair[0].toLowerCase()] = pair[1];
  } else if (given) {
    for (const name of Object.keys(given)) out[name.toLowerCase()] = (given as Record<string, string>)[name];
  }
  out['user-agent'] ??= USER_AGENT;
  out.accept ??= '*/*';
  out['content-length'] = body === undefined ? 0 : Buffer.byteLength(body);
  return out;
}

/** A network failure, shaped as the global fetch reports one. */
const failed = (cause: unknown) => new TypeError('fetch failed', { cause });

function post(
  url: URL,
  init: RequestInit & { body?: string | null },
  connectTimeoutMs: number,
): Promise<Response> {
  const signal = init.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const body = init.body ?? undefined;
  return new Promise<Response>((resolve, reject) => {
    let request: http.ClientRequest;
    /** Set once the response arrived: from then on failures go to its body. */
    let failBody: ((e: unknown) => void) | undefined;
    let settled = false;
    const onAbort = () => {
      const reason = signal?.reason;
      request.destroy();
      if (failBody) failBody(reason);
      else if (!settled) {
        settled = true;
        reject(reason);
      }
    };
    const release = () => signal?.removeEventListener('abort', onAbort);
    try {
      const transport = url.protocol === 'https:' ? https : http;
      request = transport.request(url, {
        method: 'POST',
        agent: agents[url.protocol as keyof typeof agents],
        headers: headersOf(init, body),
      });
    } catch (e) {
      // An invalid header name or value, refused before anything is sent.
      reject(failed(e));
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    // A socket from the pool is connected already; a new one gets a deadline.
    request.on('socket', (socket) => boundConnect(socket, connectTimeoutMs));
    request.on('error', (e) => {
      if (failBody) return failBody(failed(e));
      release();
      if (settled) return;
      settled = true;
      reject(signal?.aborted ? signal.reason : failed(e));
    });
    request.on('response', (res) => {
      if (settled) {
        res.destroy();
        return;
      }
      settled = true;
      let response: Response;
      try {
        const headers = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i < raw.length; i += 2) headers.append(raw[i] as string, raw[i + 1] as string);
        const status = res.statusCode ?? 0;
        if (NULL_BODY.has(status)) {
          res.resume(); // nothing to read; the socket goes back to the pool
          release();
          response = new Response(null, { status, statusText: res.statusMessage ?? '', headers });
        } else {
          const stream = streamOf(
            res,
            decoded(res),
            (fail) => {
              failBody = fail;
            },
            release,
          );
          response = new Response(stream, { status, statusText: res.statusMessage ?? '', headers });
        }
      } catch (e) {
        // A status fetch cannot represent (above 599), or a header value it refuses.
        release();
        res.destroy();
        reject(failed(e));
        return;
      }
      resolve(response);
    });
    request.end(body);
  });
}

/** The body as sent, or decoded when it has a content coding fetch decodes. */
function decoded(res: http.IncomingMessage): Readable {
  const coding = (res.headers['content-encoding'] ?? '').trim().toLowerCase();
  const decoder =
    coding === 'gzip' || coding === 'x-gzip'
      ? zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH })
      : coding === 'deflate'
        ? zlib.createInflate({ finishFlush: zlib.constants.Z_SYNC_FLUSH })
        : coding === 'br'
          ? zlib.createBrotliDecompress({ finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH })
          : undefined;
  if (!decoder) return res;
  res.on('error', (e) => decoder.destroy(e));
  res.pipe(decoder);
  return decoder;
}

/**
 * A web stream of `source`, read as the consumer pulls (paused while its queue is full).
 * `onFail` receives the function that errors it (an abort, a socket error); `done` runs once it ends either way.
 */
function streamOf(
  res: http.IncomingMessage,
  source: Readable,
  onFail: (fail: (e: unknown) => void) => void,
  done: () => void,
): ReadableStream<Uint8Array> {
  let finished = false;
  const finish = () => {
    if (finished) return false;
    finished = true;
    source.off('data', onData);
    done();
    return true;
  };
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const destroy = () => {
    res.destroy();
    if (source !== res) source.destroy();
  };
  const onData = (chunk: Buffer) => {
    if (finished) return;
    controller.enqueue(chunk);
    if ((controller.desiredSize ?? 0) <= 0) source.pause();
  };
  const fail = (e: unknown) => {
    if (!finish()) return;
    controller.error(e);
    destroy();
  };
  // The connection closed before the body ended (no 'end' came first).
  const cutShort = () => fail(new TypeError('terminated', { cause: new Error('other side closed') }));
  onFail(fail);
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        source.on('data', onData);
        source.once('end', () => {
          if (finish()) controller.close();
        });
        source.once('error', (e) => fail(failed(e)));
        source.once('close', cutShort);
        res.once('aborted', cutShort);
      },
      pull() {
        if (!finished) source.resume();
      },
      cancel() {
        if (finish()) destroy();
      },
    },
    { highWaterMark: 1 },
  );
}
