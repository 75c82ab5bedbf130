/**
 * Identity: agents (non-human identities), sessions, signing keys, and session
 * tokens. Other areas use this module through this file only.
 */
export { checkAgentInput, checkPublicJwk, isClientIdUrl } from './agent-input.js';
export { AgentRegistry, assertUsable, REMOVED_FROM_CONFIG, scopesFor } from './agents.js';
export {
  buildClientAssertion,
  generateAgentKeyPair,
  type RequestSessionTokenOptions,
  requestSessionToken,
  type SessionTokenResponse,
  TokenRequestError,
} from './client-assertion.js';
export { ipInRanges } from './ip.js';
export { KeyManager, type KeyManagerOptions, type SigningKey } from './keys.js';
export {
  ANY_USER,
  checkResourceScope,
  checkScopePattern,
  grantScopes,
  isToolScope,
  MAX_RESOURCE_SCOPES,
  patternsFor,
  SCOPE_SEGMENT,
  type ScopeGrant,
  scopeCovers,
} from './scopes.js';
export { type CallClaim, type NewSession, SessionStore, TAINT } from './sessions.js';
export { SubjectTokenVerifier, type SubjectUser } from './subject-tokens.js';
export { type OpenSessionOptions, TokenService, type TokenServiceDeps, USER_ID } from './tokens.js';
export {
  type Agent,
  type AgentDelegation,
  type AgentInput,
  type ConstraintsClaim,
  HARD_MAX_TOKEN_TTL_MS,
  type IssuedToken,
  type JWK,
  type Session,
  type SessionClaims,
  type SigningAlg,
} from './types.js';
