/**
 * oidc-provider runs each request inside its own AsyncLocalStorage (what its
 * `Provider.ctx` reads). On Node 20 an enabled AsyncLocalStorage switches the
 * process's promise hooks on, and they stay on: after the first token request
 * every promise of every tool call paid for them. This turns the provider's
 * storage off whenever no OAuth request is in flight; its next request turns
 * it back on (AsyncLocalStorage.run does).
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { ServerResponse } from 'node:http';

/** The provider's storage once loaded; null when this version of oidc-provider does not have it. */
let storage: AsyncLocalStorage<unknown> | null | undefined;
let inFlight = 0;

/** Loads the provider's storage (once; before the first request is handled). */
export async function loadProviderContext(): Promise<void> {
  if (storage !== undefined) return;
  try {
    const mod = (await import('oidc-provider/lib/helpers/als.js')) as { default?: unknown };
    const als = mod.default as AsyncLocalStorage<unknown> | undefined;
    storage = als && typeof als.disable === 'function' ? als : null;
  } catch {
    storage = null; // another layout: the hooks stay on, nothing else changes
  }
}

/** Counts one OAuth request handled by the provider until its response has closed. */
export function trackProviderRequest(res: ServerResponse): void {
  inFlight++;
  res.once('close', () => {
    inFlight--;
    if (inFlight === 0) storage?.disable();
  });
}

/** OAuth requests in flight (tests). */
export function providerRequestsInFlight(): number {
  return inFlight;
}
