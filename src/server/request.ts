/**
 * Shared HTTP plumbing for the faces: trace ids, client address, bounded body
 * reading, JSON parsing and the one error shape.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'hono';
import { ERROR_STATUS, errorBody, type WardenError, WardenError as WE } from '../errors.js';
import { jsonDepthExceeds } from '../pipeline/index.js';

const TRACE_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** The caller's trace id when it is well-formed (header `x-trace-id` or W3C `traceparent`), else a new one. */
export function traceIdOf(c: Context, fromBody?: unknown): string {
  if (typeof fromBody === 'string' && TRACE_ID.test(fromBody)) return fromBody;
  const header = c.req.header('x-trace-id');
  if (header && TRACE_ID.test(header)) return header;
  const tp = c.req.header('traceparent');
  const m = tp ? /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(tp) : null;
  if (m?.[1]) return m[1];
  return randomUUID().replaceAll('-', '');
}

/** Bindings @hono/node-server gives each request. */
export interface NodeBindings {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

/** The client address: the socket peer, or the first X-Forwarded-For hop when a trusted proxy sits in front. */
export function clientIpOf(c: Context<{ Bindings: NodeBindings }>, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = c.req.header('x-forwarded-for');
    const first = xff?.split(',')[0]?.trim();
    if (first) return first;
  }
  // Unknown (e.g. in-process requests): empty, which no CIDR constraint admits — fail closed.
  return c.env?.incoming?.socket?.remoteAddress ?? '';
}

/** The bearer token from `Authorization`, or undefined. Malformed headers count as absent. */
export function bearerOf(c: Context): string | undefined {
  const h = c.req.header('authorization');
  if (!h) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i.exec(h.trim());
  return m?.[1];
}

export { readBodyText } from '../util/http-body.js';

/** Parse a JSON body: INVALID_JSON when it is not JSON, NESTING_TOO_DEEP past `maxDepth`. */
export function parseJsonBody(text: string, maxDepth: number): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WE('INVALID_JSON', 'The request body is not valid JSON', { rule: 'request.json' });
  }
  if (jsonDepthExceeds(value, maxDepth)) {
    throw new WE('NESTING_TOO_DEEP', `The request body is nested deeper than ${maxDepth}`, {
      rule: 'request.max-depth',
    });
  }
  return value;
}

/** The one error response: `{ error: { code, message, traceId } }` with the code's status; never a stack. */
export function errorResponse(
  c: Context,
  e: WardenError,
  traceId: string,
  headers: Record<string, string> = {},
) {
  const res = c.json(errorBody(e, traceId), ERROR_STATUS[e.code] as 400);
  // RFC 9110 §10.2.3: a rate-limit or budget refusal says when to come back.
  const retryAfter = e.data?.retryAfterSeconds;
  if (typeof retryAfter === 'number')
    res.headers.set('Retry-After', String(Math.max(1, Math.ceil(retryAfter))));
  for (const [k, v] of Object.entries(headers)) res.headers.set(k, v);
  // The unread rest of an oversized body is still on the wire: close the connection
  // rather than let the client reuse a socket we are about to drop.
  if (e.code === 'PAYLOAD_TOO_LARGE') res.headers.set('Connection', 'close');
  // A held call (202): where its request can be looked at.
  if (e.code === 'APPROVAL_PENDING' && typeof e.data?.approvalId === 'string')
    res.headers.set('Location', `/v1/approvals/${e.data.approvalId}`);
  res.headers.set('x-trace-id', traceId);
  return res;
}

/** RFC 6750 / RFC 9728 challenge for 401 and insufficient-scope 403 answers. */
export function challengeHeaders(e: WardenError, resourceMetadataUrl: string): Record<string, string> {
  if (e.status === 401) {
    const err = e.code === 'UNAUTHENTICATED' ? '' : ', error="invalid_token"';
    return { 'WWW-Authenticate': `Bearer resource_metadata="${resourceMetadataUrl}"${err}` };
  }
  if (e.code === 'INSUFFICIENT_SCOPE') {
    const scopes = Array.isArray(e.data?.requiredScopes) ? (e.data.requiredScopes as string[]).join(' ') : '';
    return {
      'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${scopes}", resource_metadata="${resourceMetadataUrl}"`,
    };
  }
  return {};
}
