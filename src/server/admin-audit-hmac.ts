/**
 * `POST /admin/v1/audit/hmac` (issue #9): an investigator's lookup of a value
 * by its keyed HMAC — "did this password, this card number pass through?" —
 * for auditors and admins. The value arrives in the body and leaves only as its
 * HMAC: it is not logged, not audited, not echoed. The lookup itself is
 * audited (AUDIT_QUERIED, with the HMAC and how many entries matched).
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import { type AuditHmac, type AuditInput, lookupHmac } from '../audit/index.js';
import type { Store } from '../store/index.js';
import type { AdminHelpers } from './admin-tools.js';
import type { NodeBindings } from './request.js';

export interface AdminAuditHmacDeps {
  store: Store;
  hmac: Pick<AuditHmac, 'of'>;
  audit: { append(input: AuditInput): Promise<unknown> };
}

const Body = z.strictObject({
  value: z.string().min(1, { error: 'value is required' }).max(65_536),
  /** Also list the entries holding the HMAC (a full scan of parameters and data). */
  search: z.boolean().optional(),
  limit: z.number().int().min(1).max(1000).optional(),
});

/** Mount the HMAC lookup route. */
export function mountAuditHmac(
  app: Hono<{ Bindings: NodeBindings }>,
  deps: AdminAuditHmacDeps,
  h: AdminHelpers,
): void {
  app.post(
    '/admin/v1/audit/hmac',
    h.asOperator(['admin', 'auditor'], async (c, op, traceId) => {
      const body = await h.readBody(c, Body);
      const r = await lookupHmac(deps, {
        value: body.value,
        search: body.search === true,
        ...(body.limit === undefined ? {} : { limit: body.limit }),
        actorId: op.id,
        traceId,
        via: h.via(c),
      });
      return c.json(
        r.matches === undefined
          ? { hmac: r.hmac }
          : { hmac: r.hmac, matches: r.matches.map((m) => ({ ...m, ts: new Date(m.ts).toISOString() })) },
      );
    }),
  );
}
