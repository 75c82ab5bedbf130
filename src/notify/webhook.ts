/**
 * Webhook notifier: the Standard Webhooks envelope, queued as the exact body to
 * send, and one signed POST per attempt. The outbox id is the `webhook-id`, the
 * same on every retry, so a receiver that saw it already can drop the repeat.
 */
import type { Approval } from '../approvals/index.js';
import type { ApprovalNotifyEvent, NotifyEvent, SecretRef, WebhookNotifierConfig } from '../config/index.js';
import { VERSION } from '../version.js';
import { type AttemptResult, discardBody, fetchFailure, httpResult, retryAfterMs } from './attempt.js';
import type { SecurityAlert } from './types.js';
import { signWebhook } from './webhook-signature.js';

/** The JSON a webhook receiver gets. */
export interface WebhookEnvelope {
  /** The outbox id; equals the `webhook-id` header. */
  id: string;
  type: NotifyEvent;
  /** When the event happened (ISO 8601); retries keep it. */
  timestamp: string;
  /** `approval` for approval events, `alert` for `security.alert`. */
  data: { approval: Approval } | { alert: SecurityAlert & { suppressedBefore?: number } };
}

/** The body queued for a webhook target about a security alert. */
export function alertWebhookBody(id: string, alert: SecurityAlert, now: number): string {
  const envelope: WebhookEnvelope = {
    id,
    type: 'security.alert',
    timestamp: new Date(now).toISOString(),
    data: { alert },
  };
  return JSON.stringify(envelope);
}

/** The body queued for a webhook target. */
export function webhookBody(id: string, event: ApprovalNotifyEvent, approval: Approval, now: number): string {
  const envelope: WebhookEnvelope = {
    id,
    type: event,
    timestamp: new Date(now).toISOString(),
    data: { approval },
  };
  return JSON.stringify(envelope);
}

export interface WebhookAttempt {
  target: WebhookNotifierConfig;
  /** The outbox id (the `webhook-id`). */
  id: string;
  /** The queued body, sent byte for byte as signed. */
  body: string;
  now: number;
  resolveSecret: (ref: SecretRef) => Promise<string>;
  fetch: typeof fetch;
  /** Aborts the attempt when the notifier shuts down. */
  signal: AbortSignal;
}

/** One signed POST of a queued webhook body. */
export async function deliverWebhook(a: WebhookAttempt): Promise<AttemptResult> {
  let secret: string;
  try {
    secret = await a.resolveSecret(a.target.secret);
  } catch (e) {
    // The message names the reference (variable or file), never the secret; fixing it needs no restart.
    return { ok: false, error: `secret unavailable: ${(e as Error).message}`, permanent: false };
  }
  // The timestamp is this attempt's: a receiver's tolerance window must not expire a retry.
  const timestamp = Math.floor(a.now / 1000);
  try {
    const res = await a.fetch(a.target.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': `warden/${VERSION}`,
        'webhook-id': a.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(secret, a.id, timestamp, a.body),
      },
      body: a.body,
      redirect: 'manual',
      signal: AbortSignal.any([AbortSignal.timeout(a.target.timeoutMs), a.signal]),
    });
    await discardBody(res);
    return httpResult(res.status, retryAfterMs(res.headers.get('retry-after'), a.now));
  } catch (e) {
    return fetchFailure(e, a.target.timeoutMs);
  }
}
