/** Polling for end-to-end tests: wait until something a gateway does in the background is visible. */

/** Resolves with `f()`'s first defined value; rejects after `ms` (bounded: no test hangs on it). */
export async function until<T>(f: () => T | undefined | Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
