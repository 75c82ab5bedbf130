/**
 * Users: the embedded user store (people who log in at the consent page) and
 * its password hashing. Other areas use this module through this file only.
 */

export { type LoggedInUser, OidcLoginSource, type PendingLogin } from './oidc-login.js';
export {
  hashPassword,
  KEY_BYTES,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  passwordProblem,
  SALT_BYTES,
  SCRYPT_LOG2N,
  SCRYPT_P,
  SCRYPT_R,
  verifyPassword,
} from './password.js';
export {
  DUMMY_HASH,
  LOCKOUT_MS,
  LOGIN_FAILED_MESSAGE,
  LoginFailedError,
  type LoginFailureReason,
  MAX_FAILED_LOGINS,
  type NewUser,
  USERNAME,
  type User,
  UserStore,
} from './store.js';
