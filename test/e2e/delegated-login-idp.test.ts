/**
 * Delegated login through an external identity provider (issue #6): the user
 * clicks the provider's button on Warden's login page, logs in there (a real
 * oidc-provider on loopback plays the enterprise IdP), comes back through
 * `/oauth/login/callback`, consents, and the client's token acts for
 * `corp:<sub>`. A callback from another browser, or replayed, is refused.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type Hop, pkce, registerClient, TestBrowser, tokenRequest } from '../helpers/oauth-browser.js';

const REDIRECT = 'http://127.0.0.1:9/callback';
const SECRET = 'corp-client-secret-0123456789abcdef';

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

describe('delegated login through an external identity provider', () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  let idpServer: Server;
  let issuer: string;

  beforeAll(async () => {
    idpServer = createServer();
    await new Promise<void>((r) => idpServer.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;
    process.env.WARDEN_TEST_CORP_SECRET = SECRET;
    t = await startTestGateway(target, (config) => {
      const demo = config.agents.find((a) => a.id === 'demo-support')!;
      config.agents.push({
        ...demo,
        id: 'corp-assistant',
        type: 'assistant',
        allowedTools: ['lookup_order'],
        deniedTools: [],
        maxConcurrentSessions: 10,
        delegation: { clients: ['dynamic'], users: ['corp:*'] },
      });
      config.identityProviders = [
        {
          name: 'corp',
          issuer,
          jwksUri: `${issuer}/jwks`,
          userClaim: 'sub',
          actors: [],
          algorithms: ['ES256'],
          jwksCacheMaxAgeMs: 600_000,
          login: {
            clientId: 'warden',
            clientSecret: { env: 'WARDEN_TEST_CORP_SECRET' },
            scopes: ['openid'],
            label: 'Corp SSO',
          },
        },
      ];
    });
    // The IdP learns Warden's callback only now that the gateway has its port.
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: 'warden',
          client_secret: SECRET,
          token_endpoint_auth_method: 'client_secret_post',
          redirect_uris: [`${t.gw.url}/oauth/login/callback`],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          id_token_signed_response_alg: 'ES256',
        },
      ],
      jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'corp-1', alg: 'ES256', use: 'sig' }] },
      pkce: { required: () => true },
      cookies: { keys: ['corp-idp-cookie-key-0123456789'] },
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx: unknown, i: { uid: string }) => `/interaction/${i.uid}` },
      findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    } as unknown as ConstructorParameters<typeof Provider>[1]) as unknown as TestIdp;
    const handle = provider.callback();
    idpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!req.url?.startsWith('/interaction/')) return void handle(req, res);
      void (async () => {
        // The enterprise IdP's own login, done: alice is logged in and consents.
        const { params } = await provider.interactionDetails(req, res);
        const grant = new provider.Grant({ accountId: 'alice', clientId: String(params.client_id) });
        grant.addOIDCScope(String(params.scope));
        const result = { login: { accountId: 'alice' }, consent: { grantId: await grant.save() } };
        await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      })().catch((e: unknown) => res.writeHead(500).end(String(e)));
    });
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((r) => idpServer?.close(r));
    await target.cleanup();
    delete process.env.WARDEN_TEST_CORP_SECRET;
  });

  /** Follows every redirect (Warden and the IdP share the cookie jar) until a page or the client. */
  async function travel(browser: TestBrowser, url: string): Promise<Hop> {
    let hop = await browser.request(url);
    for (let i = 0; i < 15 && hop.status >= 300 && hop.status < 400; i++) {
      const next = new URL(hop.headers.get('location')!, hop.url).href;
      if (next.startsWith(REDIRECT)) return { ...hop, url: next };
      hop = await browser.request(next);
    }
    return hop;
  }

  it('logs corp:alice in at the IdP, consents, and the token acts for her', async () => {
    const client = (await registerClient(t.gw.url, REDIRECT)).body;
    const browser = new TestBrowser(t.gw.url);
    const { verifier, challenge } = pkce();
    const authorize = `${t.gw.url}/oauth/authorize?${new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    })}`;
    const login = await browser.follow(authorize);
    expect(login.body).toContain('Corp SSO');
    const button = /<form method="get" action="([^"]+\/idp\/corp)"/.exec(login.body)?.[1];
    expect(button).toBeDefined();
    const consent = await travel(browser, new URL(button!, t.gw.url).href);
    expect(consent.status, consent.body.slice(0, 300)).toBe(200);
    expect(consent.body).toContain('corp:alice');
    expect(consent.body).toContain('corp-assistant');
    const done = await browser.follow(
      new URL(TestBrowser.action(consent.body, /\/consent$/), t.gw.url).href,
      {
        method: 'POST',
        form: { csrf: TestBrowser.csrf(consent.body), agent: 'corp-assistant', decision: 'allow' },
      },
    );
    const code = new URL(done.url).searchParams.get('code');
    expect(code).toBeTruthy();
    const res = await tokenRequest(t.gw.url, {
      grant_type: 'authorization_code',
      code: code!,
      redirect_uri: REDIRECT,
      client_id: client.client_id,
      code_verifier: verifier,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const claims = decodeJwt(res.body.access_token!);
    expect(claims.sub).toBe('corp:alice');
    expect(claims.act).toEqual({ sub: 'corp-assistant' });
    const logins = await t.gw.store.db
      .selectFrom('audit_log')
      .select(['actor_id', 'data'])
      .where('event', '=', 'USER_LOGIN')
      .execute();
    expect(logins.some((r) => r.actor_id === 'corp:alice' && String(r.data).includes('oidc'))).toBe(true);
  });

  it('refuses a callback from another browser, and a replayed one', async () => {
    const client = (await registerClient(t.gw.url, REDIRECT)).body;
    const browser = new TestBrowser(t.gw.url);
    const { challenge } = pkce();
    const login = await browser.follow(
      `${t.gw.url}/oauth/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: client.client_id,
        redirect_uri: REDIRECT,
        code_challenge: challenge,
        code_challenge_method: 'S256',
      })}`,
    );
    const button = /<form method="get" action="([^"]+\/idp\/corp)"/.exec(login.body)![1]!;
    // Walk to the IdP and back, but stop at Warden's callback.
    let hop = await browser.request(new URL(button, t.gw.url).href);
    for (let i = 0; i < 10 && !hop.headers.get('location')?.includes('/oauth/login/callback'); i++) {
      hop = await browser.request(new URL(hop.headers.get('location')!, hop.url).href);
    }
    const callback = new URL(hop.headers.get('location')!, hop.url).href;
    // Another browser (no login-binding cookie) presenting the callback: refused, and it burns the state.
    const other = new TestBrowser(t.gw.url);
    const stolen = await other.request(callback);
    expect(stolen.status).toBe(400);
    expect(stolen.body).toContain('another browser');
    // The real browser now: the state was single-use.
    const late = await browser.request(callback);
    expect(late.status).toBe(400);
    expect(late.body).toContain('expired or was already used');
  });
});
