import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import type { SecretRef, WebhookNotifierConfig } from '../config/index.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { VERSION } from '../version.js';
import { approvalFixture, memoryLog, type Receiver, startReceiver } from './fixtures/receiver.js';
import { createNotifications, type NotificationsDeps, verifyWebhook } from './index.js';

const SECRET = 'whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=';
const ALL_EVENTS = ['approval.requested', 'approval.decided', 'review.flagged'] as const;

describeEachDialect('notifications: webhook delivery', (target) => {
  let store: Store;
  let hook: Receiver;
  const clock = new ManualClock();
  const log = memoryLog();
  const open: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    store = await target.open();
    hook = await startReceiver();
  });
  afterAll(async () => {
    for (const n of open) await n.close();
    await hook.close();
    await store.close();
    await target.cleanup();
  });
  beforeEach(async () => {
    await store.db.deleteFrom('notification_outbox').execute();
    hook.requests.length = 0;
    hook.replies.length = 0;
    hook.fallback = { status: 200 };
    log.lines.length = 0;
  });

  const resolveSecret = async (ref: SecretRef) => {
    if ('env' in ref && ref.env === 'HOOK_SECRET') return SECRET;
    throw new Error('unexpected reference');
  };

  function make(over: Partial<WebhookNotifierConfig> = {}, extra: Partial<NotificationsDeps> = {}) {
    const n = createNotifications({
      store,
      clock,
      log,
      audit: async () => {},
      operators: [],
      random: () => 0.5, // no jitter: delays are exact
      resolveSecret,
      config: {
        webhooks: [
          {
            name: 'ops',
            url: `${hook.url}/hook`,
            secret: { env: 'HOOK_SECRET' },
            events: [...ALL_EVENTS],
            maxAttempts: 4,
            timeoutMs: 2000,
            ...over,
          },
        ],
        retry: { initialDelayMs: 1000, maxDelayMs: 5000 },
      },
      ...extra,
    });
    open.push(n);
    return n;
  }

  async function row(id?: string) {
    let q = store.db.selectFrom('notification_outbox').selectAll();
    if (id) q = q.where('id', '=', id);
    return q.executeTakeFirstOrThrow();
  }

  it('delivers a Standard Webhooks envelope, signed so that receivers can verify it', async () => {
    const n = make();
    const approval = approvalFixture();
    await n.notify('approval.requested', approval);
    expect(await n.deliverDue()).toBe(1);

    expect(hook.requests).toHaveLength(1);
    const req = hook.requests[0]!;
    const queued = await row();
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/hook');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['user-agent']).toBe(`warden/${VERSION}`);
    expect(req.headers['webhook-id']).toBe(queued.id);
    expect(req.headers['webhook-timestamp']).toBe(String(Math.floor(clock.now() / 1000)));
    expect(JSON.parse(req.body)).toEqual({
      id: queued.id,
      type: 'approval.requested',
      timestamp: new Date(clock.now()).toISOString(),
      data: { approval },
    });

    // The exported verifier accepts it …
    expect(verifyWebhook(SECRET, req.headers, req.body, 300_000, clock.now())).toMatchObject({ ok: true });
    // … and so does the spec's algorithm, recomputed here independently.
    const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
    const mac = createHmac('sha256', key)
      .update(`${req.headers['webhook-id']}.${req.headers['webhook-timestamp']}.${req.body}`)
      .digest('base64');
    expect(req.headers['webhook-signature']).toBe(`v1,${mac}`);

    expect(await n.list()).toMatchObject([
      { id: queued.id, target: 'webhook:ops', event: 'approval.requested', status: 'sent', attempts: 1 },
    ]);
    expect(JSON.stringify(log.lines)).not.toContain(SECRET);
  });

  it('retries 5xx with exponential backoff, keeping the webhook-id, then delivers', async () => {
    const n = make();
    hook.replies.push({ status: 500 }, { status: 503 }, { status: 200 });
    await n.notify('approval.requested', approvalFixture());
    const t0 = clock.now();

    expect(await n.deliverDue()).toBe(1);
    expect(await row()).toMatchObject({ status: 'pending', attempts: 1, next_attempt_at: t0 + 1000 });
    expect((await row()).last_error).toBe('HTTP 500');
    expect(await n.deliverDue()).toBe(0); // not due yet

    clock.advance(1000);
    expect(await n.deliverDue()).toBe(1);
    expect(await row()).toMatchObject({
      status: 'pending',
      attempts: 2,
      next_attempt_at: clock.now() + 2000,
    });
    expect((await row()).last_error).toBe('HTTP 503');

    clock.advance(2000);
    expect(await n.deliverDue()).toBe(1);
    expect(await row()).toMatchObject({ status: 'sent', attempts: 3, last_error: null });

    const ids = new Set(hook.requests.map((r) => r.headers['webhook-id']));
    expect(ids.size).toBe(1);
    // Each attempt is signed with its own timestamp, so receivers' tolerance windows never expire a retry.
    expect(hook.requests.map((r) => Number(r.headers['webhook-timestamp']))).toEqual([
      Math.floor(t0 / 1000),
      Math.floor(t0 / 1000) + 1,
      Math.floor(t0 / 1000) + 3,
    ]);
    expect(log.lines.filter((l) => l.level === 'warn').map((l) => l.obj['error'])).toEqual([
      'HTTP 500',
      'HTTP 503',
    ]);
  });

  it('dead-letters after maxAttempts; an operator can queue it again', async () => {
    const n = make({ maxAttempts: 3 });
    hook.fallback = { status: 500 };
    await n.notify('approval.decided', approvalFixture({ status: 'approved' }));
    for (let i = 0; i < 3; i++) {
      expect(await n.deliverDue()).toBe(1);
      clock.advance(5000);
    }
    const dead = await row();
    expect(dead).toMatchObject({ status: 'dead', attempts: 3, last_error: 'HTTP 500' });
    expect(await n.deliverDue()).toBe(0);
    expect(log.lines.filter((l) => l.level === 'error')).toMatchObject([
      { msg: 'notification dead-lettered', obj: { notificationId: dead.id, attempts: 3, error: 'HTTP 500' } },
    ]);
    expect(await n.list({ status: 'dead' })).toMatchObject([{ id: dead.id }]);

    hook.fallback = { status: 204 };
    expect(await n.retryDead(dead.id)).toBe(true);
    expect(await row()).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await n.deliverDue()).toBe(1);
    expect(await row()).toMatchObject({ status: 'sent', attempts: 1 });
    expect(await n.retryDead(dead.id)).toBe(false); // not dead
    expect(await n.retryDead('msg_nope')).toBe(false);
  });

  it('sends a permanent 4xx to the dead letters at once', async () => {
    const n = make();
    hook.replies.push({ status: 400 });
    await n.notify('approval.requested', approvalFixture());
    expect(await n.deliverDue()).toBe(1);
    expect(await row()).toMatchObject({ status: 'dead', attempts: 1, last_error: 'HTTP 400' });
  });

  it('retries 429 no sooner than its Retry-After', async () => {
    const n = make();
    hook.replies.push({ status: 429, headers: { 'retry-after': '30' } });
    await n.notify('approval.requested', approvalFixture());
    expect(await n.deliverDue()).toBe(1);
    expect(await row()).toMatchObject({
      status: 'pending',
      attempts: 1,
      next_attempt_at: clock.now() + 30_000,
    });
  });

  it('counts a receiver that never answers as a failed attempt once the timeout passes', async () => {
    const n = make({ timeoutMs: 150 });
    hook.replies.push('hang');
    await n.notify('approval.requested', approvalFixture());
    expect(await n.deliverDue()).toBe(1);
    expect(await row()).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'timed out after 150 ms',
      next_attempt_at: clock.now() + 1000,
    });
  });

  it('retries when the secret cannot be resolved, naming the reference only', async () => {
    const n = make({ secret: { env: 'WARDEN_TEST_UNSET_WEBHOOK_SECRET' } }, { resolveSecret: undefined });
    await n.notify('approval.requested', approvalFixture());
    expect(await n.deliverDue()).toBe(1);
    const r = await row();
    expect(r.status).toBe('pending');
    expect(r.last_error).toContain('WARDEN_TEST_UNSET_WEBHOOK_SECRET');
    expect(hook.requests).toHaveLength(0);
  });

  it('queues only for targets that subscribe to the event', async () => {
    const n = make({ events: ['approval.decided'] });
    await n.notify('approval.requested', approvalFixture());
    await n.notify('review.flagged', approvalFixture({ kind: 'review', status: 'flagged' }));
    expect(await n.list()).toEqual([]);
    await n.notify('approval.decided', approvalFixture({ status: 'denied' }));
    expect(await n.list()).toMatchObject([{ event: 'approval.decided', status: 'pending', attempts: 0 }]);
  });

  it('lists newest first, filtered by status and bounded by limit', async () => {
    const n = make();
    for (let i = 0; i < 3; i++) {
      await n.notify('approval.requested', approvalFixture({ id: `apr_${i}` }));
      clock.advance(1);
    }
    expect((await n.list()).map((e) => e.approvalId)).toEqual(['apr_2', 'apr_1', 'apr_0']);
    expect(await n.list({ limit: 1 })).toHaveLength(1);
    expect(await n.list({ status: 'sent' })).toEqual([]);
  });

  it('lets several gateways share one store: each notification is delivered once', async () => {
    const second = await target.open(); // the same database (SQLite file / PostgreSQL schema), another pool
    try {
      const a = make();
      const b = make({}, { store: second });
      for (let i = 0; i < 20; i++) await a.notify('approval.requested', approvalFixture({ id: `apr_${i}` }));
      const [made1, made2] = await Promise.all([a.deliverDue(), b.deliverDue()]);
      expect(made1 + made2).toBe(20);
      expect(hook.requests).toHaveLength(20);
      expect(new Set(hook.requests.map((r) => r.headers['webhook-id'])).size).toBe(20);
      expect(await a.list({ status: 'sent' })).toHaveLength(20);
    } finally {
      await second.close();
    }
  });

  it('start(): a notify is delivered at once, without waiting for the poll interval', async () => {
    const n = make({}, { pollIntervalMs: 60_000 });
    n.start();
    await n.notify('approval.requested', approvalFixture());
    await hook.waitFor(1);
    await vi.waitFor(async () => expect((await row()).status).toBe('sent'), { timeout: 5000, interval: 5 });
    await n.close();
  });

  it('close() aborts an attempt in flight and leaves the row due again, the attempt not counted', async () => {
    const n = make({ timeoutMs: 10_000 }, { pollIntervalMs: 60_000 });
    hook.replies.push('hang');
    n.start();
    await n.notify('approval.requested', approvalFixture());
    await hook.waitFor(1);
    await n.close();
    expect(await row()).toMatchObject({ status: 'pending', attempts: 0, next_attempt_at: clock.now() });
  });
});

describe('notify', () => {
  it('rejects only when the store fails', async () => {
    const { makeTarget } = await import('../../test/helpers/dialects.js');
    const target = makeTarget('sqlite');
    const store = await target.open();
    const n = createNotifications({
      store,
      log: memoryLog(),
      audit: async () => {},
      operators: [],
      config: {
        webhooks: [
          {
            name: 'x',
            url: 'http://127.0.0.1:9/unreachable',
            secret: { env: 'X' },
            events: ['approval.requested'],
            maxAttempts: 1,
            timeoutMs: 100,
          },
        ],
        retry: { initialDelayMs: 10, maxDelayMs: 10 },
      },
    });
    await n.notify('approval.requested', approvalFixture()); // nothing is delivered in notify
    await store.close();
    await expect(n.notify('approval.requested', approvalFixture())).rejects.toThrow();
    await n.close();
    await target.cleanup();
  });
});
