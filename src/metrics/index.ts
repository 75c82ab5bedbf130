/**
 * Warden's Prometheus metrics (prom-client), one registry per gateway so two
 * gateways in one process (tests) never share counters. The pipeline times
 * each of its steps into `warden_pipeline_step_seconds`: the histogram
 * `npm run bench` reads to say which step costs what. docs/monitoring.md
 * lists every metric with an alert to go with it.
 *
 * Label values are bounded by construction: tool names only once resolved to
 * a tool that exists, codes from the error-code union, rules and scopes from
 * config. Nothing an agent sends becomes a label value as sent.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type Clock, systemClock } from '../util/clock.js';
import { CachedReading } from './cached-reading.js';

export { timedAppends } from './timed-audit.js';

/** Step timings reach from 1 µs (a cached check) to seconds (an upstream call). */
const STEP_BUCKETS = [
  0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** A kill reaches every replica within milliseconds when the broadcast works, seconds when it polls. */
const PROPAGATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The `tool` label of a call that named no tool that exists (a typo, a probe, a withheld tool). */
export const UNKNOWN_TOOL = '(unknown)';

/** How long a store-backed gauge reading is reused across scrapes. */
const READING_TTL_MS = 5_000;
/** A reading slower than this is dropped from the scrape (which must not hang on the store). */
const READING_TIMEOUT_MS = 1_000;

/** What the pipeline reports; a no-op implementation keeps unit tests free of metrics. */
export interface PipelineMetrics {
  /** One step's duration in seconds. */
  step(name: string, seconds: number): void;
  /**
   * One finished call: `outcome` success | failure | timeout | denied | pending, the error code if
   * any, and the tool — only a name that resolved to an existing tool (else counted as `(unknown)`).
   */
  call(outcome: string, code: string | undefined, seconds: number, tool?: string): void;
  /** A call entered (+1) or left (-1) the pipeline. */
  callsRunning(delta: 1 | -1): void;
  /** An audit entry (denial or outcome) that could not be written after the decision. */
  auditFailure(entry: string): void;
}

export const noMetrics: PipelineMetrics = {
  step: () => {},
  call: () => {},
  callsRunning: () => {},
  auditFailure: () => {},
};

/** What the monitor reports (anomalies, circuit breakers, kill switch); no-op in its unit tests. */
export interface MonitorMetrics {
  /** An anomaly rule fired. */
  anomaly(rule: string, severity: string): void;
  /** A circuit breaker opened (tripped). */
  breakerOpened(scope: string, reason: string): void;
  /** The kill switch was thrown for an agent or a session. */
  killed(scope: string): void;
  /** Seconds from a kill being committed to it taking effect on this replica. */
  killPropagated(seconds: number): void;
}

export const noMonitorMetrics: MonitorMetrics = {
  anomaly: () => {},
  breakerOpened: () => {},
  killed: () => {},
  killPropagated: () => {},
};

/** The decision a call's outcome stands for: it ran (whatever came of it), was refused, or waits for a human. */
function decisionOf(outcome: string): 'allowed' | 'denied' | 'pending' {
  return outcome === 'denied' ? 'denied' : outcome === 'pending' ? 'pending' : 'allowed';
}

export interface MetricsOptions {
  /** Node process metrics (memory, event loop, GC); default on. */
  processMetrics?: boolean;
  /** The time for caching store-backed readings (the gateway's clock). */
  clock?: Clock;
  /** How long a store-backed reading is reused across scrapes (default 5 s). */
  readingTtlMs?: number;
}

export class Metrics implements PipelineMetrics, MonitorMetrics {
  readonly registry = new Registry();
  private readonly steps: Histogram<'step'>;
  private readonly calls: Counter<'outcome' | 'code' | 'tool' | 'decision'>;
  private readonly callSeconds: Histogram<'outcome'>;
  private readonly auditFailures: Counter<'entry'>;
  private readonly auditAppends: Histogram<'durable'>;
  private readonly anomalies: Counter<'rule' | 'severity'>;
  private readonly breakerTrips: Counter<'scope' | 'reason'>;
  private readonly kills: Counter<'scope'>;
  private readonly killSeconds: Histogram;
  private readonly readingErrors: Counter<'source'>;
  private auditDroppedEntries: Counter<'reason'> | undefined;
  private auditSinks:
    | { lag: Gauge<'sink'>; failures: Counter<'sink'>; delivered: Counter<'sink'> }
    | undefined;
  private readonly clock: Clock;
  private readonly readingTtlMs: number;
  /** Calls inside the pipeline now: a plain number, set on the gauge only when scraped. */
  private running = 0;
  private approvalsPending: CachedReading<number> | undefined;
  private openBreakers: CachedReading<Readonly<Record<string, number>>> | undefined;

  constructor(opts: MetricsOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.readingTtlMs = opts.readingTtlMs ?? READING_TTL_MS;
    const registers = [this.registry];
    this.steps = new Histogram({
      name: 'warden_pipeline_step_seconds',
      help: 'Time spent in each step of the tool-call pipeline (execute includes the upstream call).',
      labelNames: ['step'],
      buckets: STEP_BUCKETS,
      registers,
    });
    this.calls = new Counter({
      name: 'warden_tool_calls_total',
      help: 'Tool calls by outcome (success, failure, timeout, denied, pending), error code, tool ((unknown) when the name resolved to no tool) and decision (allowed, denied, pending).',
      labelNames: ['outcome', 'code', 'tool', 'decision'],
      registers,
    });
    this.callSeconds = new Histogram({
      name: 'warden_tool_call_seconds',
      help: 'Whole tool-call time inside the gateway, from the first step to the recorded outcome.',
      labelNames: ['outcome'],
      buckets: STEP_BUCKETS,
      registers,
    });
    const running = (): number => this.running;
    new Gauge({
      name: 'warden_tool_calls_in_flight',
      help: 'Tool calls inside the pipeline now (including calls held for a human).',
      registers,
      collect() {
        this.set(running());
      },
    });
    this.auditFailures = new Counter({
      name: 'warden_audit_write_failures_total',
      help: 'Audit entries (denial, outcome) that could not be written after the decision; each is also logged.',
      labelNames: ['entry'],
      registers,
    });
    this.auditAppends = new Histogram({
      name: 'warden_audit_append_seconds',
      help: "Time for the pipeline's audit appends to commit; durable=true waits for the disk flush (attempts, denials), false does not (outcomes).",
      labelNames: ['durable'],
      buckets: STEP_BUCKETS,
      registers,
    });
    this.anomalies = new Counter({
      name: 'warden_anomalies_total',
      help: 'Anomalies detected against the baselines, by rule and severity.',
      labelNames: ['rule', 'severity'],
      registers,
    });
    this.breakerTrips = new Counter({
      name: 'warden_circuit_breaker_trips_total',
      help: 'Circuit breakers that opened, by scope and the limit that tripped them.',
      labelNames: ['scope', 'reason'],
      registers,
    });
    this.kills = new Counter({
      name: 'warden_kills_total',
      help: 'Kill-switch activations, by scope (agent, session).',
      labelNames: ['scope'],
      registers,
    });
    this.killSeconds = new Histogram({
      name: 'warden_kill_propagation_seconds',
      help: 'Time from a kill being committed to it taking effect on this replica (credentials refused, calls aborted).',
      buckets: PROPAGATION_BUCKETS,
      registers,
    });
    const readings = () => [this.approvalsPending?.get(), this.openBreakers?.get()];
    this.readingErrors = new Counter({
      name: 'warden_metrics_reading_errors_total',
      help: 'Readings for a scrape (approvals pending, breakers open) that failed or timed out; the scrape answered without them.',
      labelNames: ['source'],
      registers,
      // The registry collects every metric at once: wait for this scrape's readings (shared, not
      // repeated) so that a failure shows in the same scrape as its NaN.
      async collect() {
        await Promise.all(readings());
      },
    });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'warden_' });
  }

  step(name: string, seconds: number): void {
    this.steps.observe({ step: name }, seconds);
  }

  call(outcome: string, code: string | undefined, seconds: number, tool?: string): void {
    this.calls.inc({ outcome, code: code ?? '', tool: tool ?? UNKNOWN_TOOL, decision: decisionOf(outcome) });
    this.callSeconds.observe({ outcome }, seconds);
  }

  callsRunning(delta: 1 | -1): void {
    this.running += delta;
  }

  auditFailure(entry: string): void {
    this.auditFailures.inc({ entry });
  }

  /** One audit append, committed or failed, and how long it took. */
  auditAppend(durable: boolean, seconds: number): void {
    this.auditAppends.observe({ durable: durable ? 'true' : 'false' }, seconds);
  }

  anomaly(rule: string, severity: string): void {
    this.anomalies.inc({ rule, severity });
  }

  breakerOpened(scope: string, reason: string): void {
    this.breakerTrips.inc({ scope, reason });
  }

  killed(scope: string): void {
    this.kills.inc({ scope });
  }

  killPropagated(seconds: number): void {
    this.killSeconds.observe(seconds);
  }

  /**
   * Serve `warden_approvals_pending` from `count` (a store query), read at most once per TTL
   * however often /metrics is scraped; a failed reading shows as NaN and is counted.
   */
  collectApprovalsPending(count: () => Promise<number>): void {
    const first = this.approvalsPending === undefined;
    this.approvalsPending = this.reading('approvals_pending', count);
    if (!first) return;
    const reading = (): CachedReading<number> | undefined => this.approvalsPending;
    new Gauge({
      name: 'warden_approvals_pending',
      help: 'Approval requests waiting for a human decision (not yet expired); NaN when the store could not be read.',
      registers: [this.registry],
      async collect() {
        this.set((await reading()?.get()) ?? Number.NaN);
      },
    });
  }

  /**
   * Serve `warden_circuit_breakers_open{scope}` from `open` (open breakers by scope), read like
   * approvals pending; a failed reading leaves the gauge without samples and is counted.
   */
  collectOpenBreakers(
    open: () => Readonly<Record<string, number>> | Promise<Readonly<Record<string, number>>>,
  ): void {
    const first = this.openBreakers === undefined;
    this.openBreakers = this.reading('circuit_breakers_open', open);
    if (!first) return;
    const reading = () => this.openBreakers;
    new Gauge({
      name: 'warden_circuit_breakers_open',
      help: 'Circuit breakers open now, by scope.',
      labelNames: ['scope'],
      registers: [this.registry],
      async collect() {
        const byScope = await reading()?.get();
        // Reset and set with no await between: a concurrent scrape never sees a half-filled gauge.
        this.reset();
        for (const [scope, n] of Object.entries(byScope ?? {})) this.set({ scope }, n);
      },
    });
  }

  /**
   * Serve the audit store's health (issue #9): `warden_audit_writable` (1 or 0) and
   * `warden_audit_retained_entries` (outcome entries waiting in memory for the store),
   * read from `read` on scrape; `auditDropped` counts into `warden_audit_dropped_entries_total`.
   */
  collectAuditHealth(read: () => { writable: boolean; retained: number }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'warden_audit_writable',
      help: 'Whether the audit log can be written (1) or not (0: tool calls are refused with AUDIT_UNAVAILABLE).',
      registers,
      collect() {
        this.set(read().writable ? 1 : 0);
      },
    });
    new Gauge({
      name: 'warden_audit_retained_entries',
      help: 'Outcome entries of calls that ran, kept in memory until the audit store takes them.',
      registers,
      collect() {
        this.set(read().retained);
      },
    });
    this.auditDroppedEntries ??= new Counter({
      name: 'warden_audit_dropped_entries_total',
      help: 'Outcome entries dropped: the in-memory retry queue was full (full) or the store refused them (rejected).',
      labelNames: ['reason'],
      registers,
    });
  }

  /**
   * Serve the tamper-evidence layer's state (issue #9), read on scrape: the Merkle tree's size,
   * the entries not yet under a signed checkpoint, the newest checkpoint's age, and whether the
   * tree builder stopped at a broken chain. Alert on a growing age or a broken chain.
   */
  collectAuditTree(
    read: () => {
      headSeq: number;
      treeSize: number;
      checkpoint: { size: number; ts: number } | null;
      brokenAt: number | null;
    } | null,
    now: () => number,
  ): void {
    const registers = [this.registry];
    const gauge = (name: string, help: string, value: (r: NonNullable<ReturnType<typeof read>>) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const r = read();
          this.set(r === null ? Number.NaN : value(r));
        },
      });
    gauge(
      'warden_audit_tree_entries',
      'Audit entries the Merkle tree has been built over.',
      (r) => r.treeSize,
    );
    gauge(
      'warden_audit_unsigned_entries',
      'Audit entries after the newest signed checkpoint (not yet under a signature).',
      (r) => Math.max(0, r.headSeq - (r.checkpoint?.size ?? 0)),
    );
    gauge(
      'warden_audit_checkpoint_age_seconds',
      'Seconds since the newest checkpoint was signed (NaN before the first).',
      (r) => (r.checkpoint === null ? Number.NaN : Math.max(0, (now() - r.checkpoint.ts) / 1000)),
    );
    gauge(
      'warden_audit_chain_broken',
      'Whether the tree builder stopped at an audit entry that does not link (1): run warden audit verify.',
      (r) => (r.brokenAt === null ? 0 : 1),
    );
  }

  /** Retained audit entries that were dropped. */
  auditDropped(count: number, reason: string): void {
    this.auditDroppedEntries?.inc({ reason }, count);
  }

  /** `warden_audit_sink_lag_entries{sink}`: entries an audit sink has yet to deliver (head seq − its cursor). */
  auditSinkLag(sink: string, lag: number): void {
    this.sinkMetrics().lag.set({ sink }, lag);
  }

  /** `warden_audit_sink_delivery_failures_total{sink}`: one failed delivery (it is retried). */
  auditSinkFailure(sink: string): void {
    this.sinkMetrics().failures.inc({ sink });
  }

  /** `warden_audit_sink_delivered_entries_total{sink}`: entries a sink accepted. */
  auditSinkDelivered(sink: string, entries: number): void {
    this.sinkMetrics().delivered.inc({ sink }, entries);
  }

  /** The audit sink metrics, declared on first use (label values are configured sink names). */
  private sinkMetrics() {
    const registers = [this.registry];
    this.auditSinks ??= {
      lag: new Gauge({
        name: 'warden_audit_sink_lag_entries',
        help: 'Audit entries a sink has yet to deliver: the head seq minus its cursor (filtered-out entries count until passed).',
        labelNames: ['sink'],
        registers,
      }),
      failures: new Counter({
        name: 'warden_audit_sink_delivery_failures_total',
        help: 'Failed deliveries to an audit sink (non-2xx, timeout, connection error); each is retried, no entry is dropped.',
        labelNames: ['sink'],
        registers,
      }),
      delivered: new Counter({
        name: 'warden_audit_sink_delivered_entries_total',
        help: 'Audit entries an audit sink accepted (2xx).',
        labelNames: ['sink'],
        registers,
      }),
    };
    return this.auditSinks;
  }

  private reading<T>(source: string, read: () => T | Promise<T>): CachedReading<T> {
    return new CachedReading(read, {
      ttlMs: this.readingTtlMs,
      timeoutMs: READING_TIMEOUT_MS,
      now: () => this.clock.now(),
      onError: () => this.readingErrors.inc({ source }),
    });
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
