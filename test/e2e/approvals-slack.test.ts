/**
 * Approvals through chat, end to end: a gateway whose Slack notifier talks to a
 * local stand-in for Slack's Web API posts a held call with Approve / Deny
 * buttons; a signed button press from the operator's Slack account decides it
 * and the waiting caller goes on; the message is then updated with the outcome.
 * Forged, stale, replayed and unmapped presses decide nothing and are audited.
 * A webhook receiver gets the same events, signed (Standard Webhooks).
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Approval } from '../../src/approvals/types.js';
import type { AuditEntry } from '../../src/audit/index.js';
import { type Receiver, startReceiver } from '../../src/notify/fixtures/receiver.js';
import { verifyWebhook } from '../../src/notify/index.js';
import { TIME_SCALE, waitFor } from '../helpers/cli-process.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ENV = {
  bot: 'WARDEN_E2E_SLACK_BOT_TOKEN',
  signing: 'WARDEN_E2E_SLACK_SIGNING_SECRET',
  hook: 'WARDEN_E2E_WEBHOOK_SECRET',
} as const;
const BOT_TOKEN = 'xoxb-e2e-0000-token';
const SIGNING_SECRET = 'e2e8f742231b10e8888abcd99yyyzzz8';
const HOOK_SECRET = 'whsec_ZTJlLXdlYmhvb2stc2VjcmV0LTAxMjM0NTY3ODlhYg==';
const CHANNEL_ID = 'C0APPROVALS';
const MESSAGE_TS = '1764072000.000100';
const TOLERANCE_MS = 5 * 60_000;

interface SlackButton {
  action_id: string;
  value: string;
}
interface SlackBody {
  channel: string;
  ts?: string;
  text: string;
  blocks: Array<{ type: string; block_id?: string; elements?: SlackButton[] }>;
}

const refund = (tag: string, amountCents: number) => ({
  orderId: 'ORD-9TQ3LM7A',
  amountCents,
  reason: `slack ${tag}`,
});

describe('approvals through Slack and webhooks', { timeout: 60_000 * TIME_SCALE }, () => {
  const target = makeTarget('sqlite');
  let slack: Receiver;
  let hook: Receiver;
  let t: TestGateway;
  let agentToken: string;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    for (const name of Object.values(ENV)) saved[name] = process.env[name];
    process.env[ENV.bot] = BOT_TOKEN;
    process.env[ENV.signing] = SIGNING_SECRET;
    process.env[ENV.hook] = HOOK_SECRET;
    slack = await startReceiver({ status: 200, body: { ok: true, channel: CHANNEL_ID, ts: MESSAGE_TS } });
    hook = await startReceiver({ status: 204 });
    t = await startTestGateway(target, (config) => {
      config.operators = [
        { id: 'alice', roles: ['approver'], slackUserId: 'U0ALICE' },
        { id: 'bob', roles: ['approver'] },
      ];
      config.approvals.timeoutMs = 60_000;
      config.notifiers.slack = {
        botToken: { env: ENV.bot },
        signingSecret: { env: ENV.signing },
        channel: '#approvals',
        apiUrl: `${slack.url}/api`,
        events: ['approval.requested', 'approval.decided', 'review.flagged'],
        timestampToleranceMs: TOLERANCE_MS,
      };
      config.notifiers.webhooks = [
        {
          name: 'ops',
          url: `${hook.url}/hooks/warden`,
          secret: { env: ENV.hook },
          events: ['approval.requested', 'approval.decided'],
          maxAttempts: 3,
          timeoutMs: 2_000,
        },
      ];
    });
    agentToken = await t.operatorToken('demo-support');
  });
  afterAll(async () => {
    await t?.close();
    await slack?.close();
    await hook?.close();
    await target.cleanup();
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  const rest = async (parameters: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const res = await fetch(`${t.gw.url}/v1/tool-calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ toolName: 'issue_refund', parameters, ...extra }),
    });
    // biome-ignore lint/suspicious/noExplicitAny: assertions read arbitrary JSON fields
    return { status: res.status, body: (await res.json()) as any };
  };

  /** The Slack API calls made about `approvalId`, in order (waits until there are `n`). */
  async function slackCalls(
    approvalId: string,
    n: number,
  ): Promise<Array<{ path: string; body: SlackBody }>> {
    const mine = () =>
      slack.requests
        .map((r) => ({ path: r.path, auth: r.headers.authorization, body: JSON.parse(r.body) as SlackBody }))
        .filter((r) => JSON.stringify(r.body).includes(approvalId));
    expect(await waitFor(() => mine().length >= n, 10_000), `${n} Slack calls about ${approvalId}`).toBe(
      true,
    );
    const calls = mine();
    for (const c of calls) expect(c.auth).toBe(`Bearer ${BOT_TOKEN}`);
    return calls;
  }

  async function pendingFor(reason: string): Promise<Approval> {
    let found: Approval | undefined;
    const ok = await waitFor(async () => {
      found = (await t.gw.approvals.list({ status: 'pending' })).find(
        (a) => (a.arguments as { reason?: string }).reason === reason,
      );
      return found !== undefined;
    }, 10_000);
    expect(ok).toBe(true);
    return found!;
  }

  const buttons = (msg: SlackBody) =>
    msg.blocks.filter((b) => b.type === 'actions').flatMap((b) => b.elements ?? []);

  /** A button press as Slack sends it: a form field `payload` holding the interaction JSON. */
  function press(button: SlackButton, slackUserId: string): string {
    return new URLSearchParams({
      payload: JSON.stringify({
        type: 'block_actions',
        user: { id: slackUserId, username: slackUserId.toLowerCase() },
        channel: { id: CHANNEL_ID },
        message: { ts: MESSAGE_TS },
        actions: [{ ...button, block_id: 'warden_decision', type: 'button', action_ts: '1764072001.0001' }],
        response_url: 'https://hooks.slack.com/actions/T0/1/x',
      }),
    }).toString();
  }

  /** Slack's documented signature, computed here independently of Warden's code. */
  const sign = (timestamp: string, body: string, secret = SIGNING_SECRET) =>
    `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  const nowSeconds = (offsetMs = 0) => String(Math.floor((t.clock.now() + offsetMs) / 1000));

  async function callback(body: string, headers: { timestamp?: string; signature?: string } = {}) {
    const timestamp = headers.timestamp ?? nowSeconds();
    const res = await fetch(`${t.gw.url}/notify/slack/interactions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': timestamp,
        'x-slack-signature': headers.signature ?? sign(timestamp, body),
      },
      body,
    });
    const text = await res.text();
    // biome-ignore lint/suspicious/noExplicitAny: assertions read arbitrary JSON fields
    return { status: res.status, text, json: JSON.parse(text) as any };
  }

  const audit = () => t.gw.audit.read({ limit: 10_000 });
  const about = (entries: AuditEntry[], id: string) =>
    entries.filter((e) => (e.data as Record<string, unknown> | null)?.approvalId === id);

  it('posts the held call with buttons; the mapped operator approves in Slack; the call runs; the message shows it', async () => {
    const args = refund('approve', 1_500);
    const waiting = rest(args);
    const request = await pendingFor(args.reason);

    const [posted] = await slackCalls(request.id, 1);
    expect(posted?.path).toBe('/api/chat.postMessage');
    expect(posted?.body).toMatchObject({ channel: '#approvals' });
    expect(posted?.body.text).toContain('issue_refund');
    expect(posted?.body.blocks[0]).toMatchObject({ type: 'header' });
    const [approve, deny] = buttons(posted!.body);
    expect(approve).toMatchObject({ action_id: 'warden_approve', value: request.id, style: 'primary' });
    expect(deny).toMatchObject({ action_id: 'warden_deny', value: request.id, style: 'danger' });
    expect(JSON.stringify(posted?.body.blocks)).toContain(args.reason);

    const answer = await callback(press(approve!, 'U0ALICE'));
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(answer.json.text).toContain('You approved');
    expect(answer.json.text).toContain(request.id);

    const ran = await waiting;
    expect(ran.status, JSON.stringify(ran.body)).toBe(200);
    expect(ran.body.result.structuredContent).toMatchObject({ amountCents: 1_500, status: 'issued' });

    const [, updated] = await slackCalls(request.id, 2);
    expect(updated?.path).toBe('/api/chat.update');
    expect(updated?.body).toMatchObject({ channel: CHANNEL_ID, ts: MESSAGE_TS });
    expect(buttons(updated!.body)).toEqual([]);
    expect(updated?.body.text).toMatch(/^Approved: issue_refund/);
    expect(JSON.stringify(updated?.body.blocks)).toContain('*Approved* by <@U0ALICE> via slack');

    const [granted] = about(await audit(), request.id).filter((e) => e.event === 'APPROVAL_GRANTED');
    expect(granted).toMatchObject({ actorType: 'HUMAN', actorId: 'operator:alice' });
    expect(granted?.data).toMatchObject({ via: 'slack', requestTraceId: request.traceId });
    expect((await t.gw.approvals.get(request.id))?.decidedVia).toBe('slack');

    // The webhook receiver heard both events, signed so that it can check them.
    expect(
      await waitFor(() => hook.requests.filter((r) => r.body.includes(request.id)).length >= 2, 10_000),
    ).toBe(true);
    const deliveries = hook.requests.filter((r) => r.body.includes(request.id));
    const types = deliveries.map((r) => {
      expect(r.path).toBe('/hooks/warden');
      expect(verifyWebhook(HOOK_SECRET, r.headers, r.body, TOLERANCE_MS, t.clock.now())).toMatchObject({
        ok: true,
        id: r.headers['webhook-id'],
      });
      expect(verifyWebhook('whsec_b3RoZXI=', r.headers, r.body, TOLERANCE_MS, t.clock.now())).toEqual({
        ok: false,
        reason: 'bad-signature',
      });
      const envelope = JSON.parse(r.body) as { id: string; type: string; data: { approval: Approval } };
      expect(envelope.id).toBe(r.headers['webhook-id']);
      expect(envelope.data.approval.id).toBe(request.id);
      return [envelope.type, envelope.data.approval.status];
    });
    expect(types).toEqual([
      ['approval.requested', 'pending'],
      ['approval.decided', 'approved'],
    ]);
  });

  it('refuses unmapped, forged, stale and replayed presses without deciding; each is audited', async () => {
    const args = refund('refusals', 1_600);
    const first = await rest(args, { approval: 'pending' });
    expect(first.status).toBe(202);
    const id = first.body.error.approvalId as string;
    const [posted] = await slackCalls(id, 1);
    const [approve, deny] = buttons(posted!.body);

    // A Slack user no operator is linked to: told so (ephemeral), refused, audited.
    const strangerBody = press(approve!, 'U0MALLORY');
    const strangerTs = nowSeconds();
    const stranger = await callback(strangerBody, { timestamp: strangerTs });
    expect(stranger.status, stranger.text).toBe(200);
    expect(stranger.json.text).toContain('not linked to an operator');
    const [rejected] = about(await audit(), id).filter((e) => e.event === 'REQUEST_REJECTED');
    expect(rejected).toMatchObject({
      actorType: 'HUMAN',
      actorId: 'operator:slack:U0MALLORY',
      result: 'denied',
      decision: { allowed: false, code: 'APPROVER_FORBIDDEN' },
    });
    expect(rejected?.data).toMatchObject({ via: 'slack', action: 'approve' });

    // The exact same request again is a replay.
    const replay = await callback(strangerBody, { timestamp: strangerTs });
    expect([replay.status, replay.json.error?.code]).toEqual([401, 'SLACK_REPLAYED']);

    // Alice's press, but not signed with the signing secret.
    const aliceBody = press(approve!, 'U0ALICE');
    const forged = await callback(aliceBody, { signature: sign(nowSeconds(), aliceBody, 'guessed-secret') });
    expect([forged.status, forged.json.error?.code], forged.text).toEqual([401, 'SLACK_SIGNATURE_INVALID']);
    // Correctly signed, but ten minutes old (outside the five-minute window).
    const oldTs = nowSeconds(-10 * 60_000);
    const stale = await callback(aliceBody, { timestamp: oldTs, signature: sign(oldTs, aliceBody) });
    expect([stale.status, stale.json.error?.code], stale.text).toEqual([401, 'SLACK_TIMESTAMP_STALE']);
    const unsigned = await callback(aliceBody, { signature: '' });
    expect(unsigned.json.error?.code).toBe('SLACK_SIGNATURE_INVALID');

    const entries = await audit();
    for (const r of [replay, forged, stale]) {
      const traceId = r.json.error.traceId as string;
      expect(r.text).not.toContain(SIGNING_SECRET);
      expect(entries.filter((e) => e.traceId === traceId)).toEqual([
        expect.objectContaining({
          event: 'REQUEST_REJECTED',
          actorType: 'SYSTEM',
          actorId: 'slack',
          decision: expect.objectContaining({ code: r.json.error.code, rule: 'notify.slack-signature' }),
        }),
      ]);
    }
    expect((await t.gw.approvals.get(id))?.status).toBe('pending');
    expect(about(entries, id).some((e) => e.event === 'APPROVAL_GRANTED')).toBe(false);

    // Alice's genuine Deny press does decide; the agent's retry hears it; the message says so.
    const denied = await callback(press(deny!, 'U0ALICE'));
    expect(denied.json.text).toContain('You denied');
    const retry = await rest(args, { approvalId: id });
    expect([retry.status, retry.body.error?.code]).toEqual([403, 'APPROVAL_DENIED']);
    const [, updated] = await slackCalls(id, 2);
    expect(updated?.path).toBe('/api/chat.update');
    expect(updated?.body.text).toMatch(/^Denied: issue_refund/);

    // A late press on a decided request changes nothing and says why.
    const late = await callback(press(approve!, 'U0ALICE'));
    expect(late.json.text).toContain('decided already');
    expect((await t.gw.approvals.get(id))?.status).toBe('denied');
  });

  it('a flagged medium-risk call is posted for review, without buttons', async () => {
    const traceId = 'slack-review-0001';
    const res = await fetch(`${t.gw.url}/v1/tool-calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        toolName: 'create_support_ticket',
        parameters: { subject: 'Parcel', body: 'Where is it?' },
        traceId,
      }),
    });
    expect(res.status).toBe(200);
    const review = (await t.gw.approvals.list({ kind: 'review' })).find((a) => a.traceId === traceId);
    expect(review).toBeDefined();
    const [posted] = await slackCalls(review!.id, 1);
    expect(posted?.path).toBe('/api/chat.postMessage');
    expect(posted?.body.text).toMatch(/^Flagged for review: create_support_ticket/);
    expect(buttons(posted!.body)).toEqual([]);
  });
});
