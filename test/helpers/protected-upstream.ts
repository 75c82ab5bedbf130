/**
 * An upstream that wants *per-user* OAuth tokens, for testing Warden's
 * credential broker for real: oidc-provider plays the upstream's authorization
 * server (authorization code + PKCE S256, confidential client, JWT access
 * tokens for one resource, rotated refresh tokens) and an MCP server behind it
 * accepts only that AS's access tokens (RFC 9068 JWTs, audience = its URL).
 * Login and consent happen without pages: whoever `setAccount` names is logged
 * in and consents to what was asked, unless `denyNext` makes the AS refuse.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { createLocalJWKSet, exportJWK, generateKeyPair, errors as joseErrors, jwtVerify } from 'jose';
import Provider, {
  type Adapter,
  type AdapterFactory,
  type AdapterPayload,
  type ClientLike,
  type Configuration,
  type Grant,
  type KoaContextWithOIDC,
  type TokenLike,
} from 'oidc-provider';
import * as z from 'zod';

export interface ProtectedUpstream {
  /** The AS issuer (http://127.0.0.1:<port>), with RFC 8414 metadata at /.well-known/oauth-authorization-server and OIDC discovery. */
  issuer: string;
  /** The MCP endpoint (Streamable HTTP, stateless) on its own loopback port: http://127.0.0.1:<port>/mcp */
  mcpUrl: string;
  clientId: string;
  /** Confidential client: client_secret_basic and client_secret_post are both accepted. */
  clientSecret: string;
  /** Registers a redirect URI for the client; authorization requests fail with invalid_client until one is. */
  allowRedirect(uri: string): void;
  /** Who logs in at the AS next (the AS auto-logs-in and auto-consents: no pages). Default 'alice-upstream'. */
  setAccount(sub: string): void;
  /** Make the AS refuse the next authorization with access_denied. */
  denyNext(): void;
  /** Every tools/call the MCP server ran: the token's sub, the tool, and the bearer token's jti. */
  readonly calls: Array<{ sub: string; tool: string; jti: string }>;
  /** How many access tokens the token endpoint issued by grant type. */
  readonly issued: { authorization_code: number; refresh_token: number };
  /** Revoke every token issued so far: the MCP server answers 401 to them and refresh fails with invalid_grant. */
  revokeAll(): void;
  close(): Promise<void>;
}

const CLIENT_ID = 'warden-upstream';
const DEFAULT_ACCOUNT = 'alice-upstream';
const OIDC_SCOPES = ['openid', 'offline_access'];
const RESOURCE_SCOPES = ['tools:read', 'tools:call'];
/** Models revokeAll forgets; Client and Session are not credentials a client holds. */
const REVOCABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'Grant']);

interface Entry {
  payload: AdapterPayload;
  expiresAt: number;
}

/** oidc-provider's storage in one Map of this upstream (the built-in adapter is shared by every Provider in the process). */
function mapAdapter(
  store: Map<string, Entry>,
  findClient: (id: string) => AdapterPayload | undefined,
): AdapterFactory {
  return (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`;
    const find = async (id: string) => {
      if (model === 'Client') return findClient(id);
      const e = store.get(key(id));
      if (e === undefined || e.expiresAt <= Date.now()) return undefined;
      return e.payload;
    };
    const findWhere = async (field: 'uid' | 'userCode', value: string) => {
      for (const [k, e] of store) {
        if (k.startsWith(`${model}:`) && e.payload[field] === value && e.expiresAt > Date.now())
          return e.payload;
      }
      return undefined;
    };
    return {
      async upsert(id, payload, expiresIn) {
        const expiresAt =
          typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY;
        store.set(key(id), { payload, expiresAt });
      },
      find,
      findByUid: (uid) => findWhere('uid', uid),
      findByUserCode: (userCode) => findWhere('userCode', userCode),
      async consume(id) {
        const e = store.get(key(id));
        if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        store.delete(key(id));
      },
      // oidc-provider calls this when a code or a rotated refresh token is replayed.
      async revokeByGrantId(grantId) {
        for (const [k, e] of store) if (e.payload.grantId === grantId) store.delete(k);
      },
    };
  };
}

/** Listens on an ephemeral loopback port; resolves with the port. */
async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return (server.address() as AddressInfo).port;
}

async function shut(server: Server): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    // Keep-alive sockets of clients would otherwise hold close() open.
    server.closeAllConnections();
  });
}

/** The 401 of RFC 6750 §3 (with RFC 9728's resource_metadata); no error code when no token was sent. */
function unauthorized(metadataUrl: string, description?: string): Response {
  const params = [`resource_metadata="${metadataUrl}"`];
  if (description !== undefined)
    params.unshift('error="invalid_token"', `error_description="${description}"`);
  return Response.json(
    { error: description === undefined ? 'unauthorized' : 'invalid_token' },
    { status: 401, headers: { 'WWW-Authenticate': `Bearer ${params.join(', ')}` } },
  );
}

/** Why a bearer token was refused, in a fixed phrase (never the token or the verifier's message). */
function refusal(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'token expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return 'token audience is not this resource';
    if (e.claim === 'iss') return 'token issuer is not trusted';
  }
  return 'token invalid';
}

/** Starts the authorization server and the MCP server it protects, each on its own loopback port. */
export async function startProtectedUpstream(
  opts: { accessTokenTtlS?: number } = {},
): Promise<ProtectedUpstream> {
  const accessTokenTtl = opts.accessTokenTtlS ?? 60;
  const clientSecret = randomBytes(32).toString('base64url');
  const redirectUris: string[] = [];
  const idp = { account: DEFAULT_ACCOUNT, deny: false };
  const calls: ProtectedUpstream['calls'] = [];
  const issued = { authorization_code: 0, refresh_token: 0 };
  const store = new Map<string, Entry>();
  const issuedJtis = new Set<string>();
  const revokedJtis = new Set<string>();

  const asServer = createServer();
  const asPort = await listen(asServer);
  const issuer = `http://127.0.0.1:${asPort}`;

  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = 'upstream-as-1';
  const jwks = createLocalJWKSet({
    keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }],
  });

  // The MCP server's handler needs mcpUrl, known only once it listens.
  let mcpUrl = '';
  let metadataUrl = '';

  /** The bearer token's subject and id, or the 401 to answer. */
  async function authenticate(req: Request): Promise<{ sub: string; jti: string } | { refused: Response }> {
    const header = req.headers.get('authorization') ?? '';
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(header);
    if (match?.[1] === undefined) return { refused: unauthorized(metadataUrl) };
    try {
      const { payload, protectedHeader } = await jwtVerify(match[1], jwks, {
        issuer,
        audience: mcpUrl,
        algorithms: ['ES256'],
      });
      // RFC 9068 §4: an ID token of the same AS is not an access token.
      if (protectedHeader.typ !== 'at+jwt') return { refused: unauthorized(metadataUrl, 'token invalid') };
      const { sub, jti } = payload;
      if (typeof sub !== 'string' || typeof jti !== 'string') {
        return { refused: unauthorized(metadataUrl, 'token invalid') };
      }
      if (revokedJtis.has(jti)) return { refused: unauthorized(metadataUrl, 'token revoked') };
      return { sub, jti };
    } catch (e) {
      return { refused: unauthorized(metadataUrl, refusal(e)) };
    }
  }

  function toolServer(who: { sub: string; jti: string }): McpServer {
    const server = new McpServer({ name: 'protected-upstream', version: '1.0.0' });
    server.registerTool('whoami', { description: 'The subject of the access token.' }, async () => {
      calls.push({ sub: who.sub, tool: 'whoami', jti: who.jti });
      return { content: [{ type: 'text', text: who.sub }] };
    });
    server.registerTool(
      'echo',
      { description: 'Returns its text.', inputSchema: { text: z.string() } },
      async ({ text }) => {
        calls.push({ sub: who.sub, tool: 'echo', jti: who.jti });
        return { content: [{ type: 'text', text }] };
      },
    );
    return server;
  }

  async function mcpFetch(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    if (
      path === '/.well-known/oauth-protected-resource/mcp' ||
      path === '/.well-known/oauth-protected-resource'
    ) {
      return Response.json({
        resource: mcpUrl,
        authorization_servers: [issuer],
        scopes_supported: RESOURCE_SCOPES,
        bearer_methods_supported: ['header'],
      });
    }
    if (path !== '/mcp') return new Response('not found', { status: 404 });
    const who = await authenticate(req);
    // Not `instanceof Response`: @hono/node-server replaces the global Response class.
    if ('refused' in who) return who.refused;
    // Stateless: a transport serves one request, so each request gets its own server.
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    await toolServer(who).connect(transport);
    return transport.handleRequest(req);
  }

  const mcp = await new Promise<{ server: Server; port: number }>((resolve, reject) => {
    const s = serve({ fetch: mcpFetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
      resolve({ server: s as Server, port: info.port }),
    );
    s.once('error', reject);
  });
  mcpUrl = `http://127.0.0.1:${mcp.port}/mcp`;
  metadataUrl = `http://127.0.0.1:${mcp.port}/.well-known/oauth-protected-resource/mcp`;

  // The client lives in the adapter, not in `clients`, so redirect URIs can be added after start.
  const findClient = (id: string): AdapterPayload | undefined =>
    id === CLIENT_ID && redirectUris.length > 0
      ? {
          client_id: CLIENT_ID,
          client_secret: clientSecret,
          token_endpoint_auth_method: 'client_secret_basic',
          redirect_uris: [...redirectUris],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          id_token_signed_response_alg: 'ES256',
        }
      : undefined;

  const config: Configuration & {
    expiresWithSession: () => Promise<boolean>;
    claims: Record<string, string[]>;
  } = {
    adapter: mapAdapter(store, findClient),
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' }] },
    pkce: { required: () => true },
    // Only the OIDC scopes: listed here, tools:* would count as OIDC scopes the consent
    // must grant as such (the resource server's scopes come from getResourceServerInfo).
    scopes: OIDC_SCOPES,
    claims: { openid: ['sub'] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => mcpUrl,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: RESOURCE_SCOPES.join(' '),
          audience: mcpUrl,
          accessTokenFormat: 'jwt',
          accessTokenTTL: accessTokenTtl,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    // By default a refresh token also needs the offline_access scope (an OIDC scope that
    // OAuth-only clients such as MCP clients do not ask for, and that oidc-provider drops
    // when `prompt` lacks consent); here the client's refresh_token grant is enough.
    issueRefreshToken: async (_ctx: KoaContextWithOIDC, client: ClientLike) =>
      client.grantTypeAllowed?.('refresh_token') ?? false,
    // The default rotates only public clients' tokens (or at 70% of their lifetime); always rotate.
    rotateRefreshToken: true,
    // By default tokens without offline_access die with the AS login session; the session is
    // irrelevant here (each authorization logs in afresh), so tokens outlive it.
    expiresWithSession: async () => false,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 600,
      RefreshToken: 24 * 3600,
      Grant: 24 * 3600,
      Interaction: 600,
      Session: 600,
    },
    // Error pages as JSON, so a failing test shows the AS's error and description.
    renderError: async (ctx: KoaContextWithOIDC, out: Record<string, unknown>) => {
      ctx.body = out;
    },
    interactions: { url: (_ctx: KoaContextWithOIDC, i: { uid: string }) => `/interaction/${i.uid}` },
    findAccount: async (_ctx: KoaContextWithOIDC, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub }),
    }),
  };

  const provider = new Provider(issuer, config);
  provider.on('access_token.issued', (token) => {
    const { jti } = token as TokenLike;
    if (jti !== undefined) issuedJtis.add(jti);
  });
  provider.on('grant.success', (ctx) => {
    const gty = (ctx as KoaContextWithOIDC).oidc.params.grant_type;
    if (gty === 'authorization_code' || gty === 'refresh_token') issued[gty]++;
  });
  const handle = provider.callback();

  async function interact(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (idp.deny) {
      idp.deny = false;
      const result = { error: 'access_denied', error_description: 'The user refused the authorization' };
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    }
    const requested = String(details.params.scope ?? '')
      .split(' ')
      .filter((s) => s !== '');
    const grant = new provider.Grant({
      accountId: idp.account,
      clientId: String(details.params.client_id),
    }) as Grant & { addOIDCScope(scope: string): void };
    const oidcScopes = requested.filter((s) => OIDC_SCOPES.includes(s));
    if (oidcScopes.length > 0) grant.addOIDCScope(oidcScopes.join(' '));
    const resourceScopes = requested.filter((s) => RESOURCE_SCOPES.includes(s));
    if (resourceScopes.length > 0) grant.addResourceScope(mcpUrl, resourceScopes.join(' '));
    const result = { login: { accountId: idp.account }, consent: { grantId: await grant.save() } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  asServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // A new authorization request forgets the AS login session the browser carries, so
    // it logs in whoever setAccount named (an existing session would skip the login or,
    // for another account, stop at a logout confirmation page). The AS then sets a fresh
    // session cookie, which the rest of this authorization (resume) uses.
    if (req.headers.cookie !== undefined && (req.url === '/auth' || req.url?.startsWith('/auth?'))) {
      req.headers.cookie = req.headers.cookie
        .split(';')
        .filter((c) => !c.trim().startsWith('_session'))
        .join(';');
    }
    if (!req.url?.startsWith('/interaction/')) return void handle(req, res);
    interact(req, res).catch((e: unknown) => {
      res.statusCode = 500;
      res.end(String(e));
    });
  });

  return {
    issuer,
    mcpUrl,
    clientId: CLIENT_ID,
    clientSecret,
    allowRedirect(uri: string) {
      if (!redirectUris.includes(uri)) redirectUris.push(uri);
    },
    setAccount(sub: string) {
      idp.account = sub;
    },
    denyNext() {
      idp.deny = true;
    },
    calls,
    issued,
    revokeAll() {
      for (const jti of issuedJtis) revokedJtis.add(jti);
      for (const k of store.keys()) if (REVOCABLE.has(k.slice(0, k.indexOf(':')))) store.delete(k);
    },
    async close() {
      await Promise.all([shut(asServer), shut(mcp.server)]);
    },
  };
}
