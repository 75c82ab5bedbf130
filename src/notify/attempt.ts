/**
 * One delivery attempt's outcome and what follows from it: the backoff before
 * the next try, and which HTTP answers are worth retrying at all.
 */

/** The log lines notifiers write (a pino logger fits). Never given a secret or a body. */
export interface NotifyLog {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/** What one attempt to deliver a notification came to. */
export type AttemptResult =
  | { ok: true }
  | {
      ok: false;
      /** For `last_error` and the logs: a status or an API error code, never a secret or a body. */
      error: string;
      /** No retry can succeed (bad request, revoked token, unknown channel): dead-letter at once. */
      permanent: boolean;
      /** The receiver asked for this much quiet (Retry-After). */
      retryAfterMs?: number;
    };

/** A Retry-After longer than this is treated as this: one receiver must not park a row for days. */
const MAX_RETRY_AFTER_MS = 60 * 60_000;

/**
 * The delay before attempt `attempt + 1`, after `attempt` failures: initial × 2^(attempt−1),
 * capped at `maxMs`, with ±20 % jitter so many rows failing together do not retry together.
 * A receiver's Retry-After is honoured when it asks for longer.
 */
export function backoffDelay(
  attempt: number,
  retry: { initialDelayMs: number; maxDelayMs: number },
  random: () => number,
  retryAfterMs?: number,
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const base = Math.min(retry.initialDelayMs * 2 ** exponent, retry.maxDelayMs);
  const jittered = Math.round(base * (0.8 + 0.4 * random()));
  return retryAfterMs === undefined
    ? jittered
    : Math.max(jittered, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
}

/** Retry-After in milliseconds (delta-seconds or an HTTP date), or undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(date - now, 0);
}

/**
 * An HTTP answer as an attempt result. 2xx delivered; 408, 425, 429 and 5xx are
 * worth another try; every other 4xx will fail the same way again (RFC 9110
 * §15.5), and so will a redirect, which we never follow with a signed body.
 */
export function httpResult(status: number, retryAfter: number | undefined): AttemptResult {
  if (status >= 200 && status < 300) return { ok: true };
  const error = `HTTP ${status}`;
  if (status >= 300 && status < 400)
    return { ok: false, error: `${error} (redirects are not followed)`, permanent: true };
  const transient = status === 408 || status === 425 || status === 429 || status >= 500;
  return {
    ok: false,
    error,
    permanent: !transient,
    ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }),
  };
}

/** A thrown fetch failure as a retryable attempt result, with a short reason fit for `last_error`. */
export function fetchFailure(e: unknown, timeoutMs: number): AttemptResult {
  const name = e instanceof Error ? e.name : '';
  if (name === 'TimeoutError')
    return { ok: false, error: `timed out after ${timeoutMs} ms`, permanent: false };
  if (name === 'AbortError') return { ok: false, error: 'aborted', permanent: false };
  // undici reports the network reason (ECONNREFUSED, ENOTFOUND, …) in `cause`.
  const cause = e instanceof Error ? (e.cause as { code?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const message = e instanceof Error ? e.message : String(e);
  return {
    ok: false,
    error: code ? `network error (${code})` : `network error: ${message}`,
    permanent: false,
  };
}

/** Drop a response body we do not read, so the connection goes back to the pool. */
export async function discardBody(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => {});
}
