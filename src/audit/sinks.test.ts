import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { until } from '../../test/helpers/wait.js';
import type { AuditSinkWebhook } from '../config/types.js';
import type { SecurityAlert } from '../notify/types.js';
import { verifyWebhook } from '../notify/webhook-signature.js';
import type { Store } from '../store/index.js';
import { type AuditInput, AuditLog, AuditSinks, type AuditSinksDeps, readCursor } from './index.js';

const SECRET = 'whsec_c2luay10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5';

/** A loopback SIEM: fails the first `failFirst` deliveries with 500, then accepts and records. */
async function receiver(failFirst = 0) {
  const accepted: number[] = [];
  const batches: Array<{ sink: string; seqs: number[] }> = [];
  const badSignatures: string[] = [];
  const actorTypes = new Set<string>();
  let failuresLeft = failFirst;
  let requests = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      requests++;
      const check = verifyWebhook(SECRET, req.headers as IncomingHttpHeaders, body, 60_000, Date.now());
      if (!check.ok) badSignatures.push(check.reason);
      if (failuresLeft > 0) {
        failuresLeft--;
        res.writeHead(500).end('down');
        return;
      }
      const payload = JSON.parse(body) as {
        sink: string;
        entries: Array<{ seq: number; actorType: string }>;
      };
      const seqs = payload.entries.map((e) => e.seq);
      for (const e of payload.entries) actorTypes.add(e.actorType);
      batches.push({ sink: payload.sink, seqs });
      accepted.push(...seqs);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/siem`;
  return {
    url,
    accepted,
    batches,
    badSignatures,
    actorTypes,
    requests: () => requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function entry(i: number): AuditInput {
  return {
    traceId: `sink_${i}`,
    event: i % 4 === 0 ? 'TOOL_DENIED' : 'TOOL_CALL',
    actorType: i % 5 === 0 ? 'HUMAN' : 'AI_AGENT',
    agentId: 'agent-s',
    toolName: 'lookup_order',
    parameters: { i },
  };
}

function sinkConfig(url: string, extra: Partial<AuditSinkWebhook> = {}): AuditSinkWebhook {
  return {
    name: 'siem',
    url,
    secret: { env: 'SINK_TEST_SECRET' },
    events: null,
    batchSize: 10,
    timeoutMs: 2_000,
    ...extra,
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describeEachDialect('audit webhook sinks', (target) => {
  let store: Store;
  let log: AuditLog;
  const running: AuditSinks[] = [];
  const logLines: string[] = [];

  function sinks(sinkList: AuditSinkWebhook[], extra: Partial<AuditSinksDeps> = {}) {
    const alerts: SecurityAlert[] = [];
    const failures: string[] = [];
    const s = new AuditSinks({
      store,
      sinks: sinkList,
      log: {
        info: (_o, m) => logLines.push(m),
        warn: (_o, m) => logLines.push(m),
        error: (_o, m) => logLines.push(m),
      },
      subscribe: (fn) => log.observe({ committed: () => fn() }),
      alert: (a) => alerts.push(a),
      metrics: { auditSinkLag: () => {}, auditSinkFailure: (n) => failures.push(n) },
      resolveSecret: async () => SECRET,
      pollMs: 20,
      backoff: { initialDelayMs: 10, maxDelayMs: 40 },
      alertAfter: 2,
      ...extra,
    });
    running.push(s);
    s.start();
    return { s, alerts, failures };
  }

  beforeAll(async () => {
    store = await target.open();
    log = new AuditLog(store);
  });
  afterEach(async () => {
    for (const s of running.splice(0)) await s.close();
  });
  afterAll(async () => {
    await store?.close();
    await target.cleanup();
  });

  it('delivers every entry in order exactly once despite failures, signed, cursor persisted; a restart resumes', async () => {
    const siem = await receiver(3);
    try {
      for (let i = 1; i <= 25; i++) await log.append(entry(i));
      const first = sinks([sinkConfig(siem.url)]);
      await until(() => (siem.accepted.length >= 25 ? true : undefined));
      expect(siem.accepted).toEqual(range(1, 25));
      expect(siem.batches.every((b) => b.sink === 'siem' && b.seqs.length <= 10)).toBe(true);
      expect(siem.badSignatures).toEqual([]);
      expect(siem.actorTypes).toEqual(new Set(['AI_AGENT', 'HUMAN']));
      await until(async () => ((await readCursor(store, 'siem'))?.seq === 25 ? true : undefined));
      // Three failures in a row: one alert (after two), then one recovered notice.
      expect(first.alerts.map((a) => a.kind)).toEqual(['audit.sink-failing', 'audit.sink-recovered']);
      expect(first.failures).toEqual(['siem', 'siem', 'siem']);
      await first.s.close();

      // Another process (a new instance) on the same store resumes from the cursor.
      for (let i = 26; i <= 30; i++) await log.append(entry(i));
      sinks([sinkConfig(siem.url)]);
      await until(() => (siem.accepted.length >= 30 ? true : undefined));
      await new Promise((r) => setTimeout(r, 100));
      expect(siem.accepted).toEqual(range(1, 30));
    } finally {
      await siem.close();
    }
  });

  it('two instances at once on one store: the lease keeps every entry to one delivery', async () => {
    const siem = await receiver();
    try {
      const cfg = sinkConfig(siem.url, { name: 'shared', batchSize: 7 });
      const a = sinks([cfg], { holder: 'process-a' });
      const b = sinks([cfg], { holder: 'process-b' });
      const start = (await log.head()).seq;
      // Appends while both run: from both "processes", in small groups.
      for (let i = 0; i < 12; i++) {
        await log.appendMany(range(1, 5).map((k) => entry(1000 + i * 5 + k)));
        await new Promise((r) => setTimeout(r, 5));
      }
      const head = (await log.head()).seq;
      await until(() => (siem.accepted.length >= head ? true : undefined), 15_000);
      await new Promise((r) => setTimeout(r, 150));
      // This sink is new: it delivers the whole log, from seq 1.
      expect(siem.accepted).toEqual(range(1, head));
      expect(head - start).toBe(60);
      // One of them delivered; the other stood by.
      expect([a.s.status()[0]?.leased, b.s.status()[0]?.leased].sort()).toEqual([false, true]);
    } finally {
      await siem.close();
    }
  });

  it("a crashed holder's lease lapses, then another process resumes from the cursor", async () => {
    const siem = await receiver();
    try {
      const head = (await log.head()).seq;
      await store.db
        .insertInto('audit_sink_cursor')
        .values({
          name: 'orphan',
          seq: head - 3,
          leased_by: 'crashed-process',
          lease_until: Date.now() + 400,
          failures: 0,
          last_error: null,
          updated_at: Date.now(),
        })
        .execute();
      sinks([sinkConfig(siem.url, { name: 'orphan' })]);
      await new Promise((r) => setTimeout(r, 200));
      expect(siem.accepted).toEqual([]);
      await until(() => (siem.accepted.length >= 3 ? true : undefined));
      expect(siem.accepted).toEqual(range(head - 2, head));
    } finally {
      await siem.close();
    }
  });

  it('only the configured events are sent; the others still move the cursor', async () => {
    const siem = await receiver();
    try {
      const head = (await log.head()).seq;
      sinks([sinkConfig(siem.url, { name: 'denials', events: ['TOOL_DENIED'], batchSize: 3 })]);
      await until(async () => ((await readCursor(store, 'denials'))?.seq === head ? true : undefined));
      const all = await log.read({ limit: 10_000 });
      expect(siem.accepted).toEqual(all.filter((e) => e.event === 'TOOL_DENIED').map((e) => e.seq));
      expect(siem.accepted.length).toBeGreaterThan(3);
    } finally {
      await siem.close();
    }
  });

  it('a receiver that is down: retried with backoff, one alert however long it lasts, nothing skipped', async () => {
    const gone = await receiver();
    const url = gone.url;
    await gone.close(); // connection refused from now on
    const before = (await log.head()).seq;
    await log.append(entry(5000));
    const down = sinks([sinkConfig(url, { name: 'down' })]);
    // The failure is counted here before its count is written to the store: wait for both.
    await until(async () =>
      down.failures.length >= 8 && ((await readCursor(store, 'down'))?.failures ?? 0) >= 8 ? true : undefined,
    );
    expect(down.alerts.map((a) => a.kind)).toEqual(['audit.sink-failing']);
    expect(down.alerts[0]?.data).toMatchObject({ sink: 'down', cursor: 0 });
    expect(String(down.alerts[0]?.data.error)).toMatch(/ECONNREFUSED|fetch failed/);
    const cursor = await readCursor(store, 'down');
    expect(cursor).toMatchObject({ seq: 0 });
    expect(cursor?.failures).toBeGreaterThanOrEqual(8);
    expect(down.s.status()[0]).toMatchObject({ name: 'down', leased: true, alerted: true });
    expect(before).toBeGreaterThan(0);
  });

  it('refuses two sinks with one name (they would share a cursor)', () => {
    expect(
      () => new AuditSinks({ store, sinks: [sinkConfig('http://x'), sinkConfig('http://y')], log: console }),
    ).toThrow(/used twice/);
  });
});
