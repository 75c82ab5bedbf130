import type { Approval } from '../approvals/index.js';
import { type ApprovalAsk, argumentsHash, stillPending } from '../approvals/index.js';
import { WardenError } from '../errors.js';
import { TAINT } from '../identity/index.js';
import { effectiveRisk } from '../policy/index.js';
import { callSignal } from './track-call.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** Approval ids are ours (`apr_` + random); anything else is refused before it reaches the store. */
const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{8,64}$/;

/**
 * Step (after authorize and resource scopes): the risk class decides whether a
 * human must look. low runs; medium runs and is flagged for review (the
 * `review-flag` step, once the call is sure to run); high waits for an
 * approver; critical never runs automatically, whatever anyone approved.
 * Policy obligations can raise a call's class (`@risk`, `@approval` ⇒ high),
 * never lower it.
 *
 * A held call either waits (`wait`: up to the request's timeout, with progress
 * notifications) or answers APPROVAL_PENDING at once with the approval id
 * (`pending`). Retrying the same call — with the id, or without it, the same
 * agent, tool and arguments — picks up the decision. An approval is used by
 * exactly one call. An approver's edited arguments pass through `recheck`
 * (arguments, policy, resource scopes) again before anything runs.
 */
export function riskGate(
  deps: Pick<PipelineDeps, 'riskOf' | 'approvals' | 'approvalSettings' | 'clock'>,
  recheck: (state: CallState) => Promise<void>,
): Step {
  return {
    name: 'approval',
    async run(state: CallState) {
      const { tool, agent, session, parameters } = state;
      if (!tool || !agent || !session || !parameters)
        throw new WardenError('INTERNAL', 'Risk gate ran out of order');
      const configured = deps.riskOf(tool.name);
      let risk = effectiveRisk(configured, state.obligations);
      // Monitoring held the session after an anomaly: nothing more runs without a human (issue #8).
      const held = ((state.taint ?? 0) & TAINT.anomalyHold) !== 0;
      if (held && risk !== 'critical') risk = 'high';
      state.risk = risk;
      // When policy raised the class, say from what (public) and by which policies (private detail).
      const raised = risk === configured ? undefined : { raisedFrom: configured };
      const by = held
        ? `raised from ${configured}: the session is held by monitoring after an anomaly`
        : raised
          ? `raised from ${configured} by policies ${(state.policyIds ?? []).join(', ')}`
          : '';
      if (risk === 'critical') throw critical(tool.name, risk, raised, by);
      if (risk !== 'high') {
        state.allowedBy.push(`risk.${risk}`);
        return;
      }
      const approvals = deps.approvals;
      if (!approvals && held) {
        throw new WardenError(
          'ANOMALY_HOLD',
          'Monitoring holds this session: every call needs a human approval',
          {
            rule: 'anomaly.hold',
            detail: `no approval channel is configured; the call is refused (fail closed); ${by}`,
            data: { risk, ...raised },
          },
        );
      }
      if (!approvals) {
        throw new WardenError(
          'APPROVAL_REQUIRED',
          `Tool "${tool.name}" is high risk and needs a human approval`,
          {
            rule: 'risk.high-requires-approval',
            detail: `no approval channel is configured; the call is refused (fail closed)${raised ? `; ${by}` : ''}`,
            data: { risk, ...raised },
          },
        );
      }
      const mode = modeOf(state.request.approvalMode, deps.approvalSettings?.mode ?? 'wait');
      let approval: Approval;
      const presented = state.request.approvalId;
      if (presented !== undefined && presented !== null) {
        if (typeof presented !== 'string' || !APPROVAL_ID.test(presented)) {
          throw new WardenError('INVALID_REQUEST', 'approvalId is not an approval id', {
            rule: 'approval.id',
          });
        }
        const found = await approvals.get(presented);
        if (found?.kind !== 'approval') {
          throw new WardenError('APPROVAL_NOT_FOUND', `No approval request ${presented}`, {
            rule: 'approval.id',
          });
        }
        if (
          found.agentId !== agent.id ||
          found.userId !== session.userId ||
          found.toolName !== tool.name ||
          found.argumentsHash !== argumentsHash(parameters)
        ) {
          throw new WardenError('APPROVAL_MISMATCH', `Approval ${presented} was given for another call`, {
            rule: 'approval.match',
            detail: `approval for ${found.agentId}/${found.userId ?? '-'}/${found.toolName}/${found.argumentsHash.slice(0, 12)}, call is ${agent.id}/${session.userId ?? '-'}/${tool.name}`,
          });
        }
        approval = found;
      } else {
        approval = (
          await approvals.requestFor(
            askOf(
              state,
              risk,
              configured,
              held ? 'anomaly.hold' : raised ? 'policy.obligation' : 'risk.high-requires-approval',
            ),
          )
        ).approval;
      }
      if (approval.status === 'pending') {
        if (mode === 'pending') throw stillPending(approval);
        const progress = state.request.onProgress;
        const tell = () =>
          progress?.(
            `Waiting for a human to approve ${tool.name} (approval ${approval.id}, until ${new Date(approval.expiresAt).toISOString()})`,
          );
        tell();
        const signal = callSignal(state);
        approval = await approvals.wait(approval.id, {
          ...(signal ? { signal } : {}),
          ...(progress ? { onTick: tell, tickMs: deps.approvalSettings?.progressIntervalMs ?? 15_000 } : {}),
        });
      }
      const who = approval.decidedBy ?? 'nobody';
      if (approval.status === 'denied') {
        throw new WardenError('APPROVAL_DENIED', `A human denied this call (approval ${approval.id})`, {
          rule: 'approval.denied',
          data: {
            approvalId: approval.id,
            decidedBy: who,
            ...(approval.comment ? { comment: approval.comment } : {}),
          },
        });
      }
      if (approval.status === 'expired') {
        throw new WardenError(
          'APPROVAL_TIMEOUT',
          `Nobody approved this call in time (approval ${approval.id})`,
          {
            rule: 'approval.timeout',
            data: { approvalId: approval.id },
          },
        );
      }
      if (approval.status !== 'approved')
        throw new WardenError('INTERNAL', `Approval in state ${approval.status}`);
      if (approval.consumedAt === null && approvals.usableUntil(approval) <= deps.clock.now()) {
        throw new WardenError('APPROVAL_EXPIRED', `Approval ${approval.id} was not used in time`, {
          rule: 'approval.use-window',
          data: { approvalId: approval.id },
        });
      }
      if (approval.consumedAt !== null) {
        throw new WardenError('APPROVAL_CONSUMED', `Approval ${approval.id} was already used by a call`, {
          rule: 'approval.single-use',
          data: { approvalId: approval.id },
        });
      }
      if (approval.argumentPatch) {
        // Edit before approve: the approver's values replace the agent's, and the new call is
        // checked like any call (arguments, policy, scopes) before it may run.
        const original = parameters;
        // The authoritative check (the approver saw a redacted copy): an edit only replaces
        // arguments the agent sent; a patch naming anything else does not run.
        const added = Object.keys(approval.argumentPatch).filter((k) => !Object.hasOwn(original, k));
        if (added.length > 0) {
          throw new WardenError(
            'APPROVAL_ARGUMENTS_INVALID',
            'The approved edit adds arguments the agent did not send',
            {
              rule: 'approval.edit-adds-argument',
              detail: `added: ${added.slice(0, 5).join(', ')}`,
              data: { approvalId: approval.id },
            },
          );
        }
        state.parameters = { ...original, ...approval.argumentPatch };
        state.rewrite = { original, patch: approval.argumentPatch };
        try {
          await recheck(state);
        } catch (e) {
          const err = e instanceof WardenError ? e : new WardenError('INTERNAL', 'Recheck failed');
          throw new WardenError(err.code, `The approved arguments were refused: ${err.message}`, {
            ...(err.rule ? { rule: err.rule } : {}),
            ...(err.detail ? { detail: err.detail } : {}),
            data: { ...err.data, approvalId: approval.id },
          });
        }
        const after = effectiveRisk(configured, state.obligations);
        if (after === 'critical')
          throw critical(tool.name, after, { raisedFrom: configured }, 'after the approved edit');
      }
      if (!(await approvals.consume(approval.id, state.request.traceId))) {
        throw new WardenError('APPROVAL_CONSUMED', `Approval ${approval.id} was already used by a call`, {
          rule: 'approval.single-use',
          data: { approvalId: approval.id },
        });
      }
      state.approval = approval;
      state.allowedBy.push(`approval:${approval.id}:${who}`);
    },
  };
}

/** Step (after budget, so only calls that will run): a medium-risk call is flagged for review. */
export function reviewFlag(deps: Pick<PipelineDeps, 'approvals'>): Step {
  return {
    name: 'review-flag',
    async run(state: CallState) {
      if (state.risk !== 'medium' || !deps.approvals) return;
      const tool = state.tool;
      if (!tool) throw new WardenError('INTERNAL', 'Review flag ran out of order');
      state.review = await deps.approvals.flag(askOf(state, 'medium', state.risk, 'risk.medium-review'));
      state.allowedBy.push(`review:${state.review.id}`);
    },
  };
}

function askOf(
  state: CallState,
  risk: ApprovalAsk['risk'],
  configured: ApprovalAsk['risk'],
  rule: string,
): ApprovalAsk {
  const { agent, session, tool, parameters } = state;
  if (!agent || !session || !tool || !parameters)
    throw new WardenError('INTERNAL', 'Approval asked out of order');
  return {
    traceId: state.request.traceId,
    agentId: agent.id,
    agentType: agent.type,
    sessionId: session.id,
    userId: session.userId,
    toolName: tool.name,
    risk,
    configuredRisk: configured,
    arguments: parameters,
    // A secret found in a value (inspect-input) never reaches an approver's screen, Slack or webhook.
    // Plain markers: the audit log's HMACs stay in the log (issue #9).
    ...(state.shownParameters === undefined ? {} : { shownArguments: state.shownParameters }),
    ...(state.auditParameters === undefined ? {} : { auditArguments: state.auditParameters }),
    reasoning: state.reasoning ?? null,
    rule,
    policyIds: state.policyIds ?? [],
  };
}

function modeOf(v: unknown, fallback: 'wait' | 'pending'): 'wait' | 'pending' {
  if (v === undefined || v === null) return fallback;
  if (v === 'wait' || v === 'pending') return v;
  throw new WardenError('INVALID_REQUEST', 'approval mode must be "wait" or "pending"', {
    rule: 'approval.mode',
  });
}

function critical(
  tool: string,
  risk: string,
  raised: { raisedFrom: string } | undefined,
  by: string,
): WardenError {
  return new WardenError(
    'APPROVAL_REQUIRED',
    `Tool "${tool}" is critical risk and never runs automatically`,
    {
      rule: 'risk.critical-never-automatic',
      ...(raised && by ? { detail: by } : {}),
      data: { risk, ...raised },
    },
  );
}
