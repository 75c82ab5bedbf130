import type { AuditInput } from '../audit/index.js';
import type { CallState } from './types.js';

/** The audit fields every entry about this call shares. */
export function auditFields(state: CallState): Omit<AuditInput, 'event'> {
  const { request, agent, session } = state;
  return {
    traceId: request.traceId,
    actorType: 'AI_AGENT',
    actorId: agent?.id ?? null,
    agentId: agent?.id ?? null,
    agentType: agent?.type ?? null,
    sessionId: session?.id ?? null,
    // An agent acting for a user: the user is who the work is for (the article's triggeredBy).
    triggerUserId: session?.userId ?? null,
    triggerSource: session?.userId ? 'user' : 'agent',
    toolName:
      state.toolName ?? (typeof request.toolName === 'string' ? request.toolName.slice(0, 256) : null),
    parameters: state.auditParameters ?? state.parameters ?? request.parameters ?? null,
    reasoning:
      state.reasoning ?? (typeof request.reasoning === 'string' ? request.reasoning.slice(0, 4000) : null),
  };
}
