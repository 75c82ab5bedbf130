/**
 * Times audit appends into `warden_audit_append_seconds{durable}` from the
 * outside: the log's own logic (group commit, hash chain) is not touched, and
 * what is measured is what a caller waits for — queueing included.
 */

/** The one method of the audit log the pipeline uses. */
interface Appender<I, E> {
  append(input: I, opts?: { durable?: boolean; retain?: boolean }): Promise<E>;
}

/** `log` with each append timed into `metrics` (failed appends too: a slow failure is still slow). */
export function timedAppends<I, E>(
  log: Appender<I, E>,
  metrics: { auditAppend(durable: boolean, seconds: number): void },
): Appender<I, E> {
  return {
    async append(input, opts) {
      const t0 = performance.now();
      try {
        return await log.append(input, opts);
      } finally {
        metrics.auditAppend(opts?.durable !== false, (performance.now() - t0) / 1000);
      }
    },
  };
}
