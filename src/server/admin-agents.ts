/**
 * The admin API's monitoring-and-response routes (issue #8): agents and their
 * sessions, the kill switch, re-enabling, and audit queries.
 *
 * Roles: anyone who may watch (admin, approver, auditor) lists; stopping is
 * cheap to undo and urgent, so admins and approvers may kill; only an admin
 * re-enables. Every kill and enable is audited with the operator's id.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import type { AuditEntry, AuditEvent, AuditLog } from '../audit/index.js';
import { WardenError } from '../errors.js';
import type { Agent, AgentRegistry, Session, SessionStore } from '../identity/index.js';
import {
  type AnomalyMonitor,
  type Breakers,
  type InFlightCalls,
  type KillReport,
  type KillSwitch,
  type OpenBreaker,
  UNTIL_RESET,
} from '../monitor/index.js';
import type { AdminHelpers } from './admin-tools.js';
import type { NodeBindings } from './request.js';

export interface AdminAgentsDeps {
  agents: AgentRegistry;
  sessions: SessionStore;
  kill: KillSwitch;
  inFlight: InFlightCalls;
  audit: Pick<AuditLog, 'read'>;
  /** The gateway's clock (is a breaker still open?). */
  now: () => number;
  /** Anomalies and baselines (issue #8): listed for operators. */
  anomalies?: Pick<AnomalyMonitor, 'list' | 'baseline'>;
  /** Circuit breakers (issue #8): listed, and reset by admins. */
  breakers?: Pick<Breakers, 'reset' | 'status'>;
}

const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;
const reason = z.string().trim().min(1, { error: 'a reason is required (it is audited)' }).max(500);
const KillBody = z.strictObject({ reason });
const EnableBody = z.strictObject({ reason });
const SessionsQuery = z.strictObject({
  agent: z.string().regex(AGENT_ID, { error: 'expected an agent id' }),
  ended: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const time = z.union([
  z.coerce.number().int().min(0),
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
]);
const AuditQuery = z.strictObject({
  agent: z.string().regex(AGENT_ID).optional(),
  session: z.string().regex(SESSION_ID).optional(),
  trace: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/)
    .optional(),
  event: z
    .string()
    .regex(/^[A-Z_]{3,40}$/, { error: 'expected an event name such as TOOL_CALL' })
    .optional(),
  since: time.optional(),
  until: time.optional(),
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** A breaker as operators see it: open until a time, or until an operator resets it (`untilReset`). */
function breakerView(openUntil: number | null | undefined, reason: string | null | undefined, now: number) {
  if (openUntil === null || openUntil === undefined || openUntil <= now) return { open: false };
  return openUntil >= UNTIL_RESET
    ? { open: true, reason: reason ?? null, untilReset: true }
    : { open: true, reason: reason ?? null, openUntil: iso(openUntil) };
}

function openBreakerView(b: OpenBreaker): Record<string, unknown> {
  return {
    ...b,
    openUntil: b.openUntil === null ? null : iso(b.openUntil),
    untilReset: b.openUntil === null,
  };
}

/** An agent as operators see it (no key material beyond whether one is registered). */
export function agentView(a: Agent, now: number): Record<string, unknown> {
  return {
    id: a.id,
    type: a.type,
    version: a.version,
    environment: a.environment,
    owner: a.owner,
    status: a.status,
    statusReason: a.disabledReason,
    source: a.source,
    allowedTools: a.allowedTools,
    deniedTools: a.deniedTools,
    maxConcurrentSessions: a.maxConcurrentSessions,
    hasKey: a.publicJwk !== null,
    breaker: breakerView(a.breakerOpenUntil, a.breakerReason, now),
    createdAt: iso(a.createdAt),
    updatedAt: iso(a.updatedAt),
    expiresAt: iso(a.expiresAt),
  };
}

export function sessionView(s: Session, now: number): Record<string, unknown> {
  return {
    id: s.id,
    agentId: s.agentId,
    userId: s.userId,
    createdAt: iso(s.createdAt),
    expiresAt: iso(s.expiresAt),
    revokedAt: iso(s.revokedAt),
    revokedReason: s.revokedReason,
    calls: s.callCount,
    maxToolCalls: s.maxToolCalls,
    issuedVia: s.issuedVia,
    breaker: breakerView(s.breakerOpenUntil, s.breakerReason, now),
  };
}

export function entryView(e: AuditEntry): Record<string, unknown> {
  return { ...e, time: new Date(e.ts).toISOString() };
}

/** Mount the agents, sessions, kill switch and audit-query routes. */
export function mountAdminAgents(
  app: Hono<{ Bindings: NodeBindings }>,
  deps: AdminAgentsDeps,
  h: AdminHelpers,
): void {
  const agentIdOf = (id: string | undefined): string => {
    if (!id || !AGENT_ID.test(id))
      throw new WardenError('NOT_FOUND', 'No such agent', { rule: 'agent.unknown' });
    return id;
  };
  const query = <T>(schema: z.ZodType<T>, q: Record<string, string>): T => {
    const parsed = schema.safeParse(q);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new WardenError('INVALID_REQUEST', `${issue?.path.join('.') || 'query'}: ${issue?.message}`, {
        rule: 'request.shape',
      });
    }
    return parsed.data;
  };
  const report = (r: KillReport) => ({ kill: r });

  app.get(
    '/admin/v1/agents',
    h.asOperator(['admin', 'approver', 'auditor'], async (c) => {
      const list = await deps.agents.list();
      return c.json({ agents: list.map((a) => agentView(a, deps.now())) });
    }),
  );

  app.get(
    '/admin/v1/agents/:id',
    h.asOperator(['admin', 'approver', 'auditor'], async (c) => {
      const id = agentIdOf(c.req.param('id'));
      const agent = await deps.agents.get(id);
      if (!agent) throw new WardenError('NOT_FOUND', 'No such agent', { rule: 'agent.unknown' });
      const sessions = await deps.sessions.listForAgent(id, { limit: 100 });
      return c.json({
        agent: agentView(agent, deps.now()),
        sessions: sessions.map((x) => sessionView(x, deps.now())),
        // Calls running in the process that answered (each replica knows its own).
        callsInFlightHere: deps.inFlight.countFor(id),
      });
    }),
  );

  app.post(
    '/admin/v1/agents/:id/kill',
    h.asOperator(['admin', 'approver'], async (c, op, traceId) => {
      const id = agentIdOf(c.req.param('id'));
      const body = await h.readBody(c, KillBody);
      const r = await deps.kill.killAgent(id, {
        by: { type: 'HUMAN', id: op.id },
        reason: body.reason,
        traceId,
      });
      return c.json(report(r));
    }),
  );

  app.post(
    '/admin/v1/agents/:id/enable',
    h.asOperator(['admin'], async (c, op, traceId) => {
      const id = agentIdOf(c.req.param('id'));
      const body = await h.readBody(c, EnableBody);
      const r = await deps.kill.enableAgent(id, {
        by: { type: 'HUMAN', id: op.id },
        reason: body.reason,
        traceId,
      });
      return c.json({ agent: agentView(r.agent, deps.now()), repeated: r.repeated, auditSeq: r.auditSeq });
    }),
  );

  app.get(
    '/admin/v1/sessions',
    h.asOperator(['admin', 'approver', 'auditor'], async (c) => {
      const q = query(SessionsQuery, c.req.query());
      const list = await deps.sessions.listForAgent(q.agent, {
        includeEnded: q.ended === 'true',
        ...(q.limit ? { limit: q.limit } : {}),
      });
      return c.json({ sessions: list.map((x) => sessionView(x, deps.now())) });
    }),
  );

  app.post(
    '/admin/v1/sessions/:id/kill',
    h.asOperator(['admin', 'approver'], async (c, op, traceId) => {
      const id = c.req.param('id') ?? '';
      if (!SESSION_ID.test(id)) throw new WardenError('NOT_FOUND', 'No such session');
      const body = await h.readBody(c, KillBody);
      const r = await deps.kill.killSession(id, {
        by: { type: 'HUMAN', id: op.id },
        reason: body.reason,
        traceId,
      });
      return c.json(report(r));
    }),
  );

  const anomalies = deps.anomalies;
  if (anomalies) {
    const AnomalyQuery = z.strictObject({
      agent: z.string().regex(AGENT_ID).optional(),
      since: time.optional(),
      limit: z.coerce.number().int().min(1).max(1000).optional(),
    });
    app.get(
      '/admin/v1/anomalies',
      h.asOperator(['admin', 'approver', 'auditor'], async (c) => {
        const q = query(AnomalyQuery, c.req.query());
        const list = await anomalies.list({
          ...(q.agent ? { agentId: q.agent } : {}),
          ...(q.since !== undefined ? { since: q.since } : {}),
          ...(q.limit ? { limit: q.limit } : {}),
        });
        return c.json({
          anomalies: list.map((a) => ({
            ...a,
            time: new Date(a.ts).toISOString(),
            windowStart: new Date(a.windowStart).toISOString(),
          })),
        });
      }),
    );
    app.get(
      '/admin/v1/baselines/:scope/:key',
      h.asOperator(['admin', 'approver', 'auditor'], async (c) => {
        const scope = c.req.param('scope');
        const key = c.req.param('key') ?? '';
        if ((scope !== 'agent' && scope !== 'type') || !AGENT_ID.test(key)) {
          throw new WardenError(
            'NOT_FOUND',
            'Expected /admin/v1/baselines/agent/{id} or /baselines/type/{type}',
          );
        }
        return c.json({ baseline: await anomalies.baseline({ scope, key }) });
      }),
    );
  }

  const breakers = deps.breakers;
  if (breakers) {
    app.get(
      '/admin/v1/breakers',
      h.asOperator(['admin', 'approver', 'auditor'], async (c) =>
        c.json({ breakers: (await breakers.status()).map(openBreakerView) }),
      ),
    );
    // Re-opening the tap is an admin's call: the breaker tripped for a reason.
    for (const scope of ['agents', 'sessions'] as const) {
      app.post(
        `/admin/v1/${scope}/:id/breaker/reset`,
        h.asOperator(['admin'], async (c, op, traceId) => {
          const id = c.req.param('id') ?? '';
          if (!(scope === 'agents' ? AGENT_ID : SESSION_ID).test(id))
            throw new WardenError('NOT_FOUND', 'Not found');
          await h.readBody(c, z.strictObject({}));
          const r = await breakers.reset(scope === 'agents' ? { agentId: id } : { sessionId: id }, op.id, {
            traceId,
          });
          return c.json({ breaker: r, repeated: !r.closed });
        }),
      );
    }
  }

  app.get(
    '/admin/v1/audit',
    h.asOperator(['admin', 'auditor'], async (c) => {
      const q = query(AuditQuery, c.req.query());
      const entries = await deps.audit.read({
        ...(q.agent ? { agentId: q.agent } : {}),
        ...(q.session ? { sessionId: q.session } : {}),
        ...(q.trace ? { traceId: q.trace } : {}),
        ...(q.event ? { event: q.event as AuditEvent } : {}),
        ...(q.since !== undefined ? { sinceTs: q.since } : {}),
        ...(q.until !== undefined ? { untilTs: q.until } : {}),
        ...(q.after !== undefined ? { afterSeq: q.after } : {}),
        limit: q.limit ?? 100,
      });
      const last = entries.at(-1);
      return c.json({ entries: entries.map(entryView), next: last ? last.seq : null });
    }),
  );
}
