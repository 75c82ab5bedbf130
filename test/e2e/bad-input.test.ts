/**
 * Bad input gets a clear error and loses nothing: each malformed request gets a
 * specific code, an audit entry where one applies, and the gateway keeps serving.
 */
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/index.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

interface ErrorBody {
  error: { code: string; message: string; traceId: string; rule?: string };
}

describe('bad input', () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  let token: string;
  beforeAll(async () => {
    t = await startTestGateway(target, (c) => {
      c.server.bodyLimitBytes = 64 * 1024;
    });
    token = await t.operatorToken('demo-support');
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  const rest = (body: string, headers: Record<string, string> = {}, bearer: string | null = token) =>
    fetch(`${t.gw.url}/v1/tool-calls`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...headers,
      },
      body,
    });

  async function expectError(res: Response, status: number, code: string): Promise<ErrorBody> {
    const text = await res.text();
    expect(res.status, text).toBe(status);
    const body = JSON.parse(text) as ErrorBody;
    expect(body.error.code).toBe(code);
    expect(body.error.traceId).toBeTruthy();
    expect(text).not.toMatch(/at \w+ \(|node_modules|\.ts:\d+/); // never a stack trace
    return body;
  }

  it('malformed JSON → 400 INVALID_JSON', async () => {
    await expectError(await rest('{"toolName": "lookup_order",'), 400, 'INVALID_JSON');
  });

  it('a JSON array (batch) → 400 BATCH_NOT_SUPPORTED, on REST and MCP', async () => {
    await expectError(await rest('[{"toolName":"lookup_order"}]'), 400, 'BATCH_NOT_SUPPORTED');
    const res = await fetch(`${t.gw.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }]),
    });
    await expectError(res, 400, 'BATCH_NOT_SUPPORTED');
    const rejected = await t.gw.audit.read({ event: 'REQUEST_REJECTED', limit: 50 });
    expect(
      rejected.some((e) => e.decision?.code === 'BATCH_NOT_SUPPORTED' && e.agentId === 'demo-support'),
    ).toBe(true);
  });

  it('malformed JSON-RPC on MCP → 400 INVALID_JSON / INVALID_REQUEST', async () => {
    const send = (body: string) =>
      fetch(`${t.gw.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${token}`,
        },
        body,
      });
    await expectError(await send('{"jsonrpc":'), 400, 'INVALID_JSON');
    await expectError(await send('{"id":1,"method":"initialize"}'), 400, 'INVALID_REQUEST');
  });

  it('a body over the limit → 413 PAYLOAD_TOO_LARGE', async () => {
    const big = JSON.stringify({ toolName: 'lookup_order', parameters: { orderId: 'x'.repeat(100 * 1024) } });
    await expectError(await rest(big), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('an MCP body over the limit → 413 PAYLOAD_TOO_LARGE, also when streamed without Content-Length', async () => {
    const big = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'lookup_order', arguments: { orderId: 'x'.repeat(100 * 1024) } },
    });
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
    };
    await expectError(
      await fetch(`${t.gw.url}/mcp`, { method: 'POST', headers, body: big }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 8192) controller.enqueue(bytes.slice(i, i + 8192));
        controller.close();
      },
    });
    const res = await fetch(`${t.gw.url}/mcp`, {
      method: 'POST',
      headers,
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('deeply nested arguments → 400 NESTING_TOO_DEEP', async () => {
    let nested: unknown = 'x';
    for (let i = 0; i < 200; i++) nested = { a: nested };
    await expectError(
      await rest(JSON.stringify({ toolName: 'lookup_order', parameters: { orderId: nested } })),
      400,
      'NESTING_TOO_DEEP',
    );
  });

  it('wrong body shape → 400 INVALID_REQUEST naming the field', async () => {
    const b = await expectError(await rest(JSON.stringify({ toolName: 42 })), 400, 'INVALID_REQUEST');
    expect(b.error.message).toContain('toolName');
    await expectError(await rest(JSON.stringify({ toolName: 'x', extra: 1 })), 400, 'INVALID_REQUEST');
  });

  it('unknown tool → 404 TOOL_UNKNOWN, audited as TOOL_DENIED', async () => {
    const b = await expectError(
      await rest(JSON.stringify({ toolName: 'drop_database' })),
      404,
      'TOOL_UNKNOWN',
    );
    const denied = await t.gw.audit.read({ traceId: b.error.traceId, limit: 5 });
    expect(denied.map((e) => e.event)).toEqual(['TOOL_DENIED']);
  });

  it('denied tool → 403 TOOL_DENIED with the rule', async () => {
    const b = await expectError(
      await rest(
        // Valid arguments: they are checked before authorization (policy judges validated arguments).
        JSON.stringify({
          toolName: 'delete_account',
          parameters: { customerId: 'CUS-10001', confirm: true },
        }),
      ),
      403,
      'TOOL_DENIED',
    );
    expect(b.error.rule).toBe('agent.deniedTools:delete_account');
  });

  it('caller-supplied trace ids are kept end to end', async () => {
    const res = await rest(
      JSON.stringify({
        toolName: 'lookup_order',
        parameters: { orderId: 'ORD-4F8K2P1Z' },
        traceId: 'trace-e2e-0001',
      }),
    );
    expect(res.status).toBe(200);
    const entries = await t.gw.audit.read({ traceId: 'trace-e2e-0001', limit: 5 });
    // lookup_order returns customer notes: the session is tainted on the way (SESSION_TAINTED, same trace).
    expect(entries.map((e) => [e.event, e.result])).toEqual([
      ['TOOL_CALL', 'pending'],
      ['SESSION_TAINTED', 'success'],
      ['TOOL_CALL', 'success'],
    ]);
  });

  describe('tokens', () => {
    const claims = () => ({
      sub: 'demo-support',
      client_id: 'demo-support',
      sid: 'sess_forged',
      scope: 'tool:bulk_message:execute tool:lookup_order:execute',
    });

    it('no token → 401 UNAUTHENTICATED with a challenge', async () => {
      const res = await rest(JSON.stringify({ toolName: 'lookup_order' }), {}, null);
      expect(res.headers.get('www-authenticate')).toContain('resource_metadata=');
      await expectError(res, 401, 'UNAUTHENTICATED');
    });

    it('alg none → 401 TOKEN_INVALID, audited as REQUEST_REJECTED', async () => {
      const none = `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${Buffer.from(
        JSON.stringify({ ...claims(), iss: `${t.gw.url}/oauth`, aud: t.gw.url, exp: 4102444800 }),
      ).toString('base64url')}.`;
      const b = await expectError(
        await rest(JSON.stringify({ toolName: 'lookup_order' }), {}, none),
        401,
        'TOKEN_INVALID',
      );
      const entries = await t.gw.audit.read({ traceId: b.error.traceId, limit: 5 });
      expect(entries.map((e) => e.event)).toEqual(['REQUEST_REJECTED']);
    });

    it('a token signed by an unknown key → 401 TOKEN_INVALID', async () => {
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const forged = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'attacker' })
        .setIssuer(`${t.gw.url}/oauth`)
        .setAudience(t.gw.url)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      await expectError(
        await rest(JSON.stringify({ toolName: 'lookup_order' }), {}, forged),
        401,
        'TOKEN_INVALID',
      );
    });

    it('a real token re-signed with a forged key id → 401 TOKEN_INVALID', async () => {
      const [h, p] = token.split('.');
      const header = JSON.parse(Buffer.from(h!, 'base64url').toString()) as Record<string, unknown>;
      const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
      payload.scope = `${payload.scope as string} tool:bulk_message:execute`;
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      void (await exportJWK(publicKey));
      const resigned = await new SignJWT(payload)
        .setProtectedHeader({ ...header, alg: 'EdDSA' } as never)
        .sign(privateKey);
      await expectError(
        await rest(JSON.stringify({ toolName: 'bulk_message' }), {}, resigned),
        401,
        'TOKEN_INVALID',
      );
      const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${token.split('.')[2]}`;
      await expectError(
        await rest(JSON.stringify({ toolName: 'bulk_message' }), {}, tampered),
        401,
        'TOKEN_INVALID',
      );
    });

    it('a token for another audience → 401 TOKEN_INVALID', async () => {
      // Signed by Warden's own key, but for a different resource: must not be accepted here.
      const key = await t.gw.keys.signingKey();
      const { importJWK } = await import('jose');
      const priv = await importJWK(key.privateJwk as never, key.alg);
      const other = await new SignJWT(claims())
        .setProtectedHeader({ alg: key.alg, typ: 'at+jwt', kid: key.kid })
        .setIssuer(`${t.gw.url}/oauth`)
        .setAudience('https://other-resource.example')
        .setIssuedAt(Math.floor(t.clock.now() / 1000))
        .setExpirationTime(Math.floor(t.clock.now() / 1000) + 300)
        .sign(priv);
      await expectError(
        await rest(JSON.stringify({ toolName: 'lookup_order' }), {}, other),
        401,
        'TOKEN_INVALID',
      );
    });

    it("a disabled agent's token → 401 AGENT_DISABLED; re-enabled it works again", async () => {
      const tok = await t.operatorToken('analyst-1');
      await t.gw.agents.disable('analyst-1', 'test');
      await expectError(
        await rest(
          JSON.stringify({ toolName: 'lookup_order', parameters: { orderId: 'ORD-4F8K2P1Z' } }),
          {},
          tok,
        ),
        401,
        'AGENT_DISABLED',
      );
      await t.gw.agents.enable('analyst-1');
      const ok = await rest(
        JSON.stringify({ toolName: 'lookup_order', parameters: { orderId: 'ORD-4F8K2P1Z' } }),
        {},
        tok,
      );
      expect(ok.status).toBe(200);
    });

    it('the per-session call limit → 429 CALL_LIMIT_EXCEEDED', async () => {
      const tok = await t.operatorToken('analyst-1'); // maxToolCalls: 3
      const call = () =>
        rest(JSON.stringify({ toolName: 'lookup_order', parameters: { orderId: 'ORD-4F8K2P1Z' } }), {}, tok);
      for (let i = 0; i < 3; i++) expect((await call()).status).toBe(200);
      await expectError(await call(), 429, 'CALL_LIMIT_EXCEEDED');
    });

    it('maxConcurrentSessions: a third live session of analyst-1 is refused', async () => {
      // The two tests above each opened one session (the limit is 2).
      await expect(t.gw.tokens.issue('analyst-1')).rejects.toMatchObject({ code: 'SESSION_LIMIT_EXCEEDED' });
    });
  });

  it('the gateway is still healthy and the chain intact after all of it', async () => {
    expect((await fetch(`${t.gw.url}/healthz`)).status).toBe(200);
    const r = await verifyChain(t.gw.store);
    expect(r.ok).toBe(true);
  });
});
