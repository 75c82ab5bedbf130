/**
 * End to end, on both store dialects: argument validation (the upstream's own
 * schema plus config rules, forbidden keys, type confusion) and
 * resource-specific scopes (own resource, another's, a broader scope, the
 * token endpoint refusing what an agent may not hold), through REST and MCP.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  generateAgentKeyPair,
  type JWK,
  requestSessionToken,
  TokenRequestError,
} from '../../src/identity/index.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

interface ErrorBody {
  error: { code: string; message: string; traceId: string; rule?: string; requiredScopes?: string[] };
}

const OWN = 'ORD-4F8K2P1Z';
const OTHER = 'ORD-9TQ3LM7A';

const warden = (r: CallToolResult) =>
  (r._meta as Record<string, ErrorBody['error']> | undefined)?.['warden/error'];

describeEachDialect('arguments and resource scopes e2e', (target) => {
  let t: TestGateway;
  let demo: string;
  const keys: Record<string, JWK> = {};

  beforeAll(async () => {
    const reader = await generateAgentKeyPair();
    const auditor = await generateAgentKeyPair();
    keys['order-reader'] = reader.privateJwk;
    keys['order-auditor'] = auditor.privateJwk;
    t = await startTestGateway(target, (c) => {
      const base = c.agents.find((a) => a.id === 'demo-support')!;
      const agent = { ...base, allowedTools: ['lookup_order'], deniedTools: [], maxConcurrentSessions: 20 };
      c.agents.push(
        // May read any one order it names in its token request — not all of them.
        { ...agent, id: 'order-reader', scopes: ['orders:read:order:*'], publicJwk: { ...reader.publicJwk } },
        // Holds the broad scope outright.
        { ...agent, id: 'order-auditor', scopes: ['orders:read'], publicJwk: { ...auditor.publicJwk } },
      );
      c.tools.lookup_order = {
        ...c.tools.lookup_order!,
        arguments: { orderId: { type: 'string', pattern: '^ORD-[A-Z0-9]{8}$' } },
        resourceScopes: ['orders:read:order:{orderId}'],
      };
      c.tools.create_support_ticket = {
        ...c.tools.create_support_ticket!,
        arguments: { subject: { type: 'string', maxLength: 20 }, priority: { enum: ['low', 'normal'] } },
        forbiddenKeys: ['debug'],
      };
      c.tools.issue_refund = {
        ...c.tools.issue_refund!,
        risk: 'low', // here only to reach the numeric rule; the demo keeps it high
        arguments: { amountCents: { type: 'integer', minimum: 1, maximum: 5000 } },
      };
    });
    demo = await t.operatorToken('demo-support');
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  const rest = (body: string, bearer: string) =>
    fetch(`${t.gw.url}/v1/tool-calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
      body,
    });
  const call = (toolName: string, parameters: unknown, bearer = demo) =>
    rest(JSON.stringify({ toolName, parameters }), bearer);

  async function expectError(res: Response, status: number, code: string, rule?: string): Promise<ErrorBody> {
    const text = await res.text();
    expect(res.status, text).toBe(status);
    const body = JSON.parse(text) as ErrorBody;
    expect(body.error.code, text).toBe(code);
    if (rule !== undefined) expect(body.error.rule, text).toBe(rule);
    return body;
  }

  async function expectOk(res: Response): Promise<void> {
    const text = await res.text();
    expect(res.status, text).toBe(200);
  }

  const token = (agentId: string, scope?: string) =>
    requestSessionToken({
      tokenEndpoint: `${t.gw.url}/oauth/token`,
      agentId,
      privateJwk: keys[agentId]!,
      ...(scope === undefined ? {} : { scope }),
    });

  it('the demo orderId pattern: exact passes; case, length and a trailing newline are refused, naming the argument', async () => {
    await expectOk(await call('check_shipping_status', { orderId: OWN }));
    for (const orderId of ['ord-4f8k2p1z', 'ORD-4F8K2P1', 'ORD-4F8K2P1Z9', `${OWN}\n`]) {
      const b = await expectError(
        await call('check_shipping_status', { orderId }),
        400,
        'INVALID_ARGUMENTS',
        'arguments.schema',
      );
      expect(b.error.message).toBe('argument "orderId": must match pattern "^ORD-[A-Z0-9]{8}$"');
    }
  });

  it('type confusion is refused, never converted: a number, an array, "100" for an integer', async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['check_shipping_status', { orderId: 40_812_345 }, 'argument "orderId": must be string'],
      ['check_shipping_status', { orderId: [OWN] }, 'argument "orderId": must be string'],
      [
        'issue_refund',
        { orderId: OWN, amountCents: '100', reason: 'x' },
        'argument "amountCents": must be integer',
      ],
    ];
    for (const [tool, args, message] of cases) {
      const b = await expectError(await call(tool, args), 400, 'INVALID_ARGUMENTS', 'arguments.schema');
      expect(b.error.message).toBe(message);
    }
  });

  it('config rules at their edges: exactly the limit passes, one past is refused with the rule named', async () => {
    const ticket = (subject: string, priority = 'normal') =>
      call('create_support_ticket', { subject, body: 'customer asks', priority });
    await expectOk(await ticket('x'.repeat(20)));
    await expectError(
      await ticket('x'.repeat(21)),
      400,
      'INVALID_ARGUMENTS',
      'arguments.rule:create_support_ticket.subject',
    );
    // The upstream allows "high"; the operator's rule does not.
    await expectError(
      await ticket('ok', 'high'),
      400,
      'INVALID_ARGUMENTS',
      'arguments.rule:create_support_ticket.priority',
    );
    const refund = (amountCents: number) =>
      call('issue_refund', { orderId: OWN, amountCents, reason: 'damaged' });
    await expectOk(await refund(5000));
    const b = await expectError(
      await refund(5001),
      400,
      'INVALID_ARGUMENTS',
      'arguments.rule:issue_refund.amountCents',
    );
    expect(b.error.message).toBe('argument "amountCents": expected at most 5000');
  });

  it('a raw {"__proto__": …} body through REST is refused as a forbidden key, audited, and nothing runs', async () => {
    const before = await t.gw.audit.read({ event: 'TOOL_CALL', limit: 1000 });
    const body = `{"toolName":"check_shipping_status","traceId":"trace-proto-0001","parameters":{"__proto__":{"polluted":true},"orderId":"${OWN}"}}`;
    const b = await expectError(await rest(body, demo), 400, 'INVALID_ARGUMENTS', 'arguments.forbidden-key');
    expect(b.error.message).toBe('argument "__proto__": this key is not allowed');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const [entry] = await t.gw.audit.read({ traceId: 'trace-proto-0001', limit: 5 });
    expect(entry).toMatchObject({ event: 'TOOL_DENIED', decision: { rule: 'arguments.forbidden-key' } });
    expect(await t.gw.audit.read({ event: 'TOOL_CALL', limit: 1000 })).toHaveLength(before.length);

    const nested = `{"toolName":"check_shipping_status","parameters":{"orderId":"${OWN}","x":{"constructor":{"prototype":{"polluted":true}}}}}`;
    await expectError(await rest(nested, demo), 400, 'INVALID_ARGUMENTS', 'arguments.forbidden-key');
    await expectError(
      await call('create_support_ticket', { subject: 's', body: 'b', meta: { debug: true } }),
      400,
      'INVALID_ARGUMENTS',
      'arguments.forbidden-key',
    );
  });

  it('MCP answers the same codes as tool errors, a raw __proto__ key included', async () => {
    const client = await t.mcp(demo);
    const bad = (await client.callTool({
      name: 'check_shipping_status',
      arguments: { orderId: 'ORD-1' },
    })) as CallToolResult;
    expect(bad.isError).toBe(true);
    expect(warden(bad)).toMatchObject({ code: 'INVALID_ARGUMENTS', rule: 'arguments.schema' });
    const proto = (await client.callTool({
      name: 'check_shipping_status',
      arguments: JSON.parse(`{"__proto__":{"polluted":true},"orderId":"${OWN}"}`) as Record<string, unknown>,
    })) as CallToolResult;
    expect(warden(proto)).toMatchObject({ code: 'INVALID_ARGUMENTS', rule: 'arguments.forbidden-key' });
  });

  it('own resource: allowed; another order: 403 insufficient_scope naming the scope it would need', async () => {
    const { access_token, scope } = await token(
      'order-reader',
      `tool:lookup_order:execute orders:read:order:${OWN}`,
    );
    expect(scope).toBe(`tool:lookup_order:execute orders:read:order:${OWN}`);
    await expectOk(await call('lookup_order', { orderId: OWN }, access_token));
    const res = await call('lookup_order', { orderId: OTHER }, access_token);
    expect(res.headers.get('www-authenticate')).toContain(
      `Bearer error="insufficient_scope", scope="orders:read:order:${OTHER}"`,
    );
    const b = await expectError(res, 403, 'INSUFFICIENT_SCOPE', 'scope.resource:lookup_order');
    expect(b.error.requiredScopes).toEqual([`orders:read:order:${OTHER}`]);
    const [entry] = await t.gw.audit.read({ traceId: b.error.traceId, limit: 5 });
    expect(entry).toMatchObject({ event: 'TOOL_DENIED', decision: { rule: 'scope.resource:lookup_order' } });
  });

  it('a wildcard pattern grants nothing until a token names the resource', async () => {
    const { access_token, scope } = await token('order-reader');
    expect(scope).toBe('tool:lookup_order:execute');
    await expectError(await call('lookup_order', { orderId: OWN }, access_token), 403, 'INSUFFICIENT_SCOPE');
  });

  it('a broader scope covers every order below it', async () => {
    const { access_token, scope } = await token('order-auditor');
    expect(scope).toBe('tool:lookup_order:execute orders:read');
    await expectOk(await call('lookup_order', { orderId: OWN }, access_token));
    await expectOk(await call('lookup_order', { orderId: OTHER }, access_token));
  });

  it('MCP: outside its resource the tool error carries INSUFFICIENT_SCOPE and the needed scope', async () => {
    const { access_token } = await token(
      'order-reader',
      `tool:lookup_order:execute orders:read:order:${OWN}`,
    );
    const client = await t.mcp(access_token);
    const ok = (await client.callTool({
      name: 'lookup_order',
      arguments: { orderId: OWN },
    })) as CallToolResult;
    expect(ok.isError).toBeFalsy();
    const denied = (await client.callTool({
      name: 'lookup_order',
      arguments: { orderId: OTHER },
    })) as CallToolResult;
    expect(denied.isError).toBe(true);
    expect(warden(denied)).toMatchObject({
      code: 'INSUFFICIENT_SCOPE',
      rule: 'scope.resource:lookup_order',
      requiredScopes: [`orders:read:order:${OTHER}`],
    });
  });

  it('the token endpoint refuses a scope outside the agent patterns (invalid_scope); so does the operator path', async () => {
    for (const scope of [
      'orders:read',
      'orders:read:order:*',
      `orders:write:order:${OWN}`,
      'tool:bulk_message:execute',
    ]) {
      const e = await token('order-reader', scope).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e, scope).toBeInstanceOf(TokenRequestError);
      expect((e as TokenRequestError).error).toBe('invalid_scope');
      expect((e as TokenRequestError).status).toBe(400);
    }
    await expect(t.gw.tokens.issue('order-reader', { scopes: ['orders:read'] })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      rule: 'token.scope-not-allowed',
    });
    const issued = await t.gw.tokens.issue('order-reader', { scopes: [`orders:read:order:${OTHER}`] });
    expect(issued.scopes).toEqual([`orders:read:order:${OTHER}`]);
  });

  it('config agents keep their patterns in the registry', async () => {
    expect((await t.gw.agents.get('order-reader'))?.scopes).toEqual(['orders:read:order:*']);
    expect((await t.gw.agents.get('demo-support'))?.scopes).toEqual([]);
  });
});
