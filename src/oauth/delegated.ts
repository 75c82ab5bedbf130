/**
 * Delegated logins (issue #6): the part of the provider configuration that
 * lets a user, through an OAuth client such as a stock MCP client, grant an
 * agent access on their behalf — authorization code + PKCE (S256 only),
 * dynamic client registration, client ID metadata documents, refresh-token
 * rotation, and the session every access token is bound to (`sub` the user,
 * `act.sub` the agent).
 */
import type { AdapterPayload, ClientLike, KoaContextWithOIDC } from 'oidc-provider';
import { errors, interactionPolicy } from 'oidc-provider';
import type { OAuthConfig } from '../config/types.js';
import {
  type Agent,
  type AgentRegistry,
  ANY_USER,
  grantScopes,
  isClientIdUrl,
  scopesFor,
} from '../identity/index.js';
import { agentsForClient, type DelegatingClient, type UserGrants, userMayDelegate } from './grants.js';

/** Who may log in and hold grants: an active embedded user, or a user of a configured identity provider. */
export interface UserDirectory {
  find(userId: string): Promise<{ id: string; displayName: string } | undefined>;
}

/** What the delegated half of the provider needs. */
export interface DelegationDeps {
  grants: UserGrants;
  users: UserDirectory;
  config: OAuthConfig;
  /** Replaces the fetch oidc-provider uses for client metadata documents (tests: a private CA). */
  fetch?: typeof fetch;
}

/** Token endpoint authentication a registered (public or confidential) client may use. */
export const DELEGATED_AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post'];
const DELEGATED_GRANTS = new Set(['authorization_code', 'refresh_token']);

/** How Warden knows a client: an agent (private_key_jwt), a registered client, or a metadata document. */
export function clientKind(client: ClientLike): 'agent' | DelegatingClient['kind'] {
  if (client.clientIdMetadataDocument === true) return 'metadata-document';
  if (client.clientAuthMethod === 'private_key_jwt') return 'agent';
  return 'dynamic';
}

/**
 * Refuses registrations that could be mistaken for an agent or do more than
 * log users in: only authorization_code (+ refresh_token), only `code`, only
 * public or secret-based authentication. Throws the RFC 7591 error.
 */
export function checkRegistration(payload: AdapterPayload): void {
  const grants = (payload.grant_types as string[] | undefined) ?? [];
  const bad = grants.filter((g) => !DELEGATED_GRANTS.has(g));
  if (bad.length > 0) {
    throw new errors.InvalidClientMetadata(
      `grant_types may only be authorization_code and refresh_token (got ${bad.join(', ')})`,
    );
  }
  const responses = (payload.response_types as string[] | undefined) ?? [];
  if (responses.some((r) => r !== 'code')) {
    throw new errors.InvalidClientMetadata('response_types may only be code');
  }
  const method = payload.token_endpoint_auth_method;
  if (typeof method !== 'string' || !DELEGATED_AUTH_METHODS.includes(method)) {
    throw new errors.InvalidClientMetadata(
      `token_endpoint_auth_method must be one of ${DELEGATED_AUTH_METHODS.join(', ')}`,
    );
  }
  const uris = (payload.redirect_uris as string[] | undefined) ?? [];
  if (uris.length === 0) throw new errors.InvalidRedirectUri('redirect_uris is required');
  const clear = uris.find((u) => !safeRedirectUri(u));
  if (clear !== undefined) {
    throw new errors.InvalidRedirectUri(
      'redirect_uris must be https, a loopback http address, or an app scheme',
    );
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * A redirect URI a code may travel to: https, http only to this machine (RFC 8252 §7.3), or a
 * private-use app scheme (RFC 8252 §7.1) — never plain http across the network.
 */
export function safeRedirectUri(uri: string): boolean {
  const url = URL.parse(uri);
  if (!url) return false;
  if (url.hash !== '' || url.username !== '' || url.password !== '') return false;
  if (url.protocol === 'https:') return true;
  if (url.protocol === 'http:') return LOOPBACK_HOSTS.has(url.hostname);
  return /^[a-z][a-z0-9+.-]*:$/i.test(url.protocol) && !UNSAFE_SCHEMES.has(url.protocol.toLowerCase());
}

/** Schemes that run code or reach places a code must not go. */
const UNSAFE_SCHEMES = new Set([
  'javascript:',
  'data:',
  'file:',
  'blob:',
  'vbscript:',
  'about:',
  'ws:',
  'wss:',
  'ftp:',
]);

/**
 * The scopes a delegated client may be granted for Warden: at the token
 * endpoint those of the grant's agent; before consent (the authorization
 * endpoint), those of every agent the client may act as. Resource scopes
 * count only when requested and covered by one of the agents' patterns.
 */
export async function delegatedResourceScopes(
  ctx: KoaContextWithOIDC,
  client: ClientLike,
  deps: DelegationDeps & { agents: AgentRegistry; now: number },
): Promise<{ scopes: string[]; refused: string[]; asked: string[] | undefined }> {
  const requested = ctx.oidc.params.scope;
  const asked = typeof requested === 'string' ? requested.split(' ').filter(Boolean) : undefined;
  const source = ctx.oidc.entities.AuthorizationCode ?? ctx.oidc.entities.RefreshToken;
  let agents: Agent[];
  if (source?.grantId) {
    // The token endpoint: what the user consented to, as far as the agent may still hold it.
    const grant = await deps.grants.get(source.grantId);
    const agent = grant && grant.revokedAt === null ? await deps.agents.get(grant.agentId) : undefined;
    if (!grant || !agent) return { scopes: [], refused: asked ?? [], asked };
    const { granted } = grantScopes(agent, scopesFor(agent), grant.scopes, grant.userId);
    return { scopes: granted, refused: [], asked };
  } else {
    const kind = clientKind(client);
    if (kind === 'agent') return { scopes: [], refused: asked ?? [], asked };
    agents = agentsForClient(await deps.agents.list(), { clientId: client.clientId, kind }, deps.now);
  }
  const scopes = new Set<string>();
  const covered = new Set<string>();
  for (const agent of agents) {
    // Before login nobody is known: `{user}` patterns count for whoever will consent.
    const { granted } = grantScopes(agent, scopesFor(agent), asked ?? undefined, ANY_USER);
    for (const s of granted) scopes.add(s);
    if (asked) for (const s of asked) if (granted.includes(s)) covered.add(s);
  }
  const refused = asked ? asked.filter((s) => !covered.has(s)) : [];
  return { scopes: [...scopes].sort(), refused, asked };
}

/** What the consent page offers `userId` for one agent: the requested scopes it may hold for them. */
export function offerFor(agent: Agent, asked: readonly string[] | undefined, userId: string): string[] {
  return grantScopes(agent, scopesFor(agent), asked, userId).granted;
}

/** Agents `client` may act as for `userId`, and the reason when there are none. */
export async function eligibleAgents(
  agents: AgentRegistry,
  client: DelegatingClient,
  userId: string | undefined,
  now: number,
): Promise<Agent[]> {
  const all = agentsForClient(await agents.list(), client, now);
  return userId === undefined ? all : all.filter((a) => userMayDelegate(a.delegation, userId));
}

/**
 * Whether to fetch a client ID metadata document at all: only for URLs some
 * agent accepts (by exact URL or `*`), so an unknown URL never makes Warden
 * reach out anywhere.
 */
export async function mayFetchMetadataDocument(agents: AgentRegistry, url: string, now: number) {
  if (!isClientIdUrl(url)) return false;
  const all = await agents.list();
  return all.some(
    (a) =>
      a.status === 'active' &&
      a.expiresAt > now &&
      (a.delegation?.clients.includes(url) === true || a.delegation?.clients.includes('*') === true),
  );
}

/** The host a redirect URI sends the user to, as the consent page shows it. */
export function redirectHost(uri: string | undefined): string | null {
  if (!uri) return null;
  const url = URL.parse(uri);
  if (!url) return null;
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.host : `${url.protocol}//`;
}

/**
 * The login + consent prompts, plus one check of Warden's: a grant the user has
 * not consented to on Warden's page (or has revoked) always asks again, even when
 * the request names no scope oidc-provider would consider missing.
 */
export function consentPolicy(deps: DelegationDeps): unknown {
  const policy = interactionPolicy.base();
  policy.get('consent')?.checks.add(
    new interactionPolicy.Check(
      'warden_consent_missing',
      'the user has not allowed this client to act as an agent for them',
      'consent_required',
      async (ctx) => {
        const id = ctx.oidc.grant?.jti;
        if (!id) return true;
        const grant = await deps.grants.get(id);
        return !grant || grant.revokedAt !== null;
      },
    ),
  );
  return policy;
}

/**
 * The fetch oidc-provider uses for client metadata documents. oidc-provider
 * already refuses connections to special-use addresses (its dispatcher checks
 * the connected socket, so DNS rebinding does not get around it), bounds the
 * time (2.5 s) and Warden bounds the size (5 KiB); hosts an operator listed in
 * `oauth.allowPrivateClientHosts` go without the address check.
 */
export function metadataFetch(deps: DelegationDeps) {
  const allowed = new Set(deps.config.allowPrivateClientHosts);
  return (url: string | URL, options: RequestInit & { dispatcher?: unknown }) => {
    const host = new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, '');
    const init = { ...options };
    if (allowed.has(host)) delete init.dispatcher;
    return (deps.fetch ?? globalThis.fetch)(url, init as RequestInit);
  };
}
