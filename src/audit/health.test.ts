import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { until } from '../../test/helpers/wait.js';
import { WardenError } from '../errors.js';
import { openStore, type Store } from '../store/index.js';
import { AuditHealth, type AuditHealthAlert } from './health.js';
import { type AuditInput, AuditLog, verifyChain } from './index.js';

const down = new WardenError('AUDIT_UNAVAILABLE', 'The audit log is unavailable', {
  detail: 'SqliteError: database is locked',
});

function harness(probeOk: () => boolean) {
  const alerts: AuditHealthAlert[] = [];
  const gauge: boolean[] = [];
  const logs: Array<[string, string]> = [];
  let recovered = 0;
  let probes = 0;
  const health = new AuditHealth({
    probe: async () => {
      probes++;
      if (!probeOk()) throw down;
    },
    recovered: () => {
      recovered++;
    },
    retained: () => 3,
    alert: (a) => alerts.push(a),
    gauge: (w) => gauge.push(w),
    log: {
      info: (_o, m) => logs.push(['info', m]),
      warn: (_o, m) => logs.push(['warn', m]),
      error: (_o, m) => logs.push(['error', m]),
    },
    probeIntervalMs: 10,
  });
  return {
    health,
    alerts,
    gauge,
    logs,
    recovered: () => recovered,
    probes: () => probes,
  };
}

describe('AuditHealth', () => {
  it('the first failure alerts once, warns and drops the gauge; more failures say nothing more', () => {
    const h = harness(() => false);
    h.health.unavailable(down);
    h.health.unavailable(down);
    h.health.unavailable(down);
    expect(h.health.writable).toBe(false);
    expect(h.alerts.map((a) => a.kind)).toEqual(['audit.unavailable']);
    expect(h.alerts[0]).toMatchObject({
      severity: 'critical',
      data: { error: 'SqliteError: database is locked' },
    });
    expect(h.gauge).toEqual([true, false]);
    expect(h.logs.filter(([l]) => l === 'warn')).toHaveLength(1);
    expect(h.health.status()).toMatchObject({ writable: false, error: 'SqliteError: database is locked' });
    h.health.close();
  });

  it('probes while down and recovers once the probe succeeds: gauge, one recovered alert, retained entries retried', async () => {
    let ok = false;
    const h = harness(() => ok);
    h.health.unavailable(down);
    await until(() => (h.probes() >= 3 ? true : undefined), 2_000);
    expect(h.health.writable).toBe(false);
    ok = true;
    await until(() => (h.health.writable ? true : undefined), 2_000);
    expect(h.alerts.map((a) => a.kind)).toEqual(['audit.unavailable', 'audit.recovered']);
    expect(h.alerts[1]?.data).toMatchObject({ retained: 3 });
    expect(h.gauge).toEqual([true, false, true]);
    expect(h.recovered()).toBe(1);
    const probes = h.probes();
    await new Promise((r) => setTimeout(r, 50));
    expect(h.probes()).toBe(probes); // no probing while healthy
    h.health.close();
  });

  it('a committed write also ends the outage; commits while healthy do nothing', () => {
    const h = harness(() => false);
    h.health.committed();
    expect(h.alerts).toEqual([]);
    h.health.unavailable(down);
    h.health.committed();
    expect(h.health.writable).toBe(true);
    expect(h.alerts.map((a) => a.kind)).toEqual(['audit.unavailable', 'audit.recovered']);
    h.health.close();
  });

  it('dropped entries are logged loudly and counted', () => {
    const counted: Array<[number, string]> = [];
    const logs: string[] = [];
    const health = new AuditHealth({
      probe: async () => {},
      alert: () => {},
      dropped: (n, reason) => counted.push([n, reason]),
      log: { info: () => {}, warn: () => {}, error: (_o, m) => logs.push(m) },
    });
    health.dropped(2, 'full');
    expect(counted).toEqual([[2, 'full']]);
    expect(logs[0]).toMatch(/DROPPED/);
  });
});

const input = (i: number, extra: Partial<AuditInput> = {}): AuditInput => ({
  traceId: `t${i}`,
  event: 'TOOL_CALL',
  actorType: 'AI_AGENT',
  result: 'success',
  data: { phase: 'outcome', i },
  ...extra,
});

describe('AuditLog while SQLite is locked by another process', () => {
  let store: Store;
  let file: string;
  let dir: string;
  beforeAll(async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    dir = mkdtempSync(join(tmpdir(), 'warden-health-'));
    file = join(dir, 'warden.db');
    store = await openStore(`sqlite:${file}`, { sqliteBusyTimeoutMs: 20 });
  });
  afterAll(async () => {
    await store.close();
    const { rmSync } = await import('node:fs');
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails attempts, retains outcomes in order, and writes them once the lock is gone', async () => {
    const log = new AuditLog(store, { maxRetained: 3 });
    const seen: string[] = [];
    const dropped: number[] = [];
    log.observe({
      committed: () => seen.push('committed'),
      unavailable: () => seen.push('unavailable'),
      dropped: (n) => dropped.push(n),
    });
    await log.append(input(0));
    const other = new Database(file);
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN EXCLUSIVE');
    try {
      await expect(log.append(input(1, { data: { phase: 'attempt' } }))).rejects.toMatchObject({
        code: 'AUDIT_UNAVAILABLE',
      });
      for (const i of [2, 3, 4, 5]) {
        await expect(log.append(input(i), { durable: false, retain: true })).rejects.toMatchObject({
          code: 'AUDIT_UNAVAILABLE',
          data: { retained: i <= 4 },
        });
      }
      expect(log.retained).toBe(3);
      expect(dropped).toEqual([1]);
      await expect(log.probe()).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
      expect(seen).toContain('unavailable');
    } finally {
      other.exec('COMMIT');
      other.close();
    }
    await log.probe();
    await log.retryRetained();
    expect(log.retained).toBe(0);
    const all = await log.read({ limit: 100 });
    expect(all.map((e) => e.traceId)).toEqual(['t0', 't2', 't3', 't4']);
    expect((await verifyChain(store)).ok).toBe(true);
  });
});

describeEachDialect('AuditLog retained entries', (target) => {
  let store: Store;
  beforeAll(async () => {
    store = await target.open();
  });
  afterAll(async () => {
    await (store as Store | undefined)?.close();
    await target.cleanup();
  });

  it('an entry the store refuses for its content is not retained, and a retained one already written is not written twice', async () => {
    const log = new AuditLog(store, { ids: () => 'dup_0' });
    await log.append(input(1));
    // Same id again: a data error, which retrying would only repeat.
    await expect(log.append(input(2), { durable: false, retain: true })).rejects.toMatchObject({
      code: 'AUDIT_UNAVAILABLE',
    });
    expect(log.retained).toBe(0);
  });
});
