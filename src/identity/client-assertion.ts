/**
 * The agent side of getting a session token, for agent developers, the demo
 * and tests: an RFC 7523 client assertion (private_key_jwt, OpenID Connect
 * Core §9) sent with the client_credentials grant. No static shared secret is
 * ever involved: the agent holds a private key; Warden holds its public half.
 */
import { randomUUID } from 'node:crypto';
import { importJWK, type JWK, SignJWT } from 'jose';
import { z } from 'zod';
import { type Clock, systemClock } from '../util/clock.js';
import { generateJwkPair } from './jwk.js';

/** The token endpoint's success response (RFC 6749 §5.1); `scope` is '' when none was granted. */
export interface SessionTokenResponse {
  access_token: string;
  expires_in: number;
  token_type: string;
  scope: string;
}

/** The token endpoint refused (RFC 6749 §5.2): `error` is the OAuth error code. */
export class TokenRequestError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly errorDescription: string | undefined,
  ) {
    super(`token request failed (${status} ${error}${errorDescription ? `: ${errorDescription}` : ''})`);
    this.name = 'TokenRequestError';
  }
}

/** Options of requestSessionToken. */
export interface RequestSessionTokenOptions {
  /** e.g. `http://127.0.0.1:8787/oauth/token` */
  tokenEndpoint: string;
  agentId: string;
  /** The agent's private key (Ed25519 or P-256 JWK). */
  privateJwk: JWK;
  /** The assertion's `aud`; default the token endpoint (RFC 7523 §3). The issuer identifier is accepted too. */
  audience?: string;
  /** Requested scopes (space-separated or a list); absent = everything the agent may have. */
  scope?: string | string[];
  /** Resource indicator (RFC 8707); absent = the gateway. */
  resource?: string;
  fetch?: typeof fetch;
  clock?: Clock;
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Assertions are single-use and short: a leaked one is worthless a minute later. */
const ASSERTION_TTL_S = 60;

const successSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().int().positive(),
  token_type: z.string().min(1),
  scope: z.string().optional(),
});
const errorSchema = z.object({ error: z.string(), error_description: z.string().optional() });

function algOf(jwk: JWK): 'EdDSA' | 'ES256' {
  if (jwk.alg === 'ES256' || (jwk.alg === undefined && jwk.kty === 'EC')) return 'ES256';
  return 'EdDSA';
}

/** Generates an agent key pair (default Ed25519); register `publicJwk`, keep `privateJwk` secret. */
export async function generateAgentKeyPair(
  alg: 'EdDSA' | 'ES256' = 'EdDSA',
): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const { publicJwk, privateJwk } = await generateJwkPair(alg);
  return { publicJwk, privateJwk };
}

/** Builds a signed RFC 7523 client assertion (iss = sub = agentId, random jti, exp ≤ 60 s). */
export async function buildClientAssertion(opts: {
  agentId: string;
  privateJwk: JWK;
  audience: string;
  clock?: Clock;
}): Promise<string> {
  const alg = algOf(opts.privateJwk);
  const key = await importJWK(opts.privateJwk, alg);
  const now = Math.floor((opts.clock ?? systemClock).now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg, ...(opts.privateJwk.kid ? { kid: opts.privateJwk.kid } : {}) })
    .setIssuer(opts.agentId)
    .setSubject(opts.agentId)
    .setAudience(opts.audience)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + ASSERTION_TTL_S)
    .sign(key);
}

/** Requests a session token with client_credentials + private_key_jwt; throws TokenRequestError on an OAuth error. */
export async function requestSessionToken(opts: RequestSessionTokenOptions): Promise<SessionTokenResponse> {
  const assertion = await buildClientAssertion({
    agentId: opts.agentId,
    privateJwk: opts.privateJwk,
    audience: opts.audience ?? opts.tokenEndpoint,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: opts.agentId,
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: assertion,
  });
  if (opts.scope !== undefined)
    body.set('scope', Array.isArray(opts.scope) ? opts.scope.join(' ') : opts.scope);
  if (opts.resource !== undefined) body.set('resource', opts.resource);
  const res = await (opts.fetch ?? fetch)(opts.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body,
  });
  const json: unknown = await res.json().catch(() => undefined);
  if (!res.ok) {
    const err = errorSchema.safeParse(json);
    throw new TokenRequestError(
      res.status,
      err.success ? err.data.error : 'invalid_response',
      err.success ? err.data.error_description : undefined,
    );
  }
  const ok = successSchema.safeParse(json);
  if (!ok.success) throw new TokenRequestError(res.status, 'invalid_response', 'malformed token response');
  return {
    access_token: ok.data.access_token,
    expires_in: ok.data.expires_in,
    token_type: ok.data.token_type,
    scope: ok.data.scope ?? '',
  };
}
