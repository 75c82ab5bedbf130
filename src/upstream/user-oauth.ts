/**
 * Per-user credentials for one upstream (issue #6): a user connects their own
 * account at the upstream's authorization server (authorization code + PKCE,
 * Warden as the OAuth client, via oauth4webapi), Warden keeps the tokens
 * sealed in the vault, and every call made for that user carries the user's
 * access token — refreshed before it expires, fetched once for concurrent
 * calls. The agent and the model never see it.
 */
import * as oauth from 'oauth4webapi';
import type { SecretRef, UpstreamUserOAuthConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { type Clock, systemClock } from '../util/clock.js';
import { isLoopback } from '../util/loopback.js';
import type { UpstreamTokenSet, UpstreamTokenVault } from './user-tokens.js';

/** A connection between start and finish; kept server-side by the caller, bound to the browser. */
export interface PendingConnect {
  upstream: string;
  userId: string;
  state: string;
  codeVerifier: string;
  redirectUri: string;
  createdAt: number;
}

const PENDING_MAX_AGE_MS = 10 * 60_000;
const DISCOVERY_MAX_AGE_MS = 60 * 60_000;
const FETCH_TIMEOUT_MS = 10_000;
/** An access token this close to its expiry is refreshed before use. */
const REFRESH_MARGIN_MS = 30_000;

/** Why a call failed, for logs (never a token). */
function why(e: unknown): string {
  if (e instanceof oauth.AuthorizationResponseError || e instanceof oauth.ResponseBodyError) {
    return `${e.error}${e.error_description ? `: ${e.error_description}` : ''}`;
  }
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** The refusal a call gets when the user has not connected (or must connect again). */
export function authorizationRequired(upstream: string, detail: string): WardenError {
  return new WardenError(
    'UPSTREAM_AUTHORIZATION_REQUIRED',
    `This tool uses your own ${upstream} account: connect it on your Warden account page (/oauth/account), then try again`,
    { detail, data: { upstream } },
  );
}

/** One upstream's per-user OAuth client. */
export class UserOAuth {
  private readonly clock: Clock;
  private metadata: { as: oauth.AuthorizationServer; expiresAt: number } | undefined;
  private readonly refreshing = new Map<string, Promise<string | undefined>>();

  constructor(
    readonly upstream: string,
    private readonly config: UpstreamUserOAuthConfig,
    /** The upstream's URL: the default resource indicator. */
    private readonly upstreamUrl: string,
    private readonly deps: {
      vault: UpstreamTokenVault;
      resolveSecret: (ref: SecretRef) => Promise<string>;
      clock?: Clock;
      fetch?: typeof fetch;
    },
  ) {
    this.clock = deps.clock ?? systemClock;
  }

  get issuer(): string {
    return this.config.issuer;
  }

  private get resource(): string {
    return this.config.resource ?? this.upstreamUrl;
  }

  private http(url: string) {
    const u = new URL(url);
    return {
      signal: () => AbortSignal.timeout(FETCH_TIMEOUT_MS),
      ...(u.protocol === 'http:' && isLoopback(u) ? { [oauth.allowInsecureRequests]: true } : {}),
      ...(this.deps.fetch ? { [oauth.customFetch]: this.deps.fetch } : {}),
    };
  }

  private get client(): oauth.Client {
    return { client_id: this.config.clientId };
  }

  private async clientAuth(): Promise<oauth.ClientAuth> {
    if (!this.config.clientSecret) return oauth.None();
    return oauth.ClientSecretBasic(await this.deps.resolveSecret(this.config.clientSecret));
  }

  private async as(): Promise<oauth.AuthorizationServer> {
    const now = this.clock.now();
    if (this.metadata && this.metadata.expiresAt > now) return this.metadata.as;
    const issuer = new URL(this.config.issuer);
    const res = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...this.http(issuer.href) });
    const as = await oauth.processDiscoveryResponse(issuer, res);
    this.metadata = { as, expiresAt: now + DISCOVERY_MAX_AGE_MS };
    return as;
  }

  /** Where to send the user's browser, and what to keep until the callback. */
  async start(userId: string, redirectUri: string): Promise<{ redirectTo: string; pending: PendingConnect }> {
    let as: oauth.AuthorizationServer;
    try {
      as = await this.as();
    } catch (e) {
      throw new WardenError('UPSTREAM_UNAVAILABLE', `${this.upstream}'s sign-in is unavailable`, {
        detail: `discovery at ${this.config.issuer}: ${why(e)}`,
      });
    }
    const endpoint = URL.parse(as.authorization_endpoint ?? '');
    if (!endpoint || (endpoint.protocol !== 'https:' && !isLoopback(endpoint))) {
      throw new WardenError('UPSTREAM_UNAVAILABLE', `${this.upstream}'s sign-in is unavailable`, {
        detail: `authorization endpoint ${String(as.authorization_endpoint)} is not https`,
      });
    }
    const pending: PendingConnect = {
      upstream: this.upstream,
      userId,
      state: oauth.generateRandomState(),
      codeVerifier: oauth.generateRandomCodeVerifier(),
      redirectUri,
      createdAt: this.clock.now(),
    };
    const q = endpoint.searchParams;
    q.set('response_type', 'code');
    q.set('client_id', this.config.clientId);
    q.set('redirect_uri', redirectUri);
    if (this.config.scopes.length > 0) q.set('scope', this.config.scopes.join(' '));
    q.set('resource', this.resource);
    q.set('state', pending.state);
    q.set('code_challenge', await oauth.calculatePKCECodeChallenge(pending.codeVerifier));
    q.set('code_challenge_method', 'S256');
    return { redirectTo: endpoint.href, pending };
  }

  /** Completes the connection from the callback and stores the user's tokens (sealed). */
  async finish(callbackUrl: URL, pending: PendingConnect): Promise<void> {
    const age = this.clock.now() - pending.createdAt;
    if (age > PENDING_MAX_AGE_MS || age < -30_000) {
      throw new WardenError('INVALID_REQUEST', 'This connection took too long; start again');
    }
    const as = await this.as();
    try {
      const params = oauth.validateAuthResponse(as, this.client, callbackUrl, pending.state);
      const res = await oauth.authorizationCodeGrantRequest(
        as,
        this.client,
        await this.clientAuth(),
        params,
        pending.redirectUri,
        pending.codeVerifier,
        {
          ...this.http(as.token_endpoint ?? this.config.issuer),
          additionalParameters: { resource: this.resource },
        },
      );
      const tokens = await oauth.processAuthorizationCodeResponse(as, this.client, res);
      await this.deps.vault.put(pending.userId, this.issuer, this.tokenSet(tokens));
    } catch (e) {
      if (e instanceof WardenError) throw e;
      throw new WardenError('INVALID_REQUEST', `${this.upstream} did not grant access`, {
        detail: `${this.upstream}: ${why(e)}`,
      });
    }
  }

  private tokenSet(tokens: oauth.TokenEndpointResponse, previous?: UpstreamTokenSet): UpstreamTokenSet {
    const refresh = tokens.refresh_token ?? previous?.refreshToken;
    return {
      accessToken: tokens.access_token,
      ...(refresh ? { refreshToken: refresh } : {}),
      ...(typeof tokens.expires_in === 'number'
        ? { expiresAt: this.clock.now() + tokens.expires_in * 1000 }
        : {}),
      ...(tokens.scope ? { scope: tokens.scope } : {}),
    };
  }

  /** Whether the user has connected (tokens stored). */
  async connected(userId: string): Promise<boolean> {
    return (await this.deps.vault.get(userId, this.issuer)) !== undefined;
  }

  /**
   * The user's access token, refreshed when it is about to expire (or `stale`,
   * the one the upstream just refused). Throws UPSTREAM_AUTHORIZATION_REQUIRED
   * when the user has not connected or the upstream no longer honours the grant.
   */
  async accessToken(userId: string, stale?: string): Promise<string> {
    const set = await this.deps.vault.get(userId, this.issuer);
    if (!set) throw authorizationRequired(this.upstream, `${userId} has no token at ${this.issuer}`);
    const fresh = set.expiresAt === undefined || set.expiresAt - REFRESH_MARGIN_MS > this.clock.now();
    if (fresh && set.accessToken !== stale) return set.accessToken;
    let inflight = this.refreshing.get(userId);
    if (!inflight) {
      inflight = this.refresh(userId, set).finally(() => this.refreshing.delete(userId));
      this.refreshing.set(userId, inflight);
    }
    const token = await inflight;
    if (token === undefined) {
      throw authorizationRequired(
        this.upstream,
        `${userId}'s grant at ${this.issuer} can no longer be refreshed`,
      );
    }
    return token;
  }

  private async refresh(userId: string, set: UpstreamTokenSet): Promise<string | undefined> {
    if (!set.refreshToken) {
      await this.deps.vault.delete(userId, this.issuer);
      return undefined;
    }
    const as = await this.as();
    try {
      const res = await oauth.refreshTokenGrantRequest(
        as,
        this.client,
        await this.clientAuth(),
        set.refreshToken,
        {
          ...this.http(as.token_endpoint ?? this.config.issuer),
          additionalParameters: { resource: this.resource },
        },
      );
      const tokens = await oauth.processRefreshTokenResponse(as, this.client, res);
      const next = this.tokenSet(tokens, set);
      await this.deps.vault.put(userId, this.issuer, next);
      return next.accessToken;
    } catch (e) {
      // The authorization server said no (revoked, expired): the user must connect again.
      if (e instanceof oauth.ResponseBodyError && (e.error === 'invalid_grant' || e.status === 400)) {
        await this.deps.vault.delete(userId, this.issuer);
        return undefined;
      }
      throw new WardenError('UPSTREAM_UNAVAILABLE', `${this.upstream}'s sign-in is unavailable`, {
        detail: `refresh at ${this.config.issuer}: ${why(e)}`,
      });
    }
  }

  /** Forgets the user's tokens (they connect again to use the upstream). */
  async disconnect(userId: string): Promise<boolean> {
    return this.deps.vault.delete(userId, this.issuer);
  }
}
