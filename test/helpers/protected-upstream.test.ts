/**
 * The protected upstream fixture on its own, without Warden: a client does
 * what Warden will (discovery, authorization code + PKCE + resource indicator,
 * token, refresh) with oauth4webapi and calls the MCP server with the SDK's
 * client, so a failing Warden test can trust its upstream.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ProtectedUpstream, startProtectedUpstream } from './protected-upstream.js';

/** Nothing listens here: the browser stops at the redirect and the test reads the code from it. */
const REDIRECT = 'http://127.0.0.1:9/upstream/callback';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let up: ProtectedUpstream;
let as: oauth.AuthorizationServer;
let client: oauth.Client;

beforeAll(async () => {
  up = await startProtectedUpstream();
  up.allowRedirect(REDIRECT);
  const issuer = new URL(up.issuer);
  as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
  client = { client_id: up.clientId, id_token_signed_response_alg: 'ES256' };
});

afterAll(async () => {
  await up.close();
});

afterEach(() => {
  vi.useRealTimers();
  up.setAccount('alice-upstream');
});

/** The browser: follows the AS's redirects (with its cookies) until it is sent to REDIRECT. */
async function browse(start: string): Promise<URL> {
  const jar = new Map<string, string>();
  let url = start;
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
    if (location === null) throw new Error(`the AS answered ${res.status} at ${url}: ${body.slice(0, 300)}`);
    const next = new URL(location, url);
    if (next.href.startsWith(REDIRECT)) return next;
    url = next.href;
  }
  throw new Error('too many redirects');
}

interface Authorization {
  callback: URL;
  state: string;
  verifier: string;
}

/** Starts an authorization as Warden will (code, PKCE S256, state, resource) and returns where the AS sent the browser. */
async function authorize(scope = 'tools:read tools:call', withResource = true): Promise<Authorization> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(String(as.authorization_endpoint));
  url.search = new URLSearchParams({
    client_id: up.clientId,
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...(withResource ? { resource: up.mcpUrl } : {}),
  }).toString();
  return { callback: await browse(url.href), state, verifier };
}

/** Redeems the code at the token endpoint. */
async function redeem(
  a: Authorization,
  auth = oauth.ClientSecretBasic(up.clientSecret),
  withResource = true,
) {
  const params = oauth.validateAuthResponse(as, client, a.callback, a.state);
  const res = await oauth.authorizationCodeGrantRequest(as, client, auth, params, REDIRECT, a.verifier, {
    ...(withResource ? { additionalParameters: { resource: up.mcpUrl } } : {}),
    ...insecure,
  });
  return oauth.processAuthorizationCodeResponse(as, client, res);
}

async function refresh(refreshToken: string) {
  const res = await oauth.refreshTokenGrantRequest(
    as,
    client,
    oauth.ClientSecretBasic(up.clientSecret),
    refreshToken,
    insecure,
  );
  return oauth.processRefreshTokenResponse(as, client, res);
}

/** The ResponseBodyError's OAuth error code a promise rejects with. */
async function oauthError(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof oauth.ResponseBodyError)) throw new Error(`expected an OAuth error, got ${String(e)}`);
  return e.error;
}

/** whoami over the SDK client with the bearer token. */
async function whoami(token: string): Promise<string> {
  const mcp = new Client({ name: 'fixture-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(up.mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await mcp.connect(transport);
  try {
    const result = await mcp.callTool({ name: 'whoami', arguments: {} });
    const [first] = result.content as Array<{ type: string; text: string }>;
    return String(first?.text);
  } finally {
    await mcp.close();
  }
}

/** A raw MCP initialize with the given Authorization header. */
async function initialize(authorization?: string): Promise<Response> {
  return fetch(up.mcpUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
}

describe('protected upstream fixture', () => {
  it('publishes AS metadata (PKCE S256, refresh grant) and the protected resource metadata', async () => {
    expect(as).toMatchObject({
      issuer: up.issuer,
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
    });
    expect(as.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token']));
    expect(as.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_basic', 'client_secret_post']),
    );
    const oidc = await fetch(`${up.issuer}/.well-known/openid-configuration`);
    expect(oidc.status).toBe(200);
    const prm = await fetch(new URL('/.well-known/oauth-protected-resource/mcp', up.mcpUrl));
    expect(await prm.json()).toMatchObject({ resource: up.mcpUrl, authorization_servers: [up.issuer] });
  });

  it('connects a user: a JWT access token for the MCP URL and a refresh token, without offline_access', async () => {
    const before = up.issued.authorization_code;
    const tokens = await redeem(await authorize());
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(tokens.scope).toBe('tools:read tools:call');
    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({
      iss: up.issuer,
      aud: up.mcpUrl,
      sub: 'alice-upstream',
      client_id: up.clientId,
    });
    expect(up.issued.authorization_code).toBe(before + 1);

    expect(await whoami(tokens.access_token)).toBe('alice-upstream');
    expect(up.calls.at(-1)).toEqual({ sub: 'alice-upstream', tool: 'whoami', jti: claims.jti });
  });

  it('logs in whoever setAccount names, with client_secret_post and no resource parameter too, and echoes', async () => {
    await redeem(await authorize()); // alice's AS session must not leak into bob's login
    up.setAccount('bob-upstream');
    const a = await authorize('tools:call', false);
    const tokens = await redeem(a, oauth.ClientSecretPost(up.clientSecret), false);
    expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: up.mcpUrl, scope: 'tools:call' });
    expect(await whoami(tokens.access_token)).toBe('bob-upstream');

    const mcp = new Client({ name: 'fixture-test', version: '1.0.0' });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL(up.mcpUrl), {
        requestInit: { headers: { Authorization: `Bearer ${tokens.access_token}` } },
      }),
    );
    const listed = await mcp.listTools();
    expect(listed.tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami']);
    const echoed = await mcp.callTool({ name: 'echo', arguments: { text: 'hi' } });
    expect(echoed.content).toEqual([{ type: 'text', text: 'hi' }]);
    await mcp.close();
    expect(up.calls.at(-1)).toMatchObject({ sub: 'bob-upstream', tool: 'echo' });
  });

  it('answers 401 to no token, a malformed one, and a token of the AS for another audience (an ID token)', async () => {
    const none = await initialize();
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer resource_metadata="/);

    const junk = await initialize('Bearer not.a.jwt');
    expect(junk.status).toBe(401);
    expect(junk.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);

    const tokens = await redeem(await authorize('openid offline_access tools:call'));
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const idToken = String(tokens.id_token);
    expect(decodeJwt(idToken)).toMatchObject({ iss: up.issuer, aud: up.clientId, sub: 'alice-upstream' });
    const foreign = await initialize(`Bearer ${idToken}`);
    expect(foreign.status).toBe(401);
    expect(foreign.headers.get('www-authenticate')).toMatch(
      /error="invalid_token", error_description="token audience is not this resource"/,
    );
    expect((await initialize(`Bearer ${tokens.access_token}`)).status).toBe(200);
  });

  it('refuses an expired access token; the refresh grant issues a new one and rotates the refresh token', async () => {
    const tokens = await redeem(await authorize());
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61_000);
    const expired = await initialize(`Bearer ${tokens.access_token}`);
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toMatch(/error_description="token expired"/);

    const before = up.issued.refresh_token;
    const renewed = await refresh(String(tokens.refresh_token));
    expect(up.issued.refresh_token).toBe(before + 1);
    expect(renewed.access_token).not.toBe(tokens.access_token);
    expect(renewed.refresh_token).toEqual(expect.any(String));
    expect(renewed.refresh_token).not.toBe(tokens.refresh_token);
    expect(decodeJwt(renewed.access_token)).toMatchObject({ aud: up.mcpUrl, sub: 'alice-upstream' });
    expect(await whoami(renewed.access_token)).toBe('alice-upstream');

    // A rotated-out refresh token is a replay: refused, and the grant's tokens go with it.
    expect(await oauthError(refresh(String(tokens.refresh_token)))).toBe('invalid_grant');
    expect(await oauthError(refresh(String(renewed.refresh_token)))).toBe('invalid_grant');
  });

  it('revokeAll: every token so far answers 401 and refresh fails; a new authorization works', async () => {
    const tokens = await redeem(await authorize());
    expect(await whoami(tokens.access_token)).toBe('alice-upstream');
    up.revokeAll();
    const revoked = await initialize(`Bearer ${tokens.access_token}`);
    expect(revoked.status).toBe(401);
    expect(revoked.headers.get('www-authenticate')).toMatch(/error_description="token revoked"/);
    expect(await oauthError(refresh(String(tokens.refresh_token)))).toBe('invalid_grant');

    const again = await redeem(await authorize());
    expect(await whoami(again.access_token)).toBe('alice-upstream');
  });

  it('denyNext: the next authorization ends in access_denied at the redirect, the one after succeeds', async () => {
    up.denyNext();
    const denied = await authorize();
    expect(denied.callback.searchParams.get('error')).toBe('access_denied');
    expect(denied.callback.searchParams.get('code')).toBeNull();
    const e = (() => {
      try {
        oauth.validateAuthResponse(as, client, denied.callback, denied.state);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(oauth.AuthorizationResponseError);

    const tokens = await redeem(await authorize());
    expect(await whoami(tokens.access_token)).toBe('alice-upstream');
  });

  it('requires PKCE and an allowed redirect URI', async () => {
    const url = new URL(String(as.authorization_endpoint));
    url.search = new URLSearchParams({
      client_id: up.clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'tools:call',
      state: 's',
    }).toString();
    const noPkce = await browse(url.href);
    expect(noPkce.searchParams.get('error')).toBe('invalid_request');

    url.searchParams.set('redirect_uri', 'http://127.0.0.1:9/elsewhere');
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_redirect_uri' });
  });
});
