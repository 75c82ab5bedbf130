/**
 * Traces (issue #8): an OpenTelemetry span per tool call and per pipeline
 * step, off by default. The call span's trace id is the audit entry's
 * `traceId`, so a trace leads to its audit entries and back; the upstream
 * requests of a call carry a W3C `traceparent` with that id.
 *
 * The SDK is loaded here, with `import()`, only when `tracing.enabled`: with
 * tracing off the pipeline holds no tracer and creates no span objects.
 */
import type { TracingConfig } from '../config/schema-tracing.js';
import { WardenError } from '../errors.js';

export {
  formatTraceparent,
  incomingTraceparent,
  isTraceId,
  outgoingTraceparent,
  parseTraceparent,
  withIncomingTraceparent,
} from './context.js';

/** What the pipeline asks of a tracer: one span around each call. */
export interface CallTracer {
  /**
   * Runs `fn` (the whole call) inside a span whose trace id is `traceId` when that is a W3C trace
   * id (else a new one, with `traceId` as the `warden.trace_id` attribute). Never throws itself.
   */
  call<T>(traceId: string, fn: (span: CallSpan) => Promise<T>): Promise<T>;
}

/** The span of one call, as the pipeline sees it. */
export interface CallSpan {
  /** Runs one step inside a child span; the upstream requests it makes carry that span as parent. */
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Records how the call ended (before the span ends). */
  outcome(o: CallOutcome): void;
}

export interface CallOutcome {
  outcome: string;
  code: string | undefined;
  /** The tool, only once resolved to one that exists. */
  tool: string | undefined;
  agentId: string | undefined;
  sessionId: string | undefined;
}

/** Tracing as the gateway runs it. */
export interface Tracing {
  readonly tracer: CallTracer;
  /** Exports the spans still buffered. */
  flush(): Promise<void>;
  /** Exports what is buffered, then stops. */
  close(): Promise<void>;
}

export interface TracingOptions {
  /**
   * Where spans go instead of the configured exporter (tests: the SDK's InMemorySpanExporter),
   * exported one by one as they end. Typed loosely so that this module needs no SDK types.
   */
  exporter?: unknown;
}

/**
 * Starts tracing as `config` says; undefined when it is off. Fails with CONFIG_INVALID when it is
 * on but the SDK cannot be loaded: a gateway told to trace must not run untraced in silence.
 */
export async function startTracing(
  config: TracingConfig,
  opts: TracingOptions = {},
): Promise<Tracing | undefined> {
  if (!config.enabled) return undefined;
  let sdk: typeof import('./sdk.js');
  try {
    sdk = await import('./sdk.js');
  } catch (e) {
    throw new WardenError(
      'CONFIG_INVALID',
      `tracing.enabled is true but the OpenTelemetry SDK could not be loaded (${e instanceof Error ? e.message : String(e)}); ` +
        'install the optional dependencies (npm ci without --omit=optional) or set tracing.enabled: false',
      { cause: e },
    );
  }
  return sdk.startSdkTracing(config, opts);
}
