import { WardenError } from '../errors.js';
import { effectiveRisk } from '../policy/index.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/**
 * Step 5 (spine version): high and critical tools need a human, and the
 * approval queue arrives with issue #5 — until then they do not run at all
 * (fail closed) rather than run unreviewed. Critical never runs automatically.
 * Policy obligations can raise a call's class (`@risk`, `@approval` ⇒ high), never lower it.
 */
export function riskGate(deps: Pick<PipelineDeps, 'riskOf'>): Step {
  return {
    name: 'risk-gate',
    async run(state: CallState) {
      const tool = state.tool;
      if (!tool) throw new WardenError('INTERNAL', 'Risk gate ran out of order');
      const configured = deps.riskOf(tool.name);
      const risk = effectiveRisk(configured, state.obligations);
      // When policy raised the class, say from what (public) and by which policies (private detail).
      const raised = risk === configured ? undefined : { raisedFrom: configured };
      const by = raised ? `raised from ${configured} by policies ${(state.policyIds ?? []).join(', ')}` : '';
      if (risk === 'critical') {
        throw new WardenError(
          'APPROVAL_REQUIRED',
          `Tool "${tool.name}" is critical risk and never runs automatically`,
          {
            rule: 'risk.critical-never-automatic',
            ...(raised ? { detail: by } : {}),
            data: { risk, ...raised },
          },
        );
      }
      if (risk === 'high') {
        throw new WardenError(
          'APPROVAL_REQUIRED',
          `Tool "${tool.name}" is high risk and needs a human approval`,
          {
            rule: 'risk.high-requires-approval',
            detail: `no approval channel is configured in this version; the call is refused (fail closed)${raised ? `; ${by}` : ''}`,
            data: { risk, ...raised },
          },
        );
      }
      state.allowedBy.push(`risk.${risk}`);
    },
  };
}
