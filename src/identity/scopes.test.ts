import { describe, expect, it } from 'vitest';
import { configFileSchema } from '../config/index.js';
import {
  checkResourceScope,
  checkScopePattern,
  grantScopes,
  MAX_RESOURCE_SCOPES,
  scopeCovers,
} from './scopes.js';

describe('scopeCovers', () => {
  it.each([
    // [granted, required, covers]
    ['orders:read:user:usr_abc', 'orders:read:user:usr_abc', true],
    ['orders:read:user:usr_abc', 'orders:read:user:usr_def', false],
    ['orders:read', 'orders:read:user:usr_abc', true], // a broader scope covers what lies below it
    ['orders', 'orders:read:user:usr_abc', true],
    ['orders:read', 'orders:readall:user:usr_abc', false], // segments, not string prefixes
    ['orders:read:user:usr_abc', 'orders:read', false], // narrower never covers broader
    ['orders:read:user:usr_abc', 'orders:read:user:usr_abc:notes', true],
    ['orders:read:user:usr_ab', 'orders:read:user:usr_abc', false],
    ['orders:read:user:*', 'orders:read:user:usr_abc', true],
    ['orders:read:user:*', 'orders:read:user:usr_abc:notes', true], // then the hierarchy
    ['orders:read:user:*', 'orders:read:user', false], // * is one segment, never zero
    ['orders:*:user:usr_abc', 'orders:write:user:usr_abc', true],
    ['orders:*:user:usr_abc', 'orders:write:user:usr_def', false],
    ['tickets:create:org:org_xyz789', 'orders:read:user:usr_abc', false],
  ])('%s covers %s: %s', (granted, required, covers) => {
    expect(scopeCovers(granted, required)).toBe(covers);
  });
});

describe('scope grammar', () => {
  it('accepts patterns with whole-segment wildcards after the first segment', () => {
    for (const p of [
      'orders:read',
      'orders:read:user:*',
      'orders:*:user:*',
      'tickets:create:org:org_xyz789',
    ]) {
      expect(checkScopePattern(p), p).toBeNull();
    }
  });

  it.each([
    ['orders', /two segments/],
    ['*:read', /not the first/],
    ['orders:read:user:usr_*', /whole segment/],
    ['tool:lookup_order:execute', /allowedTools/],
    ['tool:*:execute', /allowedTools/],
    ['orders:read:user:', /segment/],
    ['orders:read user', /segment/],
    ['orders::read', /segment/],
    [`orders:${'x'.repeat(300)}`, /longer than/],
  ])('refuses the pattern %s', (p, why) => {
    expect(checkScopePattern(p)).toMatch(why);
  });

  it('concrete resource scopes have no wildcard', () => {
    expect(checkResourceScope('orders:read:user:usr_abc')).toBeNull();
    expect(checkResourceScope('orders:read:user:*')).toMatch(/whole segment|segment/);
  });

  it('the config file accepts exactly the patterns the registry accepts', () => {
    const agent = (scopes: string[]) => ({
      agents: [
        {
          id: 'a',
          type: 't',
          version: '1',
          environment: 'test',
          owner: 'o',
          expiresAt: '2099-01-01T00:00:00Z',
          scopes,
        },
      ],
    });
    for (const p of ['orders:read', 'orders:read:user:*', 'orders:*:user:*']) {
      expect(configFileSchema.safeParse(agent([p])).success, p).toBe(true);
    }
    for (const p of ['orders', '*:read', 'orders:read:user:usr_*', 'tool:lookup_order:execute', 'a::b']) {
      expect(configFileSchema.safeParse(agent([p])).success, p).toBe(false);
      expect(checkScopePattern(p), p).not.toBeNull();
    }
  });
});

describe('grantScopes', () => {
  const tools = ['tool:check_shipping_status:execute', 'tool:lookup_order:execute'];
  const agent = { scopes: ['orders:read:user:*', 'tickets:create:org:org_xyz789'] };

  it('absent request: every tool scope plus the wildcard-free patterns, never a wildcard', () => {
    expect(grantScopes(agent, tools, undefined)).toEqual({
      granted: [...tools, 'tickets:create:org:org_xyz789'],
      refused: [],
    });
  });

  it('grants concrete scopes a pattern covers, narrower ones included', () => {
    expect(
      grantScopes(agent, tools, [
        'orders:read:user:usr_abc',
        'tool:lookup_order:execute',
        'tickets:create:org:org_xyz789:queue:urgent',
      ]),
    ).toEqual({
      granted: [
        'tool:lookup_order:execute',
        'orders:read:user:usr_abc',
        'tickets:create:org:org_xyz789:queue:urgent',
      ],
      refused: [],
    });
  });

  it('refuses wildcards, broader scopes, other resources, unknown tool scopes and nonsense', () => {
    const { granted, refused } = grantScopes(agent, tools, [
      'orders:read:user:*',
      'orders:read',
      'orders:write:user:usr_abc',
      'tool:delete_account:execute',
      'openid',
      'orders:read:user:usr_abc',
    ]);
    expect(granted).toEqual(['orders:read:user:usr_abc']);
    expect(refused).toEqual([
      'tool:delete_account:execute',
      'orders:read:user:*',
      'orders:read',
      'orders:write:user:usr_abc',
      'openid',
    ]);
  });

  it('no pattern grants a tool scope', () => {
    expect(grantScopes({ scopes: ['tool:*'] }, [], ['tool:bulk_message:execute']).refused).toEqual([
      'tool:bulk_message:execute',
    ]);
  });

  it(`bounds a token at ${MAX_RESOURCE_SCOPES} resource scopes`, () => {
    const many = Array.from({ length: MAX_RESOURCE_SCOPES + 1 }, (_, i) => `orders:read:user:u${i}`);
    const r = grantScopes(agent, tools, many);
    expect(r.granted).toHaveLength(MAX_RESOURCE_SCOPES);
    expect(r.refused).toEqual([`orders:read:user:u${MAX_RESOURCE_SCOPES}`]);
  });
});
