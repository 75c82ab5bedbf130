import { describe, expect, it } from 'vitest';
import type { ToolConfig } from '../config/types.js';
import { isWardenError, type WardenError } from '../errors.js';
import type { Agent } from '../identity/index.js';
import { fillScopeTemplate, resourceScopes } from './resource-scopes.js';
import type { CallState } from './types.js';

describe('fillScopeTemplate', () => {
  it('fills placeholders with scalar argument values', () => {
    expect(fillScopeTemplate('orders:read:user:{userId}', { userId: 'usr_abc123' })).toEqual({
      ok: true,
      scope: 'orders:read:user:usr_abc123',
    });
    expect(fillScopeTemplate('orders:read:org:{org}:user:{user}', { org: 'org_1', user: 42 })).toEqual({
      ok: true,
      scope: 'orders:read:org:org_1:user:42',
    });
  });

  it.each([
    [{}, /is required/],
    [{ userId: null }, /string or number/],
    [{ userId: ['usr_abc'] }, /string or number/],
    [{ userId: { id: 'usr_abc' } }, /string or number/],
    [{ userId: true }, /string or number/],
    // A ":" would move the value into a deeper position; "*" would be a wildcard; "" names nothing.
    [{ userId: 'usr_abc:notes' }, /cannot name a resource/],
    [{ userId: '*' }, /cannot name a resource/],
    [{ userId: '' }, /cannot name a resource/],
    [{ userId: 'usr abc' }, /cannot name a resource/],
    [{ userId: 'x'.repeat(129) }, /cannot name a resource/],
  ])('refuses %j', (args, why) => {
    const r = fillScopeTemplate('orders:read:user:{userId}', args);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(why);
  });

  it('does not read inherited properties', () => {
    expect(fillScopeTemplate('objects:read:{constructor}', {}).ok).toBe(false);
  });
});

const agent = (scopes: string[]) => ({ id: 'a1', scopes }) as Agent;
const cfg = (resourceScopes: string[]): ToolConfig => ({
  risk: 'low',
  tags: [],
  cost: 0,
  arguments: {},
  forbiddenKeys: [],
  resourceScopes,
});

async function run(opts: {
  templates: string[];
  tokenScopes: string[];
  agentScopes: string[];
  args: Record<string, unknown>;
}): Promise<{ error?: WardenError; state: CallState }> {
  const step = resourceScopes({ toolConfig: () => cfg(opts.templates) });
  const state: CallState = {
    request: {
      token: 't',
      toolName: 'lookup_order',
      parameters: opts.args,
      traceId: 'tr',
      clientIp: '',
      face: 'rest',
    },
    startedAt: 0,
    allowedBy: [],
    agent: agent(opts.agentScopes),
    tool: {
      name: 'lookup_order',
      upstream: 'u',
      upstreamName: 'lookup_order',
      inputSchema: { type: 'object' },
    },
    scopes: new Set(opts.tokenScopes),
    parameters: opts.args,
  };
  try {
    await step.run(state);
    return { state };
  } catch (e) {
    if (!isWardenError(e)) throw e;
    return { error: e, state };
  }
}

describe('resourceScopes step', () => {
  const base = {
    templates: ['orders:read:user:{userId}'],
    tokenScopes: ['tool:lookup_order:execute', 'orders:read:user:usr_abc'],
    agentScopes: ['orders:read:user:*'],
  };

  it('own resource: allowed, with the covering scope recorded', async () => {
    const { error, state } = await run({ ...base, args: { userId: 'usr_abc' } });
    expect(error).toBeUndefined();
    expect(state.allowedBy).toEqual(['scope.resource:orders:read:user:usr_abc']);
  });

  it("another user's resource: INSUFFICIENT_SCOPE naming the scope that was needed", async () => {
    const { error } = await run({ ...base, args: { userId: 'usr_def' } });
    expect(error?.code).toBe('INSUFFICIENT_SCOPE');
    expect(error?.status).toBe(403);
    expect(error?.rule).toBe('scope.resource:lookup_order');
    expect(error?.data).toEqual({ requiredScopes: ['orders:read:user:usr_def'] });
  });

  it('names every scope the token lacks in one challenge, covered ones left out', async () => {
    const { error } = await run({
      templates: ['orders:read:user:{userId}', 'tickets:write:user:{userId}', 'orders:read:org:{org}'],
      tokenScopes: ['orders:read:org:org_1'],
      agentScopes: ['orders:read:user:*', 'tickets:write:user:*', 'orders:read:org:*'],
      args: { userId: 'usr_abc', org: 'org_1' },
    });
    expect(error?.data).toEqual({
      requiredScopes: ['orders:read:user:usr_abc', 'tickets:write:user:usr_abc'],
    });
  });

  it('a broader granted scope covers the resource', async () => {
    const { error } = await run({
      ...base,
      tokenScopes: ['orders:read'],
      agentScopes: ['orders:read'],
      args: { userId: 'usr_def' },
    });
    expect(error).toBeUndefined();
  });

  it('tool scopes and wildcards in a token never cover a resource', async () => {
    for (const granted of ['tool:lookup_order:execute', 'orders:read:user:*', 'orders:*']) {
      const { error } = await run({ ...base, tokenScopes: [granted], args: { userId: 'usr_abc' } });
      expect(error?.code, granted).toBe('INSUFFICIENT_SCOPE');
    }
  });

  it("narrowing the agent's patterns applies to tokens already issued", async () => {
    const { error } = await run({
      ...base,
      agentScopes: ['orders:read:user:usr_xyz'],
      args: { userId: 'usr_abc' },
    });
    expect(error?.code).toBe('INSUFFICIENT_SCOPE');
    expect(error?.detail).toMatch(/no longer by the agent's patterns/);
  });

  it('every template must be covered', async () => {
    const templates = ['orders:read:user:{userId}', 'orders:read:order:{orderId}'];
    const ok = await run({
      ...base,
      templates,
      tokenScopes: ['orders:read:user:usr_abc', 'orders:read:order:ORD-4F8K2P1Z'],
      agentScopes: ['orders:read'],
      args: { userId: 'usr_abc', orderId: 'ORD-4F8K2P1Z' },
    });
    expect(ok.error).toBeUndefined();
    const other = await run({
      ...base,
      templates,
      tokenScopes: ['orders:read:user:usr_abc', 'orders:read:order:ORD-4F8K2P1Z'],
      agentScopes: ['orders:read'],
      args: { userId: 'usr_abc', orderId: 'ORD-9TQ3LM7A' },
    });
    expect(other.error?.data).toEqual({ requiredScopes: ['orders:read:order:ORD-9TQ3LM7A'] });
  });

  it('a missing or non-scalar argument is refused with the scope rule', async () => {
    for (const args of [{}, { userId: ['usr_abc'] }, { userId: 'usr_abc:x' }]) {
      const { error } = await run({ ...base, args });
      expect(error?.code).toBe('INVALID_ARGUMENTS');
      expect(error?.rule).toBe('scope.resource:lookup_order');
    }
  });

  it('a tool without templates needs no resource scope', async () => {
    const { error } = await run({ ...base, templates: [], tokenScopes: [], args: {} });
    expect(error).toBeUndefined();
  });
});
