/**
 * The oidc-provider configuration: agents use client_credentials with
 * private_key_jwt only; users delegate through authorization code + PKCE
 * (delegated.ts). Resource indicators are pinned to the gateway, access tokens
 * are JWTs in the exact format TokenService issues, and every feature Warden
 * does not use is turned off (a feature that is off is an attack surface that is not there).
 */
import type { JWK } from 'jose';
import Provider, {
  type AdapterPayload,
  type ClientLike,
  type Configuration,
  errors,
  type KoaContextWithOIDC,
  type TokenLike,
} from 'oidc-provider';
import type { TokenConfig } from '../config/types.js';
import { isWardenError } from '../errors.js';
import {
  type Agent,
  type AgentRegistry,
  grantScopes,
  type Session,
  type SigningAlg,
  type SubjectTokenVerifier,
  scopesFor,
  type TokenService,
} from '../identity/index.js';
import type { Store } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';
import { createAdapterFactory } from './adapter.js';
import {
  checkRegistration,
  clientKind,
  consentPolicy,
  DELEGATED_AUTH_METHODS,
  type DelegationDeps,
  delegatedResourceScopes,
  mayFetchMetadataDocument,
  metadataFetch,
  safeRedirectUri,
} from './delegated.js';
import { clientMayAct, userMayDelegate } from './grants.js';
import { CLIENT_ASSERTION_ALGS, TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT } from './metadata.js';

/** What the provider needs from Warden. */
export interface ProviderDeps {
  store: Store;
  agents: AgentRegistry;
  tokens: TokenService;
  config: { issuer: string; audience: string; tokens: TokenConfig; trustProxy?: boolean };
  clock?: Clock;
  /** External identity providers' user tokens, for the token-exchange grant; absent = grant off. */
  subjectTokens?: SubjectTokenVerifier;
  /** Users' delegated logins (authorization code + PKCE); absent = agents only. */
  delegation?: DelegationDeps & {
    /** Where the login and consent pages live (`/oauth/interaction`). */
    interactionPath: string;
    /** oidc-provider revoked a grant's tokens (a code or refresh token was replayed). */
    onGrantRevoked(grantId: string): Promise<void>;
  };
}

/** The keys one provider instance is built with (oidc-provider reads `jwks` only at construction). */
export interface ProviderKeys {
  jwks: { keys: JWK[] };
  activeKid: string;
  alg: SigningAlg;
}

/** Client assertions live at most this long (RFC 7523 leaves it to the server; short limits a leak). */
const MAX_ASSERTION_LIFETIME_S = 5 * 60;

/** Resource indicators compare as parsed URLs, so `https://gw` and `https://gw/` are the same resource (RFC 8707 §2). */
function sameResource(a: string, b: string): boolean {
  const pa = URL.parse(a);
  const pb = URL.parse(b);
  return pa !== null && pb !== null && pa.href === pb.href;
}

/** client_credentials metadata for an agent; none (→ invalid_client) without a registered public key. */
function clientMetadata(agent: Agent, alg: SigningAlg, tokenExchange: boolean): AdapterPayload | undefined {
  if (!agent.publicJwk) return undefined;
  return {
    client_id: agent.id,
    token_endpoint_auth_method: 'private_key_jwt',
    ...(agent.publicJwk.alg ? { token_endpoint_auth_signing_alg: agent.publicJwk.alg } : {}),
    jwks: { keys: [agent.publicJwk] },
    grant_types: ['client_credentials', ...(tokenExchange ? [TOKEN_EXCHANGE] : [])],
    response_types: [],
    redirect_uris: [],
    // oidc-provider defaults this to RS256; with only EdDSA/ES256 keys the client would be rejected.
    id_token_signed_response_alg: alg,
  };
}

/** Maps a Warden refusal while opening the session to the OAuth error the client sees (RFC 6749 §5.2). */
function toOAuthError(e: unknown): unknown {
  if (isWardenError(e) && e.rule === 'token.scope-not-allowed') {
    return new errors.InvalidScope('requested scope is not allowed');
  }
  if (isWardenError(e, 'SESSION_LIMIT_EXCEEDED')) {
    return new errors.InvalidRequest('concurrent session limit reached for this agent');
  }
  if (isWardenError(e, 'CLIENT_IP_DENIED')) {
    return new errors.UnauthorizedClient('token requests from this address are not allowed for this client');
  }
  if (isWardenError(e, 'AGENT_UNKNOWN', 'AGENT_DISABLED', 'AGENT_KILLED', 'AGENT_EXPIRED')) {
    return new errors.InvalidClientAuth(e.detail);
  }
  return e; // anything else is a server error: fail closed, no token
}

/**
 * The session an access token from a user's grant is bound to: the grant must
 * still stand (not revoked, same client and user), the user must still be able
 * to log in, and the agent must still accept the client and the user. The
 * session gets the grant's scopes the agent may still hold — never more.
 */
async function openDelegatedSession(
  ctx: KoaContextWithOIDC,
  token: TokenLike,
  deps: ProviderDeps,
  delegation: NonNullable<ProviderDeps['delegation']>,
  ttlSeconds: number,
): Promise<{ agent: Agent; session: Session }> {
  const { grantId, accountId: userId, clientId } = token;
  const client = ctx.oidc.client;
  if (!grantId || !userId || !clientId || !client)
    throw new errors.InvalidGrant('no grant behind this token');
  const grant = await delegation.grants.get(grantId);
  if (!grant || grant.revokedAt !== null || grant.clientId !== clientId || grant.userId !== userId) {
    throw new errors.InvalidGrant('the grant was revoked');
  }
  if (!(await delegation.users.find(userId))) throw new errors.InvalidGrant('the user can no longer log in');
  const agent = await deps.agents.get(grant.agentId);
  const kind = clientKind(client);
  if (
    !agent ||
    kind === 'agent' ||
    !clientMayAct(agent.delegation, { clientId, kind }) ||
    !userMayDelegate(agent.delegation, userId)
  ) {
    throw new errors.InvalidGrant('the agent no longer accepts this client or user');
  }
  const wanted = (token.scope ?? '').split(' ').filter((s) => grant.scopes.includes(s));
  const { granted } = grantScopes(agent, scopesFor(agent), wanted, userId);
  let result: { agent: Agent; session: Session };
  try {
    result = await deps.tokens.openSession(agent.id, {
      issuedVia: 'authorization_code',
      ttlMs: ttlSeconds * 1000,
      clientIp: ctx.ip,
      userId,
      grantId,
      scopes: granted,
    });
  } catch (e) {
    throw toOAuthError(e);
  }
  if (!(await delegation.grants.confirmSession(grantId, result.session.id))) {
    throw new errors.InvalidGrant('the grant was revoked');
  }
  await delegation.grants.touch(grantId);
  return result;
}

/** Builds a Provider for `issuer` signing with `keys`. */
export function buildProvider(deps: ProviderDeps, keys: ProviderKeys): Provider {
  const { issuer, audience, tokens: tokenConfig } = deps.config;
  const clock = deps.clock ?? systemClock;
  const ttlSeconds = Math.floor(Math.min(tokenConfig.ttlMs, deps.tokens.maxTtlMs) / 1000);
  const skewSeconds = Math.floor(tokenConfig.clockSkewMs / 1000);
  const delegation = deps.delegation;
  const secure = new URL(issuer).protocol === 'https:';
  // Cookies a browser scopes to this exact origin (`__Host-`: Secure, Path=/, no Domain) when the
  // issuer is https; the path-scoped interaction cookies can only be `__Secure-`.
  const cookiePrefix = (host: boolean) => (secure ? (host ? '__Host-' : '__Secure-') : '');
  // The session opened while a token is minted, found again when its claims are finalised.
  const opened = new WeakMap<TokenLike, { agent: Agent; session: Session }>();

  const configuration: Configuration = {
    adapter: createAdapterFactory({
      store: deps.store,
      agents: deps.agents,
      clientMetadata: (agent) => clientMetadata(agent, keys.alg, deps.subjectTokens?.enabled === true),
      clock,
      ...(delegation
        ? { onGrantRevoked: (id: string) => delegation.onGrantRevoked(id), checkRegistration }
        : {}),
    }),
    jwks: keys.jwks,
    clients: [],
    // Agents' metadata is explicit (clientMetadata above): these defaults are for registered clients.
    clientDefaults: delegation
      ? {
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
          id_token_signed_response_alg: keys.alg,
        }
      : {
          grant_types: ['client_credentials'],
          response_types: [],
          token_endpoint_auth_method: 'private_key_jwt',
          id_token_signed_response_alg: keys.alg,
        },
    clientAuthMethods: ['private_key_jwt', ...(delegation ? DELEGATED_AUTH_METHODS : [])],
    clockTolerance: skewSeconds,
    // Authorization code only: no implicit, no hybrid, no `none` (OAuth 2.1).
    responseTypes: delegation ? ['code'] : [],
    // PKCE on every authorization request; oidc-provider knows S256 only (no `plain`).
    pkce: { required: () => true },
    // OAuth 2.1: the token request repeats the redirect_uri it was issued for.
    allowOmittingSingleRegisteredRedirectUri: false,
    // No OIDC scopes: no openid, no offline_access. Refresh tokens go to registered clients
    // that asked for the grant type (issueRefreshToken), and are rotated on every use.
    scopes: [],
    ...(delegation
      ? {
          // Left at its default without delegation, so the refresh_token grant stays unregistered.
          issueRefreshToken: async (_ctx: KoaContextWithOIDC, client: ClientLike) =>
            clientKind(client) !== 'agent' && client.grantTypeAllowed?.('refresh_token') === true,
          rotateRefreshToken: true,
          interactions: {
            url: (_ctx: KoaContextWithOIDC, interaction: { uid: string }) =>
              `${delegation.interactionPath}/${interaction.uid}`,
            policy: consentPolicy(delegation),
          },
          cookies: {
            names: {
              session: `${cookiePrefix(true)}warden-oauth-session`,
              interaction: `${cookiePrefix(false)}warden-interaction`,
              resume: `${cookiePrefix(false)}warden-interaction-resume`,
            },
            long: { httpOnly: true, sameSite: 'lax', secure },
            short: { httpOnly: true, sameSite: 'lax', secure },
          },
          fetchResponseBodyLimits: { 'client_id metadata document': 5 * 1024 },
          fetch: metadataFetch(delegation),
          async findAccount(_ctx: KoaContextWithOIDC, sub: string) {
            const user = await delegation.users.find(sub);
            if (!user) return undefined;
            return { accountId: user.id, claims: async () => ({ sub: user.id }) };
          },
        }
      : {}),
    enabledJWA: {
      clientAuthSigningAlgValues: [...CLIENT_ASSERTION_ALGS],
      idTokenSigningAlgValues: ['EdDSA', 'ES256'],
    },
    routes: { authorization: '/authorize', registration: '/register', token: '/token', jwks: '/jwks' },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => audience,
        // One resource only: a code or refresh token is always for the resource it was granted for.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx: KoaContextWithOIDC, resource: string, client: ClientLike) => {
          if (!sameResource(resource, audience)) throw new errors.InvalidTarget();
          if (delegation && clientKind(client) !== 'agent') {
            const { scopes, refused } = await delegatedResourceScopes(ctx, client, {
              ...delegation,
              agents: deps.agents,
              now: clock.now(),
            });
            if (refused.length > 0 && ctx.oidc.route !== 'token') {
              throw new errors.InvalidScope(
                'requested scope is not allowed',
                refused.join(' ').slice(0, 1000),
              );
            }
            // No scope requested: the consent page offers what the chosen agent may hold for the
            // user who logs in, and writes that into the request (interaction.ts, consentPost).
            return {
              scope: scopes.join(' '),
              audience,
              accessTokenFormat: 'jwt',
              accessTokenTTL: ttlSeconds,
              jwt: { sign: { alg: keys.alg, kid: keys.activeKid } },
            };
          }
          const agent = await deps.agents.get(client.clientId);
          const requested = ctx.oidc.params.scope;
          const asked = typeof requested === 'string' ? requested.split(' ') : undefined;
          // Tool scopes from the allowed tools; resource scopes (orders:read:user:usr_abc) when one
          // of the agent's patterns covers them. TokenService.openSession checks the same again.
          const { granted, refused } = agent
            ? grantScopes(agent, scopesFor(agent), asked)
            : { granted: [], refused: asked ?? [] };
          if (refused.length > 0) {
            throw new errors.InvalidScope('requested scope is not allowed', refused.join(' ').slice(0, 1000));
          }
          // Absent scope = everything the agent may have outright (the grant filters to what is requested).
          if (asked === undefined && granted.length > 0) ctx.oidc.params.scope = granted.join(' ');
          return {
            scope: granted.join(' '),
            audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: ttlSeconds,
            jwt: { sign: { alg: keys.alg, kid: keys.activeKid } },
          };
        },
      },
      dPoP: { enabled: false },
      userinfo: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      introspection: { enabled: false },
      revocation: { enabled: false },
      registration: delegation?.config.registration
        ? { enabled: true, initialAccessToken: false, issueRegistrationAccessToken: false }
        : { enabled: false },
      clientIdMetadataDocument: delegation?.config.clientMetadataDocuments
        ? {
            enabled: true,
            ack: 'draft-02',
            allowFetch: (_ctx: KoaContextWithOIDC, id: string) =>
              mayFetchMetadataDocument(deps.agents, id, clock.now()),
            // Public clients only: a document anyone can read cannot hold a secret, and a
            // metadata-document client must never pass for an agent (private_key_jwt).
            allowClient: async (_ctx: KoaContextWithOIDC, client: ClientLike) =>
              client.clientAuthMethod === 'none' &&
              (client.redirectUris?.length ?? 0) > 0 &&
              (client.redirectUris ?? []).every(safeRedirectUri) &&
              (client.grantTypeAllowed?.('client_credentials') ?? false) === false,
          }
        : { enabled: false },
      deviceFlow: { enabled: false },
      claimsParameter: { enabled: false },
      requestObjects: { enabled: false },
      encryption: { enabled: false },
      backchannelLogout: { enabled: false },
      ciba: { enabled: false },
      jwtIntrospection: { enabled: false },
      jwtResponseModes: { enabled: false },
    },
    ttl: {
      ClientCredentials: () => ttlSeconds,
      AccessToken: () => ttlSeconds,
      AuthorizationCode: () => 60,
      Interaction: () => 10 * 60,
      Session: () => Math.floor((delegation?.config.loginSessionTtlMs ?? 3_600_000) / 1000),
      Grant: () => Math.floor((delegation?.config.grantTtlMs ?? 0) / 1000) || 1,
      // Never beyond the grant: a refresh token outliving its consent would extend it.
      RefreshToken: (ctx: KoaContextWithOIDC) => {
        const max = Math.floor((delegation?.config.refreshTokenTtlMs ?? 0) / 1000) || 1;
        const grantExp = ctx.oidc.entities.Grant?.exp;
        const left = typeof grantExp === 'number' ? grantExp - Math.floor(Date.now() / 1000) : max;
        return Math.max(1, Math.min(max, left));
      },
    },
    ...(delegation ? {} : { findAccount: async () => undefined }),
    async assertJwtClientAuthClaimsAndHeader(_ctx, claims) {
      const exp = claims.exp;
      if (
        typeof exp !== 'number' ||
        exp - Math.floor(clock.now() / 1000) > MAX_ASSERTION_LIFETIME_S + skewSeconds
      ) {
        throw new errors.InvalidClientAuth('client assertion expires too far in the future');
      }
    },
    async extraTokenClaims(ctx, token) {
      if (token.kind === 'AccessToken' && delegation) {
        const result = await openDelegatedSession(ctx, token, deps, delegation, ttlSeconds);
        opened.set(token, result);
        return undefined;
      }
      if (token.kind !== 'ClientCredentials' || !token.clientId) return undefined;
      let result: { agent: Agent; session: Session };
      try {
        result = await deps.tokens.openSession(token.clientId, {
          issuedVia: 'client_credentials',
          ttlMs: ttlSeconds * 1000,
          clientIp: ctx.ip,
          scopes: token.scope ? token.scope.split(' ') : [],
        });
      } catch (e) {
        throw toOAuthError(e);
      }
      opened.set(token, result);
      const claims = deps.tokens.claimsFor(result.agent, result.session, '');
      return { sid: claims.sid, cnst: claims.cnst, agent_type: claims.agent_type };
    },
    formats: {
      customizers: {
        // One format for both issuing paths: the claims come from TokenService.claimsFor,
        // with iat/exp taken from the session row rather than the provider's own clock.
        jwt(_ctx, token, jwt) {
          const entry = opened.get(token);
          if (!entry || typeof jwt.payload.jti !== 'string')
            throw new Error('JWT access token without a session');
          jwt.payload = { ...deps.tokens.claimsFor(entry.agent, entry.session, jwt.payload.jti) };
        },
      },
    },
    async renderError(ctx, out) {
      // JSON even for browsers: no HTML error page to style or to inject into.
      ctx.status = ctx.status >= 400 ? ctx.status : 500;
      ctx.body = out;
    },
  };

  const provider = new Provider(issuer, configuration);
  provider.proxy = deps.config.trustProxy === true;
  const subjectTokens = deps.subjectTokens;
  if (subjectTokens?.enabled) {
    provider.registerGrantType(
      TOKEN_EXCHANGE,
      (ctx) => exchange(ctx, { ...deps, subjectTokens }, ttlSeconds, audience),
      [
        'subject_token',
        'subject_token_type',
        'actor_token',
        'actor_token_type',
        'requested_token_type',
        'resource',
        'audience',
        'scope',
      ],
    );
  }
  return provider;
}

/**
 * RFC 8693 token exchange: the authenticated client (an agent, private_key_jwt) presents
 * a user's token from a trusted identity provider and gets a session token acting for
 * that user — `sub` the user, `act.sub` the agent — no longer than the user's own token
 * lives. The agent must be named by the user token's `may_act` or listed as an actor.
 */
async function exchange(
  ctx: KoaContextWithOIDC,
  deps: ProviderDeps & { subjectTokens: SubjectTokenVerifier },
  ttlSeconds: number,
  audience: string,
): Promise<void> {
  const clientId = ctx.oidc.client?.clientId;
  if (!clientId) throw new errors.InvalidClientAuth('no client');
  const p = ctx.oidc.params;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const subjectType = str(p.subject_token_type);
  if (subjectType !== TOKEN_TYPE_JWT && subjectType !== TOKEN_TYPE_ACCESS) {
    throw new errors.InvalidRequest(`subject_token_type must be ${TOKEN_TYPE_JWT} or ${TOKEN_TYPE_ACCESS}`);
  }
  if (typeof p.subject_token !== 'string' || p.subject_token === '') {
    throw new errors.InvalidRequest('subject_token is required');
  }
  if (p.actor_token !== undefined) {
    throw new errors.InvalidRequest('actor_token is not accepted: the authenticated client is the actor');
  }
  const requested = str(p.requested_token_type);
  if (requested !== undefined && requested !== TOKEN_TYPE_ACCESS) {
    throw new errors.InvalidRequest(`requested_token_type must be ${TOKEN_TYPE_ACCESS}`);
  }
  for (const target of [p.resource, p.audience]) {
    if (target === undefined) continue;
    // One resource only, and it is Warden: never an audience-less or foreign token.
    if (typeof target !== 'string' || !sameResource(target, audience)) throw new errors.InvalidTarget();
  }
  let user: Awaited<ReturnType<SubjectTokenVerifier['verify']>>;
  try {
    user = await deps.subjectTokens.verify(str(p.subject_token) ?? '', clientId);
  } catch (e) {
    throw isWardenError(e) ? new errors.InvalidGrant(e.message) : e;
  }
  const clock = deps.clock ?? systemClock;
  const ttlMs = Math.min(ttlSeconds * 1000, user.expiresAt - clock.now());
  if (ttlMs < 1000) throw new errors.InvalidGrant('subject_token expires too soon');
  const scope = str(p.scope);
  let opened: { agent: Agent; session: Session };
  try {
    opened = await deps.tokens.openSession(clientId, {
      issuedVia: 'token_exchange',
      ttlMs,
      clientIp: ctx.ip,
      userId: user.userId,
      ...(scope === undefined ? {} : { scopes: scope.split(' ').filter(Boolean) }),
    });
  } catch (e) {
    throw toOAuthError(e);
  }
  const token = await deps.tokens.tokenFor(opened.agent, opened.session);
  ctx.set('cache-control', 'no-store');
  ctx.body = {
    access_token: token,
    issued_token_type: TOKEN_TYPE_ACCESS,
    token_type: 'Bearer',
    expires_in: Math.max(0, Math.floor((opened.session.expiresAt - clock.now()) / 1000)),
    scope: opened.session.scopes.join(' '),
  };
}
