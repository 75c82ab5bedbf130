/** The `identityProviders:` section (issue #6): external issuers whose user tokens agents may exchange. */
import { z } from 'zod';
import type { IdentityProviderConfig } from './approval-types.js';
import { durationField, httpUrlField } from './fields.js';

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
];
