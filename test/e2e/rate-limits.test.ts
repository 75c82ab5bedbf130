/**
 * Rate limits and budgets through a real gateway (HTTP, real upstream process):
 * 429 with Retry-After on REST, the code and retryAfterSeconds in MCP's
 * `_meta['warden/error']`, RATE_LIMITED audit entries, budgets charged only for
 * calls that run, and a dead limits store refusing (or allowing) as configured.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WardenConfig } from '../../src/config/types.js';
import { type DialectTarget, makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ORDER = { orderId: 'ORD-4F8K2P1Z' };

interface RestReply {
  status: number;
  retryAfter: string | null;
  error: { code?: string; rule?: string; retryAfterSeconds?: number; message?: string } | undefined;
}

async function rest(
  t: TestGateway,
  token: string,
  toolName = 'lookup_order',
  parameters: object = ORDER,
  extra: object = {},
) {
  const res = await fetch(`${t.gw.url}/v1/tool-calls`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ toolName, parameters, ...extra }),
  });
  const body = (await res.json()) as { error?: RestReply['error'] };
  return { status: res.status, retryAfter: res.headers.get('retry-after'), error: body.error } as RestReply;
}

/** A gateway on a fresh SQLite store with `limits` applied. */
function gatewayWith(tweak: (c: WardenConfig) => void) {
  const ctx: { t: TestGateway; target: DialectTarget } = {} as never;
  beforeAll(async () => {
    ctx.target = makeTarget('sqlite');
    ctx.t = await startTestGateway(ctx.target, tweak);
  });
  afterAll(async () => {
    await ctx.t?.close();
    await ctx.target?.cleanup();
  });
  return ctx;
}

describe('rate limits end to end', () => {
  const ctx = gatewayWith((c) => {
    c.limits.rates = [{ per: 'session', points: 3, durationMs: 60_000 }];
  });

  it('REST: the call past the limit gets 429 with Retry-After, the rule, and a RATE_LIMITED audit entry', async () => {
    const { t } = ctx;
    const token = await t.operatorToken('demo-support');
    for (let i = 0; i < 3; i++) expect((await rest(t, token)).status).toBe(200);
    const r = await rest(t, token);
    expect(r.status).toBe(429);
    expect(r.error).toMatchObject({ code: 'RATE_LIMITED', rule: 'limits.rate:session' });
    const retry = Number(r.retryAfter);
    expect(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After: ${r.retryAfter}`).toBe(true);
    expect(r.error?.retryAfterSeconds).toBe(retry);
    const limited = await t.gw.audit.read({ event: 'RATE_LIMITED', limit: 10 });
    expect(limited).toHaveLength(1);
    expect(limited[0]).toMatchObject({
      agentId: 'demo-support',
      toolName: 'lookup_order',
      result: 'denied',
      decision: { allowed: false, code: 'RATE_LIMITED', rule: 'limits.rate:session' },
    });
    // The allowed calls name the limit they were counted against.
    const attempts = await t.gw.audit.read({ event: 'TOOL_CALL', limit: 10 });
    expect(attempts[0]?.decision?.reasons).toContain('limits.rate:session');
    // Another session of the same agent has its own count.
    expect((await rest(t, await t.operatorToken('demo-support'))).status).toBe(200);
  });

  it('MCP: the refused call is a tool error carrying the code and retryAfterSeconds', async () => {
    const client = await ctx.t.mcp(await ctx.t.operatorToken('demo-support'));
    const call = () => client.callTool({ name: 'lookup_order', arguments: ORDER }) as Promise<CallToolResult>;
    for (let i = 0; i < 3; i++) expect((await call()).isError).toBeFalsy();
    const r = await call();
    expect(r.isError).toBe(true);
    const meta = (r._meta as Record<string, Record<string, unknown>>)['warden/error'];
    expect(meta).toMatchObject({ code: 'RATE_LIMITED', rule: 'limits.rate:session' });
    expect(meta?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });
});

describe('budgets end to end', () => {
  const ctx = gatewayWith((c) => {
    c.tools.lookup_order!.cost = 0.25;
    c.tools.issue_refund!.cost = 0.5;
    c.limits.budgets = [{ per: 'agent', amount: 1, periodMs: 3_600_000 }];
  });

  it('charges only calls that run: a refused call costs nothing; 4 × 0.25 pass, the fifth gets 429', async () => {
    const { t } = ctx;
    const token = await t.operatorToken('demo-support');
    // High risk: held for a human before the budget step (the caller chose not to wait), so not charged.
    const refund = await rest(
      t,
      token,
      'issue_refund',
      { orderId: 'ORD-4F8K2P1Z', amountCents: 100, reason: 'x' },
      { approval: 'pending' },
    );
    expect(refund.status).toBe(202);
    for (let i = 0; i < 4; i++) expect((await rest(t, token)).status, `call ${i + 1}`).toBe(200);
    const r = await rest(t, token);
    expect(r.status).toBe(429);
    expect(r.error).toMatchObject({ code: 'BUDGET_EXCEEDED', rule: 'limits.budget:agent' });
    expect(Number(r.retryAfter)).toBeGreaterThan(3500);
    // Budgets are per agent, not per session: a new session does not reset the spend.
    expect((await rest(t, await t.operatorToken('demo-support'))).error?.code).toBe('BUDGET_EXCEEDED');
    const limited = await t.gw.audit.read({ event: 'RATE_LIMITED', limit: 10 });
    expect(limited.map((e) => e.decision?.code)).toEqual(['BUDGET_EXCEEDED', 'BUDGET_EXCEEDED']);
  });
});

describe('limits store down (Redis at a closed port)', () => {
  const limits = (onStoreDown: 'deny' | 'allow') => (c: WardenConfig) => {
    c.limits = {
      store: 'redis',
      redisUrl: 'redis://127.0.0.1:1',
      onStoreDown,
      rates: [{ per: 'agent', points: 100, durationMs: 60_000 }],
      budgets: [],
    };
  };

  describe('onStoreDown: deny', () => {
    const ctx = gatewayWith(limits('deny'));

    it('refuses fast with 503 LIMITS_UNAVAILABLE, audited as TOOL_DENIED; /readyz says not ready', async () => {
      const { t } = ctx;
      const token = await t.operatorToken('demo-support');
      const started = performance.now();
      const r = await rest(t, token);
      expect(performance.now() - started).toBeLessThan(2000);
      expect(r.status).toBe(503);
      expect(r.error).toMatchObject({ code: 'LIMITS_UNAVAILABLE', rule: 'limits.store-unavailable' });
      const denied = await t.gw.audit.read({ event: 'TOOL_DENIED', limit: 10 });
      expect(denied.at(-1)?.decision).toMatchObject({ code: 'LIMITS_UNAVAILABLE' });
      const ready = await fetch(`${t.gw.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { limits: unknown }).limits).toEqual({ store: 'redis', up: false });
    });
  });

  describe('onStoreDown: allow', () => {
    const ctx = gatewayWith(limits('allow'));

    it('lets the call run and records limits.store-down-allowed in its decision', async () => {
      const { t } = ctx;
      const r = await rest(t, await t.operatorToken('demo-support'));
      expect(r.status).toBe(200);
      const attempts = await t.gw.audit.read({ event: 'TOOL_CALL', limit: 10 });
      expect(attempts[0]?.decision?.reasons).toContain('limits.store-down-allowed');
      expect((await fetch(`${t.gw.url}/readyz`)).status).toBe(200);
    });
  });
});
