/**
 * The embedded OAuth 2.0 authorization server (oidc-provider, mounted under
 * `/oauth`) and the discovery documents. Other areas use this module through
 * this file only.
 */

export type { UserDirectory } from './delegated.js';
export { type GrantRevocation, type UserGrant, UserGrants } from './grants.js';
export type { ExternalLogin, PasswordLogin } from './interaction.js';
export { authorizationServerMetadata, CLIENT_ASSERTION_ALGS, protectedResourceMetadata } from './metadata.js';
export {
  type AuthorizationServer,
  type AuthorizationServerDeps,
  createAuthorizationServer,
} from './server.js';
