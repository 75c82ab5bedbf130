/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature
 * scheme"): `v1,` + base64 HMAC-SHA256 over `${webhook-id}.${webhook-timestamp}.${body}`.
 * A secret written `whsec_<base64>` is the spec's own form and keys the HMAC
 * with the decoded bytes; any other secret keys it with its UTF-8 bytes (the
 * reference libraries' "raw" format). Receivers can verify with `verifyWebhook`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The HMAC key a configured secret stands for. */
function keyOf(secret: string): Buffer {
  return secret.startsWith('whsec_')
    ? Buffer.from(secret.slice('whsec_'.length), 'base64')
    : Buffer.from(secret);
}

/** The `webhook-signature` header value for one delivery: `v1,<base64 HMAC-SHA256>`. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** Headers as a receiver may hold them: a fetch `Headers`, or a plain (e.g. node:http) record. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

/** The outcome of `verifyWebhook`. */
export type WebhookVerification =
  | { ok: true; id: string; timestamp: number }
  | { ok: false; reason: 'missing-headers' | 'stale-timestamp' | 'bad-signature' };

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const v = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Check a delivery as a receiver should: the three `webhook-*` headers present,
 * the timestamp within `toleranceMs` of `now` (ms) either way, and one of the
 * space-separated `v1,` signatures matching (compared in constant time).
 */
export function verifyWebhook(
  secret: string,
  headers: WebhookHeaders,
  body: string,
  toleranceMs: number,
  now: number,
): WebhookVerification {
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !ts || !signatures || !/^\d{1,15}$/.test(ts)) return { ok: false, reason: 'missing-headers' };
  const timestamp = Number(ts);
  if (Math.abs(now - timestamp * 1000) > toleranceMs) return { ok: false, reason: 'stale-timestamp' };
  const expected = Buffer.from(signWebhook(secret, id, timestamp, body).slice('v1,'.length), 'base64');
  for (const candidate of signatures.split(' ')) {
    if (!candidate.startsWith('v1,')) continue;
    const given = Buffer.from(candidate.slice('v1,'.length), 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected))
      return { ok: true, id, timestamp };
  }
  return { ok: false, reason: 'bad-signature' };
}
