/**
 * OIDC login against a real identity provider: oidc-provider on a loopback
 * port plays the enterprise IdP (authorization code, PKCE required, ES256 ID
 * tokens). Its login + consent interaction is completed by a tiny handler in
 * front of it, so a "browser" here is fetch following redirects with a cookie jar.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { IdentityProviderConfig, SecretRef } from '../config/index.js';
import { isWardenError, type WardenError } from '../errors.js';
import { ManualClock } from '../util/clock.js';
import { type LoginStart, OidcLoginSource, type PendingLogin } from './oidc-login.js';

const CALLBACK = 'http://127.0.0.1:8787/oauth/login/callback';
const SECRETS: Record<string, string> = {
  WARDEN_SECRET: 'warden-client-secret-0123456789abcdef',
  OTHER_SECRET: 'other-client-secret-0123456789abcdef',
};
const KID = 'idp-key-1';

/** The parts of oidc-provider the test IdP uses beyond Warden's own declaration of it. */
interface TestIdp {
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<{ params: Record<string, unknown> }>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    opts: { mergeWithLastSubmission: boolean },
  ): Promise<void>;
  Grant: new (init: {
    accountId: string;
    clientId: string;
  }) => { addOIDCScope(scope: string): void; save(): Promise<string> };
}
type ProviderConfig = ConstructorParameters<typeof Provider>[1];

/** What the interaction handler does: log `account` in, or refuse (the user pressed "cancel"). */
const idp = { account: 'alice', deny: false };
let server: Server;
let issuer: string;

beforeAll(async () => {
  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const client = (id: string, auth: string, secret?: string) => ({
    client_id: id,
    ...(secret === undefined ? {} : { client_secret: secret }),
    token_endpoint_auth_method: auth,
    redirect_uris: [CALLBACK],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: 'ES256',
  });
  const config = {
    clients: [
      client('warden', 'client_secret_post', SECRETS.WARDEN_SECRET),
      client('other', 'client_secret_post', SECRETS.OTHER_SECRET),
      client('warden-public', 'none'),
    ],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: KID, alg: 'ES256', use: 'sig' }] },
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // Put the profile claims in the ID token (not only at userinfo), as many enterprise IdPs do.
    conformIdTokenClaims: false,
    cookies: { keys: ['test-idp-cookie-key-0123456789'] },
    ttl: {
      Interaction: 600,
      Grant: 600,
      Session: 600,
      AccessToken: 600,
      IdToken: 600,
      AuthorizationCode: 60,
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, i: { uid: string }) => `/interaction/${i.uid}` },
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub, email: `${sub}@example.com`, email_verified: true, name: 'Alice Example' }),
    }),
  };
  const provider = new Provider(issuer, config as unknown as ProviderConfig) as unknown as TestIdp;
  const handle = provider.callback();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/interaction/')) return void handle(req, res);
    void (async () => {
      const { params } = await provider.interactionDetails(req, res);
      if (idp.deny) {
        const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
        return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      }
      const grant = new provider.Grant({ accountId: idp.account, clientId: String(params.client_id) });
      grant.addOIDCScope(String(params.scope));
      const grantId = await grant.save();
      const result = { login: { accountId: idp.account }, consent: { grantId } };
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    })().catch((e: unknown) => {
      res.statusCode = 500;
      res.end(String(e));
    });
  });
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  idp.account = 'alice';
  idp.deny = false;
});

/** Every request Warden makes, and an optional rewrite of the IdP's token responses. */
function recordingFetch() {
  const calls: string[] = [];
  const tokenResponses: Array<Record<string, unknown>> = [];
  const state: { tamper?: (body: Record<string, unknown>) => Promise<Record<string, unknown>> } = {};
  const f: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    calls.push(new URL(url).pathname);
    const res = await fetch(input, init);
    if (!url.endsWith('/token')) return res;
    const body = (await res.json()) as Record<string, unknown>;
    tokenResponses.push(body);
    const out = state.tamper ? await state.tamper(body) : body;
    return new Response(JSON.stringify(out), {
      status: res.status,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    });
  };
  return { fetch: f, calls, tokenResponses, state };
}

function corp(login: Partial<NonNullable<IdentityProviderConfig['login']>> = {}): IdentityProviderConfig {
  return {
    name: 'corp',
    issuer,
    jwksUri: `${issuer}/jwks`,
    userClaim: 'sub',
    actors: [],
    algorithms: ['RS256', 'ES256', 'EdDSA'],
    jwksCacheMaxAgeMs: 600_000,
    login: {
      clientId: 'warden',
      clientSecret: { env: 'WARDEN_SECRET' },
      scopes: ['openid', 'email', 'profile'],
      label: 'Corp SSO',
      ...login,
    },
  };
}

function source(opts: { provider?: IdentityProviderConfig; clock?: ManualClock } = {}) {
  const rec = recordingFetch();
  const login = new OidcLoginSource({
    providers: [opts.provider ?? corp()],
    resolveSecret: async (ref: SecretRef) => {
      const v = 'env' in ref ? SECRETS[ref.env] : undefined;
      if (v === undefined) throw new Error('no such secret');
      return v;
    },
    clock: opts.clock ?? new ManualClock(Date.now()),
    fetch: rec.fetch,
  });
  return { login, ...rec };
}

/** The browser: follow the IdP's redirects (carrying its cookies) until it sends us to the callback. */
async function browse(start: LoginStart | string): Promise<URL> {
  const jar = new Map<string, string>();
  let url = typeof start === 'string' ? start : start.redirectTo;
  for (let hop = 0; hop < 8; hop++) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0] ?? '';
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
    }
    const body = await res.text();
    const location = res.headers.get('location');
    if (location === null) throw new Error(`the IdP answered ${res.status} at ${url}: ${body.slice(0, 300)}`);
    const next = new URL(location, url);
    if (next.href.startsWith(CALLBACK)) return next;
    url = next.href;
  }
  throw new Error('too many redirects');
}

/** The LOGIN_FAILED a promise rejects with. */
async function refusal(p: Promise<unknown>): Promise<WardenError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!isWardenError(e, 'LOGIN_FAILED')) throw new Error(`expected LOGIN_FAILED, got ${String(e)}`);
  expect(e.status).toBe(401);
  return e;
}

describe('OidcLoginSource', () => {
  it('lists the providers offering login, with their labels', () => {
    const plain = { ...corp(), name: 'partner' };
    delete plain.login;
    const { login } = source();
    expect(login.list()).toEqual([{ name: 'corp', label: 'Corp SSO' }]);
    const both = new OidcLoginSource({ providers: [plain, corp()], resolveSecret: async () => '' });
    expect(both.list()).toEqual([{ name: 'corp', label: 'Corp SSO' }]);
  });

  it('logs a user in: code + PKCE S256 + state + nonce, the user named corp:<sub>', async () => {
    const { login, calls } = source();
    const started = await login.start('corp', CALLBACK);
    const auth = new URL(started.redirectTo);
    expect(`${auth.origin}${auth.pathname}`).toBe(`${issuer}/auth`);
    expect(Object.fromEntries(auth.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: 'warden',
      redirect_uri: CALLBACK,
      scope: 'openid email profile',
      state: started.state.state,
      nonce: started.state.nonce,
      code_challenge_method: 'S256',
    });
    expect(auth.searchParams.get('code_challenge')).not.toBe(started.state.codeVerifier);
    expect(started.redirectTo).not.toContain(started.state.codeVerifier);

    const user = await login.finish(await browse(started), started.state);
    expect(user).toEqual({
      userId: 'corp:alice',
      provider: 'corp',
      displayName: 'Alice Example',
      email: 'alice@example.com',
    });
    expect(calls.filter((p) => p === '/token')).toHaveLength(1);
  });

  it('logs a user in as a public client (PKCE alone)', async () => {
    const { login, calls } = source({
      provider: corp({ clientId: 'warden-public', clientSecret: undefined }),
    });
    const started = await login.start('corp', CALLBACK);
    await expect(login.finish(await browse(started), started.state)).resolves.toMatchObject({
      userId: 'corp:alice',
    });
    expect(calls).toContain('/token');
  });

  it('fetches the discovery document once for two logins', async () => {
    const { login, calls } = source();
    for (const account of ['alice', 'bob']) {
      idp.account = account;
      const started = await login.start('corp', CALLBACK);
      const user = await login.finish(await browse(started), started.state);
      expect(user.userId).toBe(`corp:${account}`);
    }
    expect(calls.filter((p) => p === '/.well-known/openid-configuration')).toHaveLength(1);
  });

  it('skips discovery when both endpoints are configured', async () => {
    const { login, calls } = source({
      provider: corp({ authorizationEndpoint: `${issuer}/auth`, tokenEndpoint: `${issuer}/token` }),
    });
    const started = await login.start('corp', CALLBACK);
    await expect(login.finish(await browse(started), started.state)).resolves.toMatchObject({
      userId: 'corp:alice',
    });
    expect(calls).not.toContain('/.well-known/openid-configuration');
  });

  it('refuses a callback whose state is not the pending login’s (CSRF), before redeeming the code', async () => {
    const { login, calls } = source();
    const a = await login.start('corp', CALLBACK);
    const b = await login.start('corp', CALLBACK);
    const e = await refusal(login.finish(await browse(a), b.state));
    expect(e.detail).toMatch(/state/);
    expect(calls).not.toContain('/token');
  });

  it('refuses an ID token whose nonce is not the pending login’s', async () => {
    const { login } = source();
    const a = await login.start('corp', CALLBACK);
    const b = await login.start('corp', CALLBACK);
    const e = await refusal(login.finish(await browse(a), { ...a.state, nonce: b.state.nonce }));
    expect(e.detail).toMatch(/nonce/);
  });

  it('refuses an ID token issued to another client, even with the right nonce', async () => {
    const warden = source();
    const started = await warden.login.start('corp', CALLBACK);
    // The same user logs in to another client of the IdP, whose ID token carries Warden's nonce.
    const other = source({ provider: corp({ clientId: 'other', clientSecret: { env: 'OTHER_SECRET' } }) });
    const o = await other.login.start('corp', CALLBACK);
    const authUrl = new URL(o.redirectTo);
    authUrl.searchParams.set('nonce', started.state.nonce);
    await other.login.finish(await browse(authUrl.href), { ...o.state, nonce: started.state.nonce });
    const foreign = other.tokenResponses[0]?.id_token;
    expect(decodeJwt(String(foreign))).toMatchObject({ aud: 'other', nonce: started.state.nonce });

    warden.state.tamper = async (body) => ({ ...body, id_token: foreign });
    const e = await refusal(warden.login.finish(await browse(started), started.state));
    expect(e.detail).toMatch(/aud/);
  });

  it('refuses an ID token not signed by the IdP’s keys (signature checked, not only claims)', async () => {
    const { login, state } = source();
    const forger = await generateKeyPair('ES256');
    state.tamper = async (body) => ({
      ...body,
      id_token: await new SignJWT(decodeJwt(String(body.id_token)))
        .setProtectedHeader({ alg: 'ES256', kid: KID })
        .sign(forger.privateKey),
    });
    const started = await login.start('corp', CALLBACK);
    const e = await refusal(login.finish(await browse(started), started.state));
    expect(e.detail).toMatch(/ID token did not verify: ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
  });

  it('refuses a login the user declined at the IdP (error=access_denied)', async () => {
    idp.deny = true;
    const { login, calls } = source();
    const started = await login.start('corp', CALLBACK);
    const callback = await browse(started);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    const e = await refusal(login.finish(callback, started.state));
    expect(e.message).toBe('The identity provider did not log you in');
    expect(e.detail).toMatch(/access_denied/);
    expect(calls).not.toContain('/token');
  });

  it('refuses a pending login older than 10 minutes', async () => {
    const clock = new ManualClock(Date.now());
    const { login, calls } = source({ clock });
    const started = await login.start('corp', CALLBACK);
    const callback = await browse(started);
    clock.advance(10 * 60_000 + 1);
    const e = await refusal(login.finish(callback, started.state));
    expect(e.message).toMatch(/too long/);
    expect(calls).not.toContain('/token');
  });

  it.each([
    ['a claim the ID token lacks', 'employee_id'],
    ['a claim that is not a user id (spaces)', 'name'],
  ])('refuses a login whose user claim is %s', async (_why, userClaim) => {
    const { login } = source({ provider: { ...corp(), userClaim } });
    const started = await login.start('corp', CALLBACK);
    const e = await refusal(login.finish(await browse(started), started.state));
    expect(e.message).toBe('The identity provider did not name a user');
  });

  it('refuses an unknown provider and a malformed pending login', async () => {
    const { login } = source();
    await refusal(login.start('partner', CALLBACK));
    const bogus = { provider: 'corp', state: 's' } as unknown as PendingLogin;
    await refusal(login.finish(new URL(`${CALLBACK}?code=x&state=s`), bogus));
  });
});
