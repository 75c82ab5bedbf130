import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isWardenError } from '../errors.js';
import { loadConfig } from './load.js';
import { templateArguments, toolSchema } from './schema-tools.js';

const messages = (v: unknown) => {
  const r = toolSchema.safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('tools.<name>: arguments, forbiddenKeys, resourceScopes', () => {
  it('accepts rules, forbidden keys and templates over declared arguments', () => {
    const tool = toolSchema.parse({
      risk: 'low',
      arguments: {
        orderId: { type: 'string', pattern: '^ORD-[A-Z0-9]{8}$' },
        limit: { type: 'integer', minimum: 1, maximum: 100 },
        priority: { enum: ['low', 'normal'] },
        tags: { maxItems: 5 },
      },
      forbiddenKeys: ['debug'],
      resourceScopes: ['orders:read:order:{orderId}'],
    });
    expect(tool.resourceScopes).toEqual(['orders:read:order:{orderId}']);
    expect(toolSchema.parse({}).arguments).toEqual({});
  });

  it('a placeholder must name a declared argument (a typo is a load error, not a tool that always denies)', () => {
    expect(
      messages({
        arguments: { userId: { type: 'string' } },
        resourceScopes: ['orders:read:user:{userID}'],
      }),
    ).toEqual([
      'resourceScopes.0: placeholder {userID} names no argument declared under arguments (declare userID with a type and pattern)',
    ]);
  });

  it('templates: literal first segment, whole-segment placeholders, no tool: namespace', () => {
    for (const t of [
      '{orderId}:read',
      'orders',
      'orders:read:user-{orderId}',
      'tool:lookup_order:execute',
      'orders:*',
    ]) {
      expect(messages({ arguments: { orderId: {} }, resourceScopes: [t] }).length, t).toBeGreaterThan(0);
    }
    expect(templateArguments('orders:read:org:{org}:user:{user}')).toEqual(['org', 'user']);
  });

  it('refuses contradictory rules and invalid patterns', () => {
    expect(messages({ arguments: { a: { type: 'integer', pattern: '^\\d+$' } } })[0]).toMatch(/contradict/);
    expect(messages({ arguments: { a: { minimum: 1, maxLength: 3 } } })[0]).toMatch(/contradict/);
    expect(messages({ arguments: { a: { type: 'string', maxItems: 3 } } })[0]).toMatch(/contradict/);
    expect(messages({ arguments: { a: { type: 'integer', minimum: 1 } } })).toEqual([]);
    expect(messages({ arguments: { a: { minimum: 5, maximum: 1 } } })[0]).toMatch(/minimum is greater/);
    expect(messages({ arguments: { a: { pattern: '([' } } })[0]).toMatch(/invalid regular expression/);
    expect(messages({ arguments: { a: { maxLen: 3 } } })[0]).toMatch(/maxLen/);
  });

  it('a mistake is reported with file, line and column', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-tools-'));
    const file = join(dir, 'warden.yaml');
    writeFileSync(
      file,
      [
        'tools:',
        '  lookup_order:',
        '    arguments:',
        '      orderId: { type: string, pattern: "^ORD-[A-Z0-9]{8}$" }',
        '    resourceScopes:',
        '      - orders:read:user:{userId}',
        '',
      ].join('\n'),
    );
    const error = await loadConfig(file, { cwd: dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isWardenError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toContain(
      'warden.yaml:6:9: tools.lookup_order.resourceScopes[0]: placeholder {userId}',
    );
  });

  it('the example in docs/configuration.md loads', async () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('### Tool arguments and resource scopes'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(yaml).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'warden-tools-doc-'));
    writeFileSync(join(dir, 'warden.yaml'), yaml!);
    const { config } = await loadConfig(join(dir, 'warden.yaml'), { cwd: dir });
    expect(config.tools.lookup_order?.resourceScopes).toEqual(['orders:read:order:{orderId}']);
    expect(config.tools.issue_refund?.arguments.amountCents).toEqual({
      type: 'integer',
      minimum: 1,
      maximum: 10000,
    });
  });
});
