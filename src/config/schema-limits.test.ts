import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from './load.js';
import { limitsSchema } from './schema-limits.js';
import { toolSchema } from './schema-tools.js';

function issues(value: unknown): string[] {
  const r = limitsSchema.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('limits: schema', () => {
  it('defaults to no limits on memory counters, failing closed', () => {
    expect(limitsSchema.parse(undefined)).toEqual({
      store: 'memory',
      namespace: 'warden',
      onStoreDown: 'deny',
      rates: [],
      budgets: [],
    });
  });

  it('accepts every kind of rule', () => {
    expect(
      issues({
        rates: [
          { per: 'agent', points: 100, duration: '1m' },
          { per: 'session', points: 20, duration: '10s' },
          { per: 'agent-tool', tool: 'issue_refund', points: 5, duration: '1h' },
          { per: 'agent-tool', points: 30, duration: '1m' },
        ],
        budgets: [{ per: 'agent-tool', tool: 'lookup_order', amount: 2.5, period: '1d' }],
      }),
    ).toEqual([]);
  });

  it('refuses tool on a rule that is not per agent-tool (it would be silently ignored)', () => {
    expect(issues({ rates: [{ per: 'agent', tool: 'x', points: 1, duration: '1s' }] })).toEqual([
      'rates.0.tool: tool applies only to per: agent-tool (got per: agent)',
    ]);
    expect(issues({ budgets: [{ per: 'agent', tool: 'x', amount: 1, period: '1h' }] })).toHaveLength(1);
  });

  it('refuses windows that are not whole seconds, or under a second', () => {
    expect(issues({ rates: [{ per: 'agent', points: 1, duration: '1500ms' }] })).toEqual([
      'rates.0.duration: expected a whole number of seconds (e.g. 1s, 90s, 1h)',
    ]);
    expect(issues({ budgets: [{ per: 'agent', amount: 1, period: '500ms' }] })).toHaveLength(1);
  });

  it('refuses a duplicated rule (it would charge every call twice)', () => {
    const rule = { per: 'session', points: 3, duration: '1m' };
    expect(issues({ rates: [rule, { ...rule }] })).toEqual(['rates.1: duplicates entry 0']);
  });

  it('refuses a bad namespace, a non-integer or zero rate, a budget beyond micro-unit precision', () => {
    expect(issues({ namespace: 'a b' })).toHaveLength(1);
    expect(issues({ rates: [{ per: 'agent', points: 1.5, duration: '1s' }] })).toHaveLength(1);
    expect(issues({ rates: [{ per: 'agent', points: 0, duration: '1s' }] })).toHaveLength(1);
    expect(issues({ budgets: [{ per: 'agent', amount: 1e10, period: '1h' }] })).toHaveLength(1);
  });

  it('needs a Redis URL for store: redis, and never a password in it', () => {
    expect(issues({ store: 'redis' })).toEqual(['redis: store: redis needs redis.url']);
    expect(issues({ store: 'redis', redis: { url: 'redis://:pw@127.0.0.1:6379' } })[0]).toContain(
      'contains a password',
    );
    expect(
      issues({ store: 'redis', redis: { url: 'redis://127.0.0.1:6379', timeout: '10ms' } }),
    ).toHaveLength(1);
  });
});

describe('limits: loading', () => {
  it('resolves durations to ms, the namespace, and a Redis URL from a reference', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-limits-'));
    try {
      const file = join(dir, 'warden.yaml');
      writeFileSync(
        file,
        [
          'limits:',
          '  store: redis',
          '  redis: { url: { env: REDIS_URL } }',
          '  namespace: prod-eu',
          '  onStoreDown: allow',
          '  rates: [{ per: agent, points: 10, duration: 1m }]',
          '  budgets: [{ per: agent-tool, tool: lookup_order, amount: 1, period: 1h }]',
          '',
        ].join('\n'),
      );
      const { config } = await loadConfig(file, { env: { REDIS_URL: 'redis://:secret@127.0.0.1:6379' } });
      expect(config.limits).toEqual({
        store: 'redis',
        redisUrl: 'redis://:secret@127.0.0.1:6379',
        redisTimeoutMs: 1000,
        namespace: 'prod-eu',
        onStoreDown: 'allow',
        rates: [{ per: 'agent', points: 10, durationMs: 60_000 }],
        budgets: [{ per: 'agent-tool', tool: 'lookup_order', amount: 1, periodMs: 3_600_000 }],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('limits: the docs example', () => {
  it('docs/configuration.md "Limits" example is valid', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('### Limits'));
    const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBeDefined();
    const example = parse(block!) as { limits: unknown; tools: Record<string, unknown> };
    expect(issues(example.limits)).toEqual([]);
    expect(limitsSchema.parse(example.limits).rates).toHaveLength(4);
    expect(toolSchema.parse(example.tools.lookup_order).cost).toBe(0.25);
  });
});
