/**
 * The admin API's tool-pinning routes (issue #7): every upstream tool with its
 * pin (`GET /admin/v1/tools`), one in full with what changed since it was
 * approved (`GET /admin/v1/tools/:name`), and an admin's approval of the
 * definition listed now (`POST /admin/v1/tools/:name/approve`), optionally only
 * if it still has the hash the admin reviewed.
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import type { DecidedVia } from '../approvals/index.js';
import type { OperatorConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { PinnedTools, ToolView } from '../pins/index.js';
import type { NodeBindings } from './request.js';

type C = Context<{ Bindings: NodeBindings }>;

/** What the admin module lends these routes: authentication with roles, body parsing, the channel. */
export interface AdminHelpers {
  asOperator(
    roles: OperatorConfig['roles'],
    fn: (c: C, op: OperatorConfig, traceId: string) => Promise<Response>,
  ): (c: C) => Promise<Response>;
  readBody<T>(c: C, schema: z.ZodType<T>): Promise<T>;
  via(c: C): DecidedVia;
}

const ApproveBody = z.strictObject({
  /** The hash the operator reviewed (`GET /admin/v1/tools/:name`); absent = whatever is listed now. */
  hash: z
    .string()
    .regex(/^[0-9a-f]{64}$/, { error: 'expected the SHA-256 hex hash shown by GET /admin/v1/tools/{name}' })
    .optional(),
  comment: z.string().max(2000).optional(),
});
const ListQuery = z.strictObject({
  status: z.enum(['approved', 'pending', 'quarantined', 'unverified']).optional(),
});

const iso = (t: number | null | undefined) =>
  t === null || t === undefined ? null : new Date(t).toISOString();

/** A tool as operators see it in a list. */
function summary(v: ToolView): Record<string, unknown> {
  return {
    name: v.name,
    upstream: v.upstream,
    upstreamName: v.upstreamName,
    status: v.state,
    hash: v.hash,
    approvedHash: v.pin?.approvedHash ?? null,
    approvedBy: v.pin?.approvedBy ?? null,
    approvedAt: iso(v.pin?.approvedAt),
    pendingHash: v.pin?.pendingHash ?? null,
    injectionScore: v.pin?.inspection?.score ?? null,
    flagged: v.pin?.inspection?.flagged ?? null,
    firstSeenAt: iso(v.pin?.firstSeenAt),
    changedAt: iso(v.pin?.changedAt),
  };
}

/** Mount the tool-pinning routes. */
export function mountToolPins(
  app: Hono<{ Bindings: NodeBindings }>,
  pins: PinnedTools,
  h: AdminHelpers,
): void {
  const detailOf = (c: C) => {
    const name = c.req.param('name') ?? '';
    const d = name.length > 0 && name.length <= 512 ? pins.detail(name) : undefined;
    if (!d) throw new WardenError('TOOL_UNKNOWN', 'No upstream lists this tool', { rule: 'tool.unknown' });
    return d;
  };

  app.get(
    '/admin/v1/tools',
    h.asOperator(['admin', 'approver', 'auditor'], async (c) => {
      const parsed = ListQuery.safeParse(c.req.query());
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new WardenError('INVALID_REQUEST', `${issue?.path.join('.') || 'query'}: ${issue?.message}`, {
          rule: 'request.shape',
        });
      }
      const status = parsed.data.status;
      const views = pins.views().filter((v) => status === undefined || v.state === status);
      return c.json({ tools: views.map(summary) });
    }),
  );

  app.get(
    '/admin/v1/tools/:name',
    h.asOperator(['admin', 'approver', 'auditor'], async (c) => {
      const d = detailOf(c);
      return c.json({
        tool: {
          ...summary(d),
          definition: d.definition,
          inspection: d.inspection,
          approvedDefinition: d.pin?.approvedDefinition ?? null,
          changes: d.changes,
        },
      });
    }),
  );

  app.post(
    '/admin/v1/tools/:name/approve',
    h.asOperator(['admin'], async (c, op, traceId) => {
      const name = detailOf(c).name;
      const body = await h.readBody(c, ApproveBody);
      const out = await pins.approve(name, {
        operatorId: op.id,
        traceId,
        via: h.via(c),
        ...(body.hash === undefined ? {} : { expectHash: body.hash }),
        ...(body.comment === undefined ? {} : { comment: body.comment }),
      });
      return c.json({ tool: summary(out.view), repeated: out.repeated });
    }),
  );
}
