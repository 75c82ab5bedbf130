/**
 * One abort listener per transport instead of one per request.
 *
 * The SDK's Streamable HTTP client passes the same long-lived AbortSignal (its
 * transport's) to every fetch. undici adds an abort listener to that signal for
 * each request and removes it only when the request is garbage-collected, so
 * under load thousands pile up on one signal (MaxListenersExceededWarning) and
 * every new fetch scans them all: memory and time that grow with uptime.
 *
 * This fetch wrapper gives each request its own AbortController, aborted by a
 * single listener on the shared signal. A JSON response leaves the set as soon
 * as it arrives (its body is small and read at once); an event stream stays
 * abortable by the shared signal until it ends (or errors, or its reader cancels it).
 */
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';

export function perRequestSignals(inner: FetchLike): FetchLike {
  const live = new WeakMap<AbortSignal, Set<AbortController>>();

  function track(shared: AbortSignal): Set<AbortController> {
    let set = live.get(shared);
    if (!set) {
      const controllers = new Set<AbortController>();
      set = controllers;
      live.set(shared, controllers);
      shared.addEventListener(
        'abort',
        () => {
          for (const c of controllers) c.abort(shared.reason);
          controllers.clear();
        },
        { once: true },
      );
    }
    return set;
  }

  return async (url, init) => {
    const shared = init?.signal;
    if (!shared || shared.aborted) return inner(url, init);
    const set = track(shared);
    const own = new AbortController();
    set.add(own);
    const release = () => {
      set.delete(own);
    };
    let res: Response;
    try {
      res = await inner(url, { ...init, signal: own.signal });
    } catch (e) {
      release();
      throw e;
    }
    if (!res.body || !(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
      release();
      return res;
    }
    // Released when the stream ends, errors or its reader gives up.
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          let r: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>;
          try {
            r = await reader.read();
          } catch (e) {
            release();
            return c.error(e);
          }
          if (r.done) {
            release();
            return c.close();
          }
          c.enqueue(r.value);
        },
        cancel(reason) {
          release();
          return reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}
