import { createHash } from 'node:crypto';
import { base64url, decodeJwt, decodeProtectedHeader, importJWK, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import type { TokenConfig } from '../config/types.js';
import { isWardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { AgentRegistry } from './agents.js';
import { generateAgentKeyPair } from './client-assertion.js';
import { KeyManager } from './keys.js';
import { SessionStore } from './sessions.js';
import { TokenService, type TokenServiceDeps } from './tokens.js';
import type { Agent, AgentInput, Session } from './types.js';

const MIN = 60_000;
const ISSUER = 'https://warden.test/oauth';
const AUDIENCE = 'https://warden.test';
const TOKENS: TokenConfig = {
  ttlMs: 15 * MIN,
  alg: 'EdDSA',
  rotateAfterMs: 24 * 60 * MIN,
  maxToolCalls: 50,
  clockSkewMs: 30_000,
};

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return isWardenError(e) ? e.code : `non-warden: ${String(e)}`;
  }
}

describeEachDialect('TokenService', (target) => {
  let store: Store;
  const clock = new ManualClock();
  let agents: AgentRegistry;
  let sessions: SessionStore;
  let keys: KeyManager;
  let tokens: TokenService;
  const created: Array<{ session: Session; agent: Agent }> = [];
  let n = 0;

  beforeAll(async () => {
    store = await target.open();
    agents = new AgentRegistry(store, clock);
    sessions = new SessionStore(store, clock);
    keys = new KeyManager(store, { ...TOKENS, tokenTtlMs: TOKENS.ttlMs, clock });
    await keys.init();
    tokens = new TokenService({
      store,
      agents,
      sessions,
      keys,
      config: { issuer: ISSUER, audience: AUDIENCE, tokens: TOKENS },
      clock,
      onSessionCreated: async (session, agent) => {
        created.push({ session, agent });
      },
    });
  });
  afterAll(async () => {
    // Clean up even when beforeAll failed: a half-migrated schema left behind trips later PostgreSQL runs.
    await store?.close().catch(() => {});
    await target.cleanup();
  });

  /** A second service over the same store, keys and clock, with these config changes. */
  function serviceWith(config: Partial<TokenServiceDeps['config']>): TokenService {
    return new TokenService({
      store,
      agents,
      sessions,
      keys,
      config: { issuer: ISSUER, audience: AUDIENCE, tokens: TOKENS, ...config },
      clock,
    });
  }

  async function agent(over: Partial<AgentInput> = {}): Promise<Agent> {
    n += 1;
    return agents.register(
      {
        id: `agent-${n}`,
        type: 'customer-support',
        version: '2.4.1',
        environment: 'test',
        owner: 'support-team',
        expiresAt: clock.now() + 24 * 60 * MIN,
        maxConcurrentSessions: 5,
        allowedTools: ['lookup_order', 'check_shipping_status', 'issue_refund'],
        deniedTools: ['issue_refund', 'delete_account'],
        publicJwk: null,
        constraints: { maxToolCalls: 20, allowedCidrs: ['10.0.0.0/8'] },
        ...over,
      },
      'api',
    );
  }

  /** Signs arbitrary claims with Warden's real active key (to isolate one check at a time). */
  async function signWithRealKey(claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
    const { kid, alg } = await keys.signingKey();
    return new SignJWT(claims)
      .setProtectedHeader({ alg, kid, typ: 'at+jwt', ...header })
      .sign(await keys.privateKey(kid));
  }

  async function validClaims(): Promise<JWTPayload> {
    const issued = await tokens.issue((await agent()).id);
    return decodeJwt(issued.token);
  }

  it('issues a token that verifies, with the documented header and claims', async () => {
    const a = await agent();
    const issued = await tokens.issue(a.id, { clientIp: '10.0.0.7' });
    expect(issued).toMatchObject({
      agentId: a.id,
      tokenType: 'Bearer',
      scopes: ['tool:check_shipping_status:execute', 'tool:lookup_order:execute'],
    });
    const header = decodeProtectedHeader(issued.token);
    expect(header).toEqual({ alg: 'EdDSA', kid: (await keys.signingKey()).kid, typ: 'at+jwt' });
    const nowSec = Math.floor(clock.now() / 1000);
    const claims = decodeJwt(issued.token);
    expect(claims).toEqual({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: a.id,
      client_id: a.id,
      sid: issued.sessionId,
      scope: 'tool:check_shipping_status:execute tool:lookup_order:execute',
      jti: expect.any(String),
      iat: nowSec,
      exp: nowSec + 15 * 60,
      cnst: { max_tool_calls: 20, allowed_cidrs: ['10.0.0.0/8'] },
      agent_type: 'customer-support',
    });
    expect(issued.expiresAt).toBe((nowSec + 15 * 60) * 1000);

    const v = await tokens.verify(issued.token);
    expect(v.agent.id).toBe(a.id);
    expect(v.session).toMatchObject({
      id: issued.sessionId,
      issuedVia: 'operator',
      clientIp: '10.0.0.7',
      maxToolCalls: 20,
    });
    expect(v.claims).toEqual(claims);
    expect(created.at(-1)?.session.id).toBe(issued.sessionId);
  });

  it('refuses lifetimes outside 1 s .. configured ttl, and addresses outside the agent CIDRs', async () => {
    const a = await agent();
    expect(await codeOf(tokens.issue(a.id, { ttlMs: 16 * MIN }))).toBe('INVALID_REQUEST');
    expect(await codeOf(tokens.issue(a.id, { ttlMs: 10 }))).toBe('INVALID_REQUEST');
    expect(await codeOf(tokens.issue(a.id, { clientIp: '192.168.1.1' }))).toBe('CLIENT_IP_DENIED');
    const short = await tokens.issue(a.id, { ttlMs: 5 * MIN });
    const c = decodeJwt(short.token);
    expect((c.exp ?? 0) - (c.iat ?? 0)).toBe(300);
  });

  it('never issues a token that outlives the agent identity', async () => {
    const a = await agent({ expiresAt: clock.now() + 2 * MIN });
    const issued = await tokens.issue(a.id);
    expect(issued.expiresAt).toBeLessThanOrEqual(a.expiresAt);
  });

  it('refuses unknown, disabled and expired agents at issuance', async () => {
    expect(await codeOf(tokens.issue('ghost'))).toBe('AGENT_UNKNOWN');
    const d = await agent();
    await agents.disable(d.id, 'test');
    expect(await codeOf(tokens.issue(d.id))).toBe('AGENT_DISABLED');
    const e = await agent({ expiresAt: clock.now() - 1 });
    expect(await codeOf(tokens.issue(e.id))).toBe('AGENT_EXPIRED');
  });

  it('expired token → TOKEN_EXPIRED carrying sessionId and agentId', async () => {
    const a = await agent();
    const issued = await tokens.issue(a.id);
    clock.advance(15 * MIN);
    // Inside the skew window the JWT still passes, but the session row is over.
    const e1 = await tokens.verify(issued.token).catch((e: unknown) => e);
    expect(e1).toMatchObject({ code: 'TOKEN_EXPIRED', data: { sessionId: issued.sessionId, agentId: a.id } });
    clock.advance(TOKENS.clockSkewMs);
    const e2 = await tokens.verify(issued.token).catch((e: unknown) => e);
    expect(e2).toMatchObject({
      code: 'TOKEN_EXPIRED',
      message: 'The session token has expired',
      data: { sessionId: issued.sessionId, agentId: a.id },
    });
  });

  it('wrong audience, wrong issuer → TOKEN_INVALID', async () => {
    const claims = await validClaims();
    expect(
      await codeOf(tokens.verify(await signWithRealKey({ ...claims, aud: 'https://other.example' }))),
    ).toBe('TOKEN_INVALID');
    expect(
      await codeOf(tokens.verify(await signWithRealKey({ ...claims, iss: 'https://evil.example/oauth' }))),
    ).toBe('TOKEN_INVALID');
    // Sanity: the same claims signed the same way do verify.
    expect(await codeOf(tokens.verify(await signWithRealKey(claims)))).toBe('resolved');
  });

  it('alg none, HS256 keyed with the public key, wrong typ → TOKEN_INVALID', async () => {
    const claims = await validClaims();
    const { kid } = await keys.signingKey();
    const enc = (o: object) => base64url.encode(JSON.stringify(o));
    const none = `${enc({ alg: 'none', typ: 'at+jwt', kid })}.${enc(claims)}.`;
    expect(await codeOf(tokens.verify(none))).toBe('TOKEN_INVALID');

    const publicJwk = (await keys.publicJwks()).keys.find((k) => k.kid === kid)!;
    for (const secret of [JSON.stringify(publicJwk), publicJwk.x!]) {
      const hs = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' })
        .sign(new TextEncoder().encode(secret));
      expect(await codeOf(tokens.verify(hs))).toBe('TOKEN_INVALID');
    }
    expect(await codeOf(tokens.verify(await signWithRealKey(claims, { typ: 'JWT' })))).toBe('TOKEN_INVALID');
  });

  it('re-signed by an unknown key (unknown kid, or a published kid with another key) → TOKEN_INVALID', async () => {
    const claims = await validClaims();
    const attacker = await generateAgentKeyPair('EdDSA');
    const key = await importJWK(attacker.privateJwk, 'EdDSA');
    const { kid } = await keys.signingKey();
    for (const header of [{ kid: attacker.publicJwk.kid! }, { kid }, {}]) {
      const forged = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', ...header })
        .sign(key);
      expect(await codeOf(tokens.verify(forged))).toBe('TOKEN_INVALID');
    }
  });

  it('tampered payload → TOKEN_INVALID', async () => {
    const issued = await tokens.issue((await agent()).id);
    const [h, p, s] = issued.token.split('.');
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(p!))) as JWTPayload;
    const tampered = base64url.encode(
      JSON.stringify({ ...claims, scope: `${claims.scope} tool:delete_account:execute` }),
    );
    expect(await codeOf(tokens.verify(`${h}.${tampered}.${s}`))).toBe('TOKEN_INVALID');
  });

  it('lifetime over 15 minutes (or the configured ttl), missing claims, future iat → TOKEN_INVALID', async () => {
    const claims = await validClaims();
    const iat = claims.iat!;
    const err = await tokens
      .verify(await signWithRealKey({ ...claims, exp: iat + 16 * 60 }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TOKEN_INVALID', message: 'Invalid session token' });
    expect((err as { detail: string }).detail).toMatch(/lifetime/);

    const strict = serviceWith({ tokens: { ...TOKENS, ttlMs: 5 * MIN } });
    expect(await codeOf(strict.verify(await signWithRealKey({ ...claims, exp: iat + 10 * 60 })))).toBe(
      'TOKEN_INVALID',
    );

    const { sid: _sid, ...noSid } = claims;
    expect(await codeOf(tokens.verify(await signWithRealKey(noSid)))).toBe('TOKEN_INVALID');
    const { cnst: _c, ...noCnst } = claims;
    expect(await codeOf(tokens.verify(await signWithRealKey(noCnst)))).toBe('TOKEN_INVALID');
    expect(
      await codeOf(tokens.verify(await signWithRealKey({ ...claims, iat: iat + 120, exp: iat + 600 }))),
    ).toBe('TOKEN_INVALID');
    expect(await codeOf(tokens.verify('not.a.jwt'))).toBe('TOKEN_INVALID');
    expect(await codeOf(tokens.verify(''))).toBe('TOKEN_INVALID');
  });

  it('a token of an agent allowed hundreds of tools is accepted up to maxTokenLength, refused past it', async () => {
    const many = Array.from({ length: 330 }, (_, i) => `toolkit_${i}_do_something`);
    const a = await agent({ allowedTools: many });
    const { token } = await tokens.issue(a.id);
    expect(token.length).toBeGreaterThan(8192); // one scope per tool
    const err = await tokens.verify(token).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TOKEN_INVALID' });
    expect((err as { detail: string }).detail).toMatch(/oversized/);
    const roomy = serviceWith({ maxTokenLength: 64 * 1024 });
    const ok = await roomy.verify(token);
    expect(ok.claims.scope.split(' ')).toContain('tool:toolkit_329_do_something:execute');
    expect(await codeOf(serviceWith({ maxTokenLength: token.length - 1 }).verify(token))).toBe(
      'TOKEN_INVALID',
    );
  });

  it('unknown session, or a session of another agent → TOKEN_INVALID', async () => {
    const claims = await validClaims();
    expect(await codeOf(tokens.verify(await signWithRealKey({ ...claims, sid: 'ses_forged' })))).toBe(
      'TOKEN_INVALID',
    );
    const other = await agent();
    expect(
      await codeOf(tokens.verify(await signWithRealKey({ ...claims, sub: other.id, client_id: other.id }))),
    ).toBe('TOKEN_INVALID');
  });

  it('a session acting for a user gets a delegated token (sub user, act agent), and only that shape verifies', async () => {
    const a = await agent();
    const issued = await tokens.issue(a.id, { userId: 'corp:alice' });
    const claims = decodeJwt(issued.token);
    expect(claims).toMatchObject({ sub: 'corp:alice', act: { sub: a.id }, client_id: a.id });
    const ok = await tokens.verify(issued.token);
    expect([ok.agent.id, ok.session.userId]).toEqual([a.id, 'corp:alice']);

    const forge = (c: JWTPayload) => signWithRealKey(c).then((t) => codeOf(tokens.verify(t)));
    // Another user on the same session, the agent's own shape on a user's session, a foreign actor.
    expect(await forge({ ...claims, sub: 'corp:mallory' })).toBe('TOKEN_INVALID');
    const { act: _act, ...own } = claims;
    expect(await forge({ ...own, sub: a.id })).toBe('TOKEN_INVALID');
    const other = await agent();
    expect(await forge({ ...claims, act: { sub: other.id }, client_id: other.id })).toBe('TOKEN_INVALID');
    expect(await forge({ ...claims, act: { sub: a.id }, client_id: other.id })).toBe('TOKEN_INVALID');
    expect(await forge({ ...claims, act: 'not-an-object' })).toBe('TOKEN_INVALID');
    // And a user shape on a session that acts for nobody.
    const plain = decodeJwt((await tokens.issue(a.id)).token);
    expect(await forge({ ...plain, sub: 'corp:alice', act: { sub: a.id } })).toBe('TOKEN_INVALID');
  });

  it('revoked session → SESSION_REVOKED; disabled agent → AGENT_DISABLED; expired agent → AGENT_EXPIRED', async () => {
    const a = await agent();
    const t1 = await tokens.issue(a.id);
    await sessions.revoke(t1.sessionId, 'kill switch');
    expect(await codeOf(tokens.verify(t1.token))).toBe('SESSION_REVOKED');

    const t2 = await tokens.issue(a.id);
    await agents.disable(a.id, 'compromised');
    expect(await codeOf(tokens.verify(t2.token))).toBe('AGENT_DISABLED');
    await agents.enable(a.id);
    expect(await codeOf(tokens.verify(t2.token))).toBe('resolved');

    // The identity's expiry moved earlier (e.g. config change) while a token was live.
    await store.db
      .updateTable('agents')
      .set({ expires_at: clock.now() - 1 })
      .where('id', '=', a.id)
      .execute();
    expect(await codeOf(tokens.verify(t2.token))).toBe('AGENT_EXPIRED');
  });

  it('maxConcurrentSessions: N succeed, N+1 is refused, a revoked or expired session frees a slot', async () => {
    const a = await agent({ maxConcurrentSessions: 3 });
    const issued = [];
    for (let i = 0; i < 3; i++) issued.push(await tokens.issue(a.id, { ttlMs: 5 * MIN }));
    const over = await tokens.issue(a.id).catch((e: unknown) => e);
    expect(over).toMatchObject({ code: 'SESSION_LIMIT_EXCEEDED', status: 429 });
    await sessions.revoke(issued[0]!.sessionId, 'done');
    await tokens.issue(a.id, { ttlMs: 10 * MIN });
    expect(await codeOf(tokens.issue(a.id))).toBe('SESSION_LIMIT_EXCEEDED');
    clock.advance(5 * MIN);
    expect(await codeOf(tokens.issue(a.id))).toBe('resolved');
  });

  it('maxConcurrentSessions holds under concurrent issuance', async () => {
    const a = await agent({ maxConcurrentSessions: 4 });
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => tokens.issue(a.id)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter(
      (r) => r.status === 'rejected' && isWardenError(r.reason, 'SESSION_LIMIT_EXCEEDED'),
    );
    expect(ok).toHaveLength(4);
    expect(refused).toHaveLength(16);
    expect(await sessions.countActive(a.id, clock.now())).toBe(4);
  });

  it('a failing onSessionCreated hook fails closed: no token, session revoked', async () => {
    const a = await agent();
    const failing = new TokenService({
      store,
      agents,
      sessions,
      keys,
      config: { issuer: ISSUER, audience: AUDIENCE, tokens: TOKENS },
      clock,
      onSessionCreated: async () => {
        throw new Error('audit down');
      },
    });
    await expect(failing.issue(a.id)).rejects.toThrow('audit down');
    expect(await sessions.countActive(a.id, clock.now())).toBe(0);
  });

  it('resource scopes: granted on request when a pattern covers them; wildcard-free patterns by default', async () => {
    const a = await agent({ scopes: ['orders:read:user:*', 'tickets:create:org:org_xyz789'] });
    const all = await tokens.issue(a.id);
    expect(all.scopes).toEqual([
      'tool:check_shipping_status:execute',
      'tool:lookup_order:execute',
      'tickets:create:org:org_xyz789',
    ]);
    const own = await tokens.issue(a.id, {
      scopes: ['tool:lookup_order:execute', 'orders:read:user:usr_abc123'],
    });
    expect(own.scopes).toEqual(['tool:lookup_order:execute', 'orders:read:user:usr_abc123']);
    const v = await tokens.verify(own.token);
    expect(v.claims.scope).toBe('tool:lookup_order:execute orders:read:user:usr_abc123');
    expect(v.session.scopes).toEqual(own.scopes);
  });

  it('a requested scope outside the agent is refused outright, and no session is opened', async () => {
    const a = await agent({ scopes: ['orders:read:user:*'] });
    for (const scope of [
      'orders:read:user:*',
      'orders:read',
      'orders:write:user:usr_abc',
      'tool:issue_refund:execute',
      'tool:delete_account:execute',
    ]) {
      const e = await tokens.issue(a.id, { scopes: ['tool:lookup_order:execute', scope] }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isWardenError(e, 'INVALID_REQUEST'), scope).toBe(true);
      expect((e as { rule?: string }).rule).toBe('token.scope-not-allowed');
      expect((e as { data?: unknown }).data).toEqual({ refusedScopes: [scope] });
    }
    expect(await sessions.countActive(a.id, clock.now())).toBe(0);
  });

  it('a verified token is re-checked in full once its key is unpublished, its time is up, or its session revoked', async () => {
    const a = await agent();
    const issued = await tokens.issue(a.id);
    const { kid } = decodeProtectedHeader(issued.token);
    expect(await codeOf(tokens.verify(issued.token))).toBe('resolved');
    expect(await codeOf(tokens.verify(issued.token))).toBe('resolved'); // the remembered verification
    // Remembered under the token's SHA-256, not the token (nor the header it was cut from).
    const remembered = (tokens as unknown as { verified: Map<string, unknown> }).verified;
    expect(remembered.has(createHash('sha256').update(issued.token).digest('base64url'))).toBe(true);
    expect(remembered.has(issued.token)).toBe(false);
    // A one-character change is another token: it gets no benefit of the first one's check.
    const flip = issued.token.at(-2) === 'A' ? 'B' : 'A';
    const tampered = `${issued.token.slice(0, -2)}${flip}${issued.token.slice(-1)}`;
    expect(tampered).not.toBe(issued.token);
    expect(await codeOf(tokens.verify(tampered))).toBe('TOKEN_INVALID');
    // Revocation is read from the store on every call, remembered signature or not.
    const second = await tokens.issue(a.id);
    expect(await codeOf(tokens.verify(second.token))).toBe('resolved');
    await sessions.revoke(second.sessionId, 'test');
    expect(await codeOf(tokens.verify(second.token))).toBe('SESSION_REVOKED');
    // An operator pulls the signing key (say it leaked): the remembered token is refused.
    await store.db.deleteFrom('signing_keys').where('kid', '=', String(kid)).execute();
    clock.advance(10 * MIN); // past the key snapshot's refresh interval, inside the token's life
    expect(await codeOf(tokens.verify(issued.token))).toBe('TOKEN_INVALID');
  });

  it('a token stays valid across key rotation until it expires', async () => {
    const a = await agent();
    const before = await tokens.issue(a.id);
    const oldKid = decodeProtectedHeader(before.token).kid;
    await keys.rotate();
    const after = await tokens.issue(a.id);
    expect(decodeProtectedHeader(after.token).kid).not.toBe(oldKid);
    expect(await codeOf(tokens.verify(before.token))).toBe('resolved');
    expect(await codeOf(tokens.verify(after.token))).toBe('resolved');
    clock.advance(15 * MIN + TOKENS.clockSkewMs);
    expect(await codeOf(tokens.verify(before.token))).toBe('TOKEN_EXPIRED');
  });
});
