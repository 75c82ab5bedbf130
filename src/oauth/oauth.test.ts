import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, type JWK } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import type { TokenConfig } from '../config/types.js';
import {
  type Agent,
  type AgentInput,
  AgentRegistry,
  buildClientAssertion,
  generateAgentKeyPair,
  KeyManager,
  requestSessionToken,
  type Session,
  SessionStore,
  TokenRequestError,
  TokenService,
} from '../identity/index.js';
import type { Store } from '../store/index.js';
import { type AuthorizationServer, createAuthorizationServer, protectedResourceMetadata } from './index.js';

const MIN = 60_000;
const TOKENS: TokenConfig = {
  ttlMs: 15 * MIN,
  alg: 'EdDSA',
  rotateAfterMs: 24 * 60 * MIN,
  maxToolCalls: 50,
  clockSkewMs: 30_000,
};

describeEachDialect('authorization server over HTTP', (target) => {
  let store: Store;
  let http: Server;
  let as: AuthorizationServer;
  let agents: AgentRegistry;
  let sessions: SessionStore;
  let keys: KeyManager;
  let tokens: TokenService;
  let base: string;
  let issuer: string;
  let tokenEndpoint: string;
  const created: Array<{ session: Session; agent: Agent }> = [];
  const serverErrors: unknown[] = [];
  let hookFails = false;
  let n = 0;

  beforeAll(async () => {
    store = await target.open();
    http = createServer((req, res) => {
      if (req.url?.startsWith('/oauth')) as.handle(req, res);
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    issuer = `${base}/oauth`;
    tokenEndpoint = `${issuer}/token`;
    agents = new AgentRegistry(store);
    sessions = new SessionStore(store);
    keys = new KeyManager(store, { ...TOKENS, tokenTtlMs: TOKENS.ttlMs });
    await keys.init();
    tokens = new TokenService({
      store,
      agents,
      sessions,
      keys,
      config: { issuer, audience: base, tokens: TOKENS },
      onSessionCreated: async (session, agent) => {
        if (hookFails) throw new Error('audit log unavailable');
        created.push({ session, agent });
      },
    });
    as = await createAuthorizationServer({
      store,
      agents,
      sessions,
      keys,
      tokens,
      config: { issuer, audience: base, publicUrl: base, tokens: TOKENS },
      onServerError: (e) => serverErrors.push(e),
    });
  });
  afterAll(async () => {
    await as?.close();
    await new Promise((resolve) => http?.close(resolve));
    // Clean up even when beforeAll failed: a half-migrated schema left behind trips later PostgreSQL runs.
    await store?.close().catch(() => {});
    await target.cleanup();
    expect(serverErrors).toEqual([]);
  });

  async function agentWithKey(
    over: Partial<AgentInput> = {},
    alg: 'EdDSA' | 'ES256' = 'EdDSA',
  ): Promise<{ agent: Agent; privateJwk: JWK }> {
    n += 1;
    const pair = await generateAgentKeyPair(alg);
    const agent = await agents.register(
      {
        id: `oauth-agent-${n}`,
        type: 'customer-support',
        version: '2.4.1',
        environment: 'test',
        owner: 'support-team',
        expiresAt: Date.now() + 24 * 60 * MIN,
        maxConcurrentSessions: 5,
        allowedTools: ['lookup_order', 'check_shipping_status', 'create_support_ticket', 'issue_refund'],
        deniedTools: ['bulk_message', 'delete_account'],
        publicJwk: pair.publicJwk,
        constraints: { maxToolCalls: 25 },
        ...over,
      },
      'api',
    );
    return { agent, privateJwk: pair.privateJwk };
  }

  async function postToken(
    form: Record<string, string>,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  async function assertionForm(agentId: string, privateJwk: JWK, extra: Record<string, string> = {}) {
    return {
      grant_type: 'client_credentials',
      client_id: agentId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await buildClientAssertion({ agentId, privateJwk, audience: tokenEndpoint }),
      ...extra,
    };
  }

  async function errorOf(
    p: Promise<unknown>,
  ): Promise<{ status: number; error: string; description?: string }> {
    try {
      await p;
    } catch (e) {
      if (e instanceof TokenRequestError) {
        return {
          status: e.status,
          error: e.error,
          ...(e.errorDescription ? { description: e.errorDescription } : {}),
        };
      }
      throw e;
    }
    throw new Error('expected the token request to fail');
  }

  it('serves sane RFC 8414 metadata, and a JWKS equal to the KeyManager public keys', async () => {
    const doc = await as.metadata();
    expect(doc).toEqual({
      issuer,
      token_endpoint: tokenEndpoint,
      jwks_uri: `${issuer}/jwks`,
      grant_types_supported: ['client_credentials'],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'Ed25519', 'ES256'],
    });
    const served = await fetch(`${issuer}/.well-known/oauth-authorization-server`);
    expect(served.status).toBe(200);
    expect(await served.json()).toEqual(doc);

    const jwks = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: JWK[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual((await keys.publicJwks()).keys.map((k) => k.kid));
    for (const k of jwks.keys) expect(k).not.toHaveProperty('d');

    expect(
      protectedResourceMetadata({
        issuer,
        audience: base,
        scopesSupported: ['tool:b:execute', 'tool:a:execute'],
      }),
    ).toEqual({
      resource: base,
      authorization_servers: [issuer],
      bearer_methods_supported: ['header'],
      scopes_supported: ['tool:a:execute', 'tool:b:execute'],
      resource_name: 'Warden',
    });
  });

  it('client_credentials + private_key_jwt → a token TokenService.verify accepts, in the operator format, no refresh_token', async () => {
    const { agent, privateJwk } = await agentWithKey();
    const res = await postToken(await assertionForm(agent.id, privateJwk));
    expect(res.status).toBe(200);
    expect(res.body).not.toHaveProperty('refresh_token');
    expect(res.body).not.toHaveProperty('id_token');
    expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    const token = res.body.access_token as string;

    const { kid, alg } = await keys.signingKey();
    expect(decodeProtectedHeader(token)).toEqual({ alg, kid, typ: 'at+jwt' });
    const verified = await tokens.verify(token);
    expect(verified.agent.id).toBe(agent.id);
    expect(verified.session).toMatchObject({
      agentId: agent.id,
      issuedVia: 'client_credentials',
      clientIp: '127.0.0.1',
      maxToolCalls: 25,
    });
    const scopes =
      'tool:check_shipping_status:execute tool:create_support_ticket:execute tool:issue_refund:execute tool:lookup_order:execute';
    expect(res.body.scope).toBe(scopes);
    // Exactly the claims the operator path would put in a token for this session.
    const claims = decodeJwt(token);
    expect(claims).toEqual(tokens.claimsFor(verified.agent, verified.session, claims.jti!));
    expect(claims).toMatchObject({
      iss: issuer,
      aud: base,
      sub: agent.id,
      client_id: agent.id,
      scope: scopes,
    });
    expect(claims.exp! - claims.iat!).toBe(900);

    const operator = decodeJwt((await tokens.issue(agent.id)).token);
    expect(Object.keys(operator).sort()).toEqual(Object.keys(claims).sort());
    expect(created.some((c) => c.session.id === verified.session.id)).toBe(true);

    // Persisted through our adapter, not oidc-provider's memory.
    const replay = await store.db
      .selectFrom('oidc_models')
      .select('model')
      .where('model', '=', 'ReplayDetection')
      .execute();
    expect(replay.length).toBeGreaterThan(0);
  });

  it('the agent-side helper works, for Ed25519 and P-256 agent keys, with a requested subset of scopes', async () => {
    for (const alg of ['EdDSA', 'ES256'] as const) {
      const { agent, privateJwk } = await agentWithKey({}, alg);
      const r = await requestSessionToken({
        tokenEndpoint,
        agentId: agent.id,
        privateJwk,
        scope: ['tool:lookup_order:execute'],
        resource: `${base}/`,
      });
      expect(r).toMatchObject({ token_type: 'Bearer', scope: 'tool:lookup_order:execute' });
      const v = await tokens.verify(r.access_token);
      expect(v.claims.scope).toBe('tool:lookup_order:execute');
      expect(v.session.scopes).toEqual(['tool:lookup_order:execute']);
    }
    // The issuer identifier is an accepted assertion audience too.
    const { agent, privateJwk } = await agentWithKey();
    const r = await requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk, audience: issuer });
    expect((await tokens.verify(r.access_token)).agent.id).toBe(agent.id);
  });

  it('a scope the agent does not hold, or another resource → invalid_scope / invalid_target', async () => {
    const { agent, privateJwk } = await agentWithKey();
    const denied = await errorOf(
      requestSessionToken({
        tokenEndpoint,
        agentId: agent.id,
        privateJwk,
        scope: 'tool:delete_account:execute',
      }),
    );
    expect(denied).toMatchObject({ status: 400, error: 'invalid_scope' });
    const openid = await errorOf(
      requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk, scope: 'openid' }),
    );
    expect(openid).toMatchObject({ status: 400, error: 'invalid_scope' });
    const resource = await errorOf(
      requestSessionToken({
        tokenEndpoint,
        agentId: agent.id,
        privateJwk,
        resource: 'https://upstream.example',
      }),
    );
    expect(resource).toMatchObject({ status: 400, error: 'invalid_target' });
  });

  it('resource scopes: a concrete scope one of the agent patterns covers is granted; anything else is invalid_scope', async () => {
    const { agent, privateJwk } = await agentWithKey({
      scopes: ['orders:read:order:*', 'tickets:create:org:org_xyz789'],
    });
    const ask = (scope?: string) =>
      requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk, ...(scope ? { scope } : {}) });
    const own = await ask('tool:lookup_order:execute orders:read:order:ORD-4F8K2P1Z');
    expect(own.scope).toBe('tool:lookup_order:execute orders:read:order:ORD-4F8K2P1Z');
    const v = await tokens.verify(own.access_token);
    expect(v.claims.scope).toBe(own.scope);
    expect(v.session.scopes).toEqual(['tool:lookup_order:execute', 'orders:read:order:ORD-4F8K2P1Z']);
    // No scope asked: every tool scope and the wildcard-free pattern, never a wildcard.
    expect((await ask()).scope.split(' ')).toEqual([
      'tool:check_shipping_status:execute',
      'tool:create_support_ticket:execute',
      'tool:issue_refund:execute',
      'tool:lookup_order:execute',
      'tickets:create:org:org_xyz789',
    ]);
    const sessionsBefore = created.length;
    for (const scope of [
      'orders:read:order:*', // tokens carry concrete scopes only
      'orders:read', // broader than any pattern
      'orders:write:order:ORD-4F8K2P1Z',
      'tickets:create:org:org_other',
      'tool:lookup_order:execute orders:read:order:ORD-4F8K2P1Z:x orders:read:user:usr_abc',
    ]) {
      expect(await errorOf(ask(scope)), scope).toMatchObject({ status: 400, error: 'invalid_scope' });
    }
    expect(created.length).toBe(sessionsBefore);
  });

  it('a replayed client assertion is rejected (invalid_client), also when replayed concurrently', async () => {
    const { agent, privateJwk } = await agentWithKey();
    const form = await assertionForm(agent.id, privateJwk);
    expect((await postToken(form)).status).toBe(200);
    const again = await postToken(form);
    expect(again.status).toBe(401);
    expect(again.body.error).toBe('invalid_client');

    const burst = await assertionForm(agent.id, privateJwk);
    const results = await Promise.all(Array.from({ length: 4 }, () => postToken(burst)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 401 && r.body.error === 'invalid_client')).toHaveLength(3);
  });

  it('unknown, disabled, expired or key-less agents, and a wrong key → invalid_client', async () => {
    const stranger = await generateAgentKeyPair();
    const unknown = await errorOf(
      requestSessionToken({ tokenEndpoint, agentId: 'nobody', privateJwk: stranger.privateJwk }),
    );
    expect(unknown.error).toBe('invalid_client');

    const { agent: disabled, privateJwk: dk } = await agentWithKey();
    await agents.disable(disabled.id, 'compromised');
    expect(
      (await errorOf(requestSessionToken({ tokenEndpoint, agentId: disabled.id, privateJwk: dk }))).error,
    ).toBe('invalid_client');

    const { agent: expired, privateJwk: ek } = await agentWithKey({ expiresAt: Date.now() - 1000 });
    expect(
      (await errorOf(requestSessionToken({ tokenEndpoint, agentId: expired.id, privateJwk: ek }))).error,
    ).toBe('invalid_client');

    const { agent: keyless } = await agentWithKey({ publicJwk: null });
    expect(
      (
        await errorOf(
          requestSessionToken({ tokenEndpoint, agentId: keyless.id, privateJwk: stranger.privateJwk }),
        )
      ).error,
    ).toBe('invalid_client');

    const { agent: victim } = await agentWithKey();
    const wrong = await errorOf(
      requestSessionToken({ tokenEndpoint, agentId: victim.id, privateJwk: stranger.privateJwk }),
    );
    expect(wrong).toMatchObject({
      status: 401,
      error: 'invalid_client',
      description: 'client authentication failed',
    });
  });

  it('refuses other client authentication methods, other grants, and long-lived assertions', async () => {
    const { agent, privateJwk } = await agentWithKey();
    const basic = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${agent.id}:secret`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    expect([400, 401]).toContain(basic.status);
    expect(['invalid_client', 'invalid_request']).toContain(
      ((await basic.json()) as { error: string }).error,
    );

    for (const grant of ['authorization_code', 'refresh_token', 'password']) {
      const r = await postToken(await assertionForm(agent.id, privateJwk, { grant_type: grant }));
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('unsupported_grant_type');
    }

    const { SignJWT, importJWK } = await import('jose');
    const now = Math.floor(Date.now() / 1000);
    const longLived = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA' })
      .setIssuer(agent.id)
      .setSubject(agent.id)
      .setAudience(tokenEndpoint)
      .setJti(crypto.randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(await importJWK(privateJwk, 'EdDSA'));
    const r = await postToken({
      ...(await assertionForm(agent.id, privateJwk)),
      client_assertion: longLived,
    });
    expect(r).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
  });

  it('over the concurrent-session limit → a 400 OAuth error, not a 500', async () => {
    const { agent, privateJwk } = await agentWithKey({ maxConcurrentSessions: 2 });
    await requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk });
    await requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk });
    const over = await errorOf(requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk }));
    expect(over).toEqual({
      status: 400,
      error: 'invalid_request',
      description: 'concurrent session limit reached for this agent',
    });
    expect(await sessions.countActive(agent.id, Date.now())).toBe(2);
  });

  it('a client address outside the agent CIDRs → unauthorized_client', async () => {
    const { agent, privateJwk } = await agentWithKey({ constraints: { allowedCidrs: ['10.0.0.0/8'] } });
    const r = await errorOf(requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk }));
    expect(r).toMatchObject({ status: 400, error: 'unauthorized_client' });
    expect(await sessions.countActive(agent.id, Date.now())).toBe(0);
  });

  it('an agent with no tools gets a token with an empty scope', async () => {
    const { agent, privateJwk } = await agentWithKey({ allowedTools: [], deniedTools: [] });
    const r = await requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk });
    expect(r.scope).toBe('');
    expect((await tokens.verify(r.access_token)).claims.scope).toBe('');
  });

  it('when the session cannot be recorded, no token is issued (server_error, session revoked)', async () => {
    const { agent, privateJwk } = await agentWithKey();
    hookFails = true;
    try {
      const r = await errorOf(requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk }));
      expect(r).toMatchObject({ status: 500, error: 'server_error' });
    } finally {
      hookFails = false;
    }
    expect(serverErrors.splice(0)).toEqual([expect.objectContaining({ message: 'audit log unavailable' })]);
    expect(await sessions.countActive(agent.id, Date.now())).toBe(0);
  });

  it('everything but the token, JWKS and metadata endpoints is 404', async () => {
    for (const [method, path] of [
      ['GET', '/oauth/auth?client_id=x&response_type=code'],
      ['POST', '/oauth/reg'],
      ['POST', '/oauth/token/introspection'],
      ['POST', '/oauth/token/revocation'],
      ['GET', '/oauth/me'],
      ['GET', '/oauth/.well-known/openid-configuration'],
      ['GET', '/oauth/session/end'],
      ['GET', '/oauth/token'],
      ['GET', '/oauthx/token'],
    ] as const) {
      const r = await fetch(`${base}${path}`, { method });
      expect(r.status, `${method} ${path}`).toBe(404);
    }
  });

  it('after a key rotation, new tokens carry the new kid and old ones still verify', async () => {
    const { agent, privateJwk } = await agentWithKey();
    const before = await requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk });
    const oldKid = decodeProtectedHeader(before.access_token).kid;
    await keys.rotate();
    const after = await requestSessionToken({ tokenEndpoint, agentId: agent.id, privateJwk });
    const newKid = decodeProtectedHeader(after.access_token).kid;
    expect(newKid).not.toBe(oldKid);
    expect(newKid).toBe((await keys.signingKey()).kid);
    expect((await tokens.verify(before.access_token)).agent.id).toBe(agent.id);
    expect((await tokens.verify(after.access_token)).agent.id).toBe(agent.id);
    const jwks = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: JWK[] };
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());
  });
});
