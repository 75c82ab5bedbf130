/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) as Warden needs it:
 * the `traceparent` a request came in with, and the one the current pipeline
 * step's upstream requests carry. Both ride on AsyncLocalStorage, set only
 * while tracing is on: with tracing off nothing is ever stored, so a lookup
 * costs next to nothing and no async-context hooks are switched on.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** A usable W3C trace id: 32 lowercase hex digits, not all zero. */
export function isTraceId(id: string): boolean {
  return id.length === 32 && id !== ZERO_TRACE && /^[0-9a-f]{32}$/.test(id);
}

/** The `traceparent` header value for a span. */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/**
 * A `traceparent` header's parts; undefined when it is malformed or invalid (§3.2: version ff,
 * all-zero ids, or a version-00 header with trailing data). A later version is read by the 00 layout.
 */
export function parseTraceparent(
  header: string | undefined,
): { traceId: string; spanId: string; sampled: boolean } | undefined {
  const m = header === undefined ? null : TRACEPARENT.exec(header.trim());
  if (!m) return undefined;
  const [whole, version, traceId, spanId, flags] = m as unknown as [string, string, string, string, string];
  if (version === 'ff' || (version === '00' && whole.length !== 55)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

const incoming = new AsyncLocalStorage<string>();
const outgoing = new AsyncLocalStorage<string>();

/**
 * Runs `fn` (an HTTP request's handling) with the `traceparent` it arrived with in view of the
 * tracer. A repeated header is ignored (§3.2: more than one traceparent is invalid).
 */
export function withIncomingTraceparent<T>(header: string | string[] | undefined, fn: () => T): T {
  return typeof header === 'string' ? incoming.run(header, fn) : fn();
}

/** The `traceparent` the HTTP request being handled arrived with. */
export function incomingTraceparent(): string | undefined {
  return incoming.getStore();
}

/** Runs `fn` (a pipeline step) so that the upstream requests it makes carry `traceparent`. */
export function withOutgoingTraceparent<T>(traceparent: string, fn: () => T): T {
  return outgoing.run(traceparent, fn);
}

/** The `traceparent` an upstream request made now should carry; undefined when tracing is off. */
export function outgoingTraceparent(): string | undefined {
  return outgoing.getStore();
}
