/**
 * The notifiers as one service: `notify` queues a row per subscribed target in
 * the outbox; a background loop (or a test, through `deliverDue`) claims due
 * rows, delivers them and settles each as sent, retried later with backoff,
 * or dead. Targets are delivered in parallel, each target's rows in order, so
 * one hanging receiver delays only itself and a request reaches Slack before
 * its outcome does.
 */
import type { Approval } from '../approvals/index.js';
import type { AuditInput } from '../audit/index.js';
import {
  type ApprovalNotifyEvent,
  type NotifiersConfig,
  type OperatorConfig,
  resolveSecret as resolveSecretRef,
  type SecretRef,
} from '../config/index.js';
import type { Store } from '../store/index.js';
import { type Clock, type IdGenerator, randomId, systemClock } from '../util/clock.js';
import { type AttemptResult, backoffDelay, type NotifyLog } from './attempt.js';
import {
  claim,
  type DueRow,
  enqueue,
  listOutbox,
  markDead,
  markSent,
  type NewOutboxRow,
  type OutboxEntry,
  type OutboxStatus,
  releaseClaim,
  requeueDead,
  scheduleRetry,
  selectDue,
} from './outbox.js';
import {
  deliverSlack,
  SLACK_MAX_ATTEMPTS,
  SLACK_TARGET,
  SLACK_TIMEOUT_MS,
  type SlackPayload,
} from './slack.js';
import { slackInteractions } from './slack-interactions.js';
import { alertMessage, slackMessage } from './slack-message.js';
import type { ChatDecide, Notifier, SecurityAlert } from './types.js';
import { alertWebhookBody, deliverWebhook, webhookBody } from './webhook.js';

export interface NotificationsDeps {
  store: Store;
  config: NotifiersConfig;
  /** For the Slack outcome message: who decided, as a Slack mention when the operator has one. */
  operators: OperatorConfig[];
  clock?: Clock;
  log: NotifyLog;
  /** Audits refused Slack callbacks (see `slackInteractions`). */
  audit: (input: AuditInput) => Promise<unknown>;
  resolveSecret?: (ref: SecretRef) => Promise<string>;
  fetch?: typeof fetch;
  /** Jitter source in [0, 1); tests pin it. */
  random?: () => number;
  idGenerator?: IdGenerator;
  /** How often the loop looks for due rows when nothing kicked it (default 1 s). */
  pollIntervalMs?: number;
  /** Rows one pass may select (default 50). */
  batchSize?: number;
  /** Per-attempt timeout for the Slack Web API (default 10 s). */
  slackTimeoutMs?: number;
}

/** The notifiers' service: the `Notifier` contract plus its delivery loop and operator views. */
export interface Notifications extends Notifier {
  /** Queue a security alert for every target subscribed to `security.alert` (bounded; never throws). */
  alert(alert: SecurityAlert): void;
  /** Start the background delivery loop (timers are unref'd: it never keeps the process alive). */
  start(): void;
  /** Stop the loop and abort attempts in flight (their rows become due again); call before closing the store. */
  close(): Promise<void>;
  /** One delivery pass over the due rows; resolves to the number of attempts made. */
  deliverDue(): Promise<number>;
  /** Outbox rows, newest first (dead letters: `{status: 'dead'}`). */
  list(opts?: { status?: OutboxStatus; limit?: number }): Promise<OutboxEntry[]>;
  /** Put a dead notification back in the queue with a fresh set of attempts; false when it is not dead. */
  retryDead(id: string): Promise<boolean>;
  /** The handler for `POST /notify/slack/interactions`, or undefined when Slack is not configured. */
  slackInteractions(decide: ChatDecide): ((req: Request) => Promise<Response>) | undefined;
}

/** How one target delivers, and how long its attempts may take. */
interface Target {
  maxAttempts: number;
  timeoutMs: number;
  deliver(row: DueRow, now: number, signal: AbortSignal): Promise<AttemptResult>;
}

/** Alerts: one per kind, agent and tool per window; at most ALERTS_PER_WINDOW per window in all. */
const ALERT_WINDOW_MS = 60_000;
const ALERTS_PER_WINDOW = 30;
/** Attempts at delivering an alert that could not be queued (the store is down). */
const DIRECT_ATTEMPTS = 3;

/** A claim outlives its attempt's timeout by this much before another process may take the row. */
const LEASE_MARGIN_MS = 30_000;

/** Build the notifiers from config; nothing runs until `start()` (or `deliverDue()`). */
export function createNotifications(deps: NotificationsDeps): Notifications {
  const { store, config, log } = deps;
  const db = store.db;
  const clock = deps.clock ?? systemClock;
  const newId = deps.idGenerator ?? randomId;
  const random = deps.random ?? Math.random;
  const doFetch = deps.fetch ?? globalThis.fetch;
  const resolve = deps.resolveSecret ?? ((ref: SecretRef) => resolveSecretRef(ref));
  const pollMs = deps.pollIntervalMs ?? 1000;
  const batchSize = deps.batchSize ?? 50;
  const slackTimeoutMs = deps.slackTimeoutMs ?? SLACK_TIMEOUT_MS;
  const shutdown = new AbortController();

  const targets = new Map<string, Target>();
  const slack = config.slack;
  if (slack) {
    targets.set(SLACK_TARGET, {
      maxAttempts: SLACK_MAX_ATTEMPTS,
      timeoutMs: slackTimeoutMs,
      deliver: (row, now, signal) =>
        deliverSlack({
          config: slack,
          db,
          row,
          now,
          timeoutMs: slackTimeoutMs,
          resolveSecret: resolve,
          fetch: doFetch,
          signal,
        }),
    });
  }
  for (const hook of config.webhooks) {
    targets.set(`webhook:${hook.name}`, {
      maxAttempts: hook.maxAttempts,
      timeoutMs: hook.timeoutMs,
      deliver: (row, now, signal) =>
        deliverWebhook({
          target: hook,
          id: row.id,
          body: row.payload,
          now,
          resolveSecret: resolve,
          fetch: doFetch,
          signal,
        }),
    });
  }

  // Outbox ids sort in creation order (time, then a counter), so rows queued in the same
  // millisecond (a request and its outcome) are still delivered in the order they were queued.
  let lastMs = -1;
  let seq = 0;
  function outboxId(now: number): string {
    seq = now === lastMs ? seq + 1 : 0;
    lastMs = now;
    return `msg_${now.toString(36).padStart(9, '0')}${seq.toString(36).padStart(4, '0')}${newId().slice(0, 16)}`;
  }

  async function notify(event: ApprovalNotifyEvent, approval: Approval): Promise<void> {
    const now = clock.now();
    const rows: NewOutboxRow[] = [];
    if (slack?.events.includes(event)) {
      const payload: SlackPayload = {
        channel: slack.channel,
        ...slackMessage(event, approval, deps.operators),
      };
      rows.push({
        id: outboxId(now),
        target: SLACK_TARGET,
        event,
        approvalId: approval.id,
        payload: JSON.stringify(payload),
      });
    }
    for (const hook of config.webhooks) {
      if (!hook.events.includes(event)) continue;
      const id = outboxId(now);
      rows.push({
        id,
        target: `webhook:${hook.name}`,
        event,
        approvalId: approval.id,
        payload: webhookBody(id, event, approval, now),
      });
    }
    if (rows.length === 0) return;
    await enqueue(db, rows, now);
    kick();
  }

  // Alerts are bounded: the same kind for the same agent and tool at most once per window, and at
  // most ALERTS_PER_WINDOW in all; what is dropped is counted and said in the next alert that goes out.
  const lastAlert = new Map<string, number>();
  let windowStart = 0;
  let windowCount = 0;
  let suppressed = 0;

  function alert(a: SecurityAlert): void {
    const now = clock.now();
    if (now - windowStart >= ALERT_WINDOW_MS) {
      windowStart = now;
      windowCount = 0;
      for (const [k, t] of lastAlert) if (now - t >= ALERT_WINDOW_MS) lastAlert.delete(k);
    }
    const key = `${a.kind}\u0000${a.agentId ?? ''}\u0000${a.tool ?? ''}`;
    const last = lastAlert.get(key);
    if ((last !== undefined && now - last < ALERT_WINDOW_MS) || windowCount >= ALERTS_PER_WINDOW) {
      suppressed++;
      return;
    }
    lastAlert.set(key, now);
    windowCount++;
    const body: SecurityAlert & { suppressedBefore?: number } =
      suppressed > 0 ? { ...a, suppressedBefore: suppressed } : a;
    suppressed = 0;
    const rows: NewOutboxRow[] = [];
    if (slack?.events.includes('security.alert')) {
      const payload: SlackPayload = { channel: slack.channel, ...alertMessage(body) };
      rows.push({
        id: outboxId(now),
        target: SLACK_TARGET,
        event: 'security.alert',
        approvalId: null,
        payload: JSON.stringify(payload),
      });
    }
    for (const hook of config.webhooks) {
      if (!hook.events.includes('security.alert')) continue;
      const id = outboxId(now);
      rows.push({
        id,
        target: `webhook:${hook.name}`,
        event: 'security.alert',
        approvalId: null,
        payload: alertWebhookBody(id, body, now),
      });
    }
    log.warn(
      { alert: a.kind, severity: a.severity, traceId: a.traceId, agentId: a.agentId, tool: a.tool },
      a.summary,
    );
    if (rows.length === 0) return;
    enqueue(db, rows, now).then(kick, (e: unknown) => {
      log.error(
        { err: (e as Error).message, alert: a.kind },
        'alert could not be queued: delivering it directly',
      );
      for (const row of rows) void deliverDirect(row);
    });
  }

  /**
   * An alert whose outbox row cannot be written — the store is down, which is what an
   * `audit.unavailable` alert is about — is delivered from memory: a few attempts with
   * backoff, same id (receivers dedupe on it), nothing kept if the process stops.
   */
  async function deliverDirect(row: NewOutboxRow): Promise<void> {
    const target = targets.get(row.target);
    if (!target) return;
    const max = Math.min(target.maxAttempts, DIRECT_ATTEMPTS);
    for (let n = 1; n <= max && !shutdown.signal.aborted; n++) {
      const due: DueRow = { ...row, attempts: n - 1, nextAttemptAt: clock.now() };
      let result: AttemptResult;
      try {
        result = await target.deliver(due, clock.now(), shutdown.signal);
      } catch (e) {
        result = { ok: false, error: `internal error: ${(e as Error).message}`, permanent: false };
      }
      const fields = { notificationId: row.id, target: row.target, event: row.event, attempts: n };
      if (result.ok) return void log.info(fields, 'notification delivered directly');
      if (result.permanent || n === max) {
        return void log.error(
          { ...fields, error: result.error },
          'notification lost: not queued, not delivered',
        );
      }
      await new Promise((r) =>
        setTimeout(r, backoffDelay(n, config.retry, random, result.retryAfterMs)).unref(),
      );
    }
  }

  /** Claim, attempt and settle one row; true when an attempt was made. */
  async function attempt(row: DueRow): Promise<boolean> {
    const target = targets.get(row.target);
    const now = clock.now();
    const fields = {
      notificationId: row.id,
      target: row.target,
      event: row.event,
      approvalId: row.approvalId,
    };
    const lease = (target?.timeoutMs ?? 0) + LEASE_MARGIN_MS;
    const n = await claim(db, row, now, lease);
    if (n === null) return false; // another process has it
    if (!target) {
      // Configuration changed since the row was queued: nobody will ever deliver it.
      await markDead(db, row.id, n, 'target no longer configured', now);
      log.error({ ...fields, attempts: n }, 'notification dead-lettered: target no longer configured');
      return true;
    }
    let result: AttemptResult;
    try {
      result = await target.deliver(row, now, shutdown.signal);
    } catch (e) {
      result = { ok: false, error: `internal error: ${(e as Error).message}`, permanent: false };
    }
    const settled = clock.now();
    if (!result.ok && shutdown.signal.aborted) {
      await releaseClaim(db, row.id, n, settled);
      return true;
    }
    if (result.ok) {
      await markSent(db, row.id, settled);
      log.info({ ...fields, attempts: n }, 'notification delivered');
    } else if (result.permanent || n >= target.maxAttempts) {
      await markDead(db, row.id, n, result.error, settled);
      log.error(
        { ...fields, attempts: n, error: result.error, permanent: result.permanent },
        'notification dead-lettered',
      );
    } else {
      const delay = backoffDelay(n, config.retry, random, result.retryAfterMs);
      await scheduleRetry(db, row.id, n, settled + delay, result.error, settled);
      log.warn(
        { ...fields, attempts: n, error: result.error, retryInMs: delay },
        'notification delivery failed',
      );
    }
    return true;
  }

  // Each target delivers in its own lane, one row at a time and in order; lanes run side by
  // side, and a pass never waits for a busy lane, so a hanging receiver delays only its own rows.
  const lanes = new Map<string, Promise<number>>();
  const passes = new Set<Promise<unknown>>();
  let started = false;
  let timer: NodeJS.Timeout | undefined;

  async function runLane(rows: DueRow[]): Promise<number> {
    let made = 0;
    for (const row of rows) {
      if (shutdown.signal.aborted) break;
      try {
        if (await attempt(row)) made++;
      } catch (e) {
        log.error(
          { notificationId: row.id, err: (e as Error).message },
          'notification delivery failed to settle',
        );
      }
    }
    return made;
  }

  /** Select due rows of idle targets and start a lane for each such target; the lanes' promises. */
  async function startLanes(): Promise<Array<Promise<number>>> {
    const due = await selectDue(db, clock.now(), batchSize, [...lanes.keys()]);
    const byTarget = new Map<string, DueRow[]>();
    for (const row of due) byTarget.set(row.target, [...(byTarget.get(row.target) ?? []), row]);
    const started: Array<Promise<number>> = [];
    for (const [target, rows] of byTarget) {
      if (lanes.has(target) || shutdown.signal.aborted) continue;
      const lane = runLane(rows);
      lanes.set(target, lane);
      void lane.then((made) => {
        lanes.delete(target);
        // More of this target's rows may be due (the batch was bounded, or rows arrived meanwhile).
        if (made > 0) kick();
      });
      started.push(lane);
    }
    return started;
  }

  function tracked<T>(p: Promise<T>): Promise<T> {
    passes.add(p);
    p.then(
      () => passes.delete(p),
      () => passes.delete(p),
    );
    return p;
  }

  function schedule(delayMs: number): void {
    if (!started || shutdown.signal.aborted) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(tick, delayMs);
    timer.unref();
  }

  async function tick(): Promise<void> {
    timer = undefined;
    try {
      await tracked(startLanes());
    } catch (e) {
      log.error({ err: (e as Error).message }, 'notification delivery pass failed');
    }
    if (!timer) schedule(pollMs);
  }

  function kick(): void {
    schedule(0);
  }

  return {
    notify,
    alert,
    start() {
      if (started || shutdown.signal.aborted) return;
      started = true;
      schedule(0);
    },
    async close() {
      shutdown.abort();
      if (timer) clearTimeout(timer);
      timer = undefined;
      await Promise.allSettled([...passes]);
      await Promise.allSettled([...lanes.values()]);
    },
    async deliverDue() {
      const started = await tracked(startLanes());
      const counts = await Promise.all(started);
      return counts.reduce((a, b) => a + b, 0);
    },
    list: (opts) => listOutbox(db, opts),
    async retryDead(id) {
      const ok = await requeueDead(db, id, clock.now());
      if (ok) {
        log.info({ notificationId: id }, 'dead notification queued again');
        kick();
      }
      return ok;
    },
    slackInteractions(decide) {
      if (!slack) return undefined;
      return slackInteractions({
        signingSecret: slack.signingSecret,
        toleranceMs: slack.timestampToleranceMs,
        decide,
        responseUrlOrigins: ['https://hooks.slack.com', new URL(slack.apiUrl).origin],
        fetch: doFetch,
        audit: deps.audit,
        clock,
        log,
        resolveSecret: resolve,
      });
    },
  };
}
