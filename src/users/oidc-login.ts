/**
 * Users who log in to Warden's consent page with an external OpenID provider
 * (issue #6): Warden is the relying party of an authorization code flow with
 * PKCE (S256), state and nonce (oauth4webapi: the protocol is not ours to
 * hand-roll). oauth4webapi checks the ID token's claims but, the token having
 * come straight from the token endpoint over TLS, not its signature; we verify
 * that too (jose, against the configured jwksUri and algorithms), so a token
 * endpoint taken from a tampered discovery document still cannot mint users:
 * the keys come from the configuration, not from discovery. The user is
 * `<provider>:<user claim>`, the form token exchange uses, so one person is
 * one user however they arrive.
 */
import { createRemoteJWKSet, type JWTPayload, customFetch as joseFetch, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import type { IdentityProviderConfig, SecretRef } from '../config/index.js';
import { WardenError } from '../errors.js';
import { USER_ID } from '../identity/index.js';
import { type Clock, systemClock } from '../util/clock.js';
import { isLoopback } from '../util/loopback.js';

/** What `start` hands back: where to send the browser, and what to keep until the callback. */
export interface LoginStart {
  redirectTo: string;
  /** To keep server-side or in a signed/encrypted cookie; opaque to callers. */
  state: PendingLogin;
}

/** A login between `start` and `finish`; its integrity is the caller's to protect (signed/encrypted cookie). */
export interface PendingLogin {
  provider: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
  createdAt: number;
}

/** The user a finished login names. */
export interface LoggedInUser {
  /** `<provider>:<user claim>`. */
  userId: string;
  displayName?: string;
  /** Only when the provider did not say it is unverified (`email_verified: false`). */
  email?: string;
  provider: string;
}

export interface OidcLoginSourceDeps {
  /** Every configured identity provider; those without `login` are ignored. */
  providers: readonly IdentityProviderConfig[];
  /** Resolves the client secret at every login, so a rotated secret needs no restart. */
  resolveSecret: (ref: SecretRef) => Promise<string>;
  clock?: Clock;
  fetch?: typeof fetch;
}

/** A login left unfinished longer than this is refused: the user starts again. */
export const PENDING_LOGIN_MAX_AGE_MS = 10 * 60_000;
/** The discovery document is trusted this long, so an IdP's endpoint move is picked up without a restart. */
const DISCOVERY_MAX_AGE_MS = 60 * 60_000;
/** A pending login created this far in the future (another node's clock) is still accepted. */
const CLOCK_SKEW_MS = 30_000;
const FETCH_TIMEOUT_MS = 10_000;
/** Claims copied for display are cut to this length. */
const MAX_DISPLAY = 256;

/** A refused login: a fixed public message, the reason in the private detail. */
function failed(message: string, detail: string, cause?: unknown): WardenError {
  return new WardenError('LOGIN_FAILED', message, {
    rule: 'login.oidc',
    detail,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Why an oauth4webapi / jose / fetch call failed, for the private detail (never a secret). */
function why(e: unknown): string {
  if (e instanceof oauth.AuthorizationResponseError || e instanceof oauth.ResponseBodyError) {
    return `${e.error}${e.error_description ? `: ${e.error_description}` : ''}`;
  }
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${typeof code === 'string' ? code : e.name}: ${e.message}`;
  }
  return String(e);
}

/** Loopback endpoints may be plain HTTP (tests, a sidecar IdP); the config refuses HTTP elsewhere. */

function httpOptions(url: URL, fetchImpl: typeof fetch | undefined) {
  return {
    signal: () => AbortSignal.timeout(FETCH_TIMEOUT_MS),
    ...(url.protocol === 'http:' && isLoopback(url) ? { [oauth.allowInsecureRequests]: true } : {}),
    ...(fetchImpl ? { [oauth.customFetch]: fetchImpl } : {}),
  };
}

/** A string claim fit to show, or undefined. */
function displayClaim(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, MAX_DISPLAY) : undefined;
}

function isPendingLogin(p: unknown): p is PendingLogin {
  if (typeof p !== 'object' || p === null) return false;
  const o = p as Record<string, unknown>;
  return (
    ['provider', 'state', 'nonce', 'codeVerifier', 'redirectUri'].every(
      (k) => typeof o[k] === 'string' && o[k] !== '',
    ) && Number.isFinite(o.createdAt)
  );
}

type LoginConfig = NonNullable<IdentityProviderConfig['login']>;

interface Entry {
  config: IdentityProviderConfig;
  login: LoginConfig;
  client: oauth.Client;
  keys: ReturnType<typeof createRemoteJWKSet>;
  metadata?: { as: oauth.AuthorizationServer; expiresAt: number };
  inflight?: Promise<oauth.AuthorizationServer>;
}

/** Logs users in with the identity providers configured with `login:`. */
export class OidcLoginSource {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly fetchImpl: typeof fetch | undefined;

  constructor(private readonly deps: OidcLoginSourceDeps) {
    this.clock = deps.clock ?? systemClock;
    this.fetchImpl = deps.fetch;
    for (const config of deps.providers) {
      if (config.login === undefined) continue;
      this.entries.set(config.name, {
        config,
        login: config.login,
        client: { client_id: config.login.clientId },
        keys: createRemoteJWKSet(new URL(config.jwksUri), {
          cacheMaxAge: config.jwksCacheMaxAgeMs,
          cooldownDuration: 30_000,
          timeoutDuration: 5_000,
          ...(deps.fetch ? { [joseFetch]: deps.fetch } : {}),
        }),
      });
    }
  }

  /** Providers offering login, for the login page's buttons. */
  list(): Array<{ name: string; label: string }> {
    return [...this.entries.values()].map((e) => ({ name: e.config.name, label: e.login.label }));
  }

  /** Build the authorization URL for `provider`; `redirectUri` is Warden's callback. */
  async start(provider: string, redirectUri: string): Promise<LoginStart> {
    const entry = this.entry(provider);
    const as = await this.metadata(entry);
    const endpoint = URL.parse(as.authorization_endpoint ?? '');
    if (endpoint === null || (endpoint.protocol !== 'https:' && !isLoopback(endpoint))) {
      throw failed(
        'Login with this provider is unavailable',
        `${provider}: authorization endpoint ${String(as.authorization_endpoint)} is not an https:// URL`,
      );
    }
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const pending: PendingLogin = {
      provider,
      state: oauth.generateRandomState(),
      nonce: oauth.generateRandomNonce(),
      codeVerifier,
      redirectUri,
      createdAt: this.clock.now(),
    };
    const q = endpoint.searchParams;
    q.set('response_type', 'code');
    q.set('client_id', entry.login.clientId);
    q.set('redirect_uri', redirectUri);
    q.set('scope', entry.login.scopes.join(' '));
    q.set('state', pending.state);
    q.set('nonce', pending.nonce);
    q.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
    q.set('code_challenge_method', 'S256');
    return { redirectTo: endpoint.href, state: pending };
  }

  /** Complete the login from the callback URL and the pending login; throws LOGIN_FAILED on anything wrong. */
  async finish(callbackUrl: URL, pending: PendingLogin): Promise<LoggedInUser> {
    if (!isPendingLogin(pending)) throw failed('The login could not be completed', 'malformed pending login');
    const entry = this.entry(pending.provider);
    const name = entry.config.name;
    const age = this.clock.now() - pending.createdAt;
    if (age > PENDING_LOGIN_MAX_AGE_MS || age < -CLOCK_SKEW_MS) {
      throw failed('The login took too long; please start again', `${name}: pending login is ${age} ms old`);
    }
    const as = await this.metadata(entry);
    // The injected clock drives oauth4webapi's claim checks too (its skew is relative to Date.now()).
    const client: oauth.Client = {
      ...entry.client,
      [oauth.clockSkew]: Math.round((this.clock.now() - Date.now()) / 1000),
    };

    let params: URLSearchParams;
    try {
      // Checks state (CSRF, RFC 6749 §10.12) and, when the IdP sends it, iss (mix-up, RFC 9207).
      params = oauth.validateAuthResponse(as, client, callbackUrl, pending.state);
    } catch (e) {
      if (e instanceof oauth.AuthorizationResponseError) {
        throw failed('The identity provider did not log you in', `${name}: ${why(e)}`, e);
      }
      throw failed('The login could not be completed', `${name}: callback refused: ${why(e)}`, e);
    }

    let idToken: string;
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        await this.clientAuth(entry, as),
        params,
        pending.redirectUri,
        pending.codeVerifier,
        httpOptions(new URL(as.token_endpoint ?? ''), this.fetchImpl),
      );
      const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
        expectedNonce: pending.nonce,
        requireIdToken: true,
      });
      idToken = result.id_token as string;
    } catch (e) {
      if (e instanceof WardenError) throw e;
      throw failed('The login could not be completed', `${name}: token endpoint: ${why(e)}`, e);
    }

    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(idToken, entry.keys, {
        issuer: entry.config.issuer,
        audience: entry.login.clientId,
        algorithms: entry.config.algorithms,
        currentDate: new Date(this.clock.now()),
        clockTolerance: CLOCK_SKEW_MS / 1000,
        requiredClaims: ['exp', 'iat'],
      }));
    } catch (e) {
      throw failed('The login could not be completed', `${name}: ID token did not verify: ${why(e)}`, e);
    }
    // oauth4webapi checked the nonce on the same token; checking it here too keeps the two in step.
    if (claims.nonce !== pending.nonce) {
      throw failed('The login could not be completed', `${name}: ID token nonce mismatch`);
    }

    const claim = claims[entry.config.userClaim];
    const userId = `${name}:${typeof claim === 'string' ? claim : ''}`;
    if (typeof claim !== 'string' || claim === '' || !USER_ID.test(userId)) {
      throw failed(
        'The identity provider did not name a user',
        `${name}: ID token claim ${entry.config.userClaim} is missing or not a user id`,
      );
    }
    const displayName = displayClaim(claims.name) ?? displayClaim(claims.preferred_username);
    const email = claims.email_verified === false ? undefined : displayClaim(claims.email);
    return {
      userId,
      provider: name,
      ...(displayName === undefined ? {} : { displayName }),
      ...(email === undefined ? {} : { email }),
    };
  }

  private entry(provider: string): Entry {
    const entry = this.entries.get(provider);
    if (!entry) {
      throw failed('Login with this provider is unavailable', `no identity provider ${provider} with login`);
    }
    return entry;
  }

  /** Confidential client: client_secret_post when the IdP lists it, else client_secret_basic (the default). */
  private async clientAuth(entry: Entry, as: oauth.AuthorizationServer): Promise<oauth.ClientAuth> {
    const ref = entry.login.clientSecret;
    if (ref === undefined) return oauth.None();
    let secret: string;
    try {
      secret = await this.deps.resolveSecret(ref);
    } catch (e) {
      throw failed(
        'Login with this provider is unavailable',
        `${entry.config.name}: client secret: ${(e as Error).message}`,
        e,
      );
    }
    return as.token_endpoint_auth_methods_supported?.includes('client_secret_post')
      ? oauth.ClientSecretPost(secret)
      : oauth.ClientSecretBasic(secret);
  }

  /** The provider's metadata: discovered once per DISCOVERY_MAX_AGE_MS (one fetch however many wait), or configured. */
  private async metadata(entry: Entry): Promise<oauth.AuthorizationServer> {
    const m = entry.metadata;
    if (m && this.clock.now() < m.expiresAt) return m.as;
    entry.inflight ??= this.discover(entry).finally(() => {
      entry.inflight = undefined;
    });
    return entry.inflight;
  }

  private async discover(entry: Entry): Promise<oauth.AuthorizationServer> {
    const { config, login } = entry;
    let discovered: oauth.AuthorizationServer;
    if (login.authorizationEndpoint !== undefined && login.tokenEndpoint !== undefined) {
      // Both endpoints configured: nothing to discover (IdPs without a discovery document).
      discovered = { issuer: config.issuer };
    } else {
      const issuer = new URL(config.issuer);
      try {
        const response = await oauth.discoveryRequest(issuer, {
          algorithm: 'oidc',
          ...httpOptions(issuer, this.fetchImpl),
        });
        discovered = await oauth.processDiscoveryResponse(issuer, response);
      } catch (e) {
        throw failed(
          'Login with this provider is unavailable',
          `${config.name}: discovery at ${config.issuer} failed: ${why(e)}`,
          e,
        );
      }
    }
    const as: oauth.AuthorizationServer = {
      ...discovered,
      ...(login.authorizationEndpoint === undefined
        ? {}
        : { authorization_endpoint: login.authorizationEndpoint }),
      ...(login.tokenEndpoint === undefined ? {} : { token_endpoint: login.tokenEndpoint }),
      // The configured algorithms bind oauth4webapi's alg check as they bind the signature check.
      id_token_signing_alg_values_supported: config.algorithms,
    };
    entry.metadata = { as, expiresAt: this.clock.now() + DISCOVERY_MAX_AGE_MS };
    return as;
  }
}
