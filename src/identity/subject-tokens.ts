/**
 * User tokens from external identity providers (issue #6), as the subject of
 * an RFC 8693 token exchange: an agent presents a user's token and gets a
 * Warden session acting for that user. The provider is chosen by the token's
 * exact `iss`; its keys come from its JWKS (cached, refetched when an unknown
 * key id appears); the audience is pinned; the agent must be named by the
 * token's `may_act` claim or listed as an actor for the provider.
 */
import { createRemoteJWKSet, decodeJwt, type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import type { IdentityProviderConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { type Clock, systemClock } from '../util/clock.js';
import { USER_ID } from './tokens.js';

/** The user a verified subject token speaks for. */
export interface SubjectUser {
  /** `<provider>:<user claim>`: never confused with another provider's user, nor with an agent. */
  userId: string;
  provider: string;
  /** When the user's token expires (epoch ms): a session acting for the user ends no later. */
  expiresAt: number;
}

/** Refused subject tokens: the message is public (OAuth invalid_grant), the detail private. */
function refused(message: string, detail?: string): WardenError {
  return new WardenError('TOKEN_INVALID', message, {
    rule: 'token-exchange.subject',
    ...(detail ? { detail } : {}),
  });
}

interface Entry {
  config: IdentityProviderConfig;
  keys: ReturnType<typeof createRemoteJWKSet>;
}

/** Verifies subject tokens against the configured identity providers. */
export class SubjectTokenVerifier {
  private readonly providers = new Map<string, Entry>();
  private readonly clock: Clock;

  constructor(
    providers: readonly IdentityProviderConfig[],
    private readonly opts: { defaultAudience: string; clock?: Clock; clockSkewMs?: number },
  ) {
    this.clock = opts.clock ?? systemClock;
    for (const config of providers) {
      this.providers.set(config.issuer, {
        config,
        keys: createRemoteJWKSet(new URL(config.jwksUri), {
          cacheMaxAge: config.jwksCacheMaxAgeMs,
          cooldownDuration: 30_000,
          timeoutDuration: 5_000,
        }),
      });
    }
  }

  /** Whether any provider is configured (no provider: the grant is refused outright). */
  get enabled(): boolean {
    return this.providers.size > 0;
  }

  /** Whether `iss` is a configured provider (so a token from it is a user's, not Warden's own). */
  trusts(iss: unknown): boolean {
    return typeof iss === 'string' && this.providers.has(iss);
  }

  /** The user `token` speaks for, if `agentId` may act for them; throws TOKEN_INVALID otherwise. */
  async verify(token: string, agentId: string): Promise<SubjectUser> {
    const { user, payload, config } = await this.verifyUser(token, undefined, 'subject_token');
    // RFC 8693 §4.4: may_act names who may act for the subject; else the operator's list decides.
    const mayAct = payload.may_act as { sub?: unknown } | undefined;
    const named = typeof mayAct === 'object' && mayAct !== null && mayAct.sub === agentId;
    if (!named && !config.actors.includes(agentId)) {
      throw refused(
        `agent ${agentId} may not act for this user`,
        `no may_act naming ${agentId}, not in actors`,
      );
    }
    return user;
  }
  /**
   * The user a provider's token names, checked against `audience` (default: the provider's
   * configured audience, else Warden's public URL). Operators use this with the admin audience.
   */
  async verifyUser(
    token: string,
    audience: string | undefined,
    what = 'the token',
  ): Promise<{ user: SubjectUser; payload: JWTPayload; config: IdentityProviderConfig }> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 16_384) {
      throw refused(`${what} is missing or too large`);
    }
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw refused(`${what} is not a JWT`);
    }
    const entry = typeof unverified.iss === 'string' ? this.providers.get(unverified.iss) : undefined;
    if (!entry)
      throw refused(`${what} is from an issuer Warden does not trust`, `iss ${String(unverified.iss)}`);
    const { config } = entry;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, entry.keys, {
        issuer: config.issuer,
        audience: audience ?? config.audience ?? this.opts.defaultAudience,
        algorithms: config.algorithms,
        clockTolerance: Math.floor((this.opts.clockSkewMs ?? 30_000) / 1000),
        currentDate: new Date(this.clock.now()),
        requiredClaims: ['exp', config.userClaim],
      }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw refused(`${what} has expired`);
      const detail =
        e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e);
      throw refused(`${what} did not verify`, `${config.name}: ${detail}`);
    }
    const claim = payload[config.userClaim];
    const userId = `${config.name}:${typeof claim === 'string' ? claim : ''}`;
    if (typeof claim !== 'string' || claim === '' || !USER_ID.test(userId)) {
      throw refused(`${what}'s ${config.userClaim} does not name a user`);
    }
    return {
      user: { userId, provider: config.name, expiresAt: (payload.exp as number) * 1000 },
      payload,
      config,
    };
  }
}
