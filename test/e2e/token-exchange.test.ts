/**
 * Delegation through RFC 8693 token exchange (issue #6): an agent presents a
 * user's token from a trusted external identity provider (a real JWKS served
 * on loopback) and gets a Warden session acting for that user — `sub` the
 * user, `act.sub` the agent — which policies, approvals and the audit log see.
 * Every way to get it wrong is refused.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildClientAssertion } from '../../src/identity/index.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ORDER = 'ORD-4F8K2P1Z';
type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

describe('token exchange: an agent acting for a user from an external identity provider', () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  let idp: Server;
  let issuer: string;
  let idpKey: Key;
  let otherKey: Key;
  let jwksHits = 0;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    idpKey = pair.privateKey;
    otherKey = (await generateKeyPair('ES256')).privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' };
    idp = createServer((req, res) => {
      if (req.url !== '/jwks') return void res.writeHead(404).end();
      jwksHits++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
    t = await startTestGateway(target, (config) => {
      config.identityProviders = [
        {
          name: 'corp',
          issuer,
          jwksUri: `${issuer}/jwks`,
          userClaim: 'sub',
          // analyst-1 may act for corp's users without a may_act claim; demo-support needs one.
          actors: ['analyst-1'],
          algorithms: ['ES256'],
          jwksCacheMaxAgeMs: 600_000,
        },
      ];
      config.operators = [
        { id: 'corp:alice', roles: ['approver'] },
        { id: 'bob', roles: ['approver'] },
      ];
      config.approvals.mode = 'pending';
    });
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
    await new Promise((r) => idp?.close(r));
  });

  /** A user's token from the identity provider. */
  const userToken = (
    claims: JWTPayload = {},
    opts: { key?: Key; iss?: string; aud?: string; exp?: number } = {},
  ) =>
    new SignJWT({ sub: 'alice', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
      .setIssuer(opts.iss ?? issuer)
      .setAudience(opts.aud ?? t.gw.url)
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? Math.floor(Date.now() / 1000) + 600)
      .sign(opts.key ?? idpKey);

  /** The token endpoint, authenticated as `agentId` with its private_key_jwt. */
  async function exchange(agentId: string, params: Record<string, string>) {
    const endpoint = `${t.gw.url}/oauth/token`;
    const body = new URLSearchParams({
      grant_type: EXCHANGE,
      client_id: agentId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await buildClientAssertion({
        agentId,
        privateJwk: t.keys[agentId]!,
        audience: endpoint,
      }),
      subject_token_type: JWT_TYPE,
      ...params,
    });
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  }

  it('advertises the grant in the authorization-server metadata', async () => {
    const meta = (await (await fetch(`${t.gw.url}/.well-known/oauth-authorization-server`)).json()) as {
      grant_types_supported: string[];
    };
    expect(meta.grant_types_supported).toContain(EXCHANGE);
  });

  it('a user token naming the agent in may_act becomes a session acting for that user: sub user, act agent', async () => {
    const r = await exchange('demo-support', {
      subject_token: await userToken({ may_act: { sub: 'demo-support' } }),
      scope: 'tool:lookup_order:execute tool:issue_refund:execute',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.headers.get('cache-control')).toContain('no-store');
    expect(r.body).toMatchObject({
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      scope: 'tool:issue_refund:execute tool:lookup_order:execute',
    });
    const token = r.body.access_token as string;
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      sub: 'corp:alice',
      act: { sub: 'demo-support' },
      client_id: 'demo-support',
      aud: t.gw.url,
    });
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(900);

    // The session works on the MCP face, and the audit log says who the call was for.
    const client = await t.mcp(token);
    const result = (await client.callTool({
      name: 'lookup_order',
      arguments: { orderId: ORDER },
    })) as CallToolResult;
    expect(result.isError, JSON.stringify(result)).toBeFalsy();
    const [attempt] = (await t.gw.audit.read({ event: 'TOOL_CALL', limit: 10_000 })).filter(
      (e) => e.sessionId === claims.sid,
    );
    expect(attempt).toMatchObject({
      agentId: 'demo-support',
      triggerUserId: 'corp:alice',
      triggerSource: 'user',
    });
    const [created] = (await t.gw.audit.read({ event: 'SESSION_CREATED', limit: 10_000 })).filter(
      (e) => e.sessionId === claims.sid,
    );
    expect(created?.data).toMatchObject({ issuedVia: 'token_exchange', actingFor: 'corp:alice' });

    // Separation of duties holds for the delegating user: corp:alice may not approve her agent's refund.
    const held = (await client.callTool({
      name: 'issue_refund',
      arguments: { orderId: ORDER, amountCents: 500, reason: 'delegated refund' },
    })) as CallToolResult;
    const pending = (held._meta as Record<string, { code: string; approvalId: string }>)['warden/error'];
    expect(pending?.code).toBe('APPROVAL_PENDING');
    const asAlice = (await t.gw.operatorTokens.issue('corp:alice', 60_000)).token;
    const refused = await fetch(`${t.gw.url}/admin/v1/approvals/${pending?.approvalId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${asAlice}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect([refused.status, ((await refused.json()) as { error: { code: string } }).error.code]).toEqual([
      403,
      'SELF_APPROVAL_FORBIDDEN',
    ]);
    await client.close();
  });

  it('an agent listed as an actor for the provider needs no may_act claim', async () => {
    const r = await exchange('analyst-1', { subject_token: await userToken({ sub: 'carol' }) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(decodeJwt(r.body.access_token as string)).toMatchObject({
      sub: 'corp:carol',
      act: { sub: 'analyst-1' },
    });
  });

  it('a session never outlives the user token it was exchanged for', async () => {
    const exp = Math.floor(Date.now() / 1000) + 120;
    const r = await exchange('analyst-1', { subject_token: await userToken({ sub: 'dave' }, { exp }) });
    expect(r.status).toBe(200);
    expect(decodeJwt(r.body.access_token as string).exp).toBeLessThanOrEqual(exp);
  });

  it('refuses every way to get it wrong, without issuing a token', async () => {
    const good = await userToken({ may_act: { sub: 'demo-support' } });
    const cases: Array<[string, Promise<{ status: number; body: Record<string, unknown> }>, string]> = [
      [
        'no may_act and not an actor',
        exchange('demo-support', { subject_token: await userToken() }),
        'invalid_grant',
      ],
      [
        'may_act naming another agent',
        exchange('demo-support', { subject_token: await userToken({ may_act: { sub: 'analyst-1' } }) }),
        'invalid_grant',
      ],
      [
        'signed by an unknown key',
        exchange('analyst-1', { subject_token: await userToken({}, { key: otherKey }) }),
        'invalid_grant',
      ],
      [
        'from an untrusted issuer',
        exchange('analyst-1', { subject_token: await userToken({}, { iss: 'https://evil.example' }) }),
        'invalid_grant',
      ],
      [
        'for another audience',
        exchange('analyst-1', { subject_token: await userToken({}, { aud: 'https://other.example' }) }),
        'invalid_grant',
      ],
      [
        'expired',
        exchange('analyst-1', {
          subject_token: await userToken({}, { exp: Math.floor(Date.now() / 1000) - 600 }),
        }),
        'invalid_grant',
      ],
      ['not a JWT', exchange('analyst-1', { subject_token: 'not-a-token' }), 'invalid_grant'],
      ['missing subject_token', exchange('analyst-1', {}), 'invalid_request'],
      [
        'an unsupported subject_token_type',
        exchange('demo-support', {
          subject_token: good,
          subject_token_type: 'urn:ietf:params:oauth:token-type:saml2',
        }),
        'invalid_request',
      ],
      [
        'an actor_token',
        exchange('demo-support', { subject_token: good, actor_token: good, actor_token_type: JWT_TYPE }),
        'invalid_request',
      ],
      [
        'a token for another resource',
        exchange('demo-support', { subject_token: good, resource: 'https://other.example/' }),
        'invalid_target',
      ],
      [
        'a scope the agent may not hold',
        exchange('demo-support', { subject_token: good, scope: 'tool:bulk_message:execute' }),
        'invalid_scope',
      ],
    ];
    for (const [why, pending, error] of cases) {
      const r = await pending;
      expect([r.status >= 400, r.body.error], `${why}: ${JSON.stringify(r.body)}`).toEqual([true, error]);
      expect(r.body.access_token, why).toBeUndefined();
    }
  });

  it("operators sign in to the admin API with their own identity-provider token (admin audience), never with an agent's", async () => {
    const whoami = (token: string) =>
      fetch(`${t.gw.url}/admin/v1/whoami`, { headers: { authorization: `Bearer ${token}` } }).then(
        async (r) => ({
          status: r.status,
          body: (await r.json()) as { operator?: { id: string }; error?: { code: string } },
        }),
      );
    const admin = await whoami(await userToken({}, { aud: `${t.gw.url}/admin` }));
    expect([admin.status, admin.body.operator?.id]).toEqual([200, 'corp:alice']);
    // The token-exchange audience is not the admin audience: a user token for agents is not an operator login.
    const forAgents = await whoami(await userToken({ may_act: { sub: 'demo-support' } }));
    expect([forAgents.status, forAgents.body.error?.code]).toEqual([401, 'OPERATOR_UNAUTHENTICATED']);
    // A provider user who is not an operator.
    const carol = await whoami(await userToken({ sub: 'carol' }, { aud: `${t.gw.url}/admin` }));
    expect([carol.status, carol.body.error?.code]).toEqual([401, 'OPERATOR_UNAUTHENTICATED']);
    // Signed by a key the provider never published.
    const forged = await whoami(await userToken({}, { aud: `${t.gw.url}/admin`, key: otherKey }));
    expect([forged.status, forged.body.error?.code]).toEqual([401, 'OPERATOR_UNAUTHENTICATED']);
    // An agent's session acting for alice is still an agent: refused by name.
    const exchanged = await exchange('demo-support', {
      subject_token: await userToken({ may_act: { sub: 'demo-support' } }),
    });
    const agentAsAlice = await whoami(exchanged.body.access_token as string);
    expect([agentAsAlice.status, agentAsAlice.body.error?.code]).toEqual([403, 'AGENT_TOKEN_REFUSED']);
  });

  it('fetched the provider keys once and reused them', () => {
    expect(jwksHits).toBeGreaterThanOrEqual(1);
    // Unknown-key cases may refetch (rotation, within the cooldown); nothing else fetches per exchange.
    expect(jwksHits).toBeLessThanOrEqual(3);
  });
});
