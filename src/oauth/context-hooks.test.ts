import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import als from 'oidc-provider/lib/helpers/als.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadProviderContext, providerRequestsInFlight, trackProviderRequest } from './context-hooks.js';

const response = () => new EventEmitter() as unknown as ServerResponse;

describe("oidc-provider's request context", () => {
  afterEach(() => vi.restoreAllMocks());

  it('is turned off once the last OAuth request in flight has closed, not before', async () => {
    await loadProviderContext();
    const disable = vi.spyOn(als, 'disable');
    const [a, b] = [response(), response()];
    trackProviderRequest(a);
    trackProviderRequest(b);
    expect(providerRequestsInFlight()).toBe(2);
    a.emit('close');
    expect(disable).not.toHaveBeenCalled(); // b still runs inside it
    b.emit('close');
    expect(disable).toHaveBeenCalledTimes(1);
    expect(providerRequestsInFlight()).toBe(0);
  });

  it('comes back on with the next request (AsyncLocalStorage.run), its store in view', async () => {
    await loadProviderContext();
    als.disable();
    const seen = await als.run({ request: 'next' }, async () => {
      await Promise.resolve();
      return als.getStore();
    });
    expect(seen).toEqual({ request: 'next' });
  });
});
