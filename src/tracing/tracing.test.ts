import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TRACING, type TracingConfig } from '../config/schema-tracing.js';
import {
  formatTraceparent,
  isTraceId,
  outgoingTraceparent,
  parseTraceparent,
  startTracing,
  withIncomingTraceparent,
} from './index.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

async function traced(over: Partial<TracingConfig> = {}) {
  const exporter = new InMemorySpanExporter();
  const tracing = await startTracing({ ...DEFAULT_TRACING, enabled: true, ...over }, { exporter });
  if (!tracing) throw new Error('tracing did not start');
  return { tracing, exporter };
}

describe('traceparent', () => {
  it('reads and writes the W3C header, refusing what §3.2 calls invalid', () => {
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-01`)).toEqual({
      traceId: TRACE,
      spanId: PARENT,
      sampled: true,
    });
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-00`)?.sampled).toBe(false);
    expect(parseTraceparent(`cc-${TRACE}-${PARENT}-01-future`)?.traceId).toBe(TRACE);
    for (const bad of [
      undefined,
      '',
      `00-${TRACE}-${PARENT}-01-extra`,
      `ff-${TRACE}-${PARENT}-01`,
      `00-${'0'.repeat(32)}-${PARENT}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE.toUpperCase()}-${PARENT}-01`,
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
    }
    expect(formatTraceparent(TRACE, PARENT, true)).toBe(`00-${TRACE}-${PARENT}-01`);
    expect(isTraceId(TRACE)).toBe(true);
    expect(isTraceId('0'.repeat(32))).toBe(false);
    expect(isTraceId('trace-from-a-header')).toBe(false);
  });
});

describe('startTracing', () => {
  it('is off by default: no tracer at all', async () => {
    expect(await startTracing(DEFAULT_TRACING)).toBeUndefined();
  });

  it("gives a call without a caller's traceparent a root span whose trace id is the audit trace id", async () => {
    const { tracing, exporter } = await traced();
    const seen: Array<string | undefined> = [];
    await tracing.tracer.call(TRACE, async (span) => {
      await span.step('authenticate', async () => {});
      await span.step('execute', async () => {
        seen.push(outgoingTraceparent());
      });
      span.outcome({
        outcome: 'success',
        code: undefined,
        tool: 'lookup_order',
        agentId: 'a1',
        sessionId: 's1',
      });
    });
    expect(outgoingTraceparent()).toBeUndefined();
    const spans = exporter.getFinishedSpans();
    const call = spans.find((s) => s.name === 'tools/call lookup_order')!;
    expect(call.spanContext().traceId).toBe(TRACE);
    expect(call.parentSpanContext).toBeUndefined();
    expect(call.attributes).toMatchObject({
      'warden.trace_id': TRACE,
      'warden.outcome': 'success',
      'gen_ai.tool.name': 'lookup_order',
      'warden.agent_id': 'a1',
    });
    const steps = spans.filter((s) => s.name.startsWith('step '));
    expect(steps.map((s) => s.name)).toEqual(['step authenticate', 'step execute']);
    for (const s of steps) {
      expect(s.spanContext().traceId).toBe(TRACE);
      expect(s.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
    }
    // The upstream request made inside execute names execute's span as its parent.
    expect(seen).toEqual([formatTraceparent(TRACE, steps[1]!.spanContext().spanId, true)]);
    await tracing.close();
  });

  it("makes the call a child of the caller's span when the caller's trace is the audited one", async () => {
    const { tracing, exporter } = await traced();
    await withIncomingTraceparent(`00-${TRACE}-${PARENT}-01`, () =>
      tracing.tracer.call(TRACE, async () => {}),
    );
    // Another trace id than the audited one (an x-trace-id header won): a root span of its own.
    const other = 'a'.repeat(32);
    await withIncomingTraceparent(`00-${TRACE}-${PARENT}-01`, () =>
      tracing.tracer.call(other, async () => {}),
    );
    const [child, root] = exporter.getFinishedSpans();
    expect(child?.spanContext().traceId).toBe(TRACE);
    expect(child?.parentSpanContext).toMatchObject({ spanId: PARENT, isRemote: true });
    expect(root?.spanContext().traceId).toBe(other);
    expect(root?.parentSpanContext).toBeUndefined();
    await tracing.close();
  });

  it('marks the step that stopped a call, and a call that failed', async () => {
    const { tracing, exporter } = await traced();
    const denial = Object.assign(new Error('Tool denied'), { code: 'TOOL_DENIED' });
    await tracing.tracer.call(TRACE, async (span) => {
      await expect(span.step('authorize', () => Promise.reject(denial))).rejects.toBe(denial);
      span.outcome({
        outcome: 'denied',
        code: 'TOOL_DENIED',
        tool: 'bulk_message',
        agentId: 'a1',
        sessionId: 's1',
      });
    });
    await tracing.tracer.call(TRACE, async (span) => {
      span.outcome({
        outcome: 'failure',
        code: 'UPSTREAM_ERROR',
        tool: undefined,
        agentId: undefined,
        sessionId: undefined,
      });
    });
    const [step, denied, failed] = exporter.getFinishedSpans();
    expect(step?.attributes['warden.code']).toBe('TOOL_DENIED');
    expect(step?.status.code).toBe(2); // ERROR
    expect(denied?.status.code).toBe(0); // UNSET: a denial is the gateway working
    expect(denied?.attributes['warden.outcome']).toBe('denied');
    expect(failed?.name).toBe('tools/call');
    expect(failed?.status).toMatchObject({ code: 2, message: 'UPSTREAM_ERROR' });
    await tracing.close();
  });

  it('keeps an audit trace id that is not a W3C id as an attribute of a span with its own id', async () => {
    const { tracing, exporter } = await traced();
    await tracing.tracer.call('ticket-1234-from-x-trace-id', async () => {});
    const [span] = exporter.getFinishedSpans();
    expect(isTraceId(span!.spanContext().traceId)).toBe(true);
    expect(span!.attributes['warden.trace_id']).toBe('ticket-1234-from-x-trace-id');
    await tracing.close();
  });

  it("records nothing at sampleRatio 0, whatever the caller's sampled flag, yet still propagates the trace id", async () => {
    const { tracing, exporter } = await traced({ sampleRatio: 0 });
    const seen: Array<string | undefined> = [];
    await withIncomingTraceparent(`00-${TRACE}-${PARENT}-01`, () =>
      tracing.tracer.call(TRACE, (span) =>
        span.step('execute', async () => seen.push(outgoingTraceparent())),
      ),
    );
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(seen[0]).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`));
    await tracing.close();
  });
});
