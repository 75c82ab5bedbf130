/**
 * MCP resources and prompts under policy (issue #10). A resource is a data-leak
 * path and a prompt an injection path, so they pass the same gates a tool call
 * does, minus what only calls have (arguments, approvals, budgets):
 *
 *   the principal (verified by the face) → Cedar (`read_resource` on
 *   `Warden::Resource`, `get_prompt` on `Warden::Prompt`; default deny, forbid
 *   wins) → the attempt, audited durably → the upstream → the detectors on
 *   what came back (PII and secrets redacted, instructions wrapped or withheld,
 *   as for tool results) → the outcome, audited.
 *
 * Lists are filtered by the same policy: an agent sees only what it may read.
 */
import type {
  CompleteRequest,
  CompleteResult,
  ContentBlock,
  GetPromptResult,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplate,
} from '@modelcontextprotocol/sdk/types.js';
import type { AuditEntry, AuditInput } from '../audit/index.js';
import { WardenError } from '../errors.js';
import { type Agent, ipInRanges, type Session, TAINT } from '../identity/index.js';
import { inspectResult, type ResultInspection } from '../inspect/index.js';
import type { AccessInput, AuthzDecision } from '../policy/index.js';
import type { MergedCatalog } from '../upstream/catalog.js';
import type { Clock } from '../util/clock.js';
import type { PipelineDeps } from './types.js';

/** Who asks: the face verified the token of this very request. */
export interface AccessPrincipal {
  agent: Agent;
  session: Session;
}

/** One request's own facts. */
export interface AccessContext {
  traceId: string;
  clientIp: string;
  signal?: AbortSignal;
}

/** What the gate needs of the upstream pool. */
export interface CatalogSource {
  catalog(): MergedCatalog;
  readResource(uri: string, options?: { signal?: AbortSignal }): Promise<ReadResourceResult>;
  getPrompt(
    name: string,
    args: Record<string, string> | undefined,
    options?: { signal?: AbortSignal },
  ): Promise<GetPromptResult>;
  complete(params: CompleteRequest['params'], options?: { signal?: AbortSignal }): Promise<CompleteResult>;
  subscribe(uri: string): Promise<void>;
  unsubscribe(uri: string): Promise<void>;
  resourceRoute(uri: string): { connection: { name: string } };
}

export interface AccessDeps {
  source: CatalogSource;
  /** Absent = nothing is permitted (fail closed). */
  policy?: { authorizeAccess(input: AccessInput): AuthzDecision };
  audit: { append(input: AuditInput, opts?: { durable?: boolean }): Promise<AuditEntry> };
  sessions: { taintOf(id: string): Promise<number> };
  inspection?: PipelineDeps['inspection'];
  clock: Clock;
}

type Kind = AccessInput['kind'];

const EVENT = { resource: 'RESOURCE_READ', prompt: 'PROMPT_GET' } as const;

export class AccessGate {
  constructor(private readonly deps: AccessDeps) {}

  /** The resources `p` may read. */
  async resources(p: AccessPrincipal, ctx: AccessContext): Promise<Resource[]> {
    const taint = await this.taint(p, ctx);
    return [...this.deps.source.catalog().resources.values()]
      .filter((r) => this.decide(p, ctx, taint, 'resource', r.resource.uri, r.upstream).allowed)
      .map((r) => r.resource);
  }

  /** The resource templates `p` may read through (decided on the template text itself). */
  async templates(p: AccessPrincipal, ctx: AccessContext): Promise<ResourceTemplate[]> {
    const taint = await this.taint(p, ctx);
    return this.deps.source
      .catalog()
      .templates.filter(
        (t) => this.decide(p, ctx, taint, 'resource', t.template.uriTemplate, t.upstream).allowed,
      )
      .map((t) => t.template);
  }

  /** The prompts `p` may get, under their public names. */
  async prompts(p: AccessPrincipal, ctx: AccessContext): Promise<Prompt[]> {
    const taint = await this.taint(p, ctx);
    return [...this.deps.source.catalog().prompts.values()]
      .filter((x) => this.decide(p, ctx, taint, 'prompt', x.name, x.upstream).allowed)
      .map((x) => ({ ...x.prompt, name: x.name }));
  }

  /** resources/read under policy, inspected, audited before and after. */
  async readResource(p: AccessPrincipal, uri: unknown, ctx: AccessContext): Promise<ReadResourceResult> {
    if (typeof uri !== 'string' || uri === '' || uri.length > 4096) {
      throw new WardenError('INVALID_REQUEST', 'A resource URI (1–4096 characters) is required', {
        rule: 'request.resource-uri',
      });
    }
    this.guard(p, ctx);
    const upstream = this.deps.source.resourceRoute(uri).connection.name;
    const attempt = await this.admit(p, ctx, 'resource', uri, upstream);
    return this.run(p, ctx, 'resource', uri, upstream, attempt, async () => {
      const result = await this.deps.source.readResource(uri, ctx.signal ? { signal: ctx.signal } : {});
      const contents = result.contents.map((resource) => ({ type: 'resource' as const, resource }));
      const inspected = await this.inspect({ content: contents }, `resource ${uri}`);
      if (!inspected) return { result, findings: undefined };
      const out = inspected.result.content as Array<{
        type: 'resource';
        resource: ReadResourceResult['contents'][number];
      }>;
      return { result: { ...result, contents: out.map((c) => c.resource) }, findings: inspected };
    });
  }

  /** prompts/get under policy, inspected (a prompt is text put in front of the model), audited. */
  async getPrompt(
    p: AccessPrincipal,
    name: unknown,
    args: unknown,
    ctx: AccessContext,
  ): Promise<GetPromptResult> {
    if (typeof name !== 'string' || name === '' || name.length > 512) {
      throw new WardenError('INVALID_REQUEST', 'A prompt name is required', { rule: 'request.prompt-name' });
    }
    this.guard(p, ctx);
    const published = this.deps.source.catalog().prompts.get(name);
    if (!published) {
      throw new WardenError('PROMPT_UNKNOWN', 'Unknown prompt', { detail: `no published prompt ${name}` });
    }
    const attempt = await this.admit(p, ctx, 'prompt', name, published.upstream);
    return this.run(p, ctx, 'prompt', name, published.upstream, attempt, async () => {
      const result = await this.deps.source.getPrompt(
        name,
        args as Record<string, string> | undefined,
        ctx.signal ? { signal: ctx.signal } : {},
      );
      const inspected = await this.inspect(
        { content: result.messages.map((m) => m.content) },
        `prompt ${name}`,
      );
      if (!inspected) return { result, findings: undefined };
      const content = inspected.result.content as ContentBlock[];
      return {
        result: {
          ...result,
          messages: result.messages.map((m, i) => ({ ...m, content: content[i] ?? m.content })),
        },
        findings: inspected,
      };
    });
  }

  /** completion/complete: only for a prompt or resource template the agent may use; values are not audited. */
  async complete(
    p: AccessPrincipal,
    params: CompleteRequest['params'],
    ctx: AccessContext,
  ): Promise<CompleteResult> {
    const catalog = this.deps.source.catalog();
    const ref = params.ref;
    const taint = await this.taint(p, ctx);
    const target =
      ref.type === 'ref/prompt'
        ? { kind: 'prompt' as const, name: ref.name, upstream: catalog.prompts.get(ref.name)?.upstream }
        : {
            kind: 'resource' as const,
            name: ref.uri,
            upstream: catalog.templates.find((t) => t.template.uriTemplate === ref.uri)?.upstream,
          };
    // Unknown or not permitted: no suggestions (nothing is revealed about what exists).
    if (!target.upstream || !this.decide(p, ctx, taint, target.kind, target.name, target.upstream).allowed) {
      return { completion: { values: [] } };
    }
    return this.deps.source.complete(params, ctx.signal ? { signal: ctx.signal } : {});
  }

  /** resources/subscribe: permitted only for what the agent may read. */
  async subscribe(p: AccessPrincipal, uri: unknown, ctx: AccessContext): Promise<void> {
    if (typeof uri !== 'string' || uri === '') {
      throw new WardenError('INVALID_REQUEST', 'A resource URI is required', {
        rule: 'request.resource-uri',
      });
    }
    this.guard(p, ctx);
    const upstream = this.deps.source.resourceRoute(uri).connection.name;
    const decision = this.decide(p, ctx, await this.taint(p, ctx), 'resource', uri, upstream);
    if (!decision.allowed) {
      const error = denial(decision, 'resource', uri);
      await this.record(p, ctx, 'resource', uri, upstream, { denied: error, decision });
      throw error;
    }
    await this.deps.source.subscribe(uri);
  }

  async unsubscribe(uri: string): Promise<void> {
    await this.deps.source.unsubscribe(uri);
  }

  /** The session's own limits, as for a call: the address it may be used from (the token was verified by the face). */
  private guard(p: AccessPrincipal, ctx: AccessContext): void {
    if (!ipInRanges(ctx.clientIp, p.session.allowedCidrs)) {
      throw new WardenError(
        'CLIENT_IP_DENIED',
        'Requests from this address are not allowed for this session',
        {
          rule: 'session.allowed-cidrs',
          detail: `client ${ctx.clientIp} not in ${p.session.allowedCidrs.join(', ')}`,
        },
      );
    }
  }

  /** The session's taint bits (what policies see as context.taint), after the session's own checks. */
  private async taint(p: AccessPrincipal, ctx: AccessContext): Promise<number> {
    this.guard(p, ctx);
    return this.deps.sessions.taintOf(p.session.id);
  }

  private decide(
    p: AccessPrincipal,
    ctx: AccessContext,
    taint: number,
    kind: Kind,
    name: string,
    upstream: string,
  ): AuthzDecision {
    const policy = this.deps.policy;
    if (!policy) return { allowed: false, reason: 'not-permitted', policyIds: [], errors: [] };
    try {
      return policy.authorizeAccess({
        agent: p.agent,
        kind,
        name,
        upstream,
        session: { id: p.session.id, calls: p.session.callCount },
        clientIp: ctx.clientIp,
        now: this.deps.clock.now(),
        ...(p.session.userId ? { user: { id: p.session.userId } } : {}),
        taint: {
          untrusted: (taint & TAINT.untrusted) !== 0,
          privateData: (taint & TAINT.privateData) !== 0,
        },
      });
    } catch (e) {
      // Fail closed: no decision is a denial.
      return {
        allowed: false,
        reason: 'forbid-error',
        policyIds: [],
        errors: [e instanceof Error ? e.message : String(e)],
      };
    }
  }

  /** The decision, audited: a denial is recorded and thrown; an allow writes the attempt durably. */
  private async admit(
    p: AccessPrincipal,
    ctx: AccessContext,
    kind: Kind,
    name: string,
    upstream: string,
  ): Promise<AuditEntry> {
    const decision = this.decide(p, ctx, await this.taint(p, ctx), kind, name, upstream);
    if (!decision.allowed) {
      const error = denial(decision, kind, name);
      await this.record(p, ctx, kind, name, upstream, { denied: error, decision });
      throw error;
    }
    return this.record(p, ctx, kind, name, upstream, { attempt: decision });
  }

  private async run<T>(
    p: AccessPrincipal,
    ctx: AccessContext,
    kind: Kind,
    name: string,
    upstream: string,
    attempt: AuditEntry,
    work: () => Promise<{ result: T; findings: ResultInspection | undefined }>,
  ): Promise<T> {
    const started = this.deps.clock.now();
    try {
      const { result, findings } = await work();
      if (findings?.action === 'withheld') {
        throw new WardenError('RESULT_WITHHELD', `The ${kind} carried instructions and was withheld`, {
          rule: 'inspection.injection',
        });
      }
      await this.record(p, ctx, kind, name, upstream, {
        outcome: { attemptSeq: attempt.seq, latencyMs: this.deps.clock.now() - started, findings },
      });
      return result;
    } catch (e) {
      const error =
        e instanceof WardenError ? e : new WardenError('UPSTREAM_ERROR', 'Upstream error', { cause: e });
      await this.record(p, ctx, kind, name, upstream, {
        failed: { attemptSeq: attempt.seq, latencyMs: this.deps.clock.now() - started, error },
      }).catch(() => {});
      throw error;
    }
  }

  /** The detectors on what came back, as configured for tool results; undefined when inspection is off. */
  private async inspect(result: { content: unknown[] }, what: string): Promise<ResultInspection | undefined> {
    const cfg = this.deps.inspection;
    if (!cfg) return undefined;
    const r = cfg.results;
    try {
      return await inspectResult(result as never, {
        pii: r.pii,
        piiTypes: r.piiTypes,
        secrets: r.secrets,
        injection: r.injection,
        injectionThreshold: r.injectionThreshold,
        tool: what,
      });
    } catch (e) {
      throw new WardenError('RESULT_WITHHELD', `The ${what} could not be inspected and was withheld`, {
        rule: 'inspection.failed',
        detail: e instanceof Error ? e.message : String(e),
        cause: e,
      });
    }
  }

  private record(
    p: AccessPrincipal,
    ctx: AccessContext,
    kind: Kind,
    name: string,
    upstream: string,
    what:
      | { denied: WardenError; decision: AuthzDecision }
      | { attempt: AuthzDecision }
      | { outcome: { attemptSeq: number; latencyMs: number; findings: ResultInspection | undefined } }
      | { failed: { attemptSeq: number; latencyMs: number; error: WardenError } },
  ): Promise<AuditEntry> {
    const base = {
      traceId: ctx.traceId,
      event: EVENT[kind],
      actorType: 'AI_AGENT' as const,
      actorId: p.agent.id,
      agentId: p.agent.id,
      agentType: p.agent.type,
      sessionId: p.session.id,
      ...(p.session.userId ? { triggerUserId: p.session.userId } : {}),
    };
    const target = {
      face: 'mcp',
      kind,
      [kind === 'resource' ? 'uri' : 'prompt']: name.slice(0, 2048),
      upstream,
    };
    if ('denied' in what) {
      const e = what.denied;
      return this.deps.audit.append(
        {
          ...base,
          result: 'denied',
          decision: {
            allowed: false,
            code: e.code,
            ...(e.rule ? { rule: e.rule } : {}),
            reasons: [e.message],
          },
          data: { ...target, clientIp: ctx.clientIp },
        },
        { durable: true },
      );
    }
    if ('attempt' in what) {
      // Written durably before the upstream is asked, like a tool call's attempt.
      return this.deps.audit.append(
        {
          ...base,
          result: 'pending',
          decision: {
            allowed: true,
            rule: what.attempt.policyIds.map((id) => `policy:${id}`).join(','),
            reasons: ['permitted by policy'],
          },
          data: { ...target, phase: 'attempt', clientIp: ctx.clientIp },
        },
        { durable: true },
      );
    }
    if ('outcome' in what) {
      const f = what.outcome.findings;
      return this.deps.audit.append({
        ...base,
        result: 'success',
        latencyMs: what.outcome.latencyMs,
        data: {
          ...target,
          phase: 'outcome',
          attemptSeq: what.outcome.attemptSeq,
          ...(f
            ? {
                inspection: {
                  action: f.action,
                  redacted: f.findings.redacted,
                  pii: f.findings.pii,
                  // Types as values, not keys: the audit log redacts values under secret-looking keys.
                  found: Object.entries(f.findings.secrets).map(([type, count]) => ({ type, count })),
                  injection: f.findings.injection.score,
                },
              }
            : {}),
        },
      });
    }
    const e = what.failed.error;
    return this.deps.audit.append({
      ...base,
      result: e.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : 'failure',
      latencyMs: what.failed.latencyMs,
      decision: { allowed: true, code: e.code, ...(e.rule ? { rule: e.rule } : {}), reasons: [e.message] },
      data: { ...target, phase: 'outcome', attemptSeq: what.failed.attemptSeq },
    });
  }
}

/** A policy denial as the agent sees it. */
function denial(d: AuthzDecision & { allowed: false }, kind: Kind, name: string): WardenError {
  const detail = d.errors.length > 0 ? `evaluation errors: ${d.errors.join('; ')}` : undefined;
  const opts = (rule: string) => ({ rule, ...(detail ? { detail } : {}) });
  const what = kind === 'resource' ? `Resource "${name.slice(0, 200)}"` : `Prompt "${name.slice(0, 200)}"`;
  if (d.reason === 'not-permitted') {
    return new WardenError(
      kind === 'resource' ? 'RESOURCE_NOT_ALLOWED' : 'PROMPT_NOT_ALLOWED',
      `${what} is not permitted for this agent`,
      opts(`policy.${kind}:default-deny`),
    );
  }
  const rule = d.policyIds.map((id) => `policy:${id}`).join(',') || `policy.${kind}:fail-closed`;
  return new WardenError(
    'POLICY_DENIED',
    d.reason === 'forbid-error'
      ? `A policy that could forbid this ${kind} failed to evaluate`
      : `Policy forbids ${what}`,
    opts(rule),
  );
}
