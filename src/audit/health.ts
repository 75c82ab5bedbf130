/**
 * Whether the audit log can be written (issue #9): fed by the log's own
 * commits and failures, it turns the first failure into one alert, a warning
 * and a gauge at 0; while the store is down it probes it (a write transaction
 * that changes nothing) every second, and the first success — a probe or any
 * append — turns it back: gauge 1, an `audit.recovered` alert, retained
 * entries written.
 *
 * Nothing here decides whether a call runs: the attempt entry does (no commit,
 * no call). The pipeline reads `writable` only to refuse at once, with a clear
 * AUDIT_UNAVAILABLE, instead of letting every call find out the slow way.
 */
import type { WardenError } from '../errors.js';
import { type Clock, systemClock } from '../util/clock.js';
import type { AuditLogObserver } from './log.js';

/** How often the store is probed while it is down. */
export const PROBE_INTERVAL_MS = 1_000;

/** An alert as the notifiers take it (src/notify SecurityAlert). */
export interface AuditHealthAlert {
  kind: 'audit.unavailable' | 'audit.recovered';
  severity: 'low' | 'medium' | 'high' | 'critical';
  traceId: string;
  agentId: null;
  sessionId: null;
  tool: null;
  summary: string;
  data: Record<string, unknown>;
}

export interface AuditHealthDeps {
  /** A cheap write that changes nothing (`AuditLog.probe`); throws while the store cannot be written. */
  probe(): Promise<void>;
  /** What to do once the store is back (`AuditLog.retryRetained`). */
  recovered?(): void;
  /** Entries held in memory now (`AuditLog.retained`), for the alert and the log. */
  retained?(): number;
  alert(a: AuditHealthAlert): void;
  /** The writable gauge (1 or 0). */
  gauge?(writable: boolean): void;
  /** Retained entries dropped (the queue was full, or the store refused them). */
  dropped?(count: number, reason: string): void;
  log: {
    info(o: object, msg: string): void;
    warn(o: object, msg: string): void;
    error(o: object, msg: string): void;
  };
  clock?: Clock;
  probeIntervalMs?: number;
}

/** The audit store's health, kept from the log's own writes and a probe while down. */
export class AuditHealth implements AuditLogObserver {
  #writable = true;
  #downSince = 0;
  /** performance.now() of the last change: writes that began before it say nothing about the new state. */
  #changedAt = Number.NEGATIVE_INFINITY;
  #lastError = '';
  #timer: NodeJS.Timeout | undefined;
  #probing = false;
  #closed = false;
  readonly #clock: Clock;
  readonly #interval: number;

  constructor(private readonly deps: AuditHealthDeps) {
    this.#clock = deps.clock ?? systemClock;
    this.#interval = deps.probeIntervalMs ?? PROBE_INTERVAL_MS;
    deps.gauge?.(true);
  }

  /** False from the first failed write until a write or probe succeeds again. */
  get writable(): boolean {
    return this.#writable;
  }

  /** For /readyz and operators: since when it is down, and why (no entry content, ever). */
  status(): { writable: boolean; downSince?: number; error?: string; retained: number } {
    const retained = this.deps.retained?.() ?? 0;
    return this.#writable
      ? { writable: true, retained }
      : { writable: false, downSince: this.#downSince, error: this.#lastError, retained };
  }

  committed(startedAt: number = performance.now()): void {
    // A write that was under way when the outage was noticed proves nothing about now.
    if (!this.#writable && startedAt >= this.#changedAt) this.#up('write');
  }

  unavailable(error: WardenError, startedAt: number = performance.now()): void {
    // A write that began before the store came back fails for the old reason: no new outage.
    if (!this.#writable || this.#closed || startedAt < this.#changedAt) return;
    // The detail names the store's error (connection refused, database is locked), never an entry.
    this.#lastError = error.detail ?? error.message;
    this.#writable = false;
    this.#changedAt = performance.now();
    this.#downSince = this.#clock.now();
    this.deps.gauge?.(false);
    this.deps.log.warn(
      { err: this.#lastError },
      'audit log cannot be written: tool calls are refused (AUDIT_UNAVAILABLE) until it can',
    );
    this.deps.alert({
      kind: 'audit.unavailable',
      severity: 'critical',
      traceId: `audit-health-${this.#downSince}`,
      agentId: null,
      sessionId: null,
      tool: null,
      summary:
        'The audit log cannot be written: Warden refuses tool calls until it can (fail closed). Outcomes of calls that already ran are kept in memory and written once the store is back.',
      data: { error: this.#lastError, since: new Date(this.#downSince).toISOString() },
    });
    this.#schedule();
  }

  dropped(count: number, reason: 'full' | 'rejected'): void {
    this.deps.dropped?.(count, reason);
    this.deps.log.error(
      { count, reason },
      reason === 'full'
        ? 'audit entries DROPPED: the in-memory retry queue is full while the audit store is down'
        : 'audit entries DROPPED: the store refused them when they were retried',
    );
  }

  /** Stop probing (the gateway is closing). */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#timer || this.#closed || this.#writable) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#probe();
    }, this.#interval);
    this.#timer.unref();
  }

  async #probe(): Promise<void> {
    if (this.#probing || this.#writable || this.#closed) return;
    this.#probing = true;
    try {
      await this.deps.probe();
      if (!this.#writable) this.#up('probe');
    } catch (e) {
      this.#lastError = (e as WardenError).detail ?? (e as Error).message ?? String(e);
    } finally {
      this.#probing = false;
      this.#schedule();
    }
  }

  #up(by: 'write' | 'probe'): void {
    this.#writable = true;
    this.#changedAt = performance.now();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = this.#clock.now();
    const downMs = Math.max(0, now - this.#downSince);
    this.deps.gauge?.(true);
    const retained = this.deps.retained?.() ?? 0;
    this.deps.log.info({ downMs, by, retained }, 'audit log writable again: tool calls are accepted');
    this.deps.alert({
      kind: 'audit.recovered',
      severity: 'medium',
      traceId: `audit-health-${now}`,
      agentId: null,
      sessionId: null,
      tool: null,
      summary: `The audit log can be written again after ${Math.round(downMs / 1000)} s; tool calls are accepted.`,
      data: { downMs, since: new Date(this.#downSince).toISOString(), retained },
    });
    this.deps.recovered?.();
  }
}
