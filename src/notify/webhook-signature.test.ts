import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhook } from './webhook-signature.js';

const now = Date.UTC(2026, 10, 25, 12, 0, 0);
const ts = Math.floor(now / 1000);
const body = '{"id":"msg_1","type":"approval.requested"}';

describe('Standard Webhooks signatures', () => {
  it('signs v1,base64(HMAC-SHA256(secret, id.timestamp.body)) with a raw secret', () => {
    const expected = createHmac('sha256', 'shh').update(`msg_1.${ts}.${body}`).digest('base64');
    expect(signWebhook('shh', 'msg_1', ts, body)).toBe(`v1,${expected}`);
  });

  it('keys a whsec_ secret with its base64-decoded bytes, as the spec does', () => {
    const key = Buffer.from('0123456789abcdef0123456789abcdef');
    const secret = `whsec_${key.toString('base64')}`;
    const expected = createHmac('sha256', key).update(`msg_1.${ts}.${body}`).digest('base64');
    expect(signWebhook(secret, 'msg_1', ts, body)).toBe(`v1,${expected}`);
  });

  const headers = (over: Record<string, string | undefined> = {}) => ({
    'webhook-id': 'msg_1',
    'webhook-timestamp': String(ts),
    'webhook-signature': signWebhook('shh', 'msg_1', ts, body),
    ...over,
  });

  it('verifies a delivery from plain headers and from a fetch Headers object', () => {
    expect(verifyWebhook('shh', headers(), body, 300_000, now)).toEqual({
      ok: true,
      id: 'msg_1',
      timestamp: ts,
    });
    const h = new Headers(headers() as Record<string, string>);
    expect(verifyWebhook('shh', h, body, 300_000, now).ok).toBe(true);
  });

  it('accepts any one of several space-separated signatures (key rotation)', () => {
    const sig = `v1,AAAA ${signWebhook('shh', 'msg_1', ts, body)}`;
    expect(verifyWebhook('shh', headers({ 'webhook-signature': sig }), body, 300_000, now).ok).toBe(true);
  });

  it('refuses a changed body, id or secret', () => {
    expect(verifyWebhook('shh', headers(), `${body} `, 300_000, now)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(verifyWebhook('shh', headers({ 'webhook-id': 'msg_2' }), body, 300_000, now).ok).toBe(false);
    expect(verifyWebhook('other', headers(), body, 300_000, now).ok).toBe(false);
  });

  it('refuses timestamps outside the tolerance, either way', () => {
    expect(verifyWebhook('shh', headers(), body, 300_000, now + 301_000)).toEqual({
      ok: false,
      reason: 'stale-timestamp',
    });
    expect(verifyWebhook('shh', headers(), body, 300_000, now - 301_000).ok).toBe(false);
    expect(verifyWebhook('shh', headers(), body, 300_000, now + 299_000).ok).toBe(true);
  });

  it('refuses missing or malformed headers', () => {
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      expect(verifyWebhook('shh', headers({ [name]: undefined }), body, 300_000, now)).toEqual({
        ok: false,
        reason: 'missing-headers',
      });
    }
    expect(verifyWebhook('shh', headers({ 'webhook-timestamp': '12e3' }), body, 300_000, now).ok).toBe(false);
  });
});
