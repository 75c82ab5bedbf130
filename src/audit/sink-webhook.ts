/**
 * One delivery of a batch of audit entries to a webhook sink: a POST of
 * `{"sink": name, "entries": [...]}`, signed like the notifier webhooks
 * (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`)
 * when the sink has a secret. Only a 2xx counts; redirects are not followed
 * (a signed body goes where it was configured to, or nowhere).
 */
import { resolveSecret as resolveConfigSecret } from '../config/secrets.js';
import type { AuditSinkWebhook, SecretRef } from '../config/types.js';
import { retryAfterMs } from '../notify/attempt.js';
import { signWebhook } from '../notify/webhook-signature.js';
import { VERSION } from '../version.js';
import type { AuditEntry } from './types.js';

/** The JSON a sink receives. */
export interface SinkPayload {
  sink: string;
  /** In ascending seq, exactly as stored (hash, prevHash, actorType …). */
  entries: readonly AuditEntry[];
}

/** What one delivery came to. */
export type SinkDelivery = { ok: true } | { ok: false; error: string; retryAfterMs?: number };

export interface SinkDeliveryOptions {
  fetch?: typeof fetch;
  resolveSecret?: (ref: SecretRef) => Promise<string>;
  /** Aborts the attempt when the sinks shut down. */
  signal?: AbortSignal;
  now: number;
}

/** The `webhook-id` of a batch: the same for the same entries, so a receiver can drop a repeat. */
export function batchId(sink: string, entries: readonly AuditEntry[]): string {
  return `audit_${sink}_${entries[0]?.seq ?? 0}-${entries.at(-1)?.seq ?? 0}`;
}

/** POST `entries` to `sink` once. Never throws: every failure is a result to retry. */
export async function deliverBatch(
  sink: AuditSinkWebhook,
  entries: readonly AuditEntry[],
  opts: SinkDeliveryOptions,
): Promise<SinkDelivery> {
  const body = JSON.stringify({ sink: sink.name, entries } satisfies SinkPayload);
  const id = batchId(sink.name, entries);
  // The timestamp is this attempt's: a receiver's tolerance window must not expire a retry.
  const timestamp = Math.floor(opts.now / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': `warden/${VERSION}`,
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
  };
  if (sink.secret !== undefined) {
    try {
      const secret = await (opts.resolveSecret ?? resolveConfigSecret)(sink.secret);
      headers['webhook-signature'] = signWebhook(secret, id, timestamp, body);
    } catch (e) {
      // The message names the reference (variable or file), never the secret.
      return { ok: false, error: `secret unavailable: ${(e as Error).message}` };
    }
  }
  const signals = [AbortSignal.timeout(sink.timeoutMs), ...(opts.signal ? [opts.signal] : [])];
  try {
    const res = await (opts.fetch ?? fetch)(sink.url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.any(signals),
    });
    await res.body?.cancel().catch(() => {});
    if (res.status >= 200 && res.status < 300) return { ok: true };
    const retryAfter = retryAfterMs(res.headers.get('retry-after'), opts.now);
    // Redirects count as failures too: retried, alerted, never followed.
    const error =
      res.status >= 300 && res.status < 400
        ? `HTTP ${res.status} (redirects are not followed)`
        : `HTTP ${res.status}`;
    return retryAfter === undefined ? { ok: false, error } : { ok: false, error, retryAfterMs: retryAfter };
  } catch (e) {
    return { ok: false, error: fetchError(e, sink.timeoutMs) };
  }
}

/** A thrown fetch failure in a few words: a timeout, or the network error's code (ECONNREFUSED …). */
function fetchError(e: unknown, timeoutMs: number): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError') return `timed out after ${timeoutMs} ms`;
  if (err?.name === 'AbortError') return 'aborted (shutting down)';
  return err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(e);
}
