/**
 * Issue #9, fail closed under a real fault: a real gateway under load (several
 * REST clients, a counting upstream) loses its audit store mid-load and gets it
 * back, without a restart. PostgreSQL: the gateway's connections go through a
 * loopback TCP proxy that the test cuts (every connection destroyed, new ones
 * refused) and restores. SQLite: a second connection holds `BEGIN EXCLUSIVE` on
 * the file for a few seconds.
 *
 * What must hold: no call ran unaudited (every call the upstream executed has a
 * committed attempt entry); calls refused meanwhile got AUDIT_UNAVAILABLE with a
 * trace id; calls succeed again after recovery; every executed call gets its
 * outcome entry (none lost); one `audit.unavailable` and one `audit.recovered`
 * alert; /readyz said not ready during the outage; the chain verifies.
 */

import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AuditEntry, verifyChain } from '../../src/audit/index.js';
import { toolDefaults } from '../../src/config/constants.js';
import type { WardenConfig } from '../../src/config/types.js';
import type { Store } from '../../src/store/index.js';
import { request } from '../helpers/approvals.js';
import {
  type ContentUpstream,
  httpUpstream,
  startContentUpstream,
  stringTool,
} from '../helpers/content-upstream.js';
import { type DialectTarget, describeEachDialect, PG_URL } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

const CLIENTS = 6;
const CALLS = 200;
/** The upstream takes this long: calls are mid-flight when the store goes, so outcomes must wait. */
const UPSTREAM_MS = 40;

/** A loopback TCP proxy to PostgreSQL that the test can cut and restore. */
async function startPgProxy(): Promise<{
  port: number;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}> {
  const target = new URL(PG_URL);
  const sockets = new Set<Socket>();
  let refusing = false;
  const server: Server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = tcpConnect(Number(target.port || 5432), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      refusing = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      refusing = false;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Receiver {
  url: string;
  alerts: Array<{ kind: string; summary: string; data: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** A webhook notifier's receiver: the security alerts it is sent. */
async function startReceiver(): Promise<Receiver> {
  const alerts: Receiver['alerts'] = [];
  const seen = new Set<string>();
  const server = createHttpServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => {
      raw += c.toString('utf8');
    });
    req.on('end', () => {
      try {
        const body = JSON.parse(raw) as { id?: string; data?: { alert?: Receiver['alerts'][number] } };
        // Webhook ids are the dedupe key (a redelivery is the same notification).
        if (body.data?.alert && !seen.has(String(body.id))) {
          seen.add(String(body.id));
          alerts.push(body.data.alert);
        }
      } catch {}
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    alerts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

interface Outcome {
  id: string;
  status: number;
  code?: string;
  traceId?: string;
  /** The phase when the call was sent, and when its answer came. */
  at: 'before' | 'during' | 'after';
  endedAt: 'before' | 'during' | 'after';
}

describeEachDialect('audit store fault under load', (target: DialectTarget) => {
  let t: TestGateway;
  let up: ContentUpstream;
  let hook: Receiver;
  let proxy: Awaited<ReturnType<typeof startPgProxy>> | undefined;
  let reader: Store;
  /** Calls the upstream is running now: their attempts are written, their outcomes not yet. */
  let upstreamBusy = 0;

  beforeAll(async () => {
    process.env['WARDEN_TEST_FAULT_HOOK_SECRET'] = 'whsec_dGVzdC1zZWNyZXQtZm9yLWF1ZGl0LWZhdWx0';
    hook = await startReceiver();
    up = await startContentUpstream({
      record: {
        tool: stringTool('record', ['id']),
        respond: async (a) => {
          upstreamBusy++;
          try {
            await new Promise((r) => setTimeout(r, UPSTREAM_MS));
          } finally {
            upstreamBusy--;
          }
          return { content: [{ type: 'text', text: `recorded ${String(a['id'])}` }] };
        },
      },
    });
    let gwTarget = target;
    if (target.dialect === 'postgres') {
      proxy = await startPgProxy();
      const url = new URL(PG_URL);
      url.hostname = '127.0.0.1';
      url.port = String(proxy.port);
      gwTarget = { ...target, url: url.toString() };
    }
    t = await startTestGateway(
      gwTarget,
      (config: WardenConfig) => {
        config.upstreams.push(httpUpstream('ledger', up.url));
        config.tools['record'] = toolDefaults('low');
        const demo = config.agents.find((a) => a.id === 'demo-support')!;
        config.agents.push({
          ...demo,
          id: 'recorder',
          type: 'ledger',
          allowedTools: ['record'],
          deniedTools: [],
          constraints: { ...demo.constraints, maxToolCalls: 10_000 },
        });
        config.notifiers.webhooks.push({
          name: 'siem',
          url: hook.url,
          secret: { env: 'WARDEN_TEST_FAULT_HOOK_SECRET' },
          events: ['security.alert'],
          maxAttempts: 5,
          timeoutMs: 2_000,
        });
        config.notifiers.retry = { initialDelayMs: 100, maxDelayMs: 500 };
      },
      // Shorter than the lock is held: SQLite's busy wait blocks the event loop while it lasts.
      { sqliteBusyTimeoutMs: 50 },
    );
    // Reads the log directly (not through the proxy).
    reader = await target.open();
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await (reader as Store | undefined)?.close();
    await proxy?.close();
    await up?.close();
    await hook?.close();
    await target.cleanup();
  });

  it('refuses calls while the audit store is down, loses no executed call, and recovers without a restart', async () => {
    const tokens = await Promise.all(Array.from({ length: CLIENTS }, () => t.operatorToken('recorder')));
    const outcomes: Outcome[] = [];
    let phase: Outcome['at'] = 'before';
    let started = 0;
    let stop = false;

    const client = async (k: number) => {
      while (!stop && started < CALLS * 3) {
        const id = `c${k}-${started++}`;
        const at = phase;
        const a = await request(`${t.gw.url}/v1/tool-calls`, {
          token: tokens[k],
          json: { toolName: 'record', parameters: { id } },
        }).catch((e: unknown) => ({ status: 0, error: { code: String(e), traceId: '' } }) as const);
        const err = 'error' in a ? a.error : undefined;
        outcomes.push({
          id,
          status: a.status,
          ...(err?.code ? { code: err.code } : {}),
          ...(err?.traceId ? { traceId: err.traceId } : {}),
          at,
          endedAt: phase,
        });
        if (a.status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
    };
    const ok = (at: Outcome['at']) => outcomes.filter((o) => o.status === 200 && o.at === at).length;
    const load = Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));

    let lock: Database.Database | undefined;
    const readyDuring: number[] = [];
    let maxRetained = 0;
    const sampler = setInterval(() => {
      maxRetained = Math.max(maxRetained, t.gw.audit.retained);
    }, 5);
    try {
      await until(() => (ok('before') >= CALLS / 4 ? true : undefined), 30_000);

      // The fault, while calls are at the upstream (so their outcomes must wait in memory): under
      // a loaded machine the clients can all be between calls at any one moment.
      await until(() => (upstreamBusy > 0 ? true : undefined), 10_000);
      phase = 'during';
      if (proxy) proxy.cut();
      else {
        lock = new Database(target.url.slice('sqlite:'.length));
        lock.pragma('busy_timeout = 0');
        lock.exec('BEGIN EXCLUSIVE');
      }
      await until(() => (outcomes.some((o) => o.code === 'AUDIT_UNAVAILABLE') ? true : undefined), 15_000);
      await until(async () => {
        const r = await fetch(`${t.gw.url}/readyz`);
        readyDuring.push(r.status);
        return r.status === 503 ? true : undefined;
      }, 10_000);
      await until(() => (hook.alerts.some((a) => a.kind === 'audit.unavailable') ? true : undefined), 15_000);
      // Let refusals pile up for a moment, then give the store back.
      await new Promise((r) => setTimeout(r, 1_500));
    } finally {
      clearInterval(sampler);
      phase = 'after';
      proxy?.restore();
      if (lock) {
        lock.exec('COMMIT');
        lock.close();
      }
    }

    // Recovery, without a restart.
    await until(() => (ok('after') >= CALLS / 4 ? true : undefined), 30_000);
    stop = true;
    await load;
    expect((await fetch(`${t.gw.url}/readyz`)).status).toBe(200);
    expect(outcomes.length).toBeGreaterThanOrEqual(CALLS);

    // Refused calls: a clear 503 AUDIT_UNAVAILABLE with a trace id, never a stack.
    const refused = outcomes.filter((o) => o.status !== 200);
    expect(refused.length).toBeGreaterThan(0);
    const unavailable = refused.filter((o) => o.code === 'AUDIT_UNAVAILABLE');
    expect(unavailable.length).toBeGreaterThan(0);
    for (const o of unavailable) {
      expect(o.status).toBe(503);
      expect(o.traceId).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
    }
    // Calls that met the store's failure before the gateway noticed it (e.g. claiming the
    // session's call) get STORE_UNAVAILABLE: still a clear 503 with a trace id, only while the
    // store was down.
    const codes: Record<string, number> = {};
    for (const o of refused) codes[o.code ?? ''] = (codes[o.code ?? ''] ?? 0) + 1;
    // Most refusals are the gate's; the rest met the failure before it was noticed.
    expect(unavailable.length, JSON.stringify(codes)).toBeGreaterThanOrEqual(refused.length / 2);
    for (const o of refused) {
      expect(o.endedAt, JSON.stringify(o)).not.toBe('before');
      expect(['AUDIT_UNAVAILABLE', 'STORE_UNAVAILABLE'], JSON.stringify(o)).toContain(o.code);
      expect(o.status, JSON.stringify(o)).toBe(503);
      expect(o.traceId, JSON.stringify(o)).toBeTruthy();
    }

    // No call ran unaudited: every call the upstream executed has a committed attempt entry…
    const executed = up.calls.filter((c) => c.name === 'record').map((c) => String(c.arguments['id']));
    expect(new Set(executed).size).toBe(executed.length);
    const entries = async (): Promise<AuditEntry[]> => {
      const out: AuditEntry[] = [];
      for (let after = 0; ; ) {
        const page = await t.gw.audit.read({ afterSeq: after, limit: 5_000, event: 'TOOL_CALL' });
        if (page.length === 0) return out;
        out.push(...page);
        after = page.at(-1)!.seq;
      }
    };
    const idOf = (e: AuditEntry) => String((e.parameters as { id?: unknown } | null)?.id);
    const phaseOf = (e: AuditEntry) => (e.data as { phase?: string } | null)?.phase;
    let all = await entries();
    const attempts = new Set(all.filter((e) => phaseOf(e) === 'attempt').map(idOf));
    expect(executed.filter((id) => !attempts.has(id))).toEqual([]);
    // …and every one of them gets its outcome entry, held in memory through the outage if need be.
    await until(async () => {
      all = await entries();
      const done = new Set(all.filter((e) => phaseOf(e) === 'outcome').map(idOf));
      return executed.every((id) => done.has(id)) ? true : undefined;
    }, 20_000);
    expect(t.gw.audit.retained).toBe(0);
    // Calls that answered 200 are exactly the ones the upstream executed.
    const answered = outcomes.filter((o) => o.status === 200).map((o) => o.id);
    expect(answered.every((id) => executed.includes(id))).toBe(true);

    // One alert for the outage, one for the recovery.
    await until(() => (hook.alerts.some((a) => a.kind === 'audit.recovered') ? true : undefined), 15_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(hook.alerts.filter((a) => a.kind === 'audit.unavailable')).toHaveLength(1);
    expect(hook.alerts.filter((a) => a.kind === 'audit.recovered')).toHaveLength(1);
    const alertText = JSON.stringify(hook.alerts);
    for (const id of executed.slice(0, 20)) expect(alertText).not.toContain(`"${id}"`);

    // The gauge is back at 1, and the chain is intact (read directly from the store).
    expect(await t.gw.metrics.text()).toMatch(/^warden_audit_writable 1$/m);
    const verified = await verifyChain(reader);
    expect(verified.problem).toBeUndefined();
    expect(verified.ok).toBe(true);
    expect(readyDuring).toContain(503);
    // Calls were mid-flight when the store went: their outcomes waited in memory, and were written.
    expect(maxRetained, `refused ${JSON.stringify(codes)}, executed ${executed.length}`).toBeGreaterThan(0);
  }, 120_000);
});
