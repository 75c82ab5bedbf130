/**
 * RFC 9700 (OAuth 2.0 Security BCP) against the real gateway: every request
 * here is one an attacker (or a broken client) could send to the embedded
 * authorization server, and every one must be refused — without a token, and
 * without the user's browser being sent anywhere Warden did not verify.
 * One gateway is shared; each test uses its own clients and users' grants.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserGrants } from '../../src/oauth/index.js';
import { UserStore } from '../../src/users/index.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type Hop, pkce, registerClient, TestBrowser, tokenRequest } from '../helpers/oauth-browser.js';

const REDIRECT = 'https://app.example.com/cb';
const PASSWORD = 'correct horse battery staple';
const LOOKUP = 'tool:lookup_order:execute';
const SHIPPING = 'tool:check_shipping_status:execute';

type Json = Record<string, unknown>;

/** A self-signed certificate for 127.0.0.1 and 127.0.0.2, made by the openssl CLI. */
function selfSigned(dir: string): { key: Buffer; cert: Buffer } {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=warden-test-cimd',
      '-addext',
      'subjectAltName=IP:127.0.0.1,IP:127.0.0.2',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

/** An https server publishing client ID metadata documents, counting what reaches it. */
interface DocServer {
  server: Server;
  origin: string;
  connections: number;
  requests: string[];
}

async function docServer(
  host: string,
  creds: { key: Buffer; cert: Buffer },
  docs: Map<string, Json>,
): Promise<DocServer> {
  const out: DocServer = { server: undefined as unknown as Server, origin: '', connections: 0, requests: [] };
  out.server = createHttpsServer(creds, (req, res) => {
    const url = `https://${req.headers.host}${req.url}`;
    out.requests.push(url);
    const doc = docs.get(url);
    res.statusCode = doc ? 200 : 404;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(doc ?? { error: 'not found' }));
  });
  out.server.on('connection', () => {
    out.connections++;
  });
  await new Promise<void>((resolve) => out.server.listen(0, host, resolve));
  out.origin = `https://${host}:${(out.server.address() as AddressInfo).port}`;
  return out;
}

/** What the gateway's metadata-document fetch was asked to do, and how it ended. */
interface FetchCall {
  url: string;
  /** oidc-provider's SSRF-protected dispatcher was passed on (the host is not in allowPrivateClientHosts). */
  protected: boolean;
  error?: string;
}

/**
 * The `oauthFetch` seam: without a dispatcher (an allowed private host), node:https trusting the test
 * certificate; with one, exactly what production does — the global fetch with that dispatcher.
 */
function testFetch(ca: Buffer, calls: FetchCall[]): typeof fetch {
  return (async (input: string | URL | Request, init: RequestInit & { dispatcher?: unknown } = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const call: FetchCall = { url: url.href, protected: init.dispatcher !== undefined };
    calls.push(call);
    if (call.protected) {
      return globalThis.fetch(url, init).catch((e: unknown) => {
        const cause = (e as { cause?: { message?: string } }).cause;
        call.error = cause?.message ?? String(e);
        throw e;
      });
    }
    return new Promise<Response>((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method: init.method ?? 'GET',
          headers: Object.fromEntries(new Headers(init.headers)),
          ca,
          ...(init.signal ? { signal: init.signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const headers = new Headers();
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
            resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers }));
          });
          res.on('error', reject);
        },
      );
      req.on('error', (e) => {
        call.error = e.message;
        reject(e);
      });
      req.end();
    });
  }) as typeof fetch;
}

describe('OAuth security BCP (RFC 9700): the authorization server refuses bad input', () => {
  const target = makeTarget('sqlite');
  const tmp = mkdtempSync(join(tmpdir(), 'warden-oauth-bad-'));
  let creds: { key: Buffer; cert: Buffer };
  const docs = new Map<string, Json>();
  const fetches: FetchCall[] = [];
  const realTlsConnect = tls.connect;
  let t: TestGateway;
  let grants: UserGrants;
  let issuer: string;
  let allowedDocs: DocServer; // 127.0.0.1, listed in oauth.allowPrivateClientHosts
  let privateDocs: DocServer; // 127.0.0.2, listed by an agent but not allowed as a private host
  let cimdAllowed: string;
  let cimdPrivate: string;

  beforeAll(async () => {
    creds = selfSigned(tmp);
    allowedDocs = await docServer('127.0.0.1', creds, docs);
    privateDocs = await docServer('127.0.0.2', creds, docs);
    cimdAllowed = `${allowedDocs.origin}/client.json`;
    cimdPrivate = `${privateDocs.origin}/client.json`;
    for (const id of [cimdAllowed, cimdPrivate]) {
      docs.set(id, {
        client_id: id,
        client_name: 'CIMD Test Client',
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      });
    }
    // The production path (the global fetch with oidc-provider's protected dispatcher) must fail because
    // 127.0.0.2 is a special-use address, not because the certificate is unknown: trust it there too.
    (tls as { connect: typeof tls.connect }).connect = ((...args: unknown[]) => {
      const options = args[0] as tls.ConnectionOptions | undefined;
      if (typeof options === 'object' && options !== null && options.host === '127.0.0.2') {
        args[0] = { ...options, ca: creds.cert };
      }
      return (realTlsConnect as (...a: unknown[]) => tls.TLSSocket)(...args);
    }) as typeof tls.connect;

    t = await startTestGateway(
      target,
      (config) => {
        const demo = config.agents.find((a) => a.id === 'demo-support')!;
        config.agents.push(
          {
            ...demo,
            id: 'desk-assistant',
            type: 'assistant',
            allowedTools: ['lookup_order', 'check_shipping_status'],
            deniedTools: [],
            maxConcurrentSessions: 50,
            // bob is deliberately not here.
            delegation: { clients: ['dynamic'], users: ['alice', 'carol', 'dave'] },
          },
          {
            ...demo,
            id: 'cimd-assistant',
            type: 'assistant',
            allowedTools: ['lookup_order'],
            deniedTools: [],
            maxConcurrentSessions: 50,
            delegation: { clients: [cimdAllowed, cimdPrivate], users: ['*'] },
          },
          {
            ...demo,
            id: 'tight-assistant',
            type: 'assistant',
            allowedTools: ['lookup_order'],
            deniedTools: [],
            maxConcurrentSessions: 1,
            delegation: { clients: ['dynamic'], users: ['erin'] },
          },
        );
        config.oauth.allowPrivateClientHosts = ['127.0.0.1'];
      },
      { oauthFetch: testFetch(creds.cert, fetches) },
    );
    const users = new UserStore(t.gw.store);
    for (const id of ['alice', 'bob', 'carol', 'dave', 'erin'])
      await users.create({ id, password: PASSWORD });
    grants = new UserGrants(t.gw.store, t.gw.sessions);
    const meta = await fetch(`${t.gw.url}/.well-known/oauth-authorization-server/oauth`);
    issuer = ((await meta.json()) as { issuer: string }).issuer;
  });
  afterAll(async () => {
    (tls as { connect: typeof tls.connect }).connect = realTlsConnect;
    await t?.close();
    await target.cleanup();
    for (const d of [allowedDocs, privateDocs]) {
      if (!d) continue;
      d.server.closeAllConnections();
      await new Promise<void>((r) => d.server.close(() => r()));
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  // ---- helpers -------------------------------------------------------------------------------

  async function register(extra: Json = {}) {
    return registerClient(t.gw.url, REDIRECT, extra);
  }

  async function clientId(extra: Json = {}): Promise<string> {
    const r = await register(extra);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.client_id;
  }

  /** An authorization request URL; `undefined` drops a parameter. */
  function authorizeUrl(params: Record<string, string | undefined>): string {
    const url = new URL(`${t.gw.url}/oauth/authorize`);
    const all: Record<string, string | undefined> = {
      response_type: 'code',
      redirect_uri: REDIRECT,
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
      state: 'st-1',
      scope: LOOKUP,
      ...params,
    };
    for (const [k, v] of Object.entries(all)) if (v !== undefined) url.searchParams.set(k, v);
    return url.href;
  }

  /** One GET of the authorization endpoint, no redirect followed. */
  async function authorize(params: Record<string, string | undefined>) {
    const res = await fetch(authorizeUrl(params), { redirect: 'manual' });
    const location = res.headers.get('location');
    return { status: res.status, location, body: await res.text() };
  }

  /** The authorization endpoint sent the browser on to Warden's own login page. */
  function toLoginPage(r: { status: number; location: string | null }): boolean {
    if (r.status !== 303 || r.location === null) return false;
    return new URL(r.location, t.gw.url).href.startsWith(`${t.gw.url}/oauth/interaction/`);
  }

  /** The parameters of an authorization response sent to REDIRECT (query and fragment alike). */
  function responseParams(location: string): URLSearchParams {
    const url = new URL(location);
    expect(url.origin + url.pathname).toBe(REDIRECT);
    const params = new URLSearchParams(url.search);
    for (const [k, v] of new URLSearchParams(url.hash.slice(1))) params.append(k, v);
    return params;
  }

  async function token(form: Record<string, string>, headers: Record<string, string> = {}) {
    return tokenRequest(t.gw.url, form, headers);
  }

  /** Logs `user` in from the login page; returns the next page (consent) or the redirect back. */
  async function logIn(browser: TestBrowser, loginPage: Hop, user: string): Promise<Hop> {
    expect(loginPage.body, loginPage.body.slice(0, 300)).toContain('Log in to Warden');
    return browser.follow(new URL(TestBrowser.action(loginPage.body, /\/login$/), t.gw.url).href, {
      method: 'POST',
      form: { csrf: TestBrowser.csrf(loginPage.body), username: user, password: PASSWORD },
    });
  }

  async function decide(browser: TestBrowser, consentPage: Hop, form: Record<string, string>): Promise<Hop> {
    return browser.follow(new URL(TestBrowser.action(consentPage.body, /\/consent$/), t.gw.url).href, {
      method: 'POST',
      form: { csrf: TestBrowser.csrf(consentPage.body), ...form },
    });
  }

  interface Flow {
    client: string;
    verifier: string;
    code: string;
    back: URLSearchParams;
    browser: TestBrowser;
  }

  /** Authorization request → login → consent (allow) → the code at the redirect URI. */
  async function codeFor(
    user: string,
    opts: {
      client?: string;
      agent?: string;
      scope?: string;
      params?: Record<string, string | undefined>;
    } = {},
  ): Promise<Flow> {
    const client = opts.client ?? (await clientId());
    const browser = new TestBrowser(t.gw.url);
    const { verifier, challenge } = pkce();
    const login = await browser.follow(
      authorizeUrl({
        client_id: client,
        code_challenge: challenge,
        scope: opts.scope ?? LOOKUP,
        ...opts.params,
      }),
    );
    const consent = await logIn(browser, login, user);
    expect(consent.body).toContain('Allow ');
    const done = await decide(browser, consent, { agent: opts.agent ?? 'desk-assistant', decision: 'allow' });
    expect(done.status, done.body.slice(0, 300)).toBe(303);
    const back = responseParams(done.url);
    expect(back.get('iss')).toBe(issuer);
    expect(back.get('error'), back.toString()).toBeNull();
    return { client, verifier, code: back.get('code')!, back, browser };
  }

  /** Another code from the same browser: the grant stands, so no page is shown. */
  async function codeAgain(flow: Flow): Promise<{ verifier: string; code: string }> {
    const { verifier, challenge } = pkce();
    const hop = await flow.browser.follow(
      authorizeUrl({ client_id: flow.client, code_challenge: challenge }),
    );
    const back = responseParams(hop.url);
    expect(back.get('iss')).toBe(issuer);
    return { verifier, code: back.get('code')! };
  }

  function redeem(
    flow: { client: string; verifier: string; code: string },
    extra: Record<string, string> = {},
  ) {
    return token({
      grant_type: 'authorization_code',
      code: flow.code,
      redirect_uri: REDIRECT,
      client_id: flow.client,
      code_verifier: flow.verifier,
      ...extra,
    });
  }

  /** The HTTP status of an MCP initialize sent with `accessToken`. */
  async function mcpStatus(accessToken: string): Promise<number> {
    const res = await fetch(`${t.gw.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${accessToken}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'probe', version: '1' },
        },
      }),
    });
    await res.body?.cancel();
    return res.status;
  }

  /** A form POST with exactly these headers (TestBrowser's `form` adds same-origin ones). */
  function rawPost(
    browser: TestBrowser,
    path: string,
    form: Record<string, string>,
    headers: Record<string, string>,
  ) {
    return browser.request(new URL(path, t.gw.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });
  }

  // ---- 1. redirect URIs ----------------------------------------------------------------------

  it('refuses every redirect URI that is not exactly the registered one, and never redirects to it', async () => {
    const client = await clientId();
    expect(toLoginPage(await authorize({ client_id: client }))).toBe(true); // the registered URI itself
    const bad = [
      'https://app.example.com/cb/evil',
      'https://app.example.com/cbx',
      'https://app.example.com/cb?x=1',
      'https://APP.example.com/cb',
      'https://app.EXAMPLE.com/cb',
      'https://app.example.com/CB',
      'https://app.example.com/cb/',
      'https://evil@app.example.com/cb',
      'https://app.example.com:8443/cb',
      'http://app.example.com/cb',
      'https://app.example.com.evil.example/cb',
      'https://app.example.com/cb#x',
      'https://app.example.com/cb/../cb',
      'https://app.example.com/%63b',
    ];
    for (const uri of bad) {
      const r = await authorize({ client_id: client, redirect_uri: uri });
      expect(r.status, uri).toBe(400);
      expect(r.location, uri).toBeNull();
      expect(JSON.parse(r.body).error, uri).toBe('invalid_redirect_uri');
    }
    // A second error in the same request must not turn the bad URI into an error redirect.
    for (const extra of [
      { response_type: 'token' },
      { code_challenge: undefined },
      { code_challenge_method: 'plain' },
      { resource: 'https://evil.example.com' },
      { scope: 'tool:drop_tables:execute' },
    ]) {
      const r = await authorize({ client_id: client, redirect_uri: 'https://evil.example/cb', ...extra });
      expect(r.status, JSON.stringify(extra)).toBe(400);
      expect(r.location, JSON.stringify(extra)).toBeNull();
    }
    // An unknown client is no reason to trust its redirect URI either.
    const unknown = await authorize({ client_id: 'no-such-client', redirect_uri: 'https://evil.example/cb' });
    expect(unknown.status).toBe(400);
    expect(unknown.location).toBeNull();
    expect(JSON.parse(unknown.body).error).toBe('invalid_client');
  });

  it('lets a native client use any loopback port (RFC 8252 §7.3) but no other path, host or scheme', async () => {
    const client = await clientId({
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1:1234/cb'],
    });
    for (const uri of ['http://127.0.0.1:1234/cb', 'http://127.0.0.1:50123/cb', 'http://127.0.0.1/cb']) {
      expect(toLoginPage(await authorize({ client_id: client, redirect_uri: uri })), uri).toBe(true);
    }
    for (const uri of [
      'http://127.0.0.1:50123/other',
      'http://127.0.0.1:50123/cb/',
      'http://127.0.0.1:50123/cb?x=1',
      'http://localhost:1234/cb',
      'http://[::1]:1234/cb',
      'http://127.0.0.2:1234/cb',
      'https://127.0.0.1:1234/cb',
      'http://evil.example:1234/cb',
    ]) {
      const r = await authorize({ client_id: client, redirect_uri: uri });
      expect(r.status, uri).toBe(400);
      expect(r.location, uri).toBeNull();
    }
  });

  // ---- 2. PKCE -------------------------------------------------------------------------------

  it('requires PKCE with S256 at the authorization endpoint, and advertises S256 only', async () => {
    const client = await clientId();
    for (const params of [
      { code_challenge: undefined, code_challenge_method: undefined },
      { code_challenge: undefined },
      { code_challenge_method: 'plain' },
      { code_challenge_method: 'plain', code_challenge: 'a'.repeat(43) },
      { code_challenge: 'too-short' },
    ]) {
      const r = await authorize({ client_id: client, ...params });
      expect(r.status, JSON.stringify(params)).toBe(303);
      const back = responseParams(r.location!);
      expect(back.get('error'), JSON.stringify(params)).toBe('invalid_request');
      expect(back.get('code')).toBeNull();
      expect(back.get('state')).toBe('st-1');
      expect(back.get('iss')).toBe(issuer); // RFC 9207 on error responses too
    }
    const meta = (await (
      await fetch(`${t.gw.url}/.well-known/oauth-authorization-server/oauth`)
    ).json()) as Json;
    expect(meta.issuer).toBe(`${t.gw.url}/oauth`);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.response_types_supported).toEqual(['code']);
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
  });

  it('refuses a code without its code_verifier or with a wrong one', async () => {
    const flow = await codeFor('alice');
    const { code_verifier: _drop, ...noVerifier } = {
      grant_type: 'authorization_code',
      code: flow.code,
      redirect_uri: REDIRECT,
      client_id: flow.client,
      code_verifier: flow.verifier,
    };
    const missing = await token(noVerifier);
    expect(missing.status).toBe(400);
    expect(missing.body.error).toBe('invalid_grant');
    expect(missing.body.access_token).toBeUndefined();
    const again = await codeAgain(flow);
    const wrong = await redeem({ client: flow.client, code: again.code, verifier: pkce().verifier });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toBe('invalid_grant');
    // The verifier of another request does not fit either.
    const third = await codeAgain(flow);
    const crossed = await redeem({ client: flow.client, code: third.code, verifier: again.verifier });
    expect(crossed.body.error).toBe('invalid_grant');
    expect(crossed.body.access_token).toBeUndefined();
  });

  // ---- 3. code replay ------------------------------------------------------------------------

  it('refuses a code used twice and revokes what the first use issued (RFC 9700 §4.5.3)', async () => {
    const flow = await codeFor('alice');
    const first = await redeem(flow);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const sid = decodeJwt(first.body.access_token!).sid as string;
    const grantId = (await t.gw.sessions.get(sid))?.grantId;
    expect(grantId).toBeTruthy();
    const mcp = await t.mcp(first.body.access_token!);
    const ok = (await mcp.callTool({
      name: 'lookup_order',
      arguments: { orderId: 'ORD-4F8K2P1Z' },
    })) as CallToolResult;
    expect(ok.isError, JSON.stringify(ok.content)).toBeFalsy();

    const pending = await codeAgain(flow); // issued under the same grant, not redeemed yet

    const replay = await redeem(flow);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    expect(replay.body.access_token).toBeUndefined();

    expect((await t.gw.sessions.get(sid))?.revokedAt).not.toBeNull();
    expect(await mcpStatus(first.body.access_token!)).toBe(401);
    const after = await mcp.callTool({ name: 'lookup_order', arguments: { orderId: 'ORD-4F8K2P1Z' } }).then(
      (r) => (r as CallToolResult).isError === true,
      () => true,
    );
    expect(after, 'the open MCP connection keeps working after the grant was revoked').toBe(true);
    const refresh = await token({
      grant_type: 'refresh_token',
      refresh_token: first.body.refresh_token!,
      client_id: flow.client,
    });
    expect(refresh.status).toBe(400);
    expect(refresh.body.error).toBe('invalid_grant');
    const grant = await grants.get(grantId!);
    expect(grant?.revokedAt).not.toBeNull();
    expect(grant?.revokedBy).toBe('replay-detection');
    const late = await redeem({ client: flow.client, ...pending });
    expect(late.status).toBe(400);
    expect(late.body.error).toBe('invalid_grant');
    // The revoked grant is not silently reused: the user is asked again.
    const again = await flow.browser.follow(authorizeUrl({ client_id: flow.client }));
    expect(again.status).toBe(200);
    expect(again.body).toContain('Allow ');
  });

  // ---- 4. code for another client ------------------------------------------------------------

  it('refuses a code redeemed by a client it was not issued to', async () => {
    const flow = await codeFor('alice');
    const other = await clientId();
    const stolen = await redeem({ ...flow, client: other });
    expect(stolen.status).toBe(400);
    expect(stolen.body.error).toBe('invalid_grant');
    expect(stolen.body.access_token).toBeUndefined();
    // Another redirect URI than the one the code was issued for does not fit either.
    const elsewhere = await redeem(flow, { redirect_uri: 'https://evil.example/cb' });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body.access_token).toBeUndefined();
    // The code itself was fine: its own client still redeems it.
    const issued = await redeem(flow);
    expect(issued.status).toBe(200);
    // Nor may B use A's refresh token.
    const refresh = { grant_type: 'refresh_token', refresh_token: issued.body.refresh_token! };
    const stolenRefresh = await token({ ...refresh, client_id: other });
    expect(stolenRefresh.status).toBe(400);
    expect(stolenRefresh.body.error).toBe('invalid_grant');
    expect(stolenRefresh.body.access_token).toBeUndefined();
    expect((await token({ ...refresh, client_id: flow.client })).status).toBe(200);
  });

  // ---- 5. audience ---------------------------------------------------------------------------

  it('mints tokens for the gateway only: foreign resources are invalid_target, aud is always the gateway', async () => {
    const client = await clientId();
    for (const resource of [
      'https://evil.example.com',
      `${t.gw.url}/oauth`,
      `${t.gw.url}/mcp`,
      'not a url',
    ]) {
      const r = await authorize({ client_id: client, resource });
      expect(r.status, resource).toBe(303);
      const back = responseParams(r.location!);
      expect(back.get('error'), resource).toBe('invalid_target');
      expect(back.get('code')).toBeNull();
      expect(back.get('iss')).toBe(issuer);
    }
    // No resource anywhere: the token is still for the gateway, never audience-less.
    const flow = await codeFor('alice', { client, params: { resource: undefined } });
    const issued = await redeem(flow);
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    expect(decodeJwt(issued.body.access_token!).aud).toBe(t.gw.url);
    const refresh = { grant_type: 'refresh_token', client_id: client };
    const refreshed = await token({
      ...refresh,
      refresh_token: issued.body.refresh_token!,
      resource: t.gw.url,
    });
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(decodeJwt(refreshed.body.access_token!).aud).toBe(t.gw.url);
    const plain = await token({ ...refresh, refresh_token: refreshed.body.refresh_token! });
    expect(plain.status, JSON.stringify(plain.body)).toBe(200);
    expect(decodeJwt(plain.body.access_token!).aud).toBe(t.gw.url);
    // Foreign resources at the token endpoint. (oidc-provider spends the code, and the refresh token,
    // before it resolves the resource; Warden gives them back: see the test on refreshes below.)
    const foreignRefresh = await token({
      ...refresh,
      refresh_token: plain.body.refresh_token!,
      resource: 'https://evil.example.com',
    });
    expect(foreignRefresh.status).toBe(400);
    expect(foreignRefresh.body.error).toBe('invalid_target');
    expect(foreignRefresh.body.access_token).toBeUndefined();
    const next = await codeAgain(flow);
    const foreign = await redeem({ client, ...next }, { resource: 'https://evil.example.com' });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error).toBe('invalid_target');
    expect(foreign.body.access_token).toBeUndefined();
  });

  // oidc-provider rotates (consumes) the refresh token before Warden opens the session: a refresh refused
  // for a passing reason (the agent's session limit, a wrong resource) must not spend the client's only
  // refresh token, or its retry would be taken for a replay that revokes the whole grant.
  it('a refresh refused before anything is issued leaves the refresh token usable', async () => {
    const flow = await codeFor('erin', { agent: 'tight-assistant' });
    const issued = await redeem(flow);
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    const sid = decodeJwt(issued.body.access_token!).sid as string;
    const refresh = {
      grant_type: 'refresh_token',
      refresh_token: issued.body.refresh_token!,
      client_id: flow.client,
    };
    const full = await token(refresh);
    expect(full.status).toBe(400);
    expect(full.body.error_description).toMatch(/session limit/);
    expect(full.body.refresh_token).toBeUndefined();
    // The session ends; the client retries with the refresh token it still holds.
    await t.gw.sessions.revoke(sid, 'test: make room under the limit');
    const retry = await token(refresh);
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
  });

  // ---- 6. scope escalation -------------------------------------------------------------------

  it('never widens a grant: more scope on refresh is invalid_scope, and the code ignores asked-for extras', async () => {
    const flow = await codeFor('alice', { scope: LOOKUP });
    const issued = await redeem(flow, { scope: `${LOOKUP} ${SHIPPING}` });
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    expect(decodeJwt(issued.body.access_token!).scope).toBe(LOOKUP);
    for (const scope of [SHIPPING, `${LOOKUP} ${SHIPPING}`, 'tool:drop_tables:execute']) {
      const r = await token({
        grant_type: 'refresh_token',
        refresh_token: issued.body.refresh_token!,
        client_id: flow.client,
        scope,
      });
      expect(r.status, scope).toBe(400);
      expect(r.body.error, scope).toBe('invalid_scope');
      expect(r.body.access_token).toBeUndefined();
    }
    const narrowed = await token({
      grant_type: 'refresh_token',
      refresh_token: issued.body.refresh_token!,
      client_id: flow.client,
      scope: LOOKUP,
    });
    expect(narrowed.status, JSON.stringify(narrowed.body)).toBe(200);
    expect(decodeJwt(narrowed.body.access_token!).scope).toBe(LOOKUP);
    // Asking the same browser for more than was granted shows the consent page again; it never issues a code.
    const wider = await flow.browser.follow(
      authorizeUrl({ client_id: flow.client, scope: `${LOOKUP} ${SHIPPING}` }),
    );
    expect(wider.status).toBe(200);
    expect(wider.body).toContain('Allow ');
    expect(wider.body).toContain('Run the tool “check_shipping_status”');
    // Asking for more at the authorization endpoint than any agent may hold is refused before login.
    const r = await authorize({ client_id: flow.client, scope: `${LOOKUP} tool:drop_tables:execute` });
    expect(responseParams(r.location!).get('error')).toBe('invalid_scope');
  });

  // ---- 7. response types ---------------------------------------------------------------------

  it('refuses implicit, hybrid and none response types without ever putting a token in the response', async () => {
    const client = await clientId();
    const cases: Array<[string, string]> = [
      ['token', 'unsupported_response_type'],
      ['code id_token', 'unsupported_response_type'],
      ['code token', 'unsupported_response_type'],
      ['id_token', 'unsupported_response_type'],
      ['id_token token', 'unsupported_response_type'],
      ['none', 'unsupported_response_type'],
      ['', 'invalid_request'],
    ];
    for (const [responseType, error] of cases) {
      const r = await authorize({ client_id: client, response_type: responseType });
      expect(r.status, `${responseType}: ${r.body}`).toBe(303);
      // The error may travel in the fragment (the default mode of the type asked for), a token never does.
      const back = responseParams(r.location!);
      expect(back.get('error'), responseType).toBe(error);
      for (const leak of ['code', 'access_token', 'id_token', 'token'])
        expect(back.get(leak), leak).toBeNull();
      expect(back.get('iss')).toBe(issuer);
    }
  });

  // The metadata advertises response_modes_supported ["query"]: oidc-provider's built-in fragment and
  // form_post modes (form_post answers with a scripted HTML page) are refused before it sees them.
  it('accepts only the advertised response mode (query)', async () => {
    const client = await clientId();
    for (const mode of ['fragment', 'form_post']) {
      const r = await authorize({ client_id: client, response_mode: mode });
      expect(toLoginPage(r), mode).toBe(false);
      expect(r.status, mode).toBe(400);
      expect(r.location, mode).toBeFalsy();
      expect(JSON.parse(r.body).error, mode).toBe('unsupported_response_mode');
    }
  });

  // ---- 8. RFC 9207 ---------------------------------------------------------------------------

  it('names the issuer in every authorization response: success, and the user denying consent', async () => {
    const flow = await codeFor('dave');
    expect(flow.back.get('iss')).toBe(issuer);
    const client = await clientId();
    const browser = new TestBrowser(t.gw.url);
    const consent = await logIn(
      browser,
      await browser.follow(authorizeUrl({ client_id: client, state: 'deny-1' })),
      'dave',
    );
    const done = await decide(browser, consent, { agent: 'desk-assistant', decision: 'deny' });
    expect(done.status).toBe(303);
    const back = responseParams(done.url);
    expect(back.get('error')).toBe('access_denied');
    expect(back.get('state')).toBe('deny-1');
    expect(back.get('iss')).toBe(issuer);
    expect(back.get('code')).toBeNull();
    expect(await grants.listForUser('dave')).toHaveLength(1); // the first flow's, not the denied one
  });

  // ---- 9. dynamic registration ---------------------------------------------------------------

  it('refuses registrations that would be more than a user-login client', async () => {
    const refusals: Array<[Json, string[]]> = [
      [{ grant_types: ['client_credentials'], response_types: [] }, ['invalid_client_metadata']],
      [{ grant_types: ['client_credentials'] }, ['invalid_client_metadata']],
      [
        {
          grant_types: ['authorization_code', 'client_credentials'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
        ['invalid_client_metadata'],
      ],
      [{ grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'] }, ['invalid_client_metadata']],
      [{ grant_types: ['implicit'], response_types: ['token'] }, ['invalid_client_metadata']],
      [{ response_types: ['token'] }, ['invalid_client_metadata']],
      [{ response_types: ['code id_token'] }, ['invalid_client_metadata']],
      [{ token_endpoint_auth_method: 'private_key_jwt' }, ['invalid_client_metadata']],
      [
        {
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [t.gw.config.agents.find((a) => a.id === 'demo-support')!.publicJwk] },
        },
        ['invalid_client_metadata'],
      ],
      [{ token_endpoint_auth_method: 'client_secret_jwt' }, ['invalid_client_metadata']],
      [{ redirect_uris: [] }, ['invalid_redirect_uri', 'invalid_client_metadata']],
      [{ redirect_uris: undefined }, ['invalid_redirect_uri', 'invalid_client_metadata']],
      [
        { redirect_uris: ['https://app.example.com/cb#frag'] },
        ['invalid_redirect_uri', 'invalid_client_metadata'],
      ],
      [{ redirect_uris: ['javascript:alert(1)'] }, ['invalid_redirect_uri', 'invalid_client_metadata']],
    ];
    for (const [body, errors] of refusals) {
      const r = await register(body);
      expect(r.status, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`).toBe(400);
      expect(errors, JSON.stringify(body)).toContain(r.body.error);
      expect(r.body.client_id).toBeUndefined();
    }
  });

  // A plain-http redirect URI on a non-loopback host would send codes across the network in clear
  // (OAuth 2.1 §1.5 / MCP: https or loopback only).
  it('refuses http redirect URIs except on loopback hosts', async () => {
    for (const uri of ['http://app.example.com/cb', 'http://evil.example/cb', 'http://10.0.0.8/cb']) {
      const r = await register({ redirect_uris: [uri] });
      expect(r.status, `${uri} → ${JSON.stringify(r.body)}`).toBe(400);
    }
  });

  it('never gives a registered client a client_credentials token', async () => {
    const confidential = await register({ token_endpoint_auth_method: 'client_secret_basic' });
    expect(confidential.status).toBe(201);
    const secret = confidential.body.client_secret as string;
    expect(secret).toBeTruthy();
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(confidential.body.client_id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
    for (const scope of [undefined, LOOKUP]) {
      const r = await token(
        { grant_type: 'client_credentials', ...(scope ? { scope } : {}) },
        { authorization: basic },
      );
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      // oidc-provider answers invalid_request ("requested grant type is not allowed for this client").
      expect(['unauthorized_client', 'invalid_request']).toContain(r.body.error);
      expect(r.body.access_token).toBeUndefined();
    }
    const pub = await clientId();
    const r = await token({ grant_type: 'client_credentials', client_id: pub });
    expect(r.status).toBe(400);
    expect(['unauthorized_client', 'invalid_request', 'invalid_client']).toContain(r.body.error);
    expect(r.body.access_token).toBeUndefined();
  });

  // ---- 10. CSRF ------------------------------------------------------------------------------

  it('refuses cross-site and token-less posts of the login and consent forms', async () => {
    const client = await clientId();
    const browser = new TestBrowser(t.gw.url);
    const login = await browser.follow(authorizeUrl({ client_id: client }));
    const loginAction = TestBrowser.action(login.body, /\/login$/);
    const csrf = TestBrowser.csrf(login.body);
    const same = { origin: t.gw.url, 'sec-fetch-site': 'same-origin' };
    const credentials = { username: 'dave', password: PASSWORD };
    const forged: Array<[Record<string, string>, Record<string, string>]> = [
      [credentials, same],
      [{ ...credentials, csrf: 'A'.repeat(43) }, same],
      [{ ...credentials, csrf: '' }, same],
      [
        { ...credentials, csrf },
        { ...same, origin: 'https://evil.example' },
      ],
      // "null" (Warden's pages send no referrer) counts only together with Sec-Fetch-Site: same-origin.
      [{ ...credentials, csrf }, { origin: 'null' }],
      [
        { ...credentials, csrf },
        { origin: 'null', 'sec-fetch-site': 'cross-site' },
      ],
      [
        { ...credentials, csrf },
        { ...same, 'sec-fetch-site': 'cross-site' },
      ],
      [
        { ...credentials, csrf },
        { ...same, 'sec-fetch-site': 'same-site' },
      ],
    ];
    for (const [form, headers] of forged) {
      const r = await rawPost(browser, loginAction, form, headers);
      expect(r.status, JSON.stringify({ form, headers })).toBe(403);
    }
    // A browser that never got the cookie: the field alone proves nothing.
    const stranger = new TestBrowser(t.gw.url);
    for (const [k, v] of browser.jar) if (!k.endsWith('warden-csrf')) stranger.jar.set(k, v);
    expect((await rawPost(stranger, loginAction, { ...credentials, csrf }, same)).status).toBe(403);
    // Nobody was logged in: the interaction still asks for a login.
    const still = await browser.follow(`${t.gw.url}${loginAction.replace(/\/login$/, '')}`);
    expect(still.body).toContain('Log in to Warden');

    const consent = await logIn(browser, still, 'dave');
    expect(consent.body).toContain('desk-assistant');
    const consentAction = TestBrowser.action(consent.body, /\/consent$/);
    const csrf2 = TestBrowser.csrf(consent.body);
    const allow = { agent: 'desk-assistant', decision: 'allow' };
    const before = (await grants.listForUser('dave')).length;
    const forgedConsent: Array<[Record<string, string>, Record<string, string>]> = [
      [allow, same],
      [{ ...allow, csrf: 'B'.repeat(43) }, same],
      [
        { ...allow, csrf: csrf2 },
        { ...same, origin: 'https://evil.example' },
      ],
      [
        { ...allow, csrf: csrf2 },
        { ...same, 'sec-fetch-site': 'cross-site' },
      ],
    ];
    for (const [form, headers] of forgedConsent) {
      const r = await rawPost(browser, consentAction, form, headers);
      expect(r.status, JSON.stringify({ form, headers })).toBe(403);
      expect(r.headers.get('location')).toBeNull();
    }
    // An agent the page did not offer: one that does not accept this client, or no such agent.
    for (const agent of ['demo-support', 'cimd-assistant', 'no-such-agent', '']) {
      const r = await rawPost(browser, consentAction, { agent, decision: 'allow', csrf: csrf2 }, same);
      expect(r.status, agent).toBe(400);
      expect(r.headers.get('location')).toBeNull();
    }
    expect(await grants.listForUser('dave')).toHaveLength(before);
    // The real page still works, and the grant is for the agent the user chose.
    const page = await browser.follow(`${t.gw.url}${consentAction.replace(/\/consent$/, '')}`);
    expect(page.body).toContain('desk-assistant');
    const done = await decide(browser, page, allow);
    expect(responseParams(done.url).get('code')).toBeTruthy();
    const now = await grants.listForUser('dave');
    expect(now).toHaveLength(before + 1);
    expect(now[0]?.agentId).toBe('desk-assistant');
  });

  // ---- 11. delegation.users ------------------------------------------------------------------

  it('offers a user the agent does not list nothing to choose: they can only deny', async () => {
    const client = await clientId();
    const browser = new TestBrowser(t.gw.url);
    const page = await logIn(browser, await browser.follow(authorizeUrl({ client_id: client })), 'bob');
    expect(page.status).toBe(200);
    expect(page.body).toContain('This application cannot act for you here');
    expect(page.body).not.toContain('name="agent"');
    expect(page.body).not.toContain('value="allow"');
    expect(page.body).toContain('value="deny"');
    const action = TestBrowser.action(page.body, /\/consent$/);
    const csrf = TestBrowser.csrf(page.body);
    const same = { origin: t.gw.url, 'sec-fetch-site': 'same-origin' };
    for (const agent of ['desk-assistant', 'cimd-assistant']) {
      const r = await rawPost(browser, action, { agent, decision: 'allow', csrf }, same);
      expect(r.status, agent).toBe(400);
      expect(r.headers.get('location')).toBeNull();
    }
    expect(await grants.listForUser('bob')).toEqual([]);
    const denied = await decide(browser, page, { decision: 'deny' });
    const back = responseParams(denied.url);
    expect(back.get('error')).toBe('access_denied');
    expect(back.get('iss')).toBe(issuer);
    expect(await grants.listForUser('bob')).toEqual([]);
  });

  // ---- 12. client ID metadata documents ------------------------------------------------------

  it('never fetches a client ID metadata document no agent lists', async () => {
    const connections = allowedDocs.connections + privateDocs.connections;
    const calls = fetches.length;
    for (const id of [`${allowedDocs.origin}/unlisted.json`, `${privateDocs.origin}/unlisted.json`]) {
      const r = await authorize({ client_id: id });
      expect(r.status, r.body).toBe(400);
      expect(r.location).toBeNull();
      expect(JSON.parse(r.body).error).toBe('invalid_client');
    }
    expect(fetches.length).toBe(calls);
    expect(allowedDocs.connections + privateDocs.connections).toBe(connections);
    expect(
      [...allowedDocs.requests, ...privateDocs.requests].filter((u) => u.endsWith('/unlisted.json')),
    ).toEqual([]);
  });

  it('refuses a listed metadata document on a special-use address (SSRF): the request never reaches it', async () => {
    const r = await authorize({ client_id: cimdPrivate });
    expect(r.status, r.body).toBe(400);
    expect(r.location).toBeNull();
    expect(JSON.parse(r.body).error).toBe('invalid_client');
    const call = fetches.find((c) => c.url === cimdPrivate);
    expect(call?.protected, 'oidc-provider’s protected dispatcher was handed to the fetch').toBe(true);
    expect(call?.error).toMatch(/special-use/);
    expect(privateDocs.requests).toEqual([]);
    // The server was there and the certificate trusted: only the address check stood in the way.
    const direct = await testFetch(creds.cert, [])(cimdPrivate);
    expect(direct.status).toBe(200);
  });

  it('logs a user in through a metadata-document client on an allowed private host', async () => {
    const flow = await codeFor('alice', { client: cimdAllowed, agent: 'cimd-assistant' });
    expect(allowedDocs.requests).toContain(cimdAllowed);
    expect(fetches.find((c) => c.url === cimdAllowed)?.protected).toBe(false);
    const issued = await redeem(flow);
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    const claims = decodeJwt(issued.body.access_token!);
    expect(claims.sub).toBe('alice');
    expect(claims.act).toEqual({ sub: 'cimd-assistant' });
    expect(claims.aud).toBe(t.gw.url);
    expect(await mcpStatus(issued.body.access_token!)).toBe(200);
  });

  // ---- 13. account page ----------------------------------------------------------------------

  it('lets a user revoke only their own grants on the account page, and revoking ends its tokens', async () => {
    const carol = await codeFor('carol');
    const carolTokens = await redeem(carol);
    expect(carolTokens.status).toBe(200);
    const carolSid = decodeJwt(carolTokens.body.access_token!).sid as string;
    const carolGrant = (await t.gw.sessions.get(carolSid))!.grantId!;
    const alice = await codeFor('alice');
    const aliceTokens = await redeem(alice);
    const aliceSid = decodeJwt(aliceTokens.body.access_token!).sid as string;
    const aliceGrant = (await t.gw.sessions.get(aliceSid))!.grantId!;

    const browser = new TestBrowser(t.gw.url);
    const loginPage = await browser.follow(`${t.gw.url}/oauth/account`);
    const account = await browser.follow(
      new URL(TestBrowser.action(loginPage.body, /\/account\/login$/), t.gw.url).href,
      {
        method: 'POST',
        form: { csrf: TestBrowser.csrf(loginPage.body), username: 'carol', password: PASSWORD },
      },
    );
    expect(account.status).toBe(200);
    expect(account.body).toContain('Applications acting for you');
    expect(account.body).toContain(`value="${carolGrant}"`);
    expect(account.body).not.toContain(aliceGrant);
    const revokeAction = TestBrowser.action(account.body, /\/account\/revoke$/);
    const pending = await codeAgain(carol); // issued under the grant, not redeemed yet
    const csrf = TestBrowser.csrf(account.body);

    const theirs = await browser.request(new URL(revokeAction, t.gw.url).href, {
      method: 'POST',
      form: { csrf, grant: aliceGrant },
    });
    expect(theirs.status).toBe(404);
    expect((await grants.get(aliceGrant))?.revokedAt).toBeNull();
    expect((await t.gw.sessions.get(aliceSid))?.revokedAt).toBeNull();
    expect(await mcpStatus(aliceTokens.body.access_token!)).toBe(200);
    // Revoking with a forged form is refused like any other cross-site post.
    const crossSite = await rawPost(
      browser,
      revokeAction,
      { csrf, grant: carolGrant },
      {
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
      },
    );
    expect(crossSite.status).toBe(403);
    expect((await grants.get(carolGrant))?.revokedAt).toBeNull();

    const own = await browser.follow(new URL(revokeAction, t.gw.url).href, {
      method: 'POST',
      form: { csrf, grant: carolGrant },
    });
    expect(own.status).toBe(200);
    expect(own.body).not.toContain(`value="${carolGrant}"`);
    expect((await grants.get(carolGrant))?.revokedBy).toBe('carol');
    expect((await t.gw.sessions.get(carolSid))?.revokedAt).not.toBeNull();
    expect(await mcpStatus(carolTokens.body.access_token!)).toBe(401);
    const refresh = await token({
      grant_type: 'refresh_token',
      refresh_token: carolTokens.body.refresh_token!,
      client_id: carol.client,
    });
    expect(refresh.status).toBe(400);
    expect(refresh.body.error).toBe('invalid_grant');
    expect((await redeem({ client: carol.client, ...pending })).body.error).toBe('invalid_grant');
    // Alice's grant is untouched by all of this.
    const aliceRefresh = await token({
      grant_type: 'refresh_token',
      refresh_token: aliceTokens.body.refresh_token!,
      client_id: alice.client,
    });
    expect(aliceRefresh.status, JSON.stringify(aliceRefresh.body)).toBe(200);
  });
});
