/**
 * Streaming the audit log to SIEMs (issue #9): for each `audit.sinks.webhooks[]`
 * entry, a loop delivers entries in seq order, in batches, at least once.
 *
 * - The cursor (last seq delivered) lives in `audit_sink_cursor` and moves only
 *   after a 2xx: a crash or a failed delivery re-sends, never skips. Entries the
 *   sink's `events` filter leaves out advance it like delivered ones.
 * - Replicas on one PostgreSQL share the row: a lease on it (taken and renewed by
 *   compare-and-set) lets one process deliver a sink at a time, so entries are not
 *   sent twice in the normal case; a crashed holder's lease lapses and another
 *   process resumes from the cursor.
 * - Failures are retried forever, with exponential backoff and jitter (1 s → 5 min):
 *   an entry is never dropped. After `alertAfter` consecutive failures one alert
 *   goes out through the notifiers (not repeated while it keeps failing), and a
 *   recovered notice once a delivery succeeds again.
 */
import { hostname } from 'node:os';
import type { AuditSinkWebhook, SecretRef } from '../config/types.js';
import { WardenError } from '../errors.js';
import { backoffDelay } from '../notify/attempt.js';
import type { SecurityAlert } from '../notify/types.js';
import type { Store } from '../store/index.js';
import { type Clock, randomId, systemClock } from '../util/clock.js';
import { headSeq, readPage } from './export.js';
import {
  acquireLease,
  advanceCursor,
  ensureCursor,
  readCursor,
  recordFailure,
  releaseLease,
} from './sink-cursor.js';
import { deliverBatch } from './sink-webhook.js';

/** How often a sink looks for new entries when nothing wakes it (other processes' appends). */
const POLL_MS = 1_000;
/** Backoff after a failed delivery: 1 s doubling to 5 min, ±20 % jitter. */
const BACKOFF = { initialDelayMs: 1_000, maxDelayMs: 300_000 };
/** Consecutive failures before the alert. */
const ALERT_AFTER = 5;
/** The store being down is retried at least this often (the receiver's backoff can be longer). */
const STORE_RETRY_MAX_MS = 30_000;
/** A lease outlives a delivery by this much at least (it is renewed before each one). */
const LEASE_MARGIN_MS = 30_000;

/** What the sinks report to metrics (src/metrics implements it). */
export interface AuditSinkMetrics {
  /** Entries not yet delivered (or filtered out) by `sink`: head seq − cursor. */
  auditSinkLag(sink: string, lag: number): void;
  /** One failed delivery to `sink`. */
  auditSinkFailure(sink: string): void;
  /** Entries `sink` accepted. */
  auditSinkDelivered?(sink: string, entries: number): void;
}

/** The operator log (a pino logger fits); never given a secret or an entry. */
export interface AuditSinksLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

export interface AuditSinksDeps {
  store: Store;
  sinks: readonly AuditSinkWebhook[];
  log: AuditSinksLog;
  /** In-process wake-up after appends commit (`AuditLog.observe`); polling covers other processes. */
  subscribe?: (listener: () => void) => () => void;
  /** The notifiers' security alerts. */
  alert?: (a: SecurityAlert) => void;
  metrics?: AuditSinkMetrics;
  clock?: Clock;
  fetch?: typeof fetch;
  resolveSecret?: (ref: SecretRef) => Promise<string>;
  /** Tests: shorter waits. */
  pollMs?: number;
  backoff?: { initialDelayMs: number; maxDelayMs: number };
  alertAfter?: number;
  /** Lease length (default: the sink's timeout + 30 s). */
  leaseMs?: number;
  random?: () => number;
  /** This process's name on leases (default: host, pid and a random suffix). */
  holder?: string;
}

/** A sink's state in this process, for operators and tests. */
export interface SinkStatus {
  name: string;
  /** This process holds the sink's lease (it is the one delivering). */
  leased: boolean;
  /** Consecutive failures seen here. */
  failures: number;
  lastError: string | null;
  alerted: boolean;
}

type SinkState = SinkStatus & { retryAfterMs?: number | undefined };

/** The delivery loops of every configured webhook sink. */
export class AuditSinks {
  readonly holder: string;
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  private readonly runs: Promise<void>[] = [];
  private readonly sleepers = new Set<{ wakeOnAppend: boolean; wake: () => void }>();
  private readonly states = new Map<string, SinkState>();
  private unsubscribe: (() => void) | undefined;
  private started = false;

  constructor(private readonly deps: AuditSinksDeps) {
    this.clock = deps.clock ?? systemClock;
    this.holder = deps.holder ?? `${hostname()}:${process.pid}:${randomId().slice(0, 8)}`;
    const seen = new Set<string>();
    for (const s of deps.sinks) {
      // Two sinks with one name would share a cursor: one of them would miss entries.
      if (seen.has(s.name))
        throw new WardenError('CONFIG_INVALID', `audit.sinks.webhooks: the name "${s.name}" is used twice`);
      seen.add(s.name);
      this.states.set(s.name, { name: s.name, leased: false, failures: 0, lastError: null, alerted: false });
    }
  }

  /** Start one delivery loop per sink (nothing when none is configured). */
  start(): void {
    if (this.started || this.deps.sinks.length === 0) return;
    this.started = true;
    this.unsubscribe = this.deps.subscribe?.(() => this.wake());
    for (const sink of this.deps.sinks) this.runs.push(this.run(sink));
  }

  /** Each sink's state in this process. */
  status(): SinkStatus[] {
    return [...this.states.values()].map(({ retryAfterMs: _r, ...s }) => s);
  }

  /** Stop the loops (an attempt in flight is aborted and re-sent later) and give the leases up. */
  async close(): Promise<void> {
    this.abort.abort();
    this.unsubscribe?.();
    for (const s of this.sleepers) s.wake();
    await Promise.all(this.runs);
  }

  private get closed(): boolean {
    return this.abort.signal.aborted;
  }

  /** New entries were committed here: idle loops look now. */
  private wake(): void {
    for (const s of this.sleepers) if (s.wakeOnAppend) s.wake();
  }

  private sleep(ms: number, wakeOnAppend: boolean): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const sleeper = {
        wakeOnAppend,
        wake: () => {
          clearTimeout(timer);
          this.sleepers.delete(sleeper);
          resolve();
        },
      };
      const timer = setTimeout(sleeper.wake, ms);
      timer.unref();
      this.sleepers.add(sleeper);
    });
  }

  private leaseMs(sink: AuditSinkWebhook): number {
    return this.deps.leaseMs ?? sink.timeoutMs + LEASE_MARGIN_MS;
  }

  /** Back off for `ms`, renewing the lease meanwhile so no other process takes a sink that is only waiting. */
  private async backOff(sink: AuditSinkWebhook, ms: number): Promise<void> {
    const slice = Math.max(Math.floor(this.leaseMs(sink) / 3), 10);
    const end = performance.now() + ms;
    while (!this.closed) {
      const left = end - performance.now();
      if (left <= 0) return;
      await this.sleep(Math.min(left, slice), false);
      if (this.closed) return;
      if (
        !(await acquireLease(this.deps.store, sink.name, this.holder, this.clock.now(), this.leaseMs(sink)))
      )
        return;
    }
  }

  private async run(sink: AuditSinkWebhook): Promise<void> {
    const { store, log } = this.deps;
    const state = this.states.get(sink.name)!;
    const poll = this.deps.pollMs ?? POLL_MS;
    let storeFailures = 0;
    let ensured = false;
    while (!this.closed) {
      try {
        if (!ensured) {
          await ensureCursor(store, sink.name, this.clock.now());
          ensured = true;
        }
        const leased = await acquireLease(
          store,
          sink.name,
          this.holder,
          this.clock.now(),
          this.leaseMs(sink),
        );
        if (leased !== state.leased) {
          state.leased = leased;
          log.info(
            { sink: sink.name, holder: this.holder },
            leased ? 'audit sink: delivering' : 'audit sink: another process delivers',
          );
        }
        const step = leased ? await this.step(sink, state) : await this.standBy(sink);
        storeFailures = 0;
        if (step === 'more') continue;
        if (step === 'failed') {
          await this.backOff(sink, this.backoffAfter(state.failures, state.retryAfterMs));
          continue;
        }
        await this.sleep(poll, step === 'idle');
      } catch (e) {
        // The store itself failed (down, locked): nothing was lost, the cursor did not move.
        storeFailures++;
        if (storeFailures === 1)
          log.warn(
            { sink: sink.name, err: (e as Error).message },
            'audit sink: the store cannot be read; retrying',
          );
        await this.sleep(Math.min(this.backoffAfter(storeFailures), STORE_RETRY_MAX_MS), false);
      }
    }
    if (state.leased) await releaseLease(store, sink.name, this.holder).catch(() => {});
    state.leased = false;
  }

  private backoffAfter(failures: number, retryAfterMs?: number): number {
    return backoffDelay(
      failures,
      this.deps.backoff ?? BACKOFF,
      this.deps.random ?? Math.random,
      retryAfterMs,
    );
  }

  /** Not ours to deliver: only keep the lag gauge true. */
  private async standBy(sink: AuditSinkWebhook): Promise<'standby'> {
    const [cursor, head] = await Promise.all([
      readCursor(this.deps.store, sink.name),
      headSeq(this.deps.store),
    ]);
    if (cursor) this.deps.metrics?.auditSinkLag(sink.name, Math.max(head - cursor.seq, 0));
    return 'standby';
  }

  /** One batch: read it, deliver it, move the cursor. */
  private async step(sink: AuditSinkWebhook, state: SinkState): Promise<'more' | 'idle' | 'failed'> {
    const { store, log, metrics } = this.deps;
    const cursor = await readCursor(store, sink.name);
    if (cursor === undefined) throw new Error(`audit_sink_cursor row "${sink.name}" is missing`);
    // Entries up to the head are committed: a page bounded by it never races an append.
    const head = await headSeq(store);
    metrics?.auditSinkLag(sink.name, Math.max(head - cursor.seq, 0));
    if (head <= cursor.seq) return 'idle';
    const entries = await readPage(store, sink.events === null ? {} : { events: sink.events }, {
      afterSeq: cursor.seq,
      throughSeq: head,
      limit: sink.batchSize,
    });
    // A short page: every entry up to the head was delivered now or filtered out.
    const to = entries.length < sink.batchSize ? head : entries.at(-1)!.seq;
    if (entries.length > 0) {
      const r = await deliverBatch(sink, entries, {
        now: this.clock.now(),
        signal: this.abort.signal,
        ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
        ...(this.deps.resolveSecret ? { resolveSecret: this.deps.resolveSecret } : {}),
      });
      if (this.closed) return 'idle';
      if (!r.ok) {
        this.failed(sink, state, r.error, cursor.seq);
        state.retryAfterMs = r.retryAfterMs;
        await recordFailure(store, sink.name, this.holder, state.failures, r.error, this.clock.now()).catch(
          () => {},
        );
        return 'failed';
      }
      metrics?.auditSinkDelivered?.(sink.name, entries.length);
    }
    if (!(await advanceCursor(store, sink.name, this.holder, cursor.seq, to, this.clock.now()))) {
      // Our lease lapsed mid-delivery (a stall longer than the lease): the new holder re-sends.
      log.warn({ sink: sink.name, from: cursor.seq, to }, 'audit sink: lease lost during a delivery');
      return 'more';
    }
    metrics?.auditSinkLag(sink.name, Math.max(head - to, 0));
    if (entries.length > 0) this.recovered(sink, state, to);
    return to < head ? 'more' : 'idle';
  }

  private failed(sink: AuditSinkWebhook, state: SinkStatus, error: string, cursor: number): void {
    state.failures++;
    state.lastError = error;
    this.deps.metrics?.auditSinkFailure(sink.name);
    const where = { sink: sink.name, origin: originOf(sink.url), failures: state.failures, error, cursor };
    if (state.failures === 1) this.deps.log.warn(where, 'audit sink: delivery failed; retrying with backoff');
    if (state.alerted || state.failures < (this.deps.alertAfter ?? ALERT_AFTER)) return;
    state.alerted = true;
    this.deps.log.error(where, 'audit sink: deliveries keep failing; entries wait (none is dropped)');
    this.deps.alert?.({
      kind: 'audit.sink-failing',
      severity: 'high',
      traceId: `audit-sink-${sink.name}-${this.clock.now()}`,
      agentId: null,
      sessionId: null,
      tool: null,
      summary: `Audit sink "${sink.name}" (${originOf(sink.url)}) failed ${state.failures} deliveries in a row (${error}); entries after seq ${cursor} wait and are retried until it accepts them.`,
      data: { sink: sink.name, origin: originOf(sink.url), failures: state.failures, error, cursor },
    });
  }

  private recovered(sink: AuditSinkWebhook, state: SinkStatus, cursor: number): void {
    const { failures, alerted } = state;
    state.failures = 0;
    state.lastError = null;
    state.alerted = false;
    if (failures === 0) return;
    this.deps.log.info({ sink: sink.name, failures, cursor }, 'audit sink: delivering again');
    if (!alerted) return;
    this.deps.alert?.({
      kind: 'audit.sink-recovered',
      severity: 'medium',
      traceId: `audit-sink-${sink.name}-${this.clock.now()}`,
      agentId: null,
      sessionId: null,
      tool: null,
      summary: `Audit sink "${sink.name}" accepts deliveries again after ${failures} failures; delivered through seq ${cursor}.`,
      data: { sink: sink.name, origin: originOf(sink.url), failures, cursor },
    });
  }
}

/** The URL's origin: a path or query may hold a token, an origin does not. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}
