/**
 * Session tokens: issuing (operator path; the OAuth path shares `openSession`
 * and `claimsFor`, so both produce the same token) and verifying. A token is an
 * `at+jwt` (RFC 9068) signed by Warden, bound to one session row; verifying it
 * checks the signature against published keys only, then the session and the
 * agent as they are now, so revocation and disabling take effect at once.
 */
import { hash } from 'node:crypto';
import { decodeProtectedHeader, type JWTPayload, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { TokenConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { type Clock, randomId, systemClock } from '../util/clock.js';
import { type AgentRegistry, assertUsable, scopesFor } from './agents.js';
import { ipInRanges } from './ip.js';
import type { KeyManager } from './keys.js';
import { grantScopes } from './scopes.js';
import type { SessionStore } from './sessions.js';
import {
  type Agent,
  HARD_MAX_TOKEN_TTL_MS,
  type IssuedToken,
  type Session,
  type SessionClaims,
  type SigningAlg,
} from './types.js';

/** What a TokenService needs. */
export interface TokenServiceDeps {
  store: Store;
  agents: AgentRegistry;
  sessions: SessionStore;
  keys: KeyManager;
  config: {
    issuer: string;
    audience: string;
    tokens: TokenConfig;
    /** Longest token accepted (the HTTP header limit); default 8192. */
    maxTokenLength?: number;
  };
  clock?: Clock;
  /** Called after a session row is created, before its token is handed out; a failure revokes the session (fail closed). */
  onSessionCreated?: (session: Session, agent: Agent) => Promise<void>;
}

/** How a session is being opened. */
export interface OpenSessionOptions {
  issuedVia: Session['issuedVia'];
  ttlMs: number;
  clientIp?: string | null;
  /** The user the agent acts for in this session. */
  userId?: string | null;
  /** The user's grant the session is opened under (delegated login). */
  grantId?: string | null;
  /**
   * Requested scopes; absent = every tool scope plus the agent's wildcard-free
   * resource scopes. A requested scope the agent may not hold refuses the
   * whole request (INVALID_REQUEST, rule `token.scope-not-allowed`).
   */
  scopes?: string[];
}

const ACCEPTED_ALGS: SigningAlg[] = ['EdDSA', 'ES256'];
const REQUIRED_CLAIMS = [
  'iss',
  'aud',
  'sub',
  'exp',
  'iat',
  'jti',
  'sid',
  'scope',
  'client_id',
  'cnst',
  'agent_type',
];
const INVALID_MESSAGE = 'Invalid session token';
/** A user id (ours, or `<provider>:<subject>` from an identity provider): printable ASCII, no spaces. */
export const USER_ID = /^[\x21-\x7e]{1,256}$/;
/** Verified tokens remembered (≈ 0.5 KB each): enough for every live session of a busy gateway. */
const VERIFIED_CACHE = 10_000;

/**
 * The verified-token cache's key: the token's SHA-256. Keyed by the token itself, each entry kept
 * the whole `Authorization` header it was sliced from (≈ 0.7 KB, and the token never shrinks);
 * the digest is 43 characters, costs under a microsecond, and two tokens cannot share one.
 */
const cacheKey = (token: string): string => hash('sha256', token, 'base64url');

/** A failure inside key resolution, reported as TOKEN_INVALID with this detail. */
class KeyResolution extends Error {}

function invalid(detail: string, cause?: unknown): WardenError {
  return new WardenError('TOKEN_INVALID', INVALID_MESSAGE, { detail, cause });
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Narrows a verified payload to Warden's claim set; a string naming the first bad claim otherwise. */
function checkClaims(p: JWTPayload): SessionClaims | string {
  if (typeof p.sub !== 'string' || p.sub === '') return 'sub';
  if (p.act !== undefined) {
    // Delegation (RFC 8693 §4.1): the user is the subject, the agent the actor and the client.
    const act = p.act as Record<string, unknown> | null;
    if (act === null || typeof act !== 'object' || typeof act.sub !== 'string' || act.sub === '')
      return 'act';
    if (p.client_id !== act.sub) return 'client_id';
  } else if (p.client_id !== p.sub) {
    return 'client_id';
  }
  if (typeof p.sid !== 'string' || p.sid === '') return 'sid';
  if (typeof p.scope !== 'string') return 'scope';
  if (typeof p.jti !== 'string' || p.jti === '') return 'jti';
  if (typeof p.iat !== 'number' || typeof p.exp !== 'number') return 'iat/exp';
  if (typeof p.aud !== 'string') return 'aud';
  if (typeof p.agent_type !== 'string') return 'agent_type';
  const c = p.cnst as Record<string, unknown> | null | undefined;
  if (
    c === null ||
    typeof c !== 'object' ||
    typeof c.max_tool_calls !== 'number' ||
    !isStringArray(c.allowed_cidrs)
  ) {
    return 'cnst';
  }
  return p as SessionClaims;
}

/** Issues and verifies session tokens. */
export class TokenService {
  private readonly clock: Clock;
  private readonly ttlLimitMs: number;
  private readonly skewSec: number;
  /** Tokens whose signature verified, by `cacheKey(token)`, oldest first (see fromCache). */
  private readonly verified = new Map<string, { payload: JWTPayload; kid: string }>();

  constructor(private readonly deps: TokenServiceDeps) {
    this.clock = deps.clock ?? systemClock;
    this.ttlLimitMs = Math.min(deps.config.tokens.ttlMs, HARD_MAX_TOKEN_TTL_MS);
    this.skewSec = Math.max(0, Math.floor(deps.config.tokens.clockSkewMs / 1000));
  }

  /** The longest lifetime a token may have here: the configured ttl, capped at 15 minutes. */
  get maxTtlMs(): number {
    return this.ttlLimitMs;
  }

  /**
   * Operator path (`warden token issue`): checks the agent is usable, opens a
   * session under the concurrent-session limit (SESSION_LIMIT_EXCEEDED) and signs its token.
   */
  async issue(
    agentId: string,
    opts: { ttlMs?: number; clientIp?: string; scopes?: string[]; userId?: string } = {},
  ): Promise<IssuedToken> {
    const ttlMs = opts.ttlMs ?? this.ttlLimitMs;
    if (opts.userId !== undefined && !USER_ID.test(opts.userId)) {
      throw new WardenError('INVALID_REQUEST', 'A user id is 1–256 printable characters without spaces');
    }
    if (!Number.isFinite(ttlMs) || ttlMs < 1000 || ttlMs > this.ttlLimitMs) {
      throw new WardenError(
        'INVALID_REQUEST',
        `Token lifetime must be between 1s and ${this.ttlLimitMs / 1000}s`,
      );
    }
    const { agent, session } = await this.openSession(agentId, {
      issuedVia: 'operator',
      ttlMs,
      clientIp: opts.clientIp ?? null,
      ...(opts.userId === undefined ? {} : { userId: opts.userId }),
      ...(opts.scopes === undefined ? {} : { scopes: opts.scopes }),
    });
    const token = await this.sign(this.claimsFor(agent, session, randomId()));
    return {
      token,
      sessionId: session.id,
      agentId: agent.id,
      expiresAt: session.expiresAt,
      scopes: session.scopes,
      tokenType: 'Bearer',
    };
  }

  /**
   * Opens a session (shared by the operator and OAuth paths): usable agent,
   * client address within its CIDRs, concurrent-session limit, scopes ⊆ the
   * agent's. Runs `onSessionCreated`; if that fails the session is revoked and the error rethrown.
   */
  async openSession(agentId: string, opts: OpenSessionOptions): Promise<{ agent: Agent; session: Session }> {
    const ttlMs = Math.min(opts.ttlMs, this.ttlLimitMs);
    const clientIp = opts.clientIp ?? null;
    const opened = await this.deps.sessions.open(agentId, (agent, now) => {
      const allowedCidrs = agent.constraints.allowedCidrs ?? [];
      if (clientIp !== null && !ipInRanges(clientIp, allowedCidrs)) {
        // The session could never be used from here; refusing now keeps a stolen
        // credential from minting tokens outside the agent's network.
        throw new WardenError(
          'CLIENT_IP_DENIED',
          'Token requests from this address are not allowed for this agent',
          {
            detail: `client ${clientIp} not in ${allowedCidrs.join(', ')}`,
          },
        );
      }
      const { granted: scopes, refused } = grantScopes(
        agent,
        scopesFor(agent),
        opts.scopes,
        opts.userId ?? null,
      );
      if (refused.length > 0) {
        // Refuse rather than trim: a caller asking for a resource it may not touch should hear so.
        throw new WardenError('INVALID_REQUEST', 'A requested scope is not allowed for this agent', {
          rule: 'token.scope-not-allowed',
          detail: `agent ${agent.id} may not hold: ${refused.join(' ').slice(0, 1000)}`,
          data: { refusedScopes: refused.slice(0, 10).map((s) => s.slice(0, 256)) },
        });
      }
      // JWT times are whole seconds: align the row with the token's `exp`, and never
      // let a token outlive the agent identity it speaks for.
      const iatMs = Math.floor(now / 1000) * 1000;
      const expiresAt = Math.min(
        iatMs + Math.floor(ttlMs / 1000) * 1000,
        Math.floor(agent.expiresAt / 1000) * 1000,
      );
      return {
        expiresAt,
        scopes,
        maxToolCalls: agent.constraints.maxToolCalls ?? this.deps.config.tokens.maxToolCalls,
        allowedCidrs,
        issuedVia: opts.issuedVia,
        clientIp,
        userId: opts.userId ?? null,
        grantId: opts.grantId ?? null,
      };
    });
    if (this.deps.onSessionCreated) {
      try {
        await this.deps.onSessionCreated(opened.session, opened.agent);
      } catch (e) {
        await this.deps.sessions
          .revoke(opened.session.id, 'session creation could not be recorded')
          .catch(() => {});
        throw e;
      }
    }
    return opened;
  }

  /**
   * A token whose signature and claims were verified before, while its time
   * checks still pass and its key is still published: verifying an Ed25519 or
   * P-256 signature again would only cost time. Only what is in the token is
   * cached — the session and agent rows are read on every call (revocation,
   * kill switch, disabled agents apply at once).
   */
  private async fromCache(key: string, now: number): Promise<JWTPayload | undefined> {
    const hit = this.verified.get(key);
    if (hit === undefined) return undefined;
    const nowSec = Math.floor(now / 1000);
    const exp = hit.payload.exp ?? 0;
    const iat = hit.payload.iat ?? Number.POSITIVE_INFINITY;
    // Outside its window (or a clock that moved): the full path decides and says why.
    if (exp <= nowSec - this.skewSec || iat > nowSec + this.skewSec) return undefined;
    if (!(await this.deps.keys.verificationKey(hit.kid))) {
      this.verified.delete(key);
      return undefined;
    }
    return hit.payload;
  }

  private async verifySignature(token: string, cacheAs: string, now: number): Promise<JWTPayload> {
    let kid = '';
    try {
      kid = String(decodeProtectedHeader(token).kid ?? '');
    } catch (e) {
      throw invalid('not a JWS', e);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        async (header) => {
          if (typeof header.kid !== 'string') throw new KeyResolution('no kid in header');
          const key = await this.deps.keys.verificationKey(header.kid);
          if (!key) throw new KeyResolution(`unknown kid ${header.kid}`);
          // The key decides the algorithm, never the token (no alg substitution).
          if (key.alg !== header.alg)
            throw new KeyResolution(`alg ${header.alg} does not match key ${header.kid}`);
          return key.key;
        },
        {
          algorithms: ACCEPTED_ALGS,
          typ: 'at+jwt',
          issuer: this.deps.config.issuer,
          audience: this.deps.config.audience,
          clockTolerance: this.skewSec,
          currentDate: new Date(now),
          requiredClaims: REQUIRED_CLAIMS,
        },
      ));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw this.expired(e.payload, 'exp passed');
      if (e instanceof KeyResolution) throw invalid(e.message);
      if (e instanceof joseErrors.JOSEError) {
        const claim = e instanceof joseErrors.JWTClaimValidationFailed ? ` (${e.claim})` : '';
        throw invalid(`${e.code}${claim}: ${e.message}`, e);
      }
      throw e;
    }
    // Only well-formed tokens are remembered; the checks after this still run on every call.
    if (typeof checkClaims(payload) !== 'string') {
      if (this.verified.size >= VERIFIED_CACHE)
        this.verified.delete(this.verified.keys().next().value as string);
      this.verified.set(cacheAs, { payload, kid });
    }
    return payload;
  }

  /** Sign the token of a session just opened (the token-exchange grant). */
  async tokenFor(agent: Agent, session: Session): Promise<string> {
    return this.sign(this.claimsFor(agent, session, randomId()));
  }

  /** The claims of `session`'s token: the one format both issuing paths produce. */
  claimsFor(agent: Agent, session: Session, jti: string): SessionClaims {
    return {
      iss: this.deps.config.issuer,
      aud: this.deps.config.audience,
      // Acting for a user: the user is the subject and the agent the actor (RFC 8693 §4.1).
      sub: session.userId ?? agent.id,
      ...(session.userId === null ? {} : { act: { sub: agent.id } }),
      client_id: agent.id,
      sid: session.id,
      scope: session.scopes.join(' '),
      jti,
      iat: Math.floor(session.createdAt / 1000),
      exp: Math.floor(session.expiresAt / 1000),
      cnst: { max_tool_calls: session.maxToolCalls, allowed_cidrs: [...session.allowedCidrs] },
      agent_type: agent.type,
    };
  }

  /**
   * Verifies a session token: signature by a published key (EdDSA/ES256 only),
   * typ at+jwt, iss, aud, exp/nbf with skew, lifetime within the configured ttl,
   * required claims; then the session (unknown → TOKEN_INVALID, revoked →
   * SESSION_REVOKED) and the agent (AGENT_*). An expired token is TOKEN_EXPIRED
   * with `data.sessionId` / `data.agentId` so the caller can audit SESSION_EXPIRED.
   */
  async verify(token: string): Promise<{ agent: Agent; session: Session; claims: SessionClaims }> {
    // A token carries one scope per tool its agent may call, so its size follows the agent's
    // tool list; what the HTTP server accepts in headers bounds it.
    const max = this.deps.config.maxTokenLength ?? 8192;
    if (typeof token !== 'string' || token.length === 0 || token.length > max)
      throw invalid('empty or oversized token');
    const now = this.clock.now();
    // Hashed once: the cache is read with it, and a token verified now is remembered under it.
    const key = cacheKey(token);
    const payload = (await this.fromCache(key, now)) ?? (await this.verifySignature(token, key, now));
    const claims = checkClaims(payload);
    if (typeof claims === 'string') throw invalid(`malformed claim ${claims}`);
    const nowSec = Math.floor(now / 1000);
    if (claims.iat > nowSec + this.skewSec) throw invalid('iat in the future');
    if (claims.exp - claims.iat > this.ttlLimitMs / 1000) {
      throw invalid(`lifetime ${claims.exp - claims.iat}s exceeds ${this.ttlLimitMs / 1000}s`);
    }
    const agentId = claims.act?.sub ?? claims.sub;
    const [session, agent] = await Promise.all([
      this.deps.sessions.get(claims.sid),
      this.deps.agents.get(agentId),
    ]);
    if (!session || session.agentId !== agentId) throw invalid(`unknown session ${claims.sid}`);
    // A session for a user gets a delegated token (sub = user, act = agent) and only that.
    const userOk = session.userId === null ? claims.act === undefined : claims.sub === session.userId;
    if (!userOk) throw invalid(`token subject does not match session ${claims.sid}`);
    // A killed agent's sessions are revoked too; say the stronger thing (AGENT_KILLED) first.
    if (agent?.status === 'killed') assertUsable(agent, agentId, now);
    if (session.revokedAt !== null) {
      throw new WardenError('SESSION_REVOKED', 'The session has been revoked', {
        detail: `session ${session.id} revoked: ${session.revokedReason ?? 'no reason given'}`,
      });
    }
    // The row is authoritative: past its expiry the session is over even inside the JWT skew window.
    if (session.expiresAt <= now) throw this.expired(payload, 'session row expired');
    assertUsable(agent, agentId, now);
    return { agent: agent!, session, claims };
  }

  private expired(payload: JWTPayload, why: string): WardenError {
    const data: Record<string, unknown> = {};
    if (typeof payload.sid === 'string') data.sessionId = payload.sid;
    const act = payload.act as { sub?: unknown } | undefined;
    const agentId = typeof act?.sub === 'string' ? act.sub : payload.sub;
    if (typeof agentId === 'string') data.agentId = agentId;
    return new WardenError('TOKEN_EXPIRED', 'The session token has expired', {
      detail: `${why} (session ${String(payload.sid)}, agent ${String(agentId)})`,
      data,
    });
  }

  private async sign(claims: SessionClaims): Promise<string> {
    const { kid, alg } = await this.deps.keys.signingKey();
    const key = await this.deps.keys.privateKey(kid);
    return new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'at+jwt' }).sign(key);
  }
}
