/**
 * Credential brokering with OAuth client credentials: a real token endpoint
 * and a real Streamable-HTTP upstream (the support desk) on loopback that only
 * accepts tokens that endpoint issued. The gateway obtains, caches, renews and
 * re-fetches the token; the agent's side never carries it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type SupportDeskHttp, startSupportDeskHttp } from '../../examples/support-desk/http.js';
import type { UpstreamOAuthConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { ManualClock } from '../util/clock.js';
import { httpConfig } from './fixtures/helpers.js';
import { OAuthCredential } from './oauth-credentials.js';
import { UpstreamPool } from './pool.js';

interface TokenRequest {
  authorization: string | undefined;
  body: URLSearchParams;
}

/** RFC 6749 §2.3.1: Basic over the form-urlencoded client id and secret. */
function basicMatches(header: string | undefined, id: string, secret: string): boolean {
  if (!header?.startsWith('Basic ')) return false;
  const decoded = Buffer.from(header.slice(6), 'base64').toString();
  const [u, p] = decoded.split(':');
  const form = (x: string | undefined) => decodeURIComponent((x ?? '').replaceAll('+', ' '));
  return form(u) === id && form(p) === secret;
}

/** A client-credentials token endpoint: client `warden-gw` with the current secret; tokens tok-1, tok-2, … */
function tokenEndpoint() {
  const state = {
    secret: 'first-secret',
    expiresIn: 3600 as number | undefined,
    issued: new Set<string>(),
    requests: [] as TokenRequest[],
    fail: false,
  };
  let n = 0;
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => {
      raw += c.toString();
    });
    req.on('end', () => {
      const body = new URLSearchParams(raw);
      state.requests.push({ authorization: req.headers.authorization, body });
      res.setHeader('content-type', 'application/json');
      res.setHeader('cache-control', 'no-store');
      if (state.fail || !basicMatches(req.headers.authorization, 'warden-gw', state.secret)) {
        res.writeHead(401).end(JSON.stringify({ error: 'invalid_client', error_description: 'bad client' }));
        return;
      }
      if (body.get('grant_type') !== 'client_credentials') {
        res.writeHead(400).end(JSON.stringify({ error: 'unsupported_grant_type' }));
        return;
      }
      n += 1;
      const token = `tok-${n}`;
      state.issued.add(token);
      res.writeHead(200).end(
        JSON.stringify({
          access_token: token,
          token_type: 'Bearer',
          ...(state.expiresIn === undefined ? {} : { expires_in: state.expiresIn }),
        }),
      );
    });
  });
  return { server, state };
}

describe('upstream OAuth client credentials', () => {
  const { server, state } = tokenEndpoint();
  let desk: SupportDeskHttp;
  let tokenUrl: string;
  let pool: UpstreamPool;
  let secrets: Record<string, string>;
  const seen: string[] = [];

  const oauthConfig = (): UpstreamOAuthConfig => ({
    tokenUrl,
    clientId: 'warden-gw',
    clientSecret: { env: 'DESK_CLIENT_SECRET' },
    scope: 'desk:tools',
    resource: desk.url,
  });

  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
    desk = await startSupportDeskHttp({
      port: 0,
      host: '127.0.0.1',
      requiredBearer: (token) => {
        seen.push(token);
        return state.issued.has(token);
      },
    });
    secrets = { DESK_CLIENT_SECRET: 'first-secret' };
    pool = new UpstreamPool(
      [httpConfig('desk', desk.url, { credentials: { headers: {}, oauth: oauthConfig() } })],
      {
        resolveSecret: async (ref) => {
          const name = (ref as { env: string }).env;
          const v = secrets[name];
          if (v === undefined) throw new Error(`no ${name}`);
          return v;
        },
      },
    );
    await pool.start();
  });
  afterAll(async () => {
    await pool.close();
    await desk.close();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    state.fail = false;
  });

  it('connects with a token the gateway obtained: Basic client auth, scope and resource sent', async () => {
    expect(pool.status()).toEqual([{ name: 'desk', transport: 'http', state: 'up', tools: 6 }]);
    const [first] = state.requests;
    expect(first?.body.get('grant_type')).toBe('client_credentials');
    expect(first?.body.get('scope')).toBe('desk:tools');
    expect(first?.body.get('resource')).toBe(desk.url);
    expect(first?.authorization).toMatch(/^Basic /);
    const r = await pool.callTool('lookup_order', { orderId: 'ORD-4F8K2P1Z' });
    expect(r.isError).toBeFalsy();
    expect(seen.every((t) => t === 'tok-1')).toBe(true);
  });

  it('one token serves many concurrent calls (cached, fetched once)', async () => {
    const before = state.requests.length;
    const results = await Promise.all(
      Array.from({ length: 30 }, () => pool.callTool('check_shipping_status', { orderId: 'ORD-9TQ3LM7A' })),
    );
    expect(results.every((r) => !r.isError)).toBe(true);
    expect(state.requests.length).toBe(before);
  });

  it('a token the upstream stops accepting is fetched anew, once, and the call still succeeds', async () => {
    state.issued.clear(); // the provider revoked every token it issued
    const before = state.requests.length;
    const r = await pool.callTool('lookup_order', { orderId: 'ORD-4F8K2P1Z' });
    expect(r.isError, JSON.stringify(r)).toBeFalsy();
    expect(state.requests.length).toBe(before + 1);
    // The retried request carried the new token, the only one the provider now honours.
    expect(state.issued.size).toBe(1);
    expect(seen.at(-1)).toBe([...state.issued][0]);
  });

  it('a rotated client secret is used at the next fetch, without a restart', async () => {
    state.secret = 'second-secret';
    secrets.DESK_CLIENT_SECRET = 'second-secret';
    state.issued.clear();
    const r = await pool.callTool('lookup_order', { orderId: 'ORD-4F8K2P1Z' });
    expect(r.isError, JSON.stringify(r)).toBeFalsy();
    expect(basicMatches(state.requests.at(-1)?.authorization, 'warden-gw', 'second-secret')).toBe(true);
    expect(basicMatches(state.requests.at(-1)?.authorization, 'warden-gw', 'first-secret')).toBe(false);
  });

  it('fails closed when no token can be had; the detail names the OAuth error, never the secret', async () => {
    const clock = new ManualClock(Date.now());
    const cred = new OAuthCredential('desk', oauthConfig(), async () => 'second-secret', { clock });
    state.fail = true;
    const e = await cred.token().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WardenError);
    expect((e as WardenError).code).toBe('UPSTREAM_UNAVAILABLE');
    expect((e as WardenError).detail).toMatch(/invalid_client/);
    expect((e as WardenError).detail).not.toMatch(/second-secret/);
    expect((e as WardenError).message).not.toMatch(/secret|invalid_client/);
  });

  it('renews before expiry: 30 s early, or at half-life for short tokens; no expires_in = 5 minutes', async () => {
    const clock = new ManualClock(Date.now());
    const cred = new OAuthCredential('desk', oauthConfig(), async () => 'second-secret', { clock });
    state.expiresIn = 120;
    const a = await cred.token();
    clock.advance(89_000);
    expect(await cred.token()).toBe(a);
    clock.advance(2_000); // 91 s: inside the 30 s margin
    const b = await cred.token();
    expect(b).not.toBe(a);
    state.expiresIn = 10;
    clock.advance(200_000);
    const c = await cred.token();
    clock.advance(4_000);
    expect(await cred.token()).toBe(c);
    clock.advance(2_000); // past half of 10 s
    expect(await cred.token()).not.toBe(c);
    state.expiresIn = undefined;
    clock.advance(60_000);
    const d = await cred.token();
    clock.advance(269_000);
    expect(await cred.token()).toBe(d);
    state.expiresIn = 3600;
  });

  it('refuses a plain-HTTP token endpoint that is not loopback (the client secret would travel in clear)', async () => {
    const cred = new OAuthCredential(
      'desk',
      { ...oauthConfig(), tokenUrl: 'http://auth.example.com/token' },
      async () => 'x',
      { fetch: async () => new Response('{}') },
    );
    const e = (await cred.token().catch((x: unknown) => x)) as WardenError;
    expect(e.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(e.detail).toMatch(/HTTPS|https|insecure/i);
  });
});
