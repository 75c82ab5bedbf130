/**
 * Linking a caller's AbortSignal to per-request controllers without piling up
 * listeners. The SDK adds an 'abort' listener to every request's signal and
 * never removes it, so one long-lived signal (a session's kill signal) shared
 * by many calls printed MaxListenersExceededWarning. Each request therefore
 * gets its own controller, and a caller signal carries at most ONE listener of
 * ours however many calls share it.
 */

const linked = new WeakMap<AbortSignal, Set<AbortController>>();

/** Aborts `controller` when `signal` aborts; returns the unlink function (call it when the request ends). */
export function linkAbort(signal: AbortSignal, controller: AbortController): () => void {
  if (signal.aborted) {
    controller.abort(signal.reason);
    return () => {};
  }
  let set = linked.get(signal);
  if (!set) {
    const members = new Set<AbortController>();
    set = members;
    linked.set(signal, members);
    signal.addEventListener(
      'abort',
      () => {
        linked.delete(signal);
        for (const c of members) c.abort(signal.reason);
        members.clear();
      },
      { once: true },
    );
  }
  set.add(controller);
  const members = set;
  return () => {
    members.delete(controller);
    // The listener stays registered while the signal is reachable; it is a single
    // closure over an empty set, and a later call on the same signal reuses it.
  };
}
