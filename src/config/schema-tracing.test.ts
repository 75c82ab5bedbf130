import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { embeddedDefault } from './defaults.js';
import { loadConfig } from './load.js';
import { DEFAULT_TRACING, tracingSchema } from './schema-tracing.js';

function issues(value: unknown): string[] {
  const r = tracingSchema.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('tracing: schema', () => {
  it('is off by default, in the file and in the embedded default', () => {
    expect(tracingSchema.parse(undefined)).toEqual(DEFAULT_TRACING);
    expect(DEFAULT_TRACING.enabled).toBe(false);
    expect(embeddedDefault({ cwd: '/tmp', now: 0 }).tracing).toEqual(DEFAULT_TRACING);
  });

  it('takes every key, and refuses what cannot work', () => {
    expect(
      tracingSchema.parse({
        enabled: true,
        exporter: 'console',
        endpoint: 'http://collector:4318/v1/traces',
        serviceName: 'warden-eu',
        sampleRatio: 0.25,
      }),
    ).toEqual({
      enabled: true,
      exporter: 'console',
      endpoint: 'http://collector:4318/v1/traces',
      serviceName: 'warden-eu',
      sampleRatio: 0.25,
    });
    expect(issues({ exporter: 'zipkin' })).toHaveLength(1);
    expect(issues({ sampleRatio: 1.5 })).toHaveLength(1);
    expect(issues({ sampleRatio: -0.1 })).toHaveLength(1);
    expect(issues({ serviceName: '' })).toHaveLength(1);
    expect(issues({ endpoint: 'grpc://collector:4317' })).toHaveLength(1);
    // Credentials belong in OTEL_EXPORTER_OTLP_HEADERS: a URL is shown in errors and logs.
    expect(issues({ endpoint: 'https://user:secret@collector/v1/traces' })).toHaveLength(1);
    expect(issues({ enable: true })).toHaveLength(1);
  });

  it('loads from a file, with a hint for a misspelt key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-tracing-'));
    try {
      const file = join(dir, 'warden.yaml');
      writeFileSync(
        file,
        'tracing:\n  enabled: true\n  endpoint: http://127.0.0.1:4318/v1/traces\n  sampleRatio: 0.5\n',
      );
      expect((await loadConfig(file)).config.tracing).toEqual({
        enabled: true,
        exporter: 'otlp-http',
        endpoint: 'http://127.0.0.1:4318/v1/traces',
        serviceName: 'warden',
        sampleRatio: 0.5,
      });
      writeFileSync(file, 'tracing:\n  enabled: true\n  sampleRate: 0.5\n');
      await expect(loadConfig(file)).rejects.toThrow(/sampleRate[\s\S]*sampleRatio/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
