/**
 * The admin API for humans (`/admin/v1/*`), approvals and reviews today, and
 * the agents' own view of their approval requests (`GET /v1/approvals/:id`).
 * Every admin route needs an operator token; an agent token is refused by
 * name and audited. Bodies are validated; errors carry a code and trace id.
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import type { Approval, ApprovalService, DecidedVia, OperatorTokens } from '../approvals/index.js';
import { requireRole } from '../approvals/index.js';
import type { AuditInput } from '../audit/index.js';
import type { OperatorConfig } from '../config/types.js';
import { toWardenError, WardenError } from '../errors.js';
import type { UserGrant, UserGrants } from '../oauth/index.js';
import type { PinnedTools } from '../pins/index.js';
import { type AdminAgentsDeps, mountAdminAgents } from './admin-agents.js';
import { type AdminAuditDeps, mountAdminAudit } from './admin-audit.js';
import { type AdminAuditHmacDeps, mountAuditHmac } from './admin-audit-hmac.js';
import { type AuditStreams, mountAuditStream } from './admin-audit-stream.js';
import { mountToolPins } from './admin-tools.js';
import {
  bearerOf,
  clientIpOf,
  errorResponse,
  type NodeBindings,
  parseJsonBody,
  readBodyText,
  traceIdOf,
} from './request.js';

export interface AdminDeps {
  approvals: ApprovalService;
  /** Users' delegated grants (issue #6): listed by operators, revoked by admins. */
  grants?: UserGrants;
  /** Tool-definition pins (issue #7): listed by operators, approved by admins. */
  pins?: PinnedTools;
  /** Agents, sessions, the kill switch and audit queries (issue #8). */
  monitor?: AdminAgentsDeps;
  /** Signed checkpoints, proofs and the checkpoint key (issue #9). */
  tamperEvidence?: AdminAuditDeps;
  /** Investigators' lookups of values by their audit HMAC (issue #9). */
  auditHmac?: AdminAuditHmacDeps;
  /** The audit log as Server-Sent Events for SIEMs (issue #9). */
  auditStream?: AuditStreams;
  operators: OperatorTokens;
  /** Agent token verification, for the agents' own approval status route. */
  verifyAgent(token: string, traceId: string): Promise<{ agent: { id: string } }>;
  audit(input: AuditInput): Promise<unknown>;
  bodyLimitBytes: number;
  maxJsonDepth: number;
  trustProxy: boolean;
}

const ID = z.string().regex(/^(apr|rev)_[A-Za-z0-9_-]{8,64}$/);
const comment = z.string().max(2000).optional();
const ApproveBody = z.strictObject({ comment, arguments: z.record(z.string(), z.unknown()).optional() });
const DenyBody = z.strictObject({ comment });
const ReviewBody = z.strictObject({ verdict: z.enum(['ok', 'concern']), comment });
const ListQuery = z.strictObject({
  status: z.enum(['pending', 'approved', 'denied', 'expired', 'flagged', 'reviewed']).optional(),
  kind: z.enum(['approval', 'review']).optional(),
  agent: z.string().min(1).max(256).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

type C = Context<{ Bindings: NodeBindings }>;

/** Mount the admin and approval-status routes on `app`. */
export function mountAdmin(app: Hono<{ Bindings: NodeBindings }>, deps: AdminDeps): void {
  /** Run `fn` as an authenticated operator with one of `roles`; every failure becomes a coded error. */
  const asOperator =
    (roles: OperatorConfig['roles'], fn: (c: C, op: OperatorConfig, traceId: string) => Promise<Response>) =>
    async (c: C): Promise<Response> => {
      const traceId = traceIdOf(c);
      try {
        let op: OperatorConfig;
        const bearer = bearerOf(c);
        try {
          op = await deps.operators.verify(bearer);
          requireRole(op, ...roles);
        } catch (e) {
          const err = toWardenError(e);
          // No token at all is noise (as on the tool-call faces); a presented-but-refused one is an event.
          if (bearer === undefined) throw err;
          await deps
            .audit({
              traceId,
              event: 'REQUEST_REJECTED',
              actorType: err.code === 'AGENT_TOKEN_REFUSED' ? 'AI_AGENT' : 'HUMAN',
              result: 'denied',
              decision: {
                allowed: false,
                code: err.code,
                ...(err.rule ? { rule: err.rule } : {}),
                reasons: [err.message],
              },
              data: {
                face: 'admin',
                route: `${c.req.method} ${c.req.path}`,
                clientIp: clientIpOf(c, deps.trustProxy),
              },
            })
            .catch(() => {});
          throw err;
        }
        return await fn(c, op, traceId);
      } catch (e) {
        return errorResponse(c, toWardenError(e), traceId, {});
      }
    };

  const readBody = async <T>(c: C, schema: z.ZodType<T>): Promise<T> => {
    const text = await readBodyText(c.req.raw, deps.bodyLimitBytes, c.env?.incoming);
    const json = text.trim() === '' ? {} : parseJsonBody(text, deps.maxJsonDepth);
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? issue.path.join('.') : 'body';
      throw new WardenError('INVALID_REQUEST', `${where}: ${issue?.message ?? 'invalid'}`, {
        rule: 'request.shape',
      });
    }
    return parsed.data;
  };

  const idOf = (c: C): string => {
    const id = c.req.param('id');
    if (!ID.safeParse(id).success) throw new WardenError('APPROVAL_NOT_FOUND', 'No such approval or review');
    return id as string;
  };

  const via = (c: C): DecidedVia => (c.req.header('x-warden-client') === 'cli' ? 'cli' : 'api');

  app.get(
    '/admin/v1/whoami',
    asOperator(['admin', 'approver', 'auditor'], async (c, op) => c.json({ operator: op })),
  );

  app.get(
    '/admin/v1/approvals',
    asOperator(['admin', 'approver', 'auditor'], async (c) => {
      const parsed = ListQuery.safeParse(c.req.query());
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new WardenError('INVALID_REQUEST', `${issue?.path.join('.') || 'query'}: ${issue?.message}`, {
          rule: 'request.shape',
        });
      }
      const q = parsed.data;
      const list = await deps.approvals.list({
        ...(q.status ? { status: q.status } : {}),
        ...(q.kind ? { kind: q.kind } : {}),
        ...(q.agent ? { agentId: q.agent } : {}),
        ...(q.limit ? { limit: q.limit } : {}),
      });
      return c.json({ approvals: list.map(publicView) });
    }),
  );

  app.get(
    '/admin/v1/approvals/:id',
    asOperator(['admin', 'approver', 'auditor'], async (c) => {
      const a = await deps.approvals.get(idOf(c));
      if (!a) throw new WardenError('APPROVAL_NOT_FOUND', 'No such approval or review');
      return c.json({ approval: publicView(a) });
    }),
  );

  for (const action of ['approve', 'deny'] as const) {
    app.post(
      `/admin/v1/approvals/:id/${action}`,
      asOperator(['admin', 'approver'], async (c, op, traceId) => {
        const id = idOf(c);
        const body = action === 'approve' ? await readBody(c, ApproveBody) : await readBody(c, DenyBody);
        const patch =
          'arguments' in body ? (body.arguments as Record<string, unknown> | undefined) : undefined;
        const out = await deps.approvals.decide({
          id,
          operatorId: op.id,
          action,
          comment: body.comment,
          argumentPatch: patch,
          via: via(c),
          traceId,
        });
        return c.json({ approval: publicView(out.approval), repeated: out.repeated });
      }),
    );
  }

  app.post(
    '/admin/v1/approvals/:id/review',
    asOperator(['admin', 'approver'], async (c, op, traceId) => {
      const id = idOf(c);
      const body = await readBody(c, ReviewBody);
      const out = await deps.approvals.review({
        id,
        operatorId: op.id,
        verdict: body.verdict,
        comment: body.comment,
        via: via(c),
        traceId,
      });
      return c.json({ approval: publicView(out.approval), repeated: out.repeated });
    }),
  );

  const grants = deps.grants;
  if (grants) {
    const GrantQuery = z.strictObject({
      user: z.string().min(1).max(256).optional(),
      agent: z.string().min(1).max(256).optional(),
      revoked: z.enum(['true', 'false']).optional(),
      limit: z.coerce.number().int().min(1).max(5000).optional(),
    });
    const RevokeBody = z.strictObject({ reason: z.string().max(500).optional() });
    const grantView = (g: UserGrant) => ({
      ...g,
      createdAt: new Date(g.createdAt).toISOString(),
      updatedAt: new Date(g.updatedAt).toISOString(),
      lastUsedAt: g.lastUsedAt === null ? null : new Date(g.lastUsedAt).toISOString(),
      revokedAt: g.revokedAt === null ? null : new Date(g.revokedAt).toISOString(),
    });

    app.get(
      '/admin/v1/grants',
      asOperator(['admin', 'auditor'], async (c) => {
        const parsed = GrantQuery.safeParse(c.req.query());
        if (!parsed.success) {
          throw new WardenError(
            'INVALID_REQUEST',
            `Invalid query: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
          );
        }
        const q = parsed.data;
        const includeRevoked = q.revoked === 'true';
        const list = q.user
          ? (await grants.listForUser(q.user, { includeRevoked })).filter(
              (g) => !q.agent || g.agentId === q.agent,
            )
          : await grants.list({
              includeRevoked,
              ...(q.agent ? { agentId: q.agent } : {}),
              ...(q.limit ? { limit: q.limit } : {}),
            });
        return c.json({ grants: list.map(grantView) });
      }),
    );

    app.post(
      '/admin/v1/grants/:id/revoke',
      asOperator(['admin'], async (c, op, traceId) => {
        const id = c.req.param('id') ?? '';
        if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw new WardenError('INVALID_REQUEST', 'Invalid grant id');
        const body = await readBody(c, RevokeBody);
        const out = await grants.revoke(id, `operator:${op.id}`);
        if (out.changed) {
          await deps.audit({
            traceId,
            event: 'GRANT_REVOKED',
            actorType: 'HUMAN',
            actorId: op.id,
            agentId: out.grant.agentId,
            triggerUserId: out.grant.userId,
            triggerSource: 'user',
            result: 'success',
            data: {
              grantId: id,
              clientId: out.grant.clientId,
              by: 'operator',
              reason: body.reason ?? null,
              sessionsRevoked: out.sessions.length,
            },
          });
        }
        return c.json({
          grant: grantView(out.grant),
          sessionsRevoked: out.sessions.length,
          repeated: !out.changed,
        });
      }),
    );
  }

  if (deps.pins) mountToolPins(app, deps.pins, { asOperator, readBody, via });
  if (deps.monitor) mountAdminAgents(app, deps.monitor, { asOperator, readBody, via });
  if (deps.tamperEvidence) mountAdminAudit(app, deps.tamperEvidence, { asOperator, readBody, via });
  if (deps.auditHmac) mountAuditHmac(app, deps.auditHmac, { asOperator, readBody, via });
  if (deps.auditStream) mountAuditStream(app, deps.auditStream, { asOperator, readBody, via });

  // An agent polls its own request (REST agents that chose not to wait). Never another agent's.
  app.get('/v1/approvals/:id', async (c) => {
    const traceId = traceIdOf(c);
    try {
      const token = bearerOf(c);
      if (!token)
        throw new WardenError('UNAUTHENTICATED', 'A bearer token is required', {
          rule: 'auth.token-required',
        });
      const { agent } = await deps.verifyAgent(token, traceId);
      const id = idOf(c);
      const a = await deps.approvals.get(id);
      if (!a || a.agentId !== agent.id || a.kind !== 'approval') {
        throw new WardenError('APPROVAL_NOT_FOUND', 'No such approval for this agent');
      }
      return c.json({
        approval: {
          id: a.id,
          status: a.consumedAt === null ? a.status : 'used',
          toolName: a.toolName,
          expiresAt: new Date(a.expiresAt).toISOString(),
          ...(a.decidedAt === null ? {} : { decidedAt: new Date(a.decidedAt).toISOString() }),
          ...(a.comment ? { comment: a.comment } : {}),
          ...(a.argumentPatch ? { argumentsEdited: true } : {}),
        },
      });
    } catch (e) {
      return errorResponse(c, toWardenError(e), traceId, {});
    }
  });
}

/** What operators see of a request: everything but nothing secret (arguments are stored redacted). */
export function publicView(a: Approval): Record<string, unknown> {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: a.id,
    kind: a.kind,
    status: a.status,
    toolName: a.toolName,
    risk: a.risk,
    configuredRisk: a.configuredRisk,
    agentId: a.agentId,
    agentType: a.agentType,
    sessionId: a.sessionId,
    userId: a.userId,
    traceId: a.traceId,
    arguments: a.arguments,
    argumentsHash: a.argumentsHash,
    reasoning: a.reasoning,
    rule: a.rule,
    policyIds: a.policyIds,
    createdAt: iso(a.createdAt),
    expiresAt: a.kind === 'approval' ? iso(a.expiresAt) : null,
    decidedAt: iso(a.decidedAt),
    decidedBy: a.decidedBy,
    decidedVia: a.decidedVia,
    comment: a.comment,
    argumentPatch: a.argumentPatch,
    verdict: a.verdict,
    usedAt: iso(a.consumedAt),
    auditSeq: a.auditSeq,
  };
}
