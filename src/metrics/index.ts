/**
 * Warden's Prometheus metrics (prom-client), one registry per gateway so two
 * gateways in one process (tests) never share counters. The pipeline times
 * each of its steps into `warden_pipeline_step_seconds`: the histogram
 * `npm run bench` reads to say which step costs what.
 */
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Step timings reach from 1 µs (a cached check) to seconds (an upstream call). */
const STEP_BUCKETS = [
  0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** What the pipeline reports; a no-op implementation keeps unit tests free of metrics. */
export interface PipelineMetrics {
  /** One step's duration in seconds. */
  step(name: string, seconds: number): void;
  /** One finished call: `outcome` success | failure | timeout | denied, and the error code if any. */
  call(outcome: string, code: string | undefined, seconds: number): void;
  /** An audit entry (denial or outcome) that could not be written after the decision. */
  auditFailure(entry: string): void;
}

export const noMetrics: PipelineMetrics = { step: () => {}, call: () => {}, auditFailure: () => {} };

export class Metrics implements PipelineMetrics {
  readonly registry = new Registry();
  private readonly steps: Histogram<'step'>;
  private readonly calls: Counter<'outcome' | 'code'>;
  private readonly callSeconds: Histogram<'outcome'>;
  private readonly auditFailures: Counter<'entry'>;

  constructor(opts: { processMetrics?: boolean } = {}) {
    this.steps = new Histogram({
      name: 'warden_pipeline_step_seconds',
      help: 'Time spent in each step of the tool-call pipeline (execute includes the upstream call).',
      labelNames: ['step'],
      buckets: STEP_BUCKETS,
      registers: [this.registry],
    });
    this.calls = new Counter({
      name: 'warden_tool_calls_total',
      help: 'Tool calls by outcome (success, failure, timeout, denied) and error code.',
      labelNames: ['outcome', 'code'],
      registers: [this.registry],
    });
    this.callSeconds = new Histogram({
      name: 'warden_tool_call_seconds',
      help: 'Whole tool-call time inside the gateway, from the first step to the recorded outcome.',
      labelNames: ['outcome'],
      buckets: STEP_BUCKETS,
      registers: [this.registry],
    });
    this.auditFailures = new Counter({
      name: 'warden_audit_write_failures_total',
      help: 'Audit entries (denial, outcome) that could not be written after the decision; each is also logged.',
      labelNames: ['entry'],
      registers: [this.registry],
    });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'warden_' });
  }

  step(name: string, seconds: number): void {
    this.steps.observe({ step: name }, seconds);
  }

  call(outcome: string, code: string | undefined, seconds: number): void {
    this.calls.inc({ outcome, code: code ?? '' });
    this.callSeconds.observe({ outcome }, seconds);
  }

  auditFailure(entry: string): void {
    this.auditFailures.inc({ entry });
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
