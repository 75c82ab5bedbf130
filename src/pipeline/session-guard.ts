import { WardenError } from '../errors.js';
import { ipInRanges } from '../identity/index.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** Step 2: the session itself — expiry, revocation, client address, call budget. */
export function sessionGuard(deps: Pick<PipelineDeps, 'sessions' | 'clock'>): Step {
  return {
    name: 'session-guard',
    async run(state: CallState) {
      const session = state.session;
      if (!session) throw new WardenError('UNAUTHENTICATED', 'No session', { rule: 'session.required' });
      // The verifier checked these; checking again here keeps the guard correct on its own.
      if (session.revokedAt !== null) {
        throw new WardenError('SESSION_REVOKED', 'The session has been revoked', { rule: 'session.revoked' });
      }
      if (session.expiresAt <= deps.clock.now()) {
        throw new WardenError('SESSION_EXPIRED', 'The session has expired', { rule: 'session.expired' });
      }
      if (!ipInRanges(state.request.clientIp, session.allowedCidrs)) {
        throw new WardenError(
          'CLIENT_IP_DENIED',
          'Calls from this address are not allowed for this session',
          {
            rule: 'session.allowed-cidrs',
            detail: `client ${state.request.clientIp} not in ${session.allowedCidrs.join(', ')}`,
          },
        );
      }
      // Every authenticated attempt counts, denied or not: a hijacked agent probing
      // for a way through burns its own budget.
      const claim = await deps.sessions.claimCall(session.id);
      if (claim === null) {
        throw new WardenError('CALL_LIMIT_EXCEEDED', 'The session has used all its tool calls', {
          rule: 'session.max-tool-calls',
          data: { maxToolCalls: session.maxToolCalls },
        });
      }
      // Read with the claim, from the store: taint added by another replica counts at once.
      state.taint = claim.taint;
      state.allowedBy.push('session.guard');
    },
  };
}
