/**
 * Credential brokering (issue #6): an upstream that wants an OAuth access token
 * gets one Warden obtains itself with the client-credentials grant
 * (oauth4webapi: the protocol is not ours to hand-roll). The token is cached
 * until shortly before it expires, fetched once however many calls need it,
 * fetched again when the upstream answers 401, and never leaves the
 * gateway-to-upstream request: agents and models never see it. The client
 * secret is resolved at every fetch, so rotating it needs no restart.
 */
import * as oauth from 'oauth4webapi';
import type { SecretRef, UpstreamOAuthConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { type Clock, systemClock } from '../util/clock.js';
import { isLoopback } from '../util/loopback.js';

/** A token is refreshed this long before it expires, so a call never carries one that lapses in flight. */
const REFRESH_MARGIN_MS = 30_000;
/** Tokens without `expires_in` are kept this long. */
const DEFAULT_LIFETIME_MS = 5 * 60_000;
const FETCH_TIMEOUT_MS = 10_000;

/** Loopback token endpoints may be plain HTTP (tests, sidecars); anything else must be HTTPS. */

/** One upstream's access token, obtained and renewed by the gateway. */
export class OAuthCredential {
  private cached: { token: string; renewAt: number } | undefined;
  private inflight: Promise<string> | undefined;
  private readonly as: oauth.AuthorizationServer;
  private readonly client: oauth.Client;
  private readonly clock: Clock;
  /** Token fetches made (tests, metrics). */
  fetches = 0;

  constructor(
    private readonly upstream: string,
    private readonly config: UpstreamOAuthConfig,
    private readonly resolveSecret: (ref: SecretRef) => Promise<string>,
    opts: { clock?: Clock; fetch?: typeof fetch } = {},
  ) {
    const url = new URL(config.tokenUrl);
    this.as = { issuer: url.origin, token_endpoint: url.href };
    this.client = { client_id: config.clientId };
    this.clock = opts.clock ?? systemClock;
    this.fetchImpl = opts.fetch;
    this.insecure = url.protocol === 'http:' && isLoopback(url);
  }

  private readonly fetchImpl: typeof fetch | undefined;
  private readonly insecure: boolean;

  /** The access token to send now (cached, or fetched once for every caller waiting on it). */
  async token(): Promise<string> {
    const c = this.cached;
    if (c && this.clock.now() < c.renewAt) return c.token;
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Forget the token (the upstream refused it): the next call fetches a new one. */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async fetchToken(): Promise<string> {
    this.fetches++;
    const where = `OAuth credential of upstream ${this.upstream}`;
    let secret: string;
    try {
      secret = await this.resolveSecret(this.config.clientSecret);
    } catch (e) {
      throw new WardenError('UPSTREAM_UNAVAILABLE', 'The upstream credential is unavailable', {
        detail: `${where}: ${(e as Error).message}`,
        cause: e,
      });
    }
    const params = new URLSearchParams();
    if (this.config.scope !== undefined) params.set('scope', this.config.scope);
    if (this.config.resource !== undefined) params.set('resource', this.config.resource);
    if (this.config.audience !== undefined) params.set('audience', this.config.audience);
    let result: oauth.TokenEndpointResponse;
    try {
      const response = await oauth.clientCredentialsGrantRequest(
        this.as,
        this.client,
        oauth.ClientSecretBasic(secret),
        params,
        {
          signal: () => AbortSignal.timeout(FETCH_TIMEOUT_MS),
          ...(this.insecure ? { [oauth.allowInsecureRequests]: true } : {}),
          ...(this.fetchImpl ? { [oauth.customFetch]: this.fetchImpl } : {}),
        },
      );
      result = await oauth.processClientCredentialsResponse(this.as, this.client, response);
    } catch (e) {
      // The reason (an OAuth error code, a status, a timeout) is for operators; never the secret.
      const why =
        e instanceof oauth.ResponseBodyError
          ? `${e.error}${e.error_description ? `: ${e.error_description}` : ''} (HTTP ${e.status})`
          : e instanceof Error
            ? `${e.name}: ${e.message}`
            : String(e);
      throw new WardenError('UPSTREAM_UNAVAILABLE', 'The upstream credential could not be obtained', {
        detail: `${where}: token endpoint ${this.config.tokenUrl}: ${why}`,
        cause: e,
      });
    }
    if (result.token_type.toLowerCase() !== 'bearer') {
      throw new WardenError('UPSTREAM_UNAVAILABLE', 'The upstream credential could not be obtained', {
        detail: `${where}: token_type ${result.token_type} is not Bearer`,
      });
    }
    const lifetime =
      typeof result.expires_in === 'number' && result.expires_in > 0
        ? result.expires_in * 1000
        : DEFAULT_LIFETIME_MS;
    // Renew 30 s early, or at half-life for short-lived tokens.
    const renewIn = Math.max(lifetime - REFRESH_MARGIN_MS, lifetime / 2);
    this.cached = { token: result.access_token, renewAt: this.clock.now() + renewIn };
    return result.access_token;
  }
}
