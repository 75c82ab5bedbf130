import { createHmac } from 'node:crypto';
import { Hono } from 'hono';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTarget } from '../../test/helpers/dialects.js';
import { AuditLog } from '../audit/index.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { approvalFixture, memoryLog, startReceiver } from './fixtures/receiver.js';
import { slackInteractions } from './index.js';
import type { ChatDecide, ChatDecisionOutcome } from './types.js';

const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const TOLERANCE = 300_000;
const URL = 'http://warden.test/notify/slack/interactions';

/** Slack's documented algorithm: v0= + hex HMAC-SHA256(signing secret, "v0:" + timestamp + ":" + body). */
function slackSign(timestamp: string, body: string, secret = SECRET): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

function formBody(payload: unknown): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

function buttonPress(actionId: string, approvalId = 'apr_0123456789abcdef', user = 'U0ALICE'): string {
  return formBody({
    type: 'block_actions',
    user: { id: user, username: 'alice' },
    actions: [{ action_id: actionId, block_id: 'warden_decision', value: approvalId, type: 'button' }],
    response_url: 'https://hooks.slack.com/actions/T/1/x',
  });
}

describe('Slack interactions', () => {
  const target = makeTarget('sqlite');
  let store: Store;
  let audit: AuditLog;
  const clock = new ManualClock();
  const log = memoryLog();
  let calls: Array<Parameters<ChatDecide>[0]>;
  let outcome: ChatDecisionOutcome | Error;
  let handler: (req: Request) => Promise<Response>;

  beforeAll(async () => {
    store = await target.open();
    audit = new AuditLog(store, { clock });
  });
  afterAll(async () => {
    await store.close();
    await target.cleanup();
  });
  beforeEach(() => {
    calls = [];
    log.lines.length = 0;
    outcome = { ok: true, approval: approvalFixture({ status: 'approved' }) };
    handler = slackInteractions({
      signingSecret: async () => SECRET,
      toleranceMs: TOLERANCE,
      decide: async (input) => {
        calls.push(input);
        if (outcome instanceof Error) throw outcome;
        return outcome;
      },
      audit: (input) => audit.append(input),
      clock,
      log,
    });
  });

  const nowSeconds = () => String(Math.floor(clock.now() / 1000));

  function request(body: string, headers: Record<string, string | undefined> = {}): Request {
    const ts = nowSeconds();
    const all: Record<string, string | undefined> = {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': ts,
      'x-slack-signature': slackSign(ts, body),
      ...headers,
    };
    const h = new Headers();
    for (const [k, v] of Object.entries(all)) if (v !== undefined) h.set(k, v);
    return new Request(URL, { method: 'POST', headers: h, body });
  }

  async function refusedWith(res: Response, code: string, status = 401) {
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { code: string; traceId: string } };
    expect(body.error.code).toBe(code);
    const [entry] = await audit.latest(1);
    expect(entry).toMatchObject({
      event: 'REQUEST_REJECTED',
      actorType: 'SYSTEM',
      actorId: 'slack',
      traceId: body.error.traceId,
      result: 'denied',
      decision: { allowed: false, code },
    });
    expect(calls).toEqual([]);
    return entry!;
  }

  it('verifies a correctly signed button press and decides with the approval id and Slack user', async () => {
    const res = await handler(request(buttonPress('warden_approve')));
    expect(res.status).toBe(200);
    expect(calls).toEqual([
      {
        approvalId: 'apr_0123456789abcdef',
        slackUserId: 'U0ALICE',
        action: 'approve',
        traceId: expect.any(String),
      },
    ]);
    const reply = (await res.json()) as Record<string, unknown>;
    expect(reply).toEqual({
      response_type: 'ephemeral',
      replace_original: false,
      text: 'You approved the call to *payments.refund* (request `apr_0123456789abcdef`).',
    });
  });

  it('maps Deny to a deny decision', async () => {
    outcome = { ok: true, approval: approvalFixture({ status: 'denied' }) };
    const res = await handler(request(buttonPress('warden_deny', 'apr_x', 'U0BOB')));
    expect(calls).toMatchObject([{ approvalId: 'apr_x', slackUserId: 'U0BOB', action: 'deny' }]);
    expect(((await res.json()) as { text: string }).text).toContain('You denied');
  });

  it('tells the presser why a decision was refused', async () => {
    const cases: Record<string, string> = {
      APPROVER_FORBIDDEN: 'not linked to an operator with the approver role',
      SELF_APPROVAL_FORBIDDEN: 'separation of duties',
      APPROVAL_ALREADY_DECIDED: 'decided already',
      APPROVAL_EXPIRED: 'expired',
      APPROVAL_NOT_FOUND: 'no such approval',
      SOMETHING_NEW: 'a &lt;new&gt; reason',
    };
    for (const [code, text] of Object.entries(cases)) {
      outcome = { ok: false, code, message: 'a <new> reason' };
      clock.advance(1000); // a fresh timestamp, so a fresh signature
      const res = await handler(request(buttonPress('warden_approve')));
      expect(res.status).toBe(200);
      const reply = (await res.json()) as { response_type: string; text: string };
      expect(reply.response_type).toBe('ephemeral');
      expect(reply.text).toContain(text);
    }
  });

  it('answers 200 with an apology when deciding fails', async () => {
    outcome = new Error('store down');
    const res = await handler(request(buttonPress('warden_approve')));
    expect(res.status).toBe(200);
    expect(((await res.json()) as { text: string }).text).toContain('could not record your decision');
    expect(log.lines.some((l) => l.level === 'error' && l.msg === 'slack decision failed')).toBe(true);
  });

  it('refuses a bad signature, audits it, and never decides', async () => {
    const body = buttonPress('warden_approve');
    const entry = await refusedWith(
      await handler(request(body, { 'x-slack-signature': slackSign(nowSeconds(), body, 'wrong-secret') })),
      'SLACK_SIGNATURE_INVALID',
    );
    expect(entry.decision).toEqual({
      allowed: false,
      code: 'SLACK_SIGNATURE_INVALID',
      rule: 'notify.slack-signature',
      reasons: ['The request is not signed by Slack'],
    });
    // A valid signature over another body is no better.
    await refusedWith(
      await handler(request(body, { 'x-slack-signature': slackSign(nowSeconds(), `${body}&x=1`) })),
      'SLACK_SIGNATURE_INVALID',
    );
    await refusedWith(
      await handler(request(body, { 'x-slack-signature': 'v0=00' })),
      'SLACK_SIGNATURE_INVALID',
    );
  });

  it('refuses missing signature or timestamp headers', async () => {
    const body = buttonPress('warden_approve');
    await refusedWith(
      await handler(request(body, { 'x-slack-signature': undefined })),
      'SLACK_SIGNATURE_INVALID',
    );
    await refusedWith(
      await handler(request(body, { 'x-slack-request-timestamp': undefined })),
      'SLACK_SIGNATURE_INVALID',
    );
    await refusedWith(
      await handler(request(body, { 'x-slack-request-timestamp': 'soon' })),
      'SLACK_SIGNATURE_INVALID',
    );
  });

  it('refuses timestamps outside the tolerance, in the past and in the future, even when signed', async () => {
    const body = buttonPress('warden_approve');
    for (const offset of [-TOLERANCE - 1000, TOLERANCE + 1000]) {
      const ts = String(Math.floor((clock.now() + offset) / 1000));
      await refusedWith(
        await handler(
          request(body, { 'x-slack-request-timestamp': ts, 'x-slack-signature': slackSign(ts, body) }),
        ),
        'SLACK_TIMESTAMP_STALE',
      );
    }
    // Just inside the window is fine.
    const ts = String(Math.floor((clock.now() - TOLERANCE + 1000) / 1000));
    const res = await handler(
      request(body, { 'x-slack-request-timestamp': ts, 'x-slack-signature': slackSign(ts, body) }),
    );
    expect(res.status).toBe(200);
  });

  it('refuses an exact replay of an accepted request', async () => {
    clock.advance(60_000);
    const body = buttonPress('warden_approve');
    const first = request(body);
    const again = request(body); // same timestamp, same signature
    expect((await handler(first)).status).toBe(200);
    expect(calls).toHaveLength(1);
    calls = [];
    await refusedWith(await handler(again), 'SLACK_REPLAYED');
    // Once the window has passed the timestamp check refuses it (the cache may forget it).
    clock.advance(TOLERANCE + 1000);
    const ts = String(Math.floor((clock.now() - TOLERANCE - 1000) / 1000));
    await refusedWith(
      await handler(
        request(body, { 'x-slack-request-timestamp': ts, 'x-slack-signature': slackSign(ts, body) }),
      ),
      'SLACK_TIMESTAMP_STALE',
    );
  });

  it('refuses an oversized body before verifying anything', async () => {
    const body = `payload=${'x'.repeat(70 * 1024)}`;
    const entry = await refusedWith(await handler(request(body)), 'PAYLOAD_TOO_LARGE', 413);
    expect(entry.decision?.rule).toBe('notify.slack-body-size');
  });

  it('acknowledges interactions that are not ours without deciding', async () => {
    for (const payload of [
      { type: 'view_submission', user: { id: 'U0ALICE' } },
      {
        type: 'block_actions',
        user: { id: 'U0ALICE' },
        actions: [{ action_id: 'something_else', value: 'x' }],
      },
    ]) {
      clock.advance(1000);
      const res = await handler(request(formBody(payload)));
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('');
    }
    expect(calls).toEqual([]);
  });

  it('answers 400 to a signed but malformed payload', async () => {
    for (const body of [
      'nopayload=1',
      'payload=%7Bnot-json',
      formBody({ type: 'block_actions', actions: [{ action_id: 'warden_approve', value: 'apr_1' }] }), // no user
      formBody({ type: 'block_actions', user: { id: 'U0A' }, actions: [{ action_id: 'warden_approve' }] }), // no id
    ]) {
      clock.advance(1000);
      const res = await handler(request(body));
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_REQUEST');
    }
    expect(calls).toEqual([]);
  });

  it('never logs the signing secret or the body', async () => {
    const body = buttonPress('warden_approve');
    await handler(request(body));
    await handler(request(body, { 'x-slack-signature': 'v0=bad' }));
    const logged = JSON.stringify(log.lines);
    expect(logged).not.toContain(SECRET);
    expect(logged).not.toContain('response_url');
  });

  it('works mounted in a Hono app, reading the raw body once', async () => {
    const app = new Hono();
    app.post('/notify/slack/interactions', (c) => handler(c.req.raw));
    clock.advance(1000);
    const req = request(buttonPress('warden_deny'));
    const res = await app.request(req);
    expect(res.status).toBe(200);
    expect(calls).toMatchObject([{ action: 'deny' }]);
  });

  it('resolves a secret reference per request', async () => {
    const h = slackInteractions({
      signingSecret: { env: 'SLACK_SIGNING' },
      resolveSecret: async () => SECRET,
      toleranceMs: TOLERANCE,
      decide: async (input) => {
        calls.push(input);
        return { ok: true, approval: approvalFixture({ status: 'approved' }) };
      },
      audit: (input) => audit.append(input),
      clock,
      log,
    });
    clock.advance(1000);
    expect((await h(request(buttonPress('warden_approve')))).status).toBe(200);
    expect(calls).toHaveLength(1);
  });

  it('posts the reply to the response_url (Slack shows no block_actions body), only to allowed origins', async () => {
    const receiver = await startReceiver();
    try {
      outcome = { ok: false, code: 'SELF_APPROVAL_FORBIDDEN', message: 'no' };
      const h = slackInteractions({
        signingSecret: async () => SECRET,
        toleranceMs: TOLERANCE,
        decide: async () => outcome as ChatDecisionOutcome,
        audit: (input) => audit.append(input),
        clock,
        log,
        responseUrlOrigins: [new globalThis.URL(receiver.url).origin],
      });
      const press = (responseUrl: string) =>
        formBody({
          type: 'block_actions',
          user: { id: 'U0ALICE' },
          actions: [{ action_id: 'warden_approve', value: 'apr_0123456789abcdef' }],
          response_url: responseUrl,
        });
      expect((await h(request(press(`${receiver.url}/actions/T/1/x`)))).status).toBe(200);
      await receiver.waitFor(1);
      const [posted] = receiver.requests;
      expect(posted?.path).toBe('/actions/T/1/x');
      expect(JSON.parse(posted!.body)).toMatchObject({ response_type: 'ephemeral', replace_original: false });
      expect(JSON.parse(posted!.body).text).toMatch(/trace/);
      // Elsewhere: not posted (a signed payload still does not get to send Warden anywhere).
      clock.advance(1000);
      expect((await h(request(press('https://evil.example/x')))).status).toBe(200);
      await new Promise((r) => setTimeout(r, 100));
      expect(receiver.requests).toHaveLength(1);
      expect(log.lines.some((l) => l.msg.includes('outside the allowed origins'))).toBe(true);
    } finally {
      await receiver.close();
    }
  });
});
