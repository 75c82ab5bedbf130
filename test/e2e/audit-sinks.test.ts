/**
 * Issue #9, webhook sinks wired into a real gateway: entries of real calls reach a
 * loopback SIEM signed and in order, with their actor type, and /metrics shows the
 * sink's lag. (Retries, leases and restarts are covered in src/audit/sinks.test.ts.)
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/index.js';
import { verifyWebhook } from '../../src/notify/index.js';
import { ORDER, request } from '../helpers/approvals.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const SECRET = 'e2e-sink-secret-0123456789abcdef';

describe('audit webhook sink in a gateway', () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  let server: Server;
  const received: AuditEntry[] = [];
  const verdicts: boolean[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => {
        body += d;
      });
      req.on('end', () => {
        verdicts.push(
          verifyWebhook(SECRET, req.headers as IncomingHttpHeaders, body, 300_000, Date.now()).ok,
        );
        received.push(...(JSON.parse(body) as { entries: AuditEntry[] }).entries);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    process.env.WARDEN_E2E_SINK_SECRET = SECRET;
    t = await startTestGateway(target, (config) => {
      config.audit.sinks.webhooks = [
        {
          name: 'siem',
          url: `http://127.0.0.1:${port}/audit`,
          secret: { env: 'WARDEN_E2E_SINK_SECRET' },
          events: null,
          batchSize: 50,
          timeoutMs: 2_000,
        },
      ];
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await new Promise<void>((r) => server.close(() => r()));
    await target.cleanup();
    delete process.env.WARDEN_E2E_SINK_SECRET;
  });

  it('delivers the entries of real calls, signed and in order, and reports the lag', async () => {
    const token = await t.operatorToken('demo-support');
    const r = await request(`${t.gw.url}/v1/tool-calls`, {
      token,
      json: { toolName: 'lookup_order', parameters: { orderId: ORDER }, traceId: 'sink-e2e-1' },
    });
    expect(r.status, r.text).toBe(200);
    const head = (await t.gw.audit.head()).seq;
    await until(() => (received.length >= head ? true : undefined));
    expect(received.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    expect(verdicts.every(Boolean)).toBe(true);
    const call = received.find((e) => e.traceId === 'sink-e2e-1' && e.event === 'TOOL_CALL');
    expect(call).toMatchObject({ actorType: 'AI_AGENT', agentId: 'demo-support' });
    const metrics = await until(async () => {
      const text = await (await fetch(`${t.gw.url}/metrics`)).text();
      return /warden_audit_sink_lag_entries\{sink="siem"\} 0/.test(text) ? text : undefined;
    });
    expect(metrics).toContain(`warden_audit_sink_delivered_entries_total{sink="siem"} ${received.length}`);
  });
});
