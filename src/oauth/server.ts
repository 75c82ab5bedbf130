/**
 * The embedded authorization server, mounted under the issuer's path
 * (`/oauth`). oidc-provider reads its signing keys only when constructed, so
 * the provider is rebuilt whenever the KeyManager's key set changes (rotation,
 * pruning, another replica's rotation); requests already in flight finish on
 * the instance they started with.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { ClientLike, KoaContextWithOIDC } from 'oidc-provider';
import type { TokenConfig } from '../config/types.js';
import { isWardenError } from '../errors.js';
import type {
  AgentRegistry,
  KeyManager,
  SessionStore,
  SubjectTokenVerifier,
  TokenService,
} from '../identity/index.js';
import type { Store } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';
import { pruneExpiredModels } from './adapter.js';
import { loadProviderContext, trackProviderRequest } from './context-hooks.js';
import { createInteractions, type InteractionDeps } from './interaction.js';
import { authorizationServerMetadata } from './metadata.js';
import { buildProvider } from './provider.js';

/** What createAuthorizationServer needs. */
export interface AuthorizationServerDeps {
  store: Store;
  agents: AgentRegistry;
  sessions: SessionStore;
  keys: KeyManager;
  tokens: TokenService;
  /** External identity providers' user tokens, for the token-exchange grant (RFC 8693). */
  subjectTokens?: SubjectTokenVerifier;
  config: {
    /** `<publicUrl>/oauth` */
    issuer: string;
    /** `<publicUrl>`: the gateway, the only resource tokens are minted for. */
    audience: string;
    publicUrl: string;
    tokens: TokenConfig;
    /** Honour X-Forwarded-For / -Proto (only behind a trusted proxy). Default false. */
    trustProxy?: boolean;
  };
  /**
   * Must track real time: oidc-provider checks assertion and token times against
   * Date.now() itself, and a ManualClock here would disagree with it.
   */
  clock?: Clock;
  /** Server-side failures (5xx), for logging; the client only ever sees `server_error`. */
  onServerError?: (err: unknown) => void;
  /** Users' delegated logins (authorization code + PKCE, consent pages); absent = agents only. */
  delegation?: Pick<
    InteractionDeps,
    'grants' | 'users' | 'passwords' | 'external' | 'config' | 'audit' | 'upstreamAccounts'
  > & {
    /** Replaces the fetch used for client metadata documents (tests: a private CA). */
    fetch?: typeof fetch;
  };
}

/** The embedded authorization server. */
export interface AuthorizationServer {
  /** Handles a request whose path starts with the issuer's path (`/oauth/...`). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The RFC 8414 metadata document (serve it at `/.well-known/oauth-authorization-server[/oauth]`). */
  metadata(): Promise<Record<string, unknown>>;
  /** Stops background work. */
  close(): Promise<void>;
}

/** Only these routes of oidc-provider are reachable; everything else is 404 before the provider sees it. */
const ROUTES = new Set(['POST /token', 'GET /jwks']);
/** With delegated logins: the authorization endpoint (and its resume route) and registration. */
const DELEGATED_ROUTES = new Set(['GET /authorize', 'POST /register']);
const RESUME = /^\/authorize\/[A-Za-z0-9_-]{1,64}$/;
const METADATA_PATH = '/.well-known/oauth-authorization-server';
/** Expired replay-detection entries and the like are swept this often. */
const PRUNE_INTERVAL_MS = 10 * 60_000;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(JSON.stringify(body));
}

/** Creates the authorization server; its first provider is built (and the keys loaded) before this resolves. */
export async function createAuthorizationServer(deps: AuthorizationServerDeps): Promise<AuthorizationServer> {
  const clock = deps.clock ?? systemClock;
  const issuerUrl = new URL(deps.config.issuer);
  const mountPath = issuerUrl.pathname.replace(/\/$/, '');
  if (mountPath === '')
    throw new Error('the issuer must have a path (e.g. <publicUrl>/oauth) to mount under');
  const delegation = deps.delegation;
  const metadata = authorizationServerMetadata({
    issuer: deps.config.issuer,
    tokenExchange: deps.subjectTokens?.enabled === true,
    ...(delegation
      ? {
          delegation: {
            registration: delegation.config.registration,
            clientMetadataDocuments: delegation.config.clientMetadataDocuments,
          },
        }
      : {}),
  });
  const interactionPath = `${mountPath}/interaction`;

  async function onGrantRevoked(grantId: string): Promise<void> {
    if (!delegation) return;
    // Not swallowed: if the grant cannot be marked and its sessions ended, the request fails
    // (server_error, no token) rather than leaving the replayed grant's sessions running.
    let revoked: Awaited<ReturnType<typeof delegation.grants.revoke>>;
    try {
      revoked = await delegation.grants.revoke(grantId, 'replay-detection');
    } catch (e) {
      if (isWardenError(e, 'NOT_FOUND')) return; // no user grant behind it: nothing of Warden's to end
      throw e;
    }
    if (!revoked.changed) return;
    await delegation.audit({
      traceId: `grant-${grantId}`,
      event: 'GRANT_REVOKED',
      actorType: 'SYSTEM',
      actorId: 'replay-detection',
      agentId: revoked.grant.agentId,
      triggerUserId: revoked.grant.userId,
      triggerSource: 'user',
      result: 'success',
      data: {
        grantId,
        clientId: revoked.grant.clientId,
        by: 'replay-detection',
        reason: 'an authorization code or refresh token was used twice (RFC 9700 §4.14.2)',
        sessionsRevoked: revoked.sessions.length,
      },
    });
  }

  /** Undoes what a failed token request consumed (see the POST /token middleware). */
  async function unspend(ctx: KoaContextWithOIDC): Promise<void> {
    const entities = ctx.oidc?.entities ?? {};
    const jti = (name: string) => (entities[name] as { jti?: string } | undefined)?.jti;
    const rotated = jti('RotatedRefreshToken');
    const issued = jti('RefreshToken');
    const code = jti('AuthorizationCode');
    const db = deps.store.db;
    if (rotated) {
      await db
        .updateTable('oidc_models')
        .set({ consumed_at: null })
        .where('model', '=', 'RefreshToken')
        .where('id', '=', rotated)
        .execute();
    }
    if (issued && issued !== rotated) {
      await db
        .deleteFrom('oidc_models')
        .where('model', '=', 'RefreshToken')
        .where('id', '=', issued)
        .execute();
    }
    if (code) {
      await db
        .updateTable('oidc_models')
        .set({ consumed_at: null })
        .where('model', '=', 'AuthorizationCode')
        .where('id', '=', code)
        .execute();
    }
  }

  interface Built {
    version: string;
    provider: Provider;
    callback: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  }

  async function build(): Promise<Built> {
    const set = await deps.keys.signingSet();
    const provider: Provider = buildProvider(
      {
        store: deps.store,
        agents: deps.agents,
        tokens: deps.tokens,
        config: deps.config,
        clock,
        ...(deps.subjectTokens ? { subjectTokens: deps.subjectTokens } : {}),
        ...(delegation
          ? {
              delegation: {
                grants: delegation.grants,
                users: delegation.users,
                config: delegation.config,
                interactionPath,
                onGrantRevoked,
                ...(delegation.fetch ? { fetch: delegation.fetch } : {}),
              },
            }
          : {}),
      },
      { jwks: set.jwks, activeKid: set.activeKid, alg: set.alg },
    );
    provider.silent = true;
    provider.on('server_error', (_ctx: unknown, err: unknown) => deps.onServerError?.(err));
    provider.on('error', (err: unknown) => deps.onServerError?.(err));
    provider.on('registration_create.success', (...args: unknown[]) => {
      const client = args[1] as ClientLike | undefined;
      if (!delegation || !client) return;
      const meta = client.metadata?.() ?? {};
      delegation
        .audit({
          traceId: `client-${client.clientId}`,
          event: 'CLIENT_REGISTERED',
          actorType: 'SYSTEM',
          actorId: 'registration',
          result: 'success',
          data: {
            clientId: client.clientId,
            clientName: client.clientName ?? null,
            redirectUris: client.redirectUris ?? [],
            grantTypes: meta.grant_types ?? [],
            tokenEndpointAuthMethod: client.clientAuthMethod ?? null,
          },
        })
        .catch((e: unknown) => deps.onServerError?.(e));
    });
    provider.use(async (ctx: KoaContextWithOIDC, next) => {
      if (ctx.method === 'GET' && ctx.path === METADATA_PATH) {
        ctx.set('cache-control', 'public, max-age=300');
        ctx.body = metadata;
        return;
      }
      const route = `${ctx.method} ${ctx.path}`;
      const delegated =
        delegation !== undefined &&
        (DELEGATED_ROUTES.has(route) || (ctx.method === 'GET' && RESUME.test(ctx.path)));
      if (delegated && route === 'GET /authorize') {
        const mode = ctx.query.response_mode;
        if (mode !== undefined && mode !== 'query') {
          // Only what the metadata advertises: no fragment (tokens in browser history), no form_post.
          ctx.status = 400;
          ctx.body = {
            error: 'unsupported_response_mode',
            error_description: 'only response_mode=query is supported',
          };
          return;
        }
      }
      if (route === 'POST /token' && delegation) {
        await next();
        // A token request refused after oidc-provider spent its code or refresh token (a session
        // limit, a foreign resource): give the artefact back, so a retry is not taken for a replay.
        if (ctx.status >= 400) await unspend(ctx).catch((e: unknown) => deps.onServerError?.(e));
        return;
      }
      if (!ROUTES.has(route) && !delegated) {
        ctx.status = 404;
        ctx.body = {
          error: 'invalid_request',
          error_description: 'unrecognized route or not allowed method',
        };
        return;
      }
      await next();
    });
    return { version: set.version, provider, callback: provider.callback() };
  }

  let current = await build();
  await loadProviderContext();
  let rebuilding: Promise<Built> | undefined;

  async function provider(): Promise<Built> {
    const version = await deps.keys.version();
    if (version === current.version) return current;
    rebuilding ??= build()
      .then((b) => {
        current = b;
        return b;
      })
      .finally(() => {
        rebuilding = undefined;
      });
    return rebuilding;
  }

  const interactions = delegation
    ? createInteractions({
        mountPath,
        publicUrl: deps.config.publicUrl.replace(/\/+$/, ''),
        provider: async () => (await provider()).provider,
        store: deps.store,
        agents: deps.agents,
        grants: delegation.grants,
        users: delegation.users,
        ...(delegation.passwords ? { passwords: delegation.passwords } : {}),
        ...(delegation.external ? { external: delegation.external } : {}),
        ...(delegation.upstreamAccounts ? { upstreamAccounts: delegation.upstreamAccounts } : {}),
        config: delegation.config,
        audit: (e) => delegation.audit(e),
        clock,
        ...(deps.onServerError ? { onServerError: deps.onServerError } : {}),
      })
    : undefined;

  const pruner = setInterval(() => {
    pruneExpiredModels(deps.store, clock.now()).catch((e: unknown) => deps.onServerError?.(e));
  }, PRUNE_INTERVAL_MS);
  pruner.unref();

  return {
    handle(req, res) {
      const url = req.url ?? '/';
      const full = url.startsWith(mountPath)
        ? url
        : `${mountPath}${url.startsWith('/oauth') ? url.slice(6) : url}`;
      const rest = full.slice(mountPath.length);
      if (rest !== '' && !rest.startsWith('/') && !rest.startsWith('?')) {
        sendJson(res, 404, {
          error: 'invalid_request',
          error_description: 'unrecognized route or not allowed method',
        });
        return;
      }
      const path = rest.split('?')[0] ?? '';
      if (interactions?.owns(path)) {
        interactions.handle(req, res, path);
        return;
      }
      // Mounted like Express does it: the provider routes on the stripped path and
      // rebuilds its own URLs (token endpoint, audience checks) from originalUrl.
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = full;
      req.url = rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
      trackProviderRequest(res);
      provider()
        .then((p) => p.callback(req, res))
        .catch((e: unknown) => {
          deps.onServerError?.(e);
          sendJson(res, 500, { error: 'server_error', error_description: 'oops! something went wrong' });
        });
    },
    async metadata() {
      return { ...metadata };
    },
    async close() {
      clearInterval(pruner);
    },
  };
}
