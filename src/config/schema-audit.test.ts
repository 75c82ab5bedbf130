import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadYaml } from '../../test/helpers/config-yaml.js';
import { embeddedDefault } from './defaults.js';
import { auditSchema, defaultAudit, resolveAudit } from './schema-audit.js';

describe('audit: config section', () => {
  it('defaults to keys created in the data directory, checkpoints on, nothing published, no sinks', () => {
    const a = embeddedDefault({ cwd: '/srv/w', now: 0 }).audit;
    expect(a).toEqual(defaultAudit('/srv/w/.warden'));
    expect(a.checkpoints).toMatchObject({
      enabled: true,
      intervalMs: 60_000,
      maxEntries: 10_000,
      signingKey: { ref: { file: '/srv/w/.warden/audit-checkpoint-key.jwk' }, generate: true },
      publish: { webhooks: [] },
    });
    expect(a.hmac.key).toEqual({ ref: { file: '/srv/w/.warden/audit-hmac.key' }, generate: true });
    expect(a.retention.archiveDir).toBe('/srv/w/.warden/audit-archive');
  });

  it('resolves paths against the config file and the data directory; a given key is never generated', () => {
    const a = resolveAudit(
      auditSchema.parse({
        checkpoints: {
          interval: '5m',
          signingKey: { file: 'keys/cp.jwk' },
          trustedKeys: ['old.jwk'],
          publish: { file: 'out/cp.jsonl', webhooks: [{ url: 'https://siem.example.com/cp' }] },
        },
        hmac: { key: { env: 'AUDIT_HMAC' } },
        sinks: { webhooks: [{ name: 'siem', url: 'https://siem.example.com/in', events: ['TOOL_CALL'] }] },
        retention: { archiveDir: '/var/archive' },
      }),
      '/etc/warden',
      '/var/lib/warden',
    );
    expect(a.checkpoints.intervalMs).toBe(300_000);
    expect(a.checkpoints.signingKey).toEqual({
      ref: { file: join('/etc/warden', 'keys/cp.jwk') },
      generate: false,
    });
    expect(a.checkpoints.trustedKeyFiles).toEqual(['/etc/warden/old.jwk']);
    expect(a.checkpoints.publish.file).toBe('/etc/warden/out/cp.jsonl');
    expect(a.hmac.key).toEqual({ ref: { env: 'AUDIT_HMAC' }, generate: false });
    expect(a.sinks.webhooks[0]).toMatchObject({
      name: 'siem',
      events: ['TOOL_CALL'],
      batchSize: 100,
      timeoutMs: 10_000,
    });
    expect(a.retention.archiveDir).toBe('/var/archive');
  });

  it('refuses a misspelt event with the nearest name, a literal secret, and an interval under a second', async () => {
    const bad = await loadYaml(
      'audit:\n  sinks:\n    webhooks:\n      - name: siem\n        url: https://siem.example.com/in\n        events: [TOOL_CALL, TOOL_DENEID]\n',
    );
    expect('error' in bad ? bad.error : '').toMatch(
      /unknown audit event "TOOL_DENEID" \(did you mean "TOOL_DENIED"\?\)/,
    );
    const literal = await loadYaml('audit:\n  hmac:\n    key: hunter2hunter2hunter2hunter2hunter2\n');
    expect('error' in literal ? literal.error : '').toContain('secrets must be references');
    const fast = await loadYaml('audit:\n  checkpoints:\n    interval: 10ms\n');
    expect('error' in fast ? fast.error : '').toContain('expected at least 1s');
  });
});
