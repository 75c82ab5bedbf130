import { WardenError } from '../errors.js';
import type { PipelineDeps, Step } from './types.js';

/** The rule a call refused by {@link auditGate} carries. */
export const AUDIT_GATE_RULE = 'audit.unwritable';

/**
 * Step 0 (issue #9): while the audit log is known to be unwritable, refuse at once with
 * AUDIT_UNAVAILABLE (503, Retry-After 1). The attempt entry is what really keeps an
 * unaudited call from running; this only spares every call the slow way of finding out
 * (a lock or connection timeout each) and gives callers one clear answer.
 */
export function auditGate(deps: Pick<PipelineDeps, 'auditHealth'>): Step {
  return {
    name: 'audit-gate',
    async run() {
      if (deps.auditHealth === undefined || deps.auditHealth.writable) return;
      throw new WardenError('AUDIT_UNAVAILABLE', 'The call was not run because it could not be audited', {
        rule: AUDIT_GATE_RULE,
        detail: 'the audit log is unwritable (see warden_audit_writable and /readyz)',
        data: { retryAfterSeconds: 1 },
      });
    },
  };
}
