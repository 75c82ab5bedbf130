/**
 * The W3C `traceparent` on an HTTP upstream's requests (issue #8): the span of
 * the pipeline step making the request (execute) is the upstream's parent, so
 * the tool call and what the upstream did with it are one trace. Only the
 * trace id and Warden's own span id go out: no `tracestate` or baggage from the
 * agent, nothing else of its request. Nothing is added when tracing is off.
 */
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { outgoingTraceparent } from '../tracing/index.js';

/** `inner`, with the current step's `traceparent` set on each request made inside a traced call. */
export function withTraceparent(inner: FetchLike): FetchLike {
  return (url, init) => {
    const traceparent = outgoingTraceparent();
    if (traceparent === undefined) return inner(url, init);
    const headers = new Headers(init?.headers);
    headers.set('traceparent', traceparent);
    return inner(url, { ...init, headers });
  };
}
