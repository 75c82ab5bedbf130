/**
 * Users' delegated logins, assembled for the authorization server: the grant
 * store, who counts as a user (embedded users, and users of configured
 * identity providers), password logins and external OIDC logins.
 */
import type { AuditLog } from '../audit/index.js';
import { resolveSecret } from '../config/index.js';
import type { WardenConfig } from '../config/types.js';
import { type SessionStore, USER_ID } from '../identity/index.js';
import { type UserDirectory, UserGrants } from '../oauth/index.js';
import type { Store } from '../store/index.js';
import {
  decodeTokenKey,
  type UpstreamPoolOptions,
  UpstreamTokenVault,
  UserOAuth,
} from '../upstream/index.js';
import { LoginFailedError, OidcLoginSource, UserStore } from '../users/index.js';
import type { Clock } from '../util/clock.js';

/** The authorization server's `delegation` dependencies for this configuration. */
export function delegationDeps(
  config: WardenConfig,
  deps: { store: Store; sessions: SessionStore; clock: Clock; audit: AuditLog },
) {
  const users = new UserStore(deps.store, deps.clock);
  const grants = new UserGrants(deps.store, deps.sessions, deps.clock);
  const providers = new Set(config.identityProviders.map((p) => p.name));
  const directory: UserDirectory = {
    async find(id) {
      const colon = id.indexOf(':');
      if (colon > 0) {
        // `<provider>:<subject>`: a user of a configured identity provider.
        return providers.has(id.slice(0, colon)) && USER_ID.test(id) ? { id, displayName: id } : undefined;
      }
      // A local user named like a provider would read like that provider's users in scopes and logs.
      if (providers.has(id)) return undefined;
      const user = await users.get(id);
      return user?.status === 'active' ? { id: user.id, displayName: user.displayName } : undefined;
    },
  };
  const withLogin = config.identityProviders.filter((p) => p.login !== undefined);
  return {
    grants,
    users: directory,
    passwords: {
      async authenticate(id: string, password: string) {
        if (providers.has(id)) throw new LoginFailedError(id, 'unknown_user');
        const user = await users.authenticate(id, password);
        return { id: user.id, displayName: user.displayName };
      },
    },
    ...(withLogin.length > 0
      ? {
          external: new OidcLoginSource({
            providers: withLogin,
            resolveSecret: (ref) => resolveSecret(ref),
            clock: deps.clock,
          }),
        }
      : {}),
    config: config.oauth,
    audit: (entry: Parameters<AuditLog['append']>[0]) => deps.audit.append(entry),
  };
}

/** The pool's per-user credentials (credentials.userOAuth), sealed with oauth.tokenKey; none without the key. */
export function perUserCredentials(
  config: WardenConfig,
  deps: { store: Store; clock: Clock; fetch?: typeof fetch },
): { userOAuth?: NonNullable<UpstreamPoolOptions['userOAuth']> } {
  const keyRef = config.oauth.tokenKey;
  if (!keyRef) return {};
  let key: Promise<Uint8Array> | undefined;
  const vault = new UpstreamTokenVault(
    deps.store,
    // Resolved once, on first use; a bad key fails the first connect or call, loudly.
    () => (key ??= resolveSecret(keyRef).then(decodeTokenKey)),
    deps.clock,
  );
  return {
    userOAuth: {
      client: (u) =>
        new UserOAuth(u.name, u.credentials.userOAuth!, u.url, {
          vault,
          resolveSecret: (ref) => resolveSecret(ref),
          clock: deps.clock,
          ...(deps.fetch ? { fetch: deps.fetch } : {}),
        }),
      knownUsers: (issuer) => vault.usersAt(issuer, 3),
    },
  };
}
