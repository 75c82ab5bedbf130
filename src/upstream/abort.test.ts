import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { linkAbort } from './abort.js';

describe('linkAbort', () => {
  it('adds one listener to a shared signal however many requests link to it', () => {
    const shared = new AbortController();
    const controllers = Array.from({ length: 50 }, () => new AbortController());
    const unlinks = controllers.map((c) => linkAbort(shared.signal, c));
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(1);
    unlinks[0]?.();
    shared.abort(new Error('kill'));
    expect(controllers[0]?.signal.aborted).toBe(false);
    expect(controllers.slice(1).every((c) => c.signal.aborted)).toBe(true);
    expect(controllers[1]?.signal.reason).toEqual(new Error('kill'));
  });

  it('aborts at once when the signal is already aborted', () => {
    const c = new AbortController();
    linkAbort(AbortSignal.abort('gone'), c);
    expect(c.signal.aborted).toBe(true);
    expect(c.signal.reason).toBe('gone');
  });
});
