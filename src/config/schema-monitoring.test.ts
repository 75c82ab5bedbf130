import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { embeddedDefault } from './defaults.js';
import { loadConfig } from './load.js';
import { monitoringSchema } from './schema-monitoring.js';

function issues(value: unknown): string[] {
  const r = monitoringSchema.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const DEFAULTS = {
  enabled: true,
  intervalMs: 5000,
  windowMs: 3_600_000,
  learningPeriodMs: 7 * 86_400_000,
  batchSize: 2000,
  newAgents: { mode: 'learn', learnForMs: 86_400_000 },
  anomalies: {
    minBaselineCalls: 20,
    minBaselineWindows: 3,
    frequency: { enabled: true, factor: 3 },
    firstUse: { enabled: true, scope: 'type' },
    volume: { enabled: true, factor: 5 },
    tokenBurn: { enabled: true, factor: 10 },
    offHours: {
      enabled: false,
      timezone: 'UTC',
      days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'],
      hours: '08:00-18:00',
    },
    denialBurst: { enabled: true, count: 10, withinMs: 300_000 },
    maxPerAgent: 5,
    maxPerTick: 100,
  },
  severity: { periodMs: 86_400_000, medium: 2, high: 3 },
  responses: { low: 'alert', medium: 'hold-session', high: 'quarantine-session', byRule: {} },
};

describe('monitoring: schema', () => {
  it('defaults to the article’s thresholds, in the file and in the embedded default', () => {
    expect(monitoringSchema.parse(undefined)).toEqual(DEFAULTS);
    expect(embeddedDefault({ cwd: '/tmp', now: 0 }).monitoring).toEqual(DEFAULTS);
  });

  it('takes durations in the config units and per-rule responses', () => {
    const m = monitoringSchema.parse({
      window: '2h',
      learningPeriod: '14d',
      interval: 1000,
      newAgents: { mode: 'strict', learnFor: 0 },
      anomalies: { denialBurst: { within: '90s' }, offHours: { enabled: true, hours: '22:00-06:00' } },
      severity: { period: '1h', medium: 1, high: 1 },
      responses: { byRule: { 'denial-burst': { high: 'kill-agent' }, 'first-use': { low: 'hold-session' } } },
    });
    expect(m).toMatchObject({
      windowMs: 7_200_000,
      learningPeriodMs: 14 * 86_400_000,
      intervalMs: 1000,
      newAgents: { mode: 'strict', learnForMs: 0 },
      anomalies: { denialBurst: { withinMs: 90_000 }, offHours: { hours: '22:00-06:00' } },
      severity: { periodMs: 3_600_000, medium: 1, high: 1 },
    });
    expect(m.responses.byRule).toEqual({
      'denial-burst': { high: 'kill-agent' },
      'first-use': { low: 'hold-session' },
    });
  });

  it('refuses what it cannot honour', () => {
    expect(issues({ window: '30m' })).toHaveLength(1); // baselines are hourly
    expect(issues({ window: '90m' })).toHaveLength(1);
    expect(issues({ window: '2d' })).toHaveLength(1);
    expect(issues({ window: '6h', learningPeriod: '3h' })).toEqual([
      'learningPeriod: monitoring.learningPeriod must be at least one window',
    ]);
    expect(issues({ anomalies: { frequency: { factor: 1 } } })).toHaveLength(1);
    expect(issues({ anomalies: { offHours: { timezone: 'Mars/Olympus' } } })).toHaveLength(1);
    expect(issues({ anomalies: { offHours: { hours: '8-18' } } })).toHaveLength(1);
    expect(issues({ anomalies: { offHours: { hours: '08:00-08:00' } } })).toHaveLength(1);
    expect(issues({ anomalies: { offHours: { days: ['Monday'] } } })).toHaveLength(1);
    expect(issues({ anomalies: { denialBurst: { count: 1 } } })).toHaveLength(1);
    expect(issues({ severity: { medium: 3, high: 2 } })).toEqual([
      'severity.high: severity.high must be at least severity.medium',
    ]);
    expect(issues({ responses: { high: 'shrug' } })).toHaveLength(1);
    expect(issues({ responses: { byRule: { 'made-up': { low: 'alert' } } } })).toHaveLength(1);
    expect(issues({ anomalies: { tokens: { factor: 10 } } })).toHaveLength(1); // strict
  });

  it('every monitoring example in the docs loads as a configuration', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-monitoring-'));
    try {
      let seen = 0;
      for (const doc of ['../../docs/monitoring.md', '../../docs/configuration.md']) {
        const text = readFileSync(new URL(doc, import.meta.url), 'utf8');
        for (const m of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
          if (!m[1]?.startsWith('monitoring:')) continue;
          const file = join(dir, 'warden.yaml');
          writeFileSync(file, m[1]);
          const { config } = await loadConfig(file);
          expect(config.monitoring.windowMs).toBe(3_600_000);
          seen++;
        }
      }
      expect(seen).toBe(2);
      // The configuration reference's block is exactly the defaults.
      const text = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
      const block = /```yaml\n(monitoring:[\s\S]*?)```/.exec(text)?.[1] ?? '';
      writeFileSync(join(dir, 'warden.yaml'), block);
      expect((await loadConfig(join(dir, 'warden.yaml'))).config.monitoring).toEqual(DEFAULTS);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the key of a mistake in the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-monitoring-'));
    try {
      const file = join(dir, 'warden.yaml');
      writeFileSync(file, 'monitoring:\n  anomalies:\n    frequency:\n      factor: 0.5\n');
      await expect(loadConfig(file)).rejects.toThrow(/monitoring\.anomalies\.frequency\.factor/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
