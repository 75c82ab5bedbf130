/**
 * End to end: with `tracing.enabled`, a real gateway exports OTLP/HTTP (JSON)
 * spans — one per call, one per pipeline step — to a collector on loopback;
 * the call span's trace id is the audit entry's `traceId` (the caller's
 * `traceparent` when it sent one, else the random id the audit entry got),
 * and the HTTP upstream receives a `traceparent` carrying that trace id.
 */

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolDefaults } from '../../src/config/constants.js';
import type { WardenConfig } from '../../src/config/types.js';
import { type LoopbackServer, serveLoopback } from '../../src/upstream/fixtures/serve.js';
import { httpUpstream } from '../helpers/content-upstream.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const TOOL = 'traced_echo';
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const MCP_TRACE = 'b7ad6b7169203331b7ad6b7169203331';
const MCP_SPAN = '53995c3f42cd8ad8';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: { stringValue?: string } }>;
}

/** A collector on loopback: every span of every OTLP/HTTP JSON export it receives. */
async function startCollector(): Promise<LoopbackServer & { spans: OtlpSpan[]; services: Set<string> }> {
  const spans: OtlpSpan[] = [];
  const services = new Set<string>();
  const server = await serveLoopback(async (req) => {
    if (req.method !== 'POST' || new URL(req.url).pathname !== '/v1/traces')
      return new Response(null, { status: 404 });
    expect(req.headers.get('content-type')).toContain('application/json');
    const body = (await req.json()) as {
      resourceSpans: Array<{
        resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
        scopeSpans: Array<{ spans: OtlpSpan[] }>;
      }>;
    };
    for (const rs of body.resourceSpans) {
      for (const a of rs.resource.attributes)
        if (a.key === 'service.name') services.add(a.value.stringValue ?? '');
      for (const ss of rs.scopeSpans) spans.push(...ss.spans);
    }
    return Response.json({});
  });
  return { ...server, spans, services };
}

/** An MCP upstream over loopback HTTP that notes the traceparent of every tools/call it receives. */
async function startUpstream(): Promise<
  LoopbackServer & { url: string; traceparents: Array<string | null> }
> {
  const traceparents: Array<string | null> = [];
  const server = await serveLoopback(async (req) => {
    if (req.method === 'POST') {
      const msg = (await req.clone().json()) as { method?: string };
      if (msg.method === 'tools/call') traceparents.push(req.headers.get('traceparent'));
    }
    const mcp = new Server({ name: 'traced-upstream', version: '1.0.0' }, { capabilities: { tools: {} } });
    mcp.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: [
        {
          name: TOOL,
          description: 'Echoes its text.',
          inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
        },
      ],
    }));
    mcp.setRequestHandler(CallToolRequestSchema, (r) => ({
      content: [{ type: 'text', text: String(r.params.arguments?.['text'] ?? '') }],
    }));
    const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true });
    await mcp.connect(transport);
    return transport.handleRequest(req);
  });
  return { ...server, url: `http://127.0.0.1:${server.port}/mcp`, traceparents };
}

const attr = (s: OtlpSpan, key: string) => s.attributes?.find((a) => a.key === key)?.value.stringValue;

describe('tracing', () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let closed = false;

  beforeAll(async () => {
    collector = await startCollector();
    upstream = await startUpstream();
    t = await startTestGateway(target, (config: WardenConfig) => {
      config.tracing = {
        enabled: true,
        exporter: 'otlp-http',
        endpoint: `http://127.0.0.1:${collector.port}/v1/traces`,
        serviceName: 'warden-e2e',
        sampleRatio: 1,
      };
      config.upstreams.push(httpUpstream('traced', upstream.url));
      config.tools[TOOL] = toolDefaults('low');
      config.agents.find((a) => a.id === 'demo-support')!.allowedTools.push(TOOL);
    });
  });
  afterAll(async () => {
    if (!closed) await t?.close();
    await upstream?.close();
    await collector?.close();
    await target.cleanup();
  });

  it('exports a span per call and per step, under the audit trace id, and sends it upstream', async () => {
    const token = await t.oauthToken('demo-support');
    const call = (
      toolName: string,
      parameters: Record<string, unknown>,
      headers: Record<string, string> = {},
    ) =>
      fetch(`${t.gw.url}/v1/tool-calls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ toolName, parameters }),
      });

    // 1. The caller sent a traceparent: its trace id is the audit trace id, its span the parent.
    const withParent = await call(
      TOOL,
      { text: 'hi' },
      { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
    );
    expect(withParent.status).toBe(200);
    expect(((await withParent.json()) as { traceId: string }).traceId).toBe(CALLER_TRACE);

    // 2. No traceparent: the audit entry gets a random id, and the spans get that same id.
    const bare = await call(TOOL, { text: 'hello' });
    expect(bare.status).toBe(200);
    const bareTrace = ((await bare.json()) as { traceId: string }).traceId;
    expect(bareTrace).toMatch(/^[0-9a-f]{32}$/);

    // 3. A denied call: traced up to the step that refused it.
    const denied = await call('bulk_message', { audience: 'all_customers', message: 'x' });
    expect(denied.status).toBe(403);
    const deniedTrace = denied.headers.get('x-trace-id')!;

    // 4. Through the MCP face, with the caller's traceparent on the HTTP request.
    const mcp = new Client({ name: 'traced-agent', version: '1.0.0' });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL(`${t.gw.url}/mcp`), {
        requestInit: {
          headers: { Authorization: `Bearer ${token}`, traceparent: `00-${MCP_TRACE}-${MCP_SPAN}-01` },
        },
      }),
    );
    const viaMcp = (await mcp.callTool({ name: TOOL, arguments: { text: 'mcp' } })) as CallToolResult;
    expect(viaMcp.isError).toBeFalsy();
    await mcp.close();

    const audited = async (traceId: string) => (await t.gw.audit.read({ traceId })).map((e) => e.traceId);
    expect(await audited(CALLER_TRACE)).not.toHaveLength(0);
    expect(await audited(bareTrace)).not.toHaveLength(0);
    expect(await audited(deniedTrace)).not.toHaveLength(0);
    expect(await audited(MCP_TRACE)).not.toHaveLength(0);

    // Closing flushes the batch exporter.
    await t.close();
    closed = true;
    expect(collector.services).toEqual(new Set(['warden-e2e']));
    const spans = collector.spans;
    const steps = t.gw.pipeline.steps.map((s) => s.name);

    for (const traceId of [CALLER_TRACE, bareTrace, MCP_TRACE]) {
      const trace = spans.filter((s) => s.traceId === traceId);
      const root = trace.find((s) => s.name === `tools/call ${TOOL}`);
      expect(root, traceId).toBeDefined();
      expect(attr(root!, 'warden.trace_id')).toBe(traceId);
      expect(attr(root!, 'warden.outcome')).toBe('success');
      expect(attr(root!, 'warden.agent_id')).toBe('demo-support');
      if (traceId === bareTrace) expect(root!.parentSpanId ?? '').toBe('');
      else expect(root!.parentSpanId).toBe(traceId === MCP_TRACE ? MCP_SPAN : CALLER_SPAN);
      const stepSpans = trace.filter((s) => s.name.startsWith('step '));
      expect(stepSpans.map((s) => s.name.slice('step '.length))).toEqual(steps);
      for (const s of stepSpans) expect(s.parentSpanId).toBe(root!.spanId);
      // The upstream's parent is the execute step's span.
      const execute = stepSpans.find((s) => s.name === 'step execute')!;
      expect(upstream.traceparents).toContain(`00-${traceId}-${execute.spanId}-01`);
    }

    const deniedSpans = spans.filter((s) => s.traceId === deniedTrace);
    const deniedRoot = deniedSpans.find((s) => s.name === 'tools/call bulk_message');
    expect(deniedRoot && attr(deniedRoot, 'warden.outcome')).toBe('denied');
    expect(deniedRoot && attr(deniedRoot, 'warden.code')).toBe('TOOL_DENIED');
    const deniedSteps = deniedSpans.filter((s) => s.name.startsWith('step ')).map((s) => s.name.slice(5));
    expect(deniedSteps).toEqual(steps.slice(0, steps.indexOf('authorize') + 1));
    expect(upstream.traceparents).toHaveLength(3);
  });
});
