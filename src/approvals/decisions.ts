/**
 * What humans do with the queue: decide approval requests and record review
 * verdicts. The operator must exist and hold the approver (or admin) role; the
 * user an agent acts for may not decide its request unless allowed; the first
 * decision wins; every decision is audited (undone if it cannot be), every
 * refusal audited and thrown with its code.
 */
import type { OperatorConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { ApprovalRecords } from './records.js';
import type { ApprovalServiceDeps } from './service.js';
import type { Approval, DecidedVia, DecisionAction, ReviewVerdict } from './types.js';

/** Comments are for people; a novel is not needed. */
const MAX_COMMENT = 2_000;

/** Who is deciding: an operator from config, through some channel. */
export interface DecisionInput {
  id: string;
  operatorId: string;
  action: DecisionAction;
  comment?: string | undefined;
  /** Approve with these top-level argument values replaced (edit before approve). */
  argumentPatch?: Record<string, unknown> | undefined;
  via: DecidedVia;
  traceId: string;
}

export interface ReviewInput {
  id: string;
  operatorId: string;
  verdict: ReviewVerdict;
  comment?: string | undefined;
  via: DecidedVia;
  traceId: string;
}

/** What the decisions need from the queue (ApprovalService provides it). */
export interface DecisionContext {
  records: ApprovalRecords;
  clock: { now(): number };
  deps: ApprovalServiceDeps;
  expire(id: string): Promise<Approval | undefined>;
  wake(id: string): void;
  announce(event: 'approval.requested' | 'approval.decided' | 'review.flagged', approval: Approval): void;
}

/**
 * A human's decision. The operator must exist and hold the approver (or admin) role;
 * the user the agent acts for may not approve its request unless allowed; the first
 * decision wins (the same decision again answers with the recorded one, `repeated`).
 * Refusals are audited (REQUEST_REJECTED) and thrown with their code.
 */
export async function decide(
  ctx: DecisionContext,
  input: DecisionInput,
): Promise<{ approval: Approval; repeated: boolean }> {
  const comment = cleanComment(input.comment);
  const operator = approver(ctx, input.operatorId);
  const current = await guard(() => ctx.records.get(input.id));
  const refuse = (error: WardenError) =>
    refused(ctx, input, operator?.id ?? input.operatorId, error, current);
  if (!operator) {
    throw await refuse(
      new WardenError('APPROVER_FORBIDDEN', 'Only an operator with the approver role may decide approvals', {
        rule: 'approval.approver-role',
      }),
    );
  }
  if (current?.kind !== 'approval') {
    throw await refuse(new WardenError('APPROVAL_NOT_FOUND', `No approval request ${input.id}`));
  }
  if (
    current.userId !== null &&
    current.userId === operator.id &&
    !selfApprovalAllowed(ctx, current.toolName)
  ) {
    throw await refuse(
      new WardenError(
        'SELF_APPROVAL_FORBIDDEN',
        'The user an agent acts for may not decide that agent’s request (separation of duties)',
        { rule: 'approval.separation-of-duties' },
      ),
    );
  }
  const wanted = input.action === 'approve' ? 'approved' : 'denied';
  const samePatch = (a: Approval) =>
    JSON.stringify(a.argumentPatch ?? null) ===
    JSON.stringify(input.action === 'approve' ? (input.argumentPatch ?? null) : null);
  if (current.status !== 'pending') {
    if (current.status === wanted && current.decidedBy === `operator:${operator.id}` && samePatch(current)) {
      return { approval: current, repeated: true };
    }
    if (current.status === 'expired') {
      throw await refuse(
        new WardenError('APPROVAL_EXPIRED', `Approval ${current.id} expired before a decision`),
      );
    }
    throw await refuse(
      new WardenError('APPROVAL_ALREADY_DECIDED', `Approval ${current.id} was already ${current.status}`, {
        data: { status: current.status, decidedBy: current.decidedBy },
      }),
    );
  }
  const now = ctx.clock.now();
  if (current.expiresAt <= now) {
    await ctx.expire(current.id);
    throw await refuse(
      new WardenError('APPROVAL_EXPIRED', `Approval ${current.id} expired before a decision`),
    );
  }
  let patch: Record<string, unknown> | null = null;
  if (input.argumentPatch !== undefined && input.action === 'approve') {
    patch = input.argumentPatch;
    try {
      // An edit replaces values the agent sent; it never adds an argument the agent did not ask for.
      // Early feedback against the stored (redacted) copy; the pipeline checks the original when the call runs.
      const sent = current.arguments;
      const added =
        typeof sent === 'object' && sent !== null && !Array.isArray(sent)
          ? Object.keys(patch).filter((k) => !Object.hasOwn(sent, k))
          : Object.keys(patch);
      if (added.length > 0) {
        throw new WardenError(
          'INVALID_ARGUMENTS',
          `an edit may only replace arguments the agent sent (not: ${added.slice(0, 5).join(', ')})`,
          { rule: 'approval.edit-adds-argument' },
        );
      }
      ctx.deps.checkPatch?.(current.toolName, patch);
    } catch (e) {
      const err =
        e instanceof WardenError
          ? new WardenError('APPROVAL_ARGUMENTS_INVALID', `Edited arguments refused: ${e.message}`, {
              rule: e.rule ?? 'approval.edit',
            })
          : new WardenError('APPROVAL_ARGUMENTS_INVALID', 'Edited arguments refused', {
              rule: 'approval.edit',
            });
      throw await refuse(err);
    }
  }
  const by = `operator:${operator.id}`;
  const won = await guard(() =>
    ctx.records.decide(current.id, { status: wanted, at: now, by, via: input.via, comment, patch }),
  );
  if (!won) {
    // Someone else decided (or time ran out) between the read and the update: report what won.
    const after = await guard(() => ctx.records.get(current.id));
    if (after && after.status === wanted && after.decidedBy === by && samePatch(after))
      return { approval: after, repeated: true };
    throw await refuse(
      after?.status === 'expired'
        ? new WardenError('APPROVAL_EXPIRED', `Approval ${current.id} expired before a decision`)
        : new WardenError('APPROVAL_ALREADY_DECIDED', `Approval ${current.id} was already ${after?.status}`, {
            data: { status: after?.status, decidedBy: after?.decidedBy },
          }),
    );
  }
  try {
    await ctx.deps.audit.append({
      traceId: input.traceId,
      event: wanted === 'approved' ? 'APPROVAL_GRANTED' : 'APPROVAL_DENIED',
      actorType: 'HUMAN',
      actorId: by,
      agentId: current.agentId,
      agentType: current.agentType,
      sessionId: current.sessionId,
      triggerUserId: current.userId,
      toolName: current.toolName,
      result: 'success',
      decision: {
        allowed: wanted === 'approved',
        rule: patch ? 'approval.human.edited' : 'approval.human',
        reasons: [comment ?? `${wanted} by ${operator.id}`],
      },
      data: {
        approvalId: current.id,
        requestTraceId: current.traceId,
        via: input.via,
        comment,
        ...(wanted === 'denied' ? { reason: 'human' } : {}),
        // Edit before approve is a rewrite of the agent's call: both sides are on record.
        ...(patch ? { rewrite: { argumentPatch: patch, originalArgumentsHash: current.argumentsHash } } : {}),
      },
    });
  } catch (e) {
    await ctx.records.undecide(current.id, now).catch(() => {});
    throw new WardenError('AUDIT_UNAVAILABLE', 'The decision could not be audited and was not recorded', {
      rule: 'audit.fail-closed',
      detail: e instanceof Error ? e.message : String(e),
      cause: e,
    });
  }
  const approval: Approval = {
    ...current,
    status: wanted,
    decidedAt: now,
    decidedBy: by,
    decidedVia: input.via,
    comment,
    argumentPatch: patch,
  };
  ctx.wake(current.id);
  ctx.announce('approval.decided', approval);
  return { approval, repeated: false };
}

/** A reviewer's verdict on a flagged medium-risk call (REVIEW_RECORDED). */
export async function review(
  ctx: DecisionContext,
  input: ReviewInput,
): Promise<{ approval: Approval; repeated: boolean }> {
  const comment = cleanComment(input.comment);
  const operator = approver(ctx, input.operatorId);
  const current = await guard(() => ctx.records.get(input.id));
  const refuse = (error: WardenError) =>
    refused(
      ctx,
      { ...input, action: 'review' as unknown as DecisionAction },
      operator?.id ?? input.operatorId,
      error,
      current,
    );
  if (!operator) {
    throw await refuse(
      new WardenError('APPROVER_FORBIDDEN', 'Only an operator with the approver role may review calls', {
        rule: 'approval.approver-role',
      }),
    );
  }
  if (current?.kind !== 'review') {
    throw await refuse(new WardenError('APPROVAL_NOT_FOUND', `No review ${input.id}`));
  }
  const by = `operator:${operator.id}`;
  const now = ctx.clock.now();
  const won = await guard(() =>
    ctx.records.review(current.id, { verdict: input.verdict, at: now, by, via: input.via, comment }),
  );
  if (!won) {
    const after = await guard(() => ctx.records.get(current.id));
    if (after && after.verdict === input.verdict && after.decidedBy === by)
      return { approval: after, repeated: true };
    throw await refuse(
      new WardenError('APPROVAL_ALREADY_DECIDED', `Review ${current.id} already has a verdict`, {
        data: { verdict: after?.verdict, decidedBy: after?.decidedBy },
      }),
    );
  }
  try {
    await ctx.deps.audit.append({
      traceId: input.traceId,
      event: 'REVIEW_RECORDED',
      actorType: 'HUMAN',
      actorId: by,
      agentId: current.agentId,
      agentType: current.agentType,
      sessionId: current.sessionId,
      toolName: current.toolName,
      result: 'success',
      decision: {
        allowed: input.verdict === 'ok',
        rule: 'review.human',
        reasons: [comment ?? input.verdict],
      },
      data: {
        reviewId: current.id,
        requestTraceId: current.traceId,
        verdict: input.verdict,
        via: input.via,
        comment,
      },
    });
  } catch (e) {
    // Like a decision: unaudited, it did not happen.
    await ctx.records.unreview(current.id, now).catch(() => {});
    throw new WardenError('AUDIT_UNAVAILABLE', 'The verdict could not be audited and was not recorded', {
      detail: e instanceof Error ? e.message : String(e),
      cause: e,
    });
  }
  return {
    approval: {
      ...current,
      status: 'reviewed',
      verdict: input.verdict,
      decidedAt: now,
      decidedBy: by,
      decidedVia: input.via,
      comment,
    },
    repeated: false,
  };
}

function approver(ctx: DecisionContext, operatorId: string): OperatorConfig | undefined {
  const op = ctx.deps.operators.find((o) => o.id === operatorId);
  return op && (op.roles.includes('approver') || op.roles.includes('admin')) ? op : undefined;
}

function selfApprovalAllowed(ctx: DecisionContext, tool: string): boolean {
  return ctx.deps.toolConfig(tool)?.approval?.allowSelfApproval ?? ctx.deps.config.allowSelfApproval;
}

/** Audit a refused decision and hand back the error to throw. */
async function refused(
  ctx: DecisionContext,
  input: { id: string; action: DecisionAction; via: DecidedVia; traceId: string },
  operatorId: string,
  error: WardenError,
  current: Approval | undefined,
): Promise<WardenError> {
  await ctx.deps.audit
    .append({
      traceId: input.traceId,
      event: 'REQUEST_REJECTED',
      actorType: 'HUMAN',
      actorId: `operator:${operatorId.slice(0, 200)}`,
      agentId: current?.agentId ?? null,
      agentType: current?.agentType ?? null,
      sessionId: current?.sessionId ?? null,
      toolName: current?.toolName ?? null,
      result: 'denied',
      decision: {
        allowed: false,
        code: error.code,
        ...(error.rule ? { rule: error.rule } : {}),
        reasons: [error.message],
      },
      data: { approvalId: input.id.slice(0, 200), action: input.action, via: input.via },
    })
    .catch((e: unknown) =>
      ctx.deps.log?.error({ approvalId: input.id, err: String(e) }, 'refused decision could not be audited'),
    );
  return error;
}

function cleanComment(c: string | undefined): string | null {
  if (c === undefined) return null;
  const t = c.trim();
  return t === '' ? null : t.slice(0, MAX_COMMENT);
}

export async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof WardenError) throw e;
    throw new WardenError('STORE_UNAVAILABLE', 'The approval store is unavailable', {
      detail: e instanceof Error ? e.message : String(e),
      cause: e,
    });
  }
}
