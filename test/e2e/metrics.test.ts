/**
 * End to end: /metrics serves the pipeline's own step timings and the call
 * counters (by outcome, code, tool and decision) in the Prometheus text
 * format after real calls, approvals waiting in the store, audit append
 * latency, and stays parseable and exact while calls run concurrently;
 * `server.metrics: false` turns the route off.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ORDER = 'ORD-4F8K2P1Z';

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, line: string): number | undefined {
  const hit = text.split('\n').find((l) => l.startsWith(`${line} `));
  return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/g;

/** Every sample of the exposition; throws on a line that is not valid text format. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = SAMPLE_LINE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    let consumed = 0;
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      labels[l[1]!] = l[2]!;
      consumed += l[0].length;
    }
    if (consumed !== (m[2] ?? '').length) throw new Error(`bad labels: ${line}`);
    const value = Number(m[3]);
    if (Number.isNaN(value) && !/^nan$/i.test(m[3]!)) throw new Error(`bad value: ${line}`);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** The sum of the samples of `name` whose labels include `labels` (order-independent); undefined if none. */
function total(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = parse(text).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return hits.length === 0 ? undefined : hits.reduce((n, s) => n + s.value, 0);
}

describe('metrics', () => {
  let t: TestGateway;
  const target = makeTarget('sqlite');
  const scrape = async () => {
    const res = await fetch(`${t.gw.url}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const rest = (token: string, body: Record<string, unknown>) =>
    fetch(`${t.gw.url}/v1/tool-calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    t = await startTestGateway(target);
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  it('counts calls by outcome and times every pipeline step', async () => {
    const client = await t.mcp(await t.oauthToken('demo-support'));
    const ok = (await client.callTool({
      name: 'lookup_order',
      arguments: { orderId: ORDER },
    })) as CallToolResult;
    expect(ok.isError).toBeFalsy();
    const denied = (await client.callTool({
      name: 'bulk_message',
      arguments: { audience: 'all_customers', message: 'phish' },
    })) as CallToolResult;
    expect(denied.isError).toBe(true);

    const res = await fetch(`${t.gw.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(total(text, 'warden_tool_calls_total', { outcome: 'success', code: '' })).toBe(1);
    expect(total(text, 'warden_tool_calls_total', { outcome: 'denied', code: 'TOOL_DENIED' })).toBe(1);
    for (const step of t.gw.pipeline.steps.map((s) => s.name)) {
      const runs = sample(text, `warden_pipeline_step_seconds_count{step="${step}"}`);
      // Every step ran for the allowed call; the ones before authorize also ran for the denied one.
      expect(runs, step).toBeGreaterThanOrEqual(1);
      expect(sample(text, `warden_pipeline_step_seconds_sum{step="${step}"}`), step).toBeGreaterThan(0);
    }
    expect(sample(text, 'warden_pipeline_step_seconds_count{step="execute"}')).toBe(1);
    expect(sample(text, 'warden_pipeline_step_seconds_count{step="record-outcome"}')).toBe(2);
    expect(text).toContain('warden_process_resident_memory_bytes');
  });

  it('labels calls by tool and decision, a name that resolved to no tool as (unknown)', async () => {
    const token = await t.oauthToken('demo-support');
    expect((await rest(token, { toolName: 'no_such_tool_zz9', parameters: {} })).status).toBe(404);
    const text = await scrape();
    expect(
      total(text, 'warden_tool_calls_total', {
        tool: 'lookup_order',
        decision: 'allowed',
        outcome: 'success',
      }),
    ).toBe(1);
    expect(total(text, 'warden_tool_calls_total', { tool: 'bulk_message', decision: 'denied' })).toBe(1);
    expect(
      total(text, 'warden_tool_calls_total', { tool: '(unknown)', decision: 'denied', code: 'TOOL_UNKNOWN' }),
    ).toBe(1);
    // What the agent sent is never a label value.
    expect(text).not.toContain('no_such_tool_zz9');
  });

  it('times audit appends, durable (attempts, denials) and not (outcomes)', async () => {
    const text = await scrape();
    expect(sample(text, 'warden_audit_append_seconds_count{durable="true"}')).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'warden_audit_append_seconds_count{durable="false"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'warden_audit_append_seconds_sum{durable="true"}')).toBeGreaterThan(0);
  });

  it('serves the approvals waiting for a human, read from the store on scrape', async () => {
    const token = await t.oauthToken('demo-support');
    const res = await rest(token, {
      toolName: 'issue_refund',
      parameters: { orderId: ORDER, amountCents: 100, reason: 'metrics e2e' },
      approval: 'pending',
    });
    expect(res.status).toBe(202);
    // Past the reading's cache (the earlier scrapes read 0), well within the request's timeout.
    t.clock.advance(10_000);
    const text = await scrape();
    expect(sample(text, 'warden_approvals_pending')).toBe(1);
    expect(
      total(text, 'warden_tool_calls_total', {
        tool: 'issue_refund',
        decision: 'pending',
        code: 'APPROVAL_PENDING',
      }),
    ).toBe(1);
    expect(total(text, 'warden_metrics_reading_errors_total')).toBeUndefined();
  });

  it('stays parseable and consistent during a burst of concurrent calls, then counts every one', async () => {
    const N = 40;
    // A fresh session: 40 calls stay under its 50-call limit.
    const token = await t.oauthToken('demo-support');
    const before = await scrape();
    const ok0 = total(before, 'warden_tool_calls_total', { tool: 'lookup_order', outcome: 'success' }) ?? 0;
    const exec0 = sample(before, 'warden_pipeline_step_seconds_count{step="execute"}') ?? 0;
    const all0 = total(before, 'warden_tool_calls_total') ?? 0;

    const calls = Array.from({ length: N }, () =>
      rest(token, { toolName: 'lookup_order', parameters: { orderId: ORDER } }).then((r) => r.status),
    );
    const during: string[] = [];
    for (let i = 0; i < 4; i++) {
      during.push(await scrape());
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await Promise.all(calls)).toEqual(Array(N).fill(200));

    for (const text of during) {
      const samples = parse(text);
      const inFlight = total(text, 'warden_tool_calls_in_flight');
      expect(inFlight).toBeGreaterThanOrEqual(0);
      expect(inFlight).toBeLessThanOrEqual(N);
      // Each histogram is read whole: its +Inf bucket is its count, its buckets never decrease.
      for (const step of t.gw.pipeline.steps.map((s) => s.name)) {
        const buckets = samples.filter(
          (s) => s.name === 'warden_pipeline_step_seconds_bucket' && s.labels['step'] === step,
        );
        for (let i = 1; i < buckets.length; i++)
          expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
        expect(buckets.at(-1)?.labels['le']).toBe('+Inf');
        expect(buckets.at(-1)?.value).toBe(
          sample(text, `warden_pipeline_step_seconds_count{step="${step}"}`),
        );
      }
      const counted = total(text, 'warden_tool_calls_total') ?? 0;
      expect(counted).toBeGreaterThanOrEqual(all0);
      expect(counted).toBeLessThanOrEqual(all0 + N);
    }

    const after = await scrape();
    expect(total(after, 'warden_tool_calls_total', { tool: 'lookup_order', outcome: 'success' })).toBe(
      ok0 + N,
    );
    expect(total(after, 'warden_tool_calls_total')).toBe(all0 + N);
    expect(sample(after, 'warden_pipeline_step_seconds_count{step="execute"}')).toBe(exec0 + N);
    expect(total(after, 'warden_tool_call_seconds_count')).toBe(all0 + N);
    expect(total(after, 'warden_tool_calls_in_flight')).toBe(0);
  });
});

describe('metrics off', () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway(target, (c) => {
      c.server.metrics = false;
    });
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  it('does not serve /metrics when server.metrics is false', async () => {
    const res = await fetch(`${t.gw.url}/metrics`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
