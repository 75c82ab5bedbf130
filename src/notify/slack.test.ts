import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import type { SecretRef } from '../config/index.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { approvalFixture, memoryLog, type Receiver, startReceiver } from './fixtures/receiver.js';
import { createNotifications, type Notifications } from './index.js';

const TOKEN = 'xoxb-test-token';
const POSTED = { status: 200, body: { ok: true, channel: 'C123', ts: '1764072000.000100' } } as const;

type Block = { type: string; elements?: Array<Record<string, unknown>>; text?: { text: string } };

describeEachDialect('notifications: Slack', (target) => {
  let store: Store;
  let slack: Receiver;
  let n: Notifications;
  const clock = new ManualClock();
  const log = memoryLog();

  beforeAll(async () => {
    store = await target.open();
    slack = await startReceiver(POSTED);
  });
  afterAll(async () => {
    await n?.close();
    await slack.close();
    await store.close();
    await target.cleanup();
  });
  beforeEach(async () => {
    await n?.close();
    await store.db.deleteFrom('notification_outbox').execute();
    await store.db.deleteFrom('notifier_messages').execute();
    slack.requests.length = 0;
    slack.replies.length = 0;
    slack.fallback = POSTED;
    log.lines.length = 0;
    n = createNotifications({
      store,
      clock,
      log,
      audit: async () => {},
      operators: [{ id: 'alice', name: 'Alice', roles: ['approver'], slackUserId: 'U0ALICE' }],
      random: () => 0.5,
      resolveSecret: async (ref: SecretRef) => {
        if ('env' in ref && ref.env === 'SLACK_BOT_TOKEN') return TOKEN;
        throw new Error('unexpected reference');
      },
      config: {
        slack: {
          botToken: { env: 'SLACK_BOT_TOKEN' },
          signingSecret: { env: 'SLACK_SIGNING_SECRET' },
          channel: '#approvals',
          apiUrl: `${slack.url}/api`,
          events: ['approval.requested', 'approval.decided', 'review.flagged'],
          timestampToleranceMs: 300_000,
        },
        webhooks: [],
        retry: { initialDelayMs: 1000, maxDelayMs: 4000 },
      },
    });
  });

  const body = (i: number) =>
    JSON.parse(slack.requests[i]!.body) as Record<string, unknown> & { blocks: Block[] };
  const actionsOf = (b: { blocks: Block[] }) => b.blocks.filter((x) => x.type === 'actions');
  const outbox = (event: string) =>
    store.db
      .selectFrom('notification_outbox')
      .selectAll()
      .where('event', '=', event)
      .executeTakeFirstOrThrow();

  it('posts a request with Approve and Deny buttons that carry the approval id, and remembers the message', async () => {
    const approval = approvalFixture();
    await n.notify('approval.requested', approval);
    expect(await n.deliverDue()).toBe(1);

    expect(slack.requests).toHaveLength(1);
    const req = slack.requests[0]!;
    expect(req.path).toBe('/api/chat.postMessage');
    expect(req.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req.headers['content-type']).toBe('application/json; charset=utf-8');
    const msg = body(0);
    expect(msg['channel']).toBe('#approvals');
    expect(msg['text']).toContain('payments.refund');
    expect(msg.blocks[0]).toMatchObject({
      type: 'header',
      text: { text: 'Approval needed: payments.refund' },
    });
    const [actions] = actionsOf(msg);
    expect(actions?.elements).toMatchObject([
      { type: 'button', action_id: 'warden_approve', style: 'primary', value: approval.id },
      {
        type: 'button',
        action_id: 'warden_deny',
        style: 'danger',
        value: approval.id,
        confirm: { style: 'danger' },
      },
    ]);

    expect(await store.db.selectFrom('notifier_messages').selectAll().execute()).toEqual([
      {
        approval_id: approval.id,
        target: 'slack',
        channel: 'C123',
        message_ts: '1764072000.000100',
        created_at: clock.now(),
      },
    ]);
    expect((await outbox('approval.requested')).status).toBe('sent');
    expect(JSON.stringify(log.lines)).not.toContain(TOKEN);
  });

  it('updates the posted message in place once decided, with the outcome and no buttons', async () => {
    const approval = approvalFixture();
    await n.notify('approval.requested', approval);
    await n.deliverDue();
    const decided = approvalFixture({
      status: 'approved',
      decidedAt: clock.now() + 60_000,
      decidedBy: 'operator:alice',
      decidedVia: 'slack',
      comment: 'ok <for> once',
    });
    await n.notify('approval.decided', decided);
    expect(await n.deliverDue()).toBe(1);

    expect(slack.requests[1]!.path).toBe('/api/chat.update');
    const update = body(1);
    expect(update).toMatchObject({ channel: 'C123', ts: '1764072000.000100' });
    expect(actionsOf(update)).toEqual([]);
    const text = JSON.stringify(update.blocks);
    expect(text).toContain('*Approved* by <@U0ALICE> via slack');
    expect(text).toContain('ok &lt;for&gt; once');
    expect(update.blocks[0]).toMatchObject({ type: 'header', text: { text: 'Approved: payments.refund' } });
  });

  it('posts the outcome as a new message when the request never reached Slack, and drops the request', async () => {
    slack.replies.push({ status: 500 });
    await n.notify('approval.requested', approvalFixture());
    expect(await n.deliverDue()).toBe(1); // fails; retried in 1 s
    await n.notify('approval.decided', approvalFixture({ status: 'expired', decidedBy: 'system:timeout' }));
    expect(await n.deliverDue()).toBe(1);

    expect(slack.requests.map((r) => r.path)).toEqual(['/api/chat.postMessage', '/api/chat.postMessage']);
    expect(actionsOf(body(1))).toEqual([]);
    expect(JSON.stringify(body(1).blocks)).toContain('*Expired*');
    expect(await outbox('approval.requested')).toMatchObject({
      status: 'sent',
      last_error: 'superseded by approval.decided',
    });
    clock.advance(60_000);
    expect(await n.deliverDue()).toBe(0); // no buttons for a decided request, ever
  });

  it('posts anew when the message to update is gone', async () => {
    await n.notify('approval.requested', approvalFixture());
    await n.deliverDue();
    slack.replies.push({ status: 200, body: { ok: false, error: 'message_not_found' } });
    await n.notify('approval.decided', approvalFixture({ status: 'denied', decidedBy: 'operator:bob' }));
    expect(await n.deliverDue()).toBe(1);
    expect(slack.requests.map((r) => r.path)).toEqual([
      '/api/chat.postMessage',
      '/api/chat.update',
      '/api/chat.postMessage',
    ]);
    expect((await outbox('approval.decided')).status).toBe('sent');
  });

  it('retries {ok:false, error:"ratelimited"} no sooner than Retry-After, then delivers', async () => {
    slack.replies.push({
      status: 200,
      headers: { 'retry-after': '20' },
      body: { ok: false, error: 'ratelimited' },
    });
    await n.notify('approval.requested', approvalFixture());
    expect(await n.deliverDue()).toBe(1);
    expect(await outbox('approval.requested')).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'chat.postMessage: ratelimited',
      next_attempt_at: clock.now() + 20_000,
    });
    clock.advance(19_999);
    expect(await n.deliverDue()).toBe(0);
    clock.advance(1);
    expect(await n.deliverDue()).toBe(1);
    expect((await outbox('approval.requested')).status).toBe('sent');
  });

  it('retries HTTP 429 and transient API errors; dead-letters invalid_auth and channel_not_found at once', async () => {
    slack.replies.push({
      status: 429,
      headers: { 'retry-after': '5' },
      body: { ok: false, error: 'ratelimited' },
    });
    await n.notify('approval.requested', approvalFixture({ id: 'apr_a' }));
    await n.deliverDue();
    expect(await outbox('approval.requested')).toMatchObject({
      status: 'pending',
      last_error: 'chat.postMessage: HTTP 429 ratelimited',
      next_attempt_at: clock.now() + 5000,
    });
    await store.db.deleteFrom('notification_outbox').execute();

    for (const [error, status] of [
      ['internal_error', 'pending'],
      ['invalid_auth', 'dead'],
      ['channel_not_found', 'dead'],
    ] as const) {
      slack.replies.push({ status: 200, body: { ok: false, error } });
      await n.notify(
        'review.flagged',
        approvalFixture({ id: `apr_${error}`, kind: 'review', status: 'flagged' }),
      );
      expect(await n.deliverDue()).toBe(1);
      expect(await outbox('review.flagged')).toMatchObject({
        status,
        last_error: `chat.postMessage: ${error}`,
      });
      await store.db.deleteFrom('notification_outbox').execute();
    }
  });

  it(`dead-letters after 8 failed attempts`, async () => {
    slack.fallback = { status: 503 };
    await n.notify('approval.requested', approvalFixture());
    for (let i = 0; i < 8; i++) {
      expect(await n.deliverDue()).toBe(1);
      clock.advance(4000);
    }
    expect(await outbox('approval.requested')).toMatchObject({ status: 'dead', attempts: 8 });
    expect(await n.deliverDue()).toBe(0);
  });

  it('posts a review flag with its details and no buttons, and updates it once reviewed', async () => {
    const review = approvalFixture({ kind: 'review', status: 'flagged' });
    await n.notify('review.flagged', review);
    await n.deliverDue();
    expect(body(0).blocks[0]).toMatchObject({ text: { text: 'Flagged for review: payments.refund' } });
    expect(actionsOf(body(0))).toEqual([]);
    expect(JSON.stringify(body(0).blocks)).toContain('Customer asked for a refund');

    await n.notify(
      'approval.decided',
      approvalFixture({
        kind: 'review',
        status: 'reviewed',
        verdict: 'concern',
        decidedBy: 'operator:alice',
      }),
    );
    await n.deliverDue();
    expect(slack.requests[1]!.path).toBe('/api/chat.update');
    expect(JSON.stringify(body(1).blocks)).toContain('*Reviewed* (verdict: concern) by <@U0ALICE>');
  });

  it('sends requests before their outcome when both are due in one pass', async () => {
    await n.notify('approval.requested', approvalFixture());
    await n.notify('approval.decided', approvalFixture({ status: 'approved', decidedBy: 'operator:alice' }));
    expect(await n.deliverDue()).toBe(2);
    expect(slack.requests.map((r) => r.path)).toEqual(['/api/chat.postMessage', '/api/chat.update']);
  });
});
