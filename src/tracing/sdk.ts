/**
 * The OpenTelemetry SDK side of tracing, loaded only when `tracing.enabled`
 * (src/tracing/index.ts imports this file with `import()`).
 *
 * Each gateway owns its tracer provider; nothing is registered globally, so
 * two gateways in one process (tests) or an application that embeds Warden
 * keep their own. Contexts are passed explicitly rather than through the
 * global context manager, and the upstream `traceparent` rides on our own
 * AsyncLocalStorage (context.ts).
 */
import {
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type IdGenerator,
  ParentBasedSampler,
  RandomIdGenerator,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../config/schema-tracing.js';
import { WardenError } from '../errors.js';
import {
  formatTraceparent,
  incomingTraceparent,
  isTraceId,
  parseTraceparent,
  withOutgoingTraceparent,
} from './context.js';
import type { CallOutcome, CallSpan, CallTracer, Tracing, TracingOptions } from './index.js';

const CALL_SPAN = 'tools/call';

/**
 * Random ids, except that the next trace id may be chosen: the audit trace id of a call that came
 * without a usable `traceparent`. The SDK asks for it synchronously inside `startSpan`, so a
 * value set just before that call is taken by that span and no other.
 */
class ChosenTraceIds implements IdGenerator {
  next: string | undefined;
  private readonly random = new RandomIdGenerator();

  generateTraceId(): string {
    const id = this.next ?? this.random.generateTraceId();
    this.next = undefined;
    return id;
  }

  generateSpanId(): string {
    return this.random.generateSpanId();
  }
}

/** The code of what a step threw (a WardenError's, else the error's name). */
function codeOf(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : e instanceof Error ? e.name : 'Error';
}

class OtelCallSpan implements CallSpan {
  private readonly context: Context;

  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
  ) {
    this.context = trace.setSpan(ROOT_CONTEXT, span);
  }

  async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const span = this.tracer.startSpan(`step ${name}`, { attributes: { 'warden.step': name } }, this.context);
    const sc = span.spanContext();
    try {
      return await withOutgoingTraceparent(
        formatTraceparent(sc.traceId, sc.spanId, (sc.traceFlags & TraceFlags.SAMPLED) !== 0),
        fn,
      );
    } catch (e) {
      // The step that stopped the call (a denial or a failure) is the one marked.
      const code = codeOf(e);
      span.setAttribute('warden.code', code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: code });
      throw e;
    } finally {
      span.end();
    }
  }

  outcome(o: CallOutcome): void {
    if (o.tool !== undefined) {
      this.span.updateName(`${CALL_SPAN} ${o.tool}`);
      this.span.setAttribute('gen_ai.tool.name', o.tool);
    }
    this.span.setAttribute('warden.outcome', o.outcome);
    if (o.code !== undefined) this.span.setAttribute('warden.code', o.code);
    if (o.agentId !== undefined) this.span.setAttribute('warden.agent_id', o.agentId);
    if (o.sessionId !== undefined) this.span.setAttribute('warden.session_id', o.sessionId);
    // A denial or a held call is the gateway working; a call that ran and failed is an error.
    if (o.outcome === 'failure' || o.outcome === 'timeout') {
      this.span.setStatus({ code: SpanStatusCode.ERROR, ...(o.code ? { message: o.code } : {}) });
    }
  }
}

class OtelCallTracer implements CallTracer {
  constructor(
    private readonly tracer: Tracer,
    private readonly ids: ChosenTraceIds,
  ) {}

  async call<T>(traceId: string, fn: (span: CallSpan) => Promise<T>): Promise<T> {
    let span: Span;
    try {
      span = this.start(traceId);
    } catch {
      // Tracing must never cost a call: without a span the call runs as if tracing were off.
      return fn(noSpan);
    }
    try {
      return await fn(new OtelCallSpan(this.tracer, span));
    } finally {
      span.end();
    }
  }

  private start(traceId: string): Span {
    const options = {
      kind: SpanKind.SERVER,
      attributes: { 'warden.trace_id': traceId, 'mcp.method.name': 'tools/call' },
    };
    // The caller's span is the parent when its trace is the one the audit entry names.
    const remote = parseTraceparent(incomingTraceparent());
    if (remote && remote.traceId === traceId) {
      const parent = trace.setSpanContext(ROOT_CONTEXT, {
        traceId,
        spanId: remote.spanId,
        traceFlags: remote.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
        isRemote: true,
      });
      return this.tracer.startSpan(CALL_SPAN, options, parent);
    }
    // Otherwise a root span whose trace id is the audit trace id (when that is a W3C trace id).
    if (isTraceId(traceId)) this.ids.next = traceId;
    try {
      return this.tracer.startSpan(CALL_SPAN, { ...options, root: true }, ROOT_CONTEXT);
    } finally {
      this.ids.next = undefined;
    }
  }
}

const noSpan: CallSpan = { step: (_name, fn) => fn(), outcome: () => {} };

async function exporterFor(config: TracingConfig): Promise<SpanExporter> {
  if (config.exporter === 'console') return new ConsoleSpanExporter();
  let otlp: typeof import('@opentelemetry/exporter-trace-otlp-http');
  try {
    otlp = await import('@opentelemetry/exporter-trace-otlp-http');
  } catch (e) {
    throw new WardenError(
      'CONFIG_INVALID',
      `tracing.exporter is otlp-http but @opentelemetry/exporter-trace-otlp-http could not be loaded (${e instanceof Error ? e.message : String(e)}); ` +
        'install the optional dependencies (npm ci without --omit=optional) or set tracing.enabled: false',
      { cause: e },
    );
  }
  return new otlp.OTLPTraceExporter(config.endpoint === undefined ? {} : { url: config.endpoint });
}

/** Builds this gateway's tracer provider and the pipeline's tracer. */
export async function startSdkTracing(config: TracingConfig, opts: TracingOptions): Promise<Tracing> {
  const injected = opts.exporter as SpanExporter | undefined;
  const processor: SpanProcessor = injected
    ? new SimpleSpanProcessor(injected)
    : config.exporter === 'console'
      ? new SimpleSpanProcessor(await exporterFor(config))
      : new BatchSpanProcessor(await exporterFor(config));
  const ids = new ChosenTraceIds();
  // The ratio decides on the trace id alone, for new traces and a caller's alike: an agent must not
  // be able to force every one of its calls into the trace store by sending the sampled flag.
  const ratio = new TraceIdRatioBasedSampler(config.sampleRatio);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    sampler: new ParentBasedSampler({
      root: ratio,
      remoteParentSampled: ratio,
      remoteParentNotSampled: ratio,
    }),
    idGenerator: ids,
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer('warden');
  return {
    tracer: new OtelCallTracer(tracer, ids),
    flush: () => provider.forceFlush(),
    close: () => provider.shutdown(),
  };
}
