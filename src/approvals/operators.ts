/**
 * Operator (human) tokens for the admin API. Signed by Warden's own keys like
 * agent tokens, but a different kind (`typ: warden-operator+jwt`, audience
 * `<publicUrl>/admin`), so neither can stand in for the other: an agent token
 * on the admin API is refused by name (AGENT_TOKEN_REFUSED). The operator must
 * still be in config with a role on every request: removing an operator from
 * config revokes their tokens at once.
 *
 * With identity providers configured, an operator may instead present their own
 * token from the organisation's provider, issued for the admin audience
 * (`<publicUrl>/admin`): its user (`<provider>:<claim>`) must be a configured
 * operator. A token Warden issued to an agent is refused even when it acts
 * for that very user.
 */
import { decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import type { OperatorConfig, OperatorRole } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { KeyManager } from '../identity/index.js';
import { type Clock, randomId, systemClock } from '../util/clock.js';

export const OPERATOR_TOKEN_TYPE = 'warden-operator+jwt';
/** The most an operator token may live (a working day and then some). */
export const MAX_OPERATOR_TTL_MS = 24 * 3_600_000;

export interface OperatorTokenDeps {
  keys: KeyManager;
  /** The gateway's issuer (`<publicUrl>/oauth`). */
  issuer: string;
  /** `<publicUrl>/admin`. */
  audience: string;
  operators: readonly OperatorConfig[];
  clock?: Clock;
  clockSkewMs?: number;
  /** Users' own tokens from the configured identity providers (absent: Warden's operator tokens only). */
  identity?: {
    trusts(iss: unknown): boolean;
    verifyUser(token: string, audience: string): Promise<{ user: { userId: string } }>;
  };
}

export interface IssuedOperatorToken {
  token: string;
  operatorId: string;
  roles: OperatorRole[];
  expiresAt: number;
}

/** Mints and verifies operator tokens. */
export class OperatorTokens {
  private readonly clock: Clock;

  constructor(private readonly deps: OperatorTokenDeps) {
    this.clock = deps.clock ?? systemClock;
  }

  operator(id: string): OperatorConfig | undefined {
    return this.deps.operators.find((o) => o.id === id);
  }

  /** Mint a token for a configured operator (CLI: `warden operator token`). */
  async issue(operatorId: string, ttlMs: number): Promise<IssuedOperatorToken> {
    const op = this.operator(operatorId);
    if (!op) throw new WardenError('NOT_FOUND', `No operator "${operatorId}" in the config (operators:)`);
    if (!Number.isFinite(ttlMs) || ttlMs < 1000 || ttlMs > MAX_OPERATOR_TTL_MS) {
      throw new WardenError('INVALID_REQUEST', 'Operator token lifetime must be between 1s and 24h');
    }
    const { kid, alg } = await this.deps.keys.signingKey();
    const key = await this.deps.keys.privateKey(kid);
    const iat = Math.floor(this.clock.now() / 1000);
    const exp = iat + Math.floor(ttlMs / 1000);
    const token = await new SignJWT({ roles: op.roles })
      .setProtectedHeader({ alg, kid, typ: OPERATOR_TOKEN_TYPE })
      .setIssuer(this.deps.issuer)
      .setAudience(this.deps.audience)
      .setSubject(op.id)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(randomId('opt'))
      .sign(key);
    return { token, operatorId: op.id, roles: op.roles, expiresAt: exp * 1000 };
  }

  /** The operator a bearer token speaks for; throws OPERATOR_UNAUTHENTICATED or AGENT_TOKEN_REFUSED. */
  async verify(token: string | undefined): Promise<OperatorConfig> {
    if (!token) {
      throw new WardenError('OPERATOR_UNAUTHENTICATED', 'An operator token is required', {
        rule: 'admin.operator-token',
      });
    }
    let typ: unknown;
    let iss: unknown;
    try {
      typ = decodeProtectedHeader(token).typ;
      iss = decodeJwt(token).iss;
    } catch {
      throw new WardenError('OPERATOR_UNAUTHENTICATED', 'The operator token is not a valid token', {
        rule: 'admin.operator-token',
      });
    }
    // A user's own token from the organisation's identity provider (never Warden's own issuer).
    if (iss !== this.deps.issuer && this.deps.identity?.trusts(iss)) return this.fromIdentityProvider(token);
    if (typeof typ === 'string' && typ.toLowerCase().replace(/^application\//, '') === 'at+jwt') {
      throw new WardenError(
        'AGENT_TOKEN_REFUSED',
        'Agent tokens cannot use the admin API; agents never approve',
        {
          rule: 'admin.no-agents',
        },
      );
    }
    let sub: string;
    try {
      const { payload } = await jwtVerify(
        token,
        async (header) => {
          const key =
            typeof header.kid === 'string' ? await this.deps.keys.verificationKey(header.kid) : undefined;
          if (!key || key.alg !== header.alg) throw new Error('unknown key');
          return key.key;
        },
        {
          algorithms: ['EdDSA', 'ES256'],
          typ: OPERATOR_TOKEN_TYPE,
          issuer: this.deps.issuer,
          audience: this.deps.audience,
          clockTolerance: Math.floor((this.deps.clockSkewMs ?? 30_000) / 1000),
          currentDate: new Date(this.clock.now()),
          requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        },
      );
      sub = String(payload.sub);
    } catch (e) {
      throw new WardenError('OPERATOR_UNAUTHENTICATED', 'The operator token is invalid or expired', {
        rule: 'admin.operator-token',
        detail: e instanceof Error ? e.message : String(e),
      });
    }
    const op = this.operator(sub);
    if (!op) {
      throw new WardenError('OPERATOR_UNAUTHENTICATED', 'The operator is no longer configured', {
        rule: 'admin.operator-token',
        detail: `operator ${sub} not in config`,
      });
    }
    return op;
  }

  private async fromIdentityProvider(token: string): Promise<OperatorConfig> {
    let userId: string;
    try {
      ({
        user: { userId },
      } = await this.deps.identity!.verifyUser(token, this.deps.audience));
    } catch (e) {
      throw new WardenError('OPERATOR_UNAUTHENTICATED', 'The operator token is invalid or expired', {
        rule: 'admin.operator-token',
        detail: e instanceof WardenError ? `${e.message}${e.detail ? ` (${e.detail})` : ''}` : String(e),
      });
    }
    const op = this.operator(userId);
    if (!op) {
      throw new WardenError('OPERATOR_UNAUTHENTICATED', 'This user is not an operator', {
        rule: 'admin.operator-token',
        detail: `identity-provider user ${userId} is not in operators:`,
      });
    }
    return op;
  }
}

/** Refuse an operator without one of `roles`. */
export function requireRole(op: OperatorConfig, ...roles: OperatorRole[]): void {
  if (!op.roles.some((r) => roles.includes(r))) {
    throw new WardenError('APPROVER_FORBIDDEN', `This needs one of the roles: ${roles.join(', ')}`, {
      rule: 'admin.role',
      data: { requiredRoles: roles },
    });
  }
}
