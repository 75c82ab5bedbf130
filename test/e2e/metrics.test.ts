/**
 * End to end: /metrics serves the pipeline's own step timings in the
 * Prometheus text format after real MCP calls, and `server.metrics: false`
 * turns the route off.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, line: string): number | undefined {
  const hit = text.split('\n').find((l) => l.startsWith(`${line} `));
  return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
}

describe('metrics', () => {
  let t: TestGateway;
  const target = makeTarget('sqlite');
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
      arguments: { orderId: 'ORD-4F8K2P1Z' },
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
    expect(sample(text, 'warden_tool_calls_total{outcome="success",code=""}')).toBe(1);
    expect(sample(text, 'warden_tool_calls_total{outcome="denied",code="TOOL_DENIED"}')).toBe(1);
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
