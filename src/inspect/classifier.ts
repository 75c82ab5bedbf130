/**
 * A pluggable injection classifier (issue #7): operators who run a model put
 * it behind an HTTP endpoint; Warden posts the text and reads a score. The
 * heuristics stay on; the classifier's score joins them. Every failure mode
 * (timeout, refused connection, 5xx, a body that is not the contract) is
 * answered by the configured fail mode: `closed` counts the text as an attack
 * (score 1), `open` as unknown (no score) — and says which happened.
 *
 * Contract: `POST <url>` with `{"text": "…", "source": "input"|"tool-result"}`;
 * the answer is `{"score": <0..1>}` (extra members are ignored).
 */

export interface ClassifierConfig {
  url: string;
  /** Give up after this long (default 1 s): a slow model must not hold every call. */
  timeoutMs?: number;
  /** What a failure means: `closed` = treat as an attack, `open` = no opinion. Default closed. */
  failMode?: 'open' | 'closed';
  /** Sent with every request (e.g. an API key), already resolved. */
  headers?: Record<string, string>;
  /** Texts longer than this are cut before sending (default 32 KiB). */
  maxChars?: number;
  fetch?: typeof fetch;
}

export type ClassifierVerdict =
  | { ok: true; score: number }
  | { ok: false; reason: string; failMode: 'open' | 'closed'; score: number | null };

/** Builds a classifier for `config`. */
export function httpClassifier(config: ClassifierConfig) {
  const timeoutMs = config.timeoutMs ?? 1000;
  const failMode = config.failMode ?? 'closed';
  const maxChars = config.maxChars ?? 32 * 1024;
  const doFetch = config.fetch ?? globalThis.fetch;
  const fail = (reason: string): ClassifierVerdict => ({
    ok: false,
    reason,
    failMode,
    score: failMode === 'closed' ? 1 : null,
  });
  return {
    async classify(text: string, source: 'input' | 'tool-result' = 'input'): Promise<ClassifierVerdict> {
      let res: Response;
      try {
        res = await doFetch(config.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...config.headers },
          body: JSON.stringify({ text: text.slice(0, maxChars), source }),
          signal: AbortSignal.timeout(timeoutMs),
          redirect: 'error',
        });
      } catch (e) {
        const name = (e as { name?: string }).name;
        return fail(
          name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `unreachable (${name ?? 'error'})`,
        );
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        return fail(`HTTP ${res.status}`);
      }
      let body: unknown;
      try {
        body = await res.json();
      } catch {
        return fail('the answer is not JSON');
      }
      const score = (body as { score?: unknown } | null)?.score;
      if (typeof score !== 'number' || !Number.isFinite(score) || score < 0 || score > 1) {
        return fail('the answer has no score between 0 and 1');
      }
      return { ok: true, score };
    },
  };
}
