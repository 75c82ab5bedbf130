/** The `identityProviders:` section (issue #6): external issuers whose user tokens agents may exchange. */
import { z } from 'zod';
import { isLoopbackHost } from '../util/loopback.js';
import type { IdentityProviderConfig } from './approval-types.js';
import { describeValue } from './describe.js';
import { durationField, fail, field, httpUrlField, ok, secretRef } from './fields.js';

/** Loopback hosts may be reached over plain HTTP (tests, a sidecar IdP): nobody can sit on that wire. */

/**
 * Why `v` is not an HTTPS URL fit for the OIDC login (null when it is). A login endpoint over
 * plain HTTP would hand the authorization code, the client secret or the ID token to anyone on
 * the path, so only a loopback host may use http://.
 */
function httpsProblem(v: unknown, what: string): string | null {
  const u = typeof v === 'string' ? URL.parse(v) : null;
  const expected = `expected ${what} as an https:// URL (http:// only for a loopback host such as 127.0.0.1)`;
  if (u === null || (u.protocol !== 'https:' && u.protocol !== 'http:')) {
    return `${expected}, got ${describeValue(v)}`;
  }
  if (u.username !== '' || u.password !== '') {
    return 'the URL contains credentials; secrets must be references — {env: VARIABLE} or {file: PATH}';
  }
  if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) return `${expected}, got ${describeValue(v)}`;
  if (u.hash !== '') return `${what} must not have a fragment`;
  return null;
}

const httpsEndpointField = (what: string) =>
  field('an https URL', (v) => {
    const problem = httpsProblem(v, what);
    return problem === null ? ok(new URL(v as string).href) : fail(problem);
  });

/** RFC 6749 §3.3 scope-token. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

const loginSchema = z.strictObject({
  /** Warden's client id at the provider. */
  clientId: z.string().min(1),
  /** Absent = a public client. A reference only: the loader refuses a literal secret. */
  clientSecret: field('a secret reference', (v) => secretRef(v, false)).optional(),
  scopes: z
    .array(z.string().regex(SCOPE_TOKEN, { error: 'expected a scope token (no spaces or quotes)' }))
    .min(1)
    .refine((s) => s.includes('openid'), {
      error: 'scopes must include openid (the login is OpenID Connect)',
    })
    .default(() => ['openid']),
  authorizationEndpoint: httpsEndpointField('the authorization endpoint').optional(),
  tokenEndpoint: httpsEndpointField('the token endpoint').optional(),
  /** The login page's button text; default "Log in with <name>". */
  label: z.string().trim().min(1).max(80).optional(),
});

export const identityProviderSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: 'expected a lowercase name (a-z, 0-9, -)' }),
    /** The `iss` its tokens carry, compared exactly. */
    issuer: z.string().min(1),
    /** Where its signing keys are published (fetched, cached, refetched on an unknown key id). */
    jwksUri: httpUrlField(true),
    /** The `aud` its tokens must carry for Warden; default Warden's public URL. */
    audience: z.string().min(1).optional(),
    /** The claim that names the user (default `sub`). */
    userClaim: z.string().min(1).default('sub'),
    /** Agents that may act for this provider's users without a `may_act` claim naming them. */
    actors: z.array(z.string().min(1)).default(() => []),
    algorithms: z
      .array(z.enum(['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA']))
      .min(1)
      .default((): Array<'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA'> => ['RS256', 'ES256', 'EdDSA']),
    /** How long fetched keys are trusted before they are fetched again. */
    jwksCacheMaxAge: durationField({ min: 1000, max: 86_400_000 }).default(600_000),
    /** Users may log in to Warden's consent page with this provider (Warden as OIDC relying party). */
    login: loginSchema.optional(),
  })
  .superRefine((p, ctx) => {
    if (p.login === undefined) return;
    // The login discovers its endpoints from the issuer and trusts the keys at jwksUri: both need TLS.
    const issuer = httpsProblem(p.issuer, 'the issuer');
    if (issuer !== null) ctx.addIssue({ code: 'custom', message: issuer, path: ['issuer'] });
    else if (URL.parse(p.issuer)?.search !== '') {
      ctx.addIssue({ code: 'custom', message: 'an OpenID issuer has no query', path: ['issuer'] });
    }
    const jwks = httpsProblem(p.jwksUri, 'jwksUri');
    if (jwks !== null) ctx.addIssue({ code: 'custom', message: jwks, path: ['jwksUri'] });
  })
  .transform(
    (p): IdentityProviderConfig => ({
      name: p.name,
      issuer: p.issuer,
      jwksUri: p.jwksUri,
      ...(p.audience === undefined ? {} : { audience: p.audience }),
      userClaim: p.userClaim,
      actors: p.actors,
      algorithms: p.algorithms,
      jwksCacheMaxAgeMs: p.jwksCacheMaxAge,
      ...(p.login === undefined
        ? {}
        : {
            login: {
              clientId: p.login.clientId,
              ...(p.login.clientSecret === undefined ? {} : { clientSecret: p.login.clientSecret }),
              scopes: [...new Set(p.login.scopes)],
              ...(p.login.authorizationEndpoint === undefined
                ? {}
                : { authorizationEndpoint: p.login.authorizationEndpoint }),
              ...(p.login.tokenEndpoint === undefined ? {} : { tokenEndpoint: p.login.tokenEndpoint }),
              label: p.login.label ?? `Log in with ${p.name}`,
            },
          }),
    }),
  );

export const IDP_KEYS = [
  'issuer',
  'jwksUri',
  'audience',
  'userClaim',
  'actors',
  'algorithms',
  'jwksCacheMaxAge',
  'login',
  'clientId',
  'clientSecret',
  'scopes',
  'authorizationEndpoint',
  'tokenEndpoint',
  'label',
];
