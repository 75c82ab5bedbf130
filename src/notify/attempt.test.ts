import { describe, expect, it } from 'vitest';
import { backoffDelay, httpResult, retryAfterMs } from './attempt.js';

const retry = { initialDelayMs: 1000, maxDelayMs: 30_000 };

describe('backoffDelay', () => {
  it('doubles from the initial delay and caps at the maximum (no jitter at random = 0.5)', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, retry, mid))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000,
    ]);
  });

  it('jitters by at most ±20 %', () => {
    expect(backoffDelay(3, retry, () => 0)).toBe(3200);
    expect(backoffDelay(3, retry, () => 0.999999)).toBe(4800);
  });

  it('waits at least as long as a Retry-After asks (bounded to an hour)', () => {
    expect(backoffDelay(1, retry, () => 0.5, 45_000)).toBe(45_000);
    expect(backoffDelay(4, retry, () => 0.5, 10)).toBe(8000);
    expect(backoffDelay(1, retry, () => 0.5, 10 * 3_600_000)).toBe(3_600_000);
  });
});

describe('retryAfterMs', () => {
  const now = Date.UTC(2026, 0, 1);
  it('reads delta-seconds and HTTP dates', () => {
    expect(retryAfterMs('30', now)).toBe(30_000);
    expect(retryAfterMs(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
  });
});

describe('httpResult', () => {
  it('retries 408, 425, 429 and 5xx; other 4xx and redirects are permanent', () => {
    expect(httpResult(204, undefined)).toEqual({ ok: true });
    for (const s of [408, 425, 429, 500, 502, 503])
      expect(httpResult(s, undefined)).toMatchObject({ permanent: false });
    for (const s of [301, 400, 401, 403, 404, 410, 422])
      expect(httpResult(s, undefined)).toMatchObject({ permanent: true });
    expect(httpResult(429, 7000)).toEqual({
      ok: false,
      error: 'HTTP 429',
      permanent: false,
      retryAfterMs: 7000,
    });
  });
});
