/** The `oauth:` section (issue #6): users' delegated logins at the embedded authorization server. */
import { z } from 'zod';
import { durationField, field, secretRef } from './fields.js';
import type { OAuthConfig } from './types.js';

const DAY_MS = 86_400_000;

export const OAUTH_KEYS = [
  'registration',
  'clientMetadataDocuments',
  'allowPrivateClientHosts',
  'grantTtl',
  'refreshTokenTtl',
  'loginSessionTtl',
  'tokenKey',
  'userOAuth',
];

export const oauthSchema = z
  .strictObject({
    /** RFC 7591 dynamic client registration at `/oauth/register` (MCP clients register themselves). */
    registration: z.boolean().default(true),
    /** Client ID metadata documents: an https URL as client_id, fetched (SSRF-hardened) on first use. */
    clientMetadataDocuments: z.boolean().default(true),
    /** Hosts whose metadata documents may be fetched even though they resolve to private addresses. */
    allowPrivateClientHosts: z.array(z.string().min(1)).default(() => []),
    /** How long a user's grant lasts before they must consent again. */
    grantTtl: durationField({ min: 60_000, max: 365 * DAY_MS }).default(30 * DAY_MS),
    /** How long a refresh token lives (rotated on every use; never beyond the grant). */
    refreshTokenTtl: durationField({ min: 60_000, max: 365 * DAY_MS }).default(14 * DAY_MS),
    /** How long a user stays logged in at the consent page (then logs in again). */
    loginSessionTtl: durationField({ min: 60_000, max: DAY_MS }).default(3_600_000),
    /** Encrypts users' upstream tokens at rest (needed when an upstream uses credentials.userOAuth). */
    tokenKey: field('a secret reference', (v) => secretRef(v, false)).optional(),
  })
  .prefault({})
  .transform(
    (o): OAuthConfig => ({
      registration: o.registration,
      clientMetadataDocuments: o.clientMetadataDocuments,
      allowPrivateClientHosts: o.allowPrivateClientHosts.map((h) => h.toLowerCase()),
      grantTtlMs: o.grantTtl,
      refreshTokenTtlMs: Math.min(o.refreshTokenTtl, o.grantTtl),
      loginSessionTtlMs: o.loginSessionTtl,
      ...(o.tokenKey === undefined ? {} : { tokenKey: o.tokenKey }),
    }),
  );
