import { WardenError } from '../errors.js';
import { auditFields } from './audit-fields.js';
import { auditDetectors } from './inspect-input.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/**
 * Step 6: the attempt is written to the audit chain before the tool runs. If it
 * cannot be written the call does not run (fail closed).
 */
export function recordAttempt(deps: Pick<PipelineDeps, 'audit'>): Step {
  return {
    name: 'record-attempt',
    async run(state: CallState) {
      try {
        state.attempt = await deps.audit.append({
          ...auditFields(state),
          event: 'TOOL_CALL',
          result: 'pending',
          decision: { allowed: true, reasons: [...state.allowedBy] },
          data: {
            phase: 'attempt',
            ...(state.risk ? { risk: state.risk } : {}),
            ...(state.approval
              ? { approvalId: state.approval.id, approvedBy: state.approval.decidedBy }
              : {}),
            ...(state.review ? { reviewId: state.review.id } : {}),
            ...(state.detectors ? { detectors: auditDetectors(state.detectors) } : {}),
            ...(state.taint ? { taint: state.taint } : {}),
            // Edit before approve: the agent's own arguments beside the ones that run (entry `parameters`).
            ...(state.rewrite
              ? {
                  rewrite: { originalParameters: state.rewrite.original, argumentPatch: state.rewrite.patch },
                }
              : {}),
          },
        });
      } catch (e) {
        throw new WardenError('AUDIT_UNAVAILABLE', 'The call was not run because it could not be audited', {
          rule: 'audit.fail-closed',
          detail: e instanceof Error ? e.message : String(e),
          cause: e,
        });
      }
    },
  };
}
