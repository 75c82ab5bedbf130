import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import type { AgentConfig } from '../config/types.js';
import { isWardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { checkPublicJwk } from './agent-input.js';
import { AgentRegistry, REMOVED_FROM_CONFIG, scopesFor } from './agents.js';
import { generateAgentKeyPair } from './client-assertion.js';
import type { AgentInput } from './types.js';

const DAY = 86_400_000;
const T0 = new ManualClock().now();

function input(id: string, over: Partial<AgentInput> = {}): AgentInput {
  return {
    id,
    type: 'customer-support',
    version: '2.4.1',
    environment: 'production',
    owner: 'support-team',
    expiresAt: T0 + DAY,
    maxConcurrentSessions: 2,
    allowedTools: ['lookup_order', 'check_shipping_status'],
    deniedTools: ['delete_account'],
    publicJwk: null,
    constraints: {},
    ...over,
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return isWardenError(e) ? e.code : `non-warden: ${String(e)}`;
  }
}

describe('scopesFor', () => {
  it('maps allowed tools to sorted, deduplicated execute scopes; denied wins', () => {
    expect(
      scopesFor({
        allowedTools: ['b', 'a', 'issue_refund', 'a', 'delete_account'],
        deniedTools: ['delete_account'],
      }),
    ).toEqual(['tool:a:execute', 'tool:b:execute', 'tool:issue_refund:execute']);
    expect(scopesFor({ allowedTools: ['x'], deniedTools: ['x'] })).toEqual([]);
  });
});

describe('checkPublicJwk', () => {
  it('accepts Ed25519 and P-256 public keys, reduced to public members', async () => {
    const ed = await generateAgentKeyPair('EdDSA');
    const ec = await generateAgentKeyPair('ES256');
    expect(checkPublicJwk({ ...ed.publicJwk, ext: true, key_ops: ['verify'] })).toEqual(ed.publicJwk);
    expect(checkPublicJwk(ec.publicJwk)).toEqual(ec.publicJwk);
  });
  it('refuses private, symmetric, RSA and mismatched keys', async () => {
    const ed = await generateAgentKeyPair('EdDSA');
    expect(checkPublicJwk(ed.privateJwk)).toMatch(/private/);
    expect(checkPublicJwk({ kty: 'oct', k: 'c2VjcmV0' })).toMatch(/private or symmetric/);
    expect(checkPublicJwk({ kty: 'RSA', n: 'x', e: 'AQAB' })).toMatch(/Ed25519|P-256/);
    expect(checkPublicJwk({ ...ed.publicJwk, alg: 'ES256' })).toMatch(/does not match/);
    expect(checkPublicJwk({ ...ed.publicJwk, alg: 'HS256' })).toMatch(/alg must be/);
  });
});

describeEachDialect('AgentRegistry', (target) => {
  let store: Store;
  const clock = new ManualClock();
  let agents: AgentRegistry;
  beforeAll(async () => {
    store = await target.open();
    agents = new AgentRegistry(store, clock);
  });
  afterAll(async () => {
    // Clean up even when beforeAll failed: a half-migrated schema left behind trips later PostgreSQL runs.
    await store?.close().catch(() => {});
    await target.cleanup();
  });

  it('registers, reads back and lists agents', async () => {
    const { publicJwk } = await generateAgentKeyPair();
    const a = await agents.register(
      input('reg-1', { publicJwk, constraints: { maxToolCalls: 7, allowedCidrs: ['10.0.0.0/8'] } }),
      'cli',
    );
    expect(a).toMatchObject({
      id: 'reg-1',
      status: 'active',
      disabledReason: null,
      source: 'cli',
      createdAt: clock.now(),
      updatedAt: clock.now(),
      publicJwk,
      constraints: { maxToolCalls: 7, allowedCidrs: ['10.0.0.0/8'] },
      allowedTools: ['lookup_order', 'check_shipping_status'],
    });
    expect(await agents.get('reg-1')).toEqual(a);
    expect(await agents.get('nope')).toBeUndefined();
    expect((await agents.list()).map((x) => x.id)).toContain('reg-1');
  });

  it('refuses a taken id (CONFLICT) and invalid declarations (INVALID_REQUEST)', async () => {
    await agents.register(input('reg-2'), 'api');
    expect(await codeOf(agents.register(input('reg-2'), 'api'))).toBe('CONFLICT');
    expect(await codeOf(agents.register(input('bad id'), 'api'))).toBe('INVALID_REQUEST');
    expect(await codeOf(agents.register(input('reg-3', { allowedTools: ['has space'] }), 'api'))).toBe(
      'INVALID_REQUEST',
    );
    expect(
      await codeOf(
        agents.register(input('reg-3', { constraints: { allowedCidrs: ['10.0.0.0/99'] } }), 'api'),
      ),
    ).toBe('INVALID_REQUEST');
    const { privateJwk } = await generateAgentKeyPair();
    expect(await codeOf(agents.register(input('reg-3', { publicJwk: privateJwk }), 'api'))).toBe(
      'INVALID_REQUEST',
    );
    expect(await agents.get('reg-3')).toBeUndefined();
  });

  it('disables and enables; NOT_FOUND for unknown ids', async () => {
    await agents.register(input('reg-4'), 'api');
    const d = await agents.disable('reg-4', 'compromised');
    expect(d).toMatchObject({ status: 'disabled', disabledReason: 'compromised' });
    expect(await codeOf(agents.requireUsable('reg-4'))).toBe('AGENT_DISABLED');
    const e = await agents.enable('reg-4');
    expect(e).toMatchObject({ status: 'active', disabledReason: null });
    expect(await codeOf(agents.disable('missing', 'x'))).toBe('NOT_FOUND');
    expect(await codeOf(agents.enable('missing'))).toBe('NOT_FOUND');
  });

  it('requireUsable: unknown, disabled and expired agents are refused', async () => {
    await agents.register(input('reg-5', { expiresAt: clock.now() + 1000 }), 'api');
    expect((await agents.requireUsable('reg-5')).id).toBe('reg-5');
    expect(await codeOf(agents.requireUsable('reg-5', clock.now() + 1000))).toBe('AGENT_EXPIRED');
    expect(await codeOf(agents.requireUsable('ghost'))).toBe('AGENT_UNKNOWN');
  });

  it('syncs config agents: creates, updates only on change, keeps status, disables removed ones', async () => {
    const cfg = (id: string, over: Partial<AgentConfig> = {}): AgentConfig => ({
      ...input(id),
      publicJwk: undefined,
      ...over,
    });
    const first = await agents.syncFromConfig([cfg('cfg-a'), cfg('cfg-b')]);
    expect(first).toEqual({ created: ['cfg-a', 'cfg-b'], updated: [], removed: [] });
    expect((await agents.get('cfg-a'))?.source).toBe('config');

    clock.advance(1000);
    expect(await agents.syncFromConfig([cfg('cfg-a'), cfg('cfg-b')])).toEqual({
      created: [],
      updated: [],
      removed: [],
    });

    await agents.disable('cfg-a', 'incident 42');
    const changed = await agents.syncFromConfig([cfg('cfg-a', { version: '2.5.0' }), cfg('cfg-b')]);
    expect(changed.updated).toEqual(['cfg-a']);
    const a = await agents.get('cfg-a');
    expect(a).toMatchObject({ version: '2.5.0', status: 'disabled', disabledReason: 'incident 42' });
    expect(a?.updatedAt).toBe(clock.now());

    const removed = await agents.syncFromConfig([cfg('cfg-a', { version: '2.5.0' })]);
    expect(removed.removed).toEqual(['cfg-b']);
    expect(await agents.get('cfg-b')).toMatchObject({
      status: 'disabled',
      disabledReason: REMOVED_FROM_CONFIG,
    });

    const back = await agents.syncFromConfig([cfg('cfg-a', { version: '2.5.0' }), cfg('cfg-b')]);
    expect(back.updated).toEqual(['cfg-b']);
    expect(await agents.get('cfg-b')).toMatchObject({ status: 'active', disabledReason: null });
    // An agent registered by hand is not touched by the config sync.
    expect((await agents.get('reg-1'))?.status).toBe('active');
  });

  it('persists resource-scope patterns (sorted, deduplicated); none when absent; invalid ones refused', async () => {
    const a = await agents.register(
      input('reg-scoped', {
        scopes: ['orders:read:user:*', 'tickets:create:org:org_1', 'orders:read:user:*'],
      }),
      'cli',
    );
    expect(a.scopes).toEqual(['orders:read:user:*', 'tickets:create:org:org_1']);
    expect((await agents.get('reg-scoped'))?.scopes).toEqual(a.scopes);
    expect((await agents.get('reg-2'))?.scopes).toEqual([]);
    for (const bad of ['orders', 'orders:read:user:usr_*', 'tool:*:execute', '*:read']) {
      expect(await codeOf(agents.register(input('reg-badscope', { scopes: [bad] }), 'api')), bad).toBe(
        'INVALID_REQUEST',
      );
    }
    expect(await agents.get('reg-badscope')).toBeUndefined();
  });

  it('config sync carries scopes and updates an agent whose scopes changed', async () => {
    const cfg = (scopes?: string[]): AgentConfig => ({
      ...input('cfg-scoped'),
      publicJwk: undefined,
      ...(scopes === undefined ? {} : { scopes }),
    });
    expect((await agents.syncFromConfig([cfg(['orders:read:user:*'])])).created).toEqual(['cfg-scoped']);
    expect((await agents.get('cfg-scoped'))?.scopes).toEqual(['orders:read:user:*']);
    expect((await agents.syncFromConfig([cfg(['orders:read:user:*'])])).updated).toEqual([]);
    expect((await agents.syncFromConfig([cfg()])).updated).toEqual(['cfg-scoped']);
    expect((await agents.get('cfg-scoped'))?.scopes).toEqual([]);
    expect(await codeOf(agents.syncFromConfig([cfg(['orders:*x'])]))).toBe('CONFIG_INVALID');
  });

  it('refuses an invalid or duplicated config with CONFIG_INVALID and changes nothing', async () => {
    const ok = { ...input('cfg-c'), publicJwk: undefined };
    expect(await codeOf(agents.syncFromConfig([ok, ok]))).toBe('CONFIG_INVALID');
    expect(await codeOf(agents.syncFromConfig([{ ...ok, maxConcurrentSessions: 0 }]))).toBe('CONFIG_INVALID');
    expect(await agents.get('cfg-c')).toBeUndefined();
  });
});
