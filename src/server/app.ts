/**
 * The HTTP application: routes only. Every route's work lives in a face or a
 * small handler; this file says what is served where.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { WardenError } from '../errors.js';
import type { Logger } from './logger.js';
import type { McpFace } from './mcp.js';
import type { OriginGuard } from './origin-guard.js';
import { errorResponse, type NodeBindings, traceIdOf } from './request.js';
import { securityHeaders } from './security-headers.js';

export interface AppDeps {
  mcp: McpFace;
  toolCalls: (c: import('hono').Context<{ Bindings: NodeBindings }>) => Promise<Response>;
  /** RFC 9728 protected-resource metadata. */
  protectedResource: () => object;
  /** RFC 8414 authorization-server metadata. */
  authorizationServer: () => Promise<object>;
  /** Readiness: resolves with details; `ready: false` answers 503. */
  readiness: () => Promise<{ ready: boolean } & Record<string, unknown>>;
  logger: Logger;
  /** Prometheus metrics, served at /metrics; absent = not served (`server.metrics: false`). */
  metrics?: { text(): Promise<string>; contentType: string };
  /** More routes (the admin API, notifier callbacks), mounted before the not-found handler. */
  mount?: (app: Hono<{ Bindings: NodeBindings }>) => void;
  /** DNS-rebinding protection of the agent faces (src/server/origin-guard.ts); absent = no check. */
  originGuard?: OriginGuard;
}

/** Build the Hono app serving every route except /oauth/* (handed to the authorization server below Hono). */
export function createApp(deps: AppDeps): Hono<{ Bindings: NodeBindings }> {
  const app = new Hono<{ Bindings: NodeBindings }>();
  app.use('*', securityHeaders());

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    const r = await deps.readiness().catch((e: unknown) => ({ ready: false, error: String(e) }));
    return c.json(r, r.ready ? 200 : 503);
  });

  const metrics = deps.metrics;
  if (metrics) {
    app.get('/metrics', async (c) =>
      c.body(await metrics.text(), 200, { 'content-type': metrics.contentType }),
    );
  }

  for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
    app.get(path, (c) => c.json(deps.protectedResource()));
  }
  for (const path of [
    '/.well-known/oauth-authorization-server',
    '/.well-known/oauth-authorization-server/oauth',
  ]) {
    app.get(path, async (c) => c.json(await deps.authorizationServer()));
  }

  const guard = deps.originGuard;
  if (guard) {
    // Before authentication: a rebound browser request learns nothing, not even whether its token is valid.
    const check: MiddlewareHandler = async (c, next) => {
      try {
        guard(c.req.header('host'), c.req.header('origin'));
      } catch (e) {
        return errorResponse(c, e as WardenError, traceIdOf(c));
      }
      await next();
    };
    app.use('/mcp', check);
    app.use('/v1/*', check);
  }
  app.on(['GET', 'POST', 'DELETE'], '/mcp', (c) => deps.mcp.handle(c));
  app.post('/v1/tool-calls', (c) => deps.toolCalls(c));
  deps.mount?.(app);

  app.notFound((c) => errorResponse(c, new WardenError('NOT_FOUND', 'No such route'), traceIdOf(c)));
  app.onError((e, c) => {
    const traceId = traceIdOf(c);
    deps.logger.error({ traceId, err: e }, 'unhandled error');
    return errorResponse(c, new WardenError('INTERNAL', 'Internal error'), traceId);
  });
  return app;
}
