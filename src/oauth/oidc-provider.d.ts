/**
 * The part of oidc-provider 9.13.3 that Warden uses, typed from its source
 * (lib/provider.js, lib/helpers/defaults.js, lib/helpers/errors.js). The
 * package ships no types and @types/oidc-provider is not installed; if it is
 * added later, delete this file.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** What adapters store and return: a model's payload (JSON-serialisable). */
  export interface AdapterPayload {
    [key: string]: unknown;
    consumed?: number;
    grantId?: string;
    uid?: string;
    userCode?: string;
  }

  /** A storage adapter for one model (lib/adapters/memory_adapter.js shows the contract). */
  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  /** Called once per model name ('Client', 'ReplayDetection', 'AccessToken', …). */
  export type AdapterFactory = (model: string) => Adapter;

  export interface ClientLike {
    readonly clientId: string;
    readonly clientName?: string;
    readonly redirectUris?: string[];
    readonly applicationType?: string;
    readonly clientAuthMethod?: string;
    /** True for a client resolved from a client ID metadata document. */
    readonly clientIdMetadataDocument?: boolean;
    grantTypeAllowed?(type: string): boolean;
    metadata?(): Record<string, unknown>;
  }

  /** An access-token-like model instance (ClientCredentials, AccessToken). */
  export interface TokenLike {
    readonly kind: string;
    clientId?: string;
    scope?: string;
    jti?: string;
    accountId?: string;
    grantId?: string;
    resourceServer?: { identifier(): string } & Record<string, unknown>;
    readonly expiration: number;
  }

  /** A grant: what an account allowed a client (lib/models/grant.js). */
  export class Grant {
    constructor(init: { accountId: string; clientId: string });
    static find(id: string): Promise<Grant | undefined>;
    readonly jti: string;
    accountId?: string;
    clientId?: string;
    exp?: number;
    addResourceScope(resource: string, scope: string): void;
    getResourceScope(resource: string): string;
    rejectResourceScope(resource: string, scope: string): void;
    save(ttl?: number): Promise<string>;
    destroy(): Promise<void>;
  }

  /** An interaction (login, consent) in progress (lib/models/interaction.js). */
  export interface InteractionDetails {
    readonly uid: string;
    readonly jti: string;
    readonly exp: number;
    readonly returnTo: string;
    readonly prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
    readonly params: Record<string, unknown>;
    readonly session?: { accountId?: string; uid?: string };
    readonly grantId?: string;
    lastSubmission?: Record<string, unknown>;
    result?: Record<string, unknown>;
    save(ttl: number): Promise<string>;
  }

  export interface OIDCContext {
    readonly client?: ClientLike;
    readonly route?: string;
    params: Record<string, unknown>;
    readonly entities: Record<string, unknown> & {
      readonly Grant?: Grant;
      readonly AuthorizationCode?: TokenLike;
      readonly RefreshToken?: TokenLike;
      readonly Account?: { accountId: string };
    };
    readonly grant?: Grant;
    readonly session?: { accountId?: string };
    readonly requestParamScopes: Set<string>;
  }

  /** The Koa context oidc-provider hands to hooks and middleware. */
  export interface KoaContextWithOIDC {
    readonly oidc: OIDCContext;
    readonly ip: string;
    readonly path: string;
    readonly query: Record<string, string | string[] | undefined>;
    readonly method: string;
    status: number;
    body: unknown;
    set(field: string, value: string): void;
  }

  export interface ResourceServerInfo {
    scope: string;
    audience?: string;
    accessTokenTTL?: number;
    accessTokenFormat?: 'opaque' | 'jwt';
    jwt?: { sign?: { alg?: string; kid?: string } };
  }

  export interface StructuredJwt {
    header?: Record<string, unknown>;
    payload: Record<string, unknown>;
  }

  export type Middleware = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void> | void;

  /** The subset of the configuration Warden sets; everything else keeps oidc-provider's default. */
  export interface Configuration {
    adapter?: AdapterFactory;
    jwks?: { keys: object[] };
    clients?: object[];
    clientDefaults?: Record<string, unknown>;
    clientAuthMethods?: string[];
    clockTolerance?: number;
    responseTypes?: string[];
    routes?: Record<string, string>;
    scopes?: string[];
    enabledJWA?: Record<string, string[]>;
    features?: Record<string, Record<string, unknown>>;
    ttl?: Record<
      string,
      number | ((ctx: KoaContextWithOIDC, token: TokenLike, client: ClientLike) => number)
    >;
    extraTokenClaims?: (
      ctx: KoaContextWithOIDC,
      token: TokenLike,
    ) => Promise<Record<string, unknown> | undefined>;
    formats?: {
      customizers?: {
        jwt?: (ctx: KoaContextWithOIDC, token: TokenLike, jwt: StructuredJwt) => Promise<void> | void;
      };
    };
    issueRefreshToken?: (ctx: KoaContextWithOIDC, client: ClientLike, source: unknown) => Promise<boolean>;
    rotateRefreshToken?: boolean | ((ctx: KoaContextWithOIDC) => boolean | Promise<boolean>);
    allowOmittingSingleRegisteredRedirectUri?: boolean;
    pkce?: { required?: (ctx: KoaContextWithOIDC, client: ClientLike) => boolean };
    interactions?: {
      url?: (ctx: KoaContextWithOIDC, interaction: InteractionDetails) => string | Promise<string>;
      policy?: unknown;
    };
    cookies?: {
      names?: { session?: string; interaction?: string; resume?: string };
      long?: Record<string, unknown>;
      short?: Record<string, unknown>;
      keys?: string[];
    };
    fetch?: (url: string | URL, options: RequestInit & { dispatcher?: unknown }) => Promise<Response>;
    fetchResponseBodyLimits?: Record<string, number>;
    loadExistingGrant?: (ctx: KoaContextWithOIDC) => Promise<Grant | undefined>;
    findAccount?: (
      ctx: KoaContextWithOIDC,
      sub: string,
    ) => Promise<{ accountId: string; claims(): Promise<Record<string, unknown>> } | undefined>;
    assertJwtClientAuthClaimsAndHeader?: (
      ctx: KoaContextWithOIDC,
      claims: Record<string, unknown>,
      header: Record<string, unknown>,
      client: ClientLike,
    ) => Promise<void>;
    renderError?: (ctx: KoaContextWithOIDC, out: Record<string, unknown>, error: Error) => Promise<void>;
  }

  export class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    /** Koa: trust X-Forwarded-* (only behind a trusted proxy). */
    proxy: boolean;
    /** Koa: do not print errors to stderr. */
    silent: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    use(middleware: Middleware): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
    /** A grant of our own at the token endpoint; client authentication has run before `handler`. */
    registerGrantType(
      name: string,
      handler: (ctx: KoaContextWithOIDC) => Promise<void>,
      params?: string | string[],
    ): void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      opts?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    readonly Grant: typeof Grant;
    readonly Interaction: { find(uid: string): Promise<InteractionDetails | undefined> };
    readonly Client: { find(id: string): Promise<ClientLike | undefined> };
  }

  /** The default login + consent prompts (lib/helpers/interaction_policy). */
  export const interactionPolicy: {
    base(): {
      get(name: string): { checks: { add(check: unknown): void } } | undefined;
    };
    Check: new (
      reason: string,
      description: string,
      error: string,
      check: (ctx: KoaContextWithOIDC) => boolean | Promise<boolean>,
    ) => unknown;
  };

  export class OIDCProviderError extends Error {
    readonly error: string;
    error_description?: string;
    readonly status: number;
    readonly statusCode: number;
    readonly expose: boolean;
  }

  export const errors: {
    OIDCProviderError: typeof OIDCProviderError;
    InvalidScope: new (description: string, scope?: string) => OIDCProviderError;
    InvalidRequest: new (description?: string, code?: number) => OIDCProviderError;
    InvalidTarget: new (description?: string) => OIDCProviderError;
    InvalidClientAuth: new (detail?: string) => OIDCProviderError;
    UnauthorizedClient: new (description?: string) => OIDCProviderError;
    InvalidGrant: new (detail?: string) => OIDCProviderError;
    AccessDenied: new (description?: string) => OIDCProviderError;
    InvalidClient: new (description?: string) => OIDCProviderError;
    InvalidClientMetadata: new (description?: string) => OIDCProviderError;
    InvalidRedirectUri: new (description?: string) => OIDCProviderError;
  };

  export default Provider;
}

declare module 'oidc-provider/lib/helpers/als.js' {
  import type { AsyncLocalStorage } from 'node:async_hooks';

  const als: AsyncLocalStorage<unknown>;
  export default als;
}
