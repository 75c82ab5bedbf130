/**
 * A reading taken for a scrape (approvals waiting in the store, breakers open
 * in the monitor), at most once per `ttlMs` however many scrapes ask: a scrape
 * storm must not become a store storm. A failed or slow reading gives
 * `undefined` — the scrape still answers — and is cached like a good one, so a
 * store that is down is asked once per period, not once per scrape.
 */

export interface CachedReadingOptions {
  /** How long a reading is reused. */
  ttlMs: number;
  /** A reading slower than this is given up on (the scrape answers without it). */
  timeoutMs: number;
  /** The time, in ms (the gateway's clock). */
  now: () => number;
  /** Told about each failed or abandoned reading (counted by the caller). */
  onError: (e: unknown) => void;
}

export class CachedReading<T> {
  private value: T | undefined;
  private takenAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<T | undefined> | undefined;

  constructor(
    private readonly read: () => T | Promise<T>,
    private readonly opts: CachedReadingOptions,
  ) {}

  /** The last reading while it is fresh, else a new one (shared by every scrape that asks meanwhile). */
  get(): Promise<T | undefined> {
    const age = this.opts.now() - this.takenAt;
    // A clock set back makes the age negative: read again rather than trust the cache until it catches up.
    if (age >= 0 && age < this.opts.ttlMs) return Promise.resolve(this.value);
    this.pending ??= this.refresh().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async refresh(): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`reading took longer than ${this.opts.timeoutMs} ms`)),
          this.opts.timeoutMs,
        );
        timer.unref?.();
      });
      this.value = await Promise.race([Promise.resolve().then(this.read), timeout]);
    } catch (e) {
      this.value = undefined;
      this.opts.onError(e);
    } finally {
      clearTimeout(timer);
    }
    this.takenAt = this.opts.now();
    return this.value;
  }
}
