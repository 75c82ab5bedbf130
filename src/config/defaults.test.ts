import { describe, expect, it } from 'vitest';
import { toolDefaults } from './constants.js';
import { embeddedDefault } from './defaults.js';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

describe('embeddedDefault', () => {
  const config = embeddedDefault({ cwd: '/srv/app', now: NOW });

  it('keeps local state under <cwd>/.warden and listens on loopback', () => {
    expect(config.source).toBeNull();
    expect(config.dataDir).toBe('/srv/app/.warden');
    expect(config.store.url).toBe('sqlite:/srv/app/.warden/warden.db');
    expect(config.server).toEqual({
      host: '127.0.0.1',
      port: 8787,
      publicUrl: 'http://127.0.0.1:8787',
      bodyLimitBytes: 1024 * 1024,
      headerLimitBytes: 64 * 1024,
      maxJsonDepth: 32,
      trustProxy: false,
      metrics: true,
    });
    expect(config.tokens).toEqual({
      ttlMs: 15 * 60_000,
      alg: 'EdDSA',
      rotateAfterMs: 24 * 3_600_000,
      maxToolCalls: 50,
      clockSkewMs: 30_000,
    });
    expect(config.log.level).toBe('info');
  });

  it('runs the bundled support desk over stdio with this Node', () => {
    expect(config.upstreams).toHaveLength(1);
    const up = config.upstreams[0];
    expect(up).toMatchObject({ name: 'support-desk', transport: 'stdio', timeoutMs: 30_000 });
    if (up?.transport !== 'stdio') throw new Error('expected a stdio upstream');
    expect(up.command).toBe(process.execPath);
    expect(up.args.at(-1)).toMatch(/support-desk[/\\]stdio\.(js|ts)$/);
    expect(up.credentials).toEqual({ env: {} });
  });

  it('declares the demo agent allowed the first four tools, for 30 days (to the end of that UTC day), without a key, open to local OAuth logins', () => {
    expect(config.agents).toEqual([
      {
        id: 'demo-support',
        type: 'customer-support',
        version: '1.0.0',
        environment: 'development',
        owner: 'support-team',
        expiresAt: NOW + 30 * 86_400_000 + 12 * 3_600_000,
        maxConcurrentSessions: 5,
        allowedTools: ['lookup_order', 'check_shipping_status', 'create_support_ticket', 'issue_refund'],
        deniedTools: ['bulk_message', 'delete_account'],
        constraints: { maxToolCalls: 50, allowedCidrs: ['127.0.0.0/8', '::1/128'] },
        // Local MCP clients with OAuth may log a user in and act as it (from loopback only).
        delegation: { clients: ['dynamic'], users: ['*'] },
      },
    ]);
    expect(config.agents[0]).not.toHaveProperty('publicJwk');
  });

  it('gives the demo agent the same expiry all day, so running commands does not keep updating it', () => {
    const at = (ms: number) => embeddedDefault({ cwd: '/tmp/x', now: ms }).agents[0]?.expiresAt;
    const morning = Date.UTC(2026, 10, 25, 0, 0, 1);
    const evening = Date.UTC(2026, 10, 25, 23, 59, 59);
    expect(at(morning)).toBe(at(evening));
    expect(at(evening + 2_000)).toBeGreaterThan(at(evening)!);
  });

  it('classifies the demo tools by risk', () => {
    expect(Object.fromEntries(Object.entries(config.tools).map(([k, v]) => [k, v.risk]))).toEqual({
      issue_refund: 'high',
      bulk_message: 'critical',
      delete_account: 'critical',
      create_support_ticket: 'medium',
      lookup_order: 'low',
      check_shipping_status: 'low',
    });
    expect(config.tools.check_shipping_status).toEqual(toolDefaults('low'));
    expect(config.tools.lookup_order).toEqual({
      ...toolDefaults('low'),
      capabilities: ['private-data', 'untrusted-content'],
    });
  });

  it('returns fresh objects each call, so one caller cannot alter another', () => {
    const a = embeddedDefault({ cwd: '/x', now: NOW });
    a.agents[0]?.allowedTools.push('delete_account');
    a.tools['issue_refund'] = toolDefaults('low');
    const b = embeddedDefault({ cwd: '/x', now: NOW });
    expect(b.agents[0]?.allowedTools).not.toContain('delete_account');
    expect(b.tools['issue_refund']).toEqual({ ...toolDefaults('high'), capabilities: ['moves-money'] });
  });
});
