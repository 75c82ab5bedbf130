/**
 * Slack request signing (https://api.slack.com/authentication/verifying-requests-from-slack):
 * `v0=` + hex HMAC-SHA256(signing secret, `v0:${X-Slack-Request-Timestamp}:${raw body}`),
 * with the timestamp close to now, and (our addition) each accepted signature
 * usable once while its timestamp is still acceptable.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { WardenError } from '../errors.js';

/** The rule id a refused callback carries in its audit entry. */
export const SLACK_SIGNATURE_RULE = 'notify.slack-signature';

/** The `X-Slack-Signature` Slack would send for `rawBody` at `timestamp` (unix seconds, as sent). */
export function slackSignature(signingSecret: string, timestamp: string, rawBody: string): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
}

const refuse = (code: 'SLACK_SIGNATURE_INVALID' | 'SLACK_TIMESTAMP_STALE', message: string) =>
  new WardenError(code, message, { rule: SLACK_SIGNATURE_RULE });

/**
 * Refuse (throw) unless the timestamp header is present and within `toleranceMs`
 * of `now`, in either direction. Returns the timestamp in ms. Checked before the
 * body is read: a stale request costs us nothing.
 */
export function checkSlackTimestamp(timestamp: string | null, now: number, toleranceMs: number): number {
  if (timestamp === null || !/^\d{1,12}$/.test(timestamp)) {
    throw refuse('SLACK_SIGNATURE_INVALID', 'The request is not signed by Slack');
  }
  const ms = Number(timestamp) * 1000;
  if (Math.abs(now - ms) > toleranceMs) {
    throw refuse('SLACK_TIMESTAMP_STALE', 'The request timestamp is too far from the current time');
  }
  return ms;
}

/** Refuse (throw) unless `signature` is the one Slack would send (constant-time compare). */
export function checkSlackSignature(
  signingSecret: string,
  timestamp: string,
  rawBody: string,
  signature: string | null,
): void {
  const expected = Buffer.from(slackSignature(signingSecret, timestamp, rawBody));
  const given = Buffer.from(signature ?? '');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw refuse('SLACK_SIGNATURE_INVALID', 'The request is not signed by Slack');
  }
}

/**
 * Signatures accepted recently, each kept until its timestamp leaves the
 * tolerance window (after that the timestamp check refuses a replay anyway).
 * Bounded: past `max` entries the oldest go first. Per process — a replay to
 * another replica passes this check, but the decision it carries was taken
 * already and the first decision wins.
 */
export class ReplayCache {
  private readonly seen = new Map<string, number>();

  constructor(private readonly max = 10_000) {}

  /** Record `signature` until `until` (ms); false when it was recorded already and has not lapsed. */
  accept(signature: string, until: number, now: number): boolean {
    // Insertion order follows arrival, so lapsed entries gather at the front.
    for (const [key, expires] of this.seen) {
      if (expires >= now) break;
      this.seen.delete(key);
    }
    const prior = this.seen.get(signature);
    if (prior !== undefined && prior >= now) return false;
    this.seen.set(signature, until);
    if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value as string);
    return true;
  }
}
