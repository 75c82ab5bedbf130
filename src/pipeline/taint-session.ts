import { TAINT } from '../identity/index.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/**
 * Step: a session that takes in untrusted content (a tool labelled
 * `untrusted-content`, or any result found carrying instructions) or private
 * data (`private-data`) is marked so, in the store, before the result reaches
 * the agent. The taint policies (src/policy/taint.ts) then hold or refuse
 * tools that communicate externally for the rest of the session — the
 * article's bulk-message incident stopped even when the injected text is
 * novel. Taint is never cleared while the session lives. If it cannot be
 * recorded the result is withheld (fail closed).
 */
export function taintSession(deps: Pick<PipelineDeps, 'sessions' | 'toolConfig' | 'audit' | 'log'>): Step {
  return {
    name: 'taint-session',
    async run(state: CallState) {
      const { session, tool } = state;
      if (!session || !tool || !deps.sessions.addTaint) return;
      const capabilities = deps.toolConfig?.(tool.name)?.capabilities ?? [];
      const reasons: string[] = [];
      let bits = 0;
      if (capabilities.includes('untrusted-content')) {
        bits |= TAINT.untrusted;
        reasons.push(`${tool.name} returns untrusted content (capability untrusted-content)`);
      }
      if (state.inspection?.findings.injection.flagged) {
        bits |= TAINT.untrusted;
        reasons.push(`instructions found in the result of ${tool.name}`);
      }
      if (capabilities.includes('private-data')) {
        bits |= TAINT.privateData;
        reasons.push(`${tool.name} returns private data (capability private-data)`);
      }
      const had = state.taint ?? 0;
      if ((bits & ~had) === 0) return;
      const added = await deps.sessions.addTaint(session.id, bits);
      state.taint = had | bits;
      if (!added) return; // another call of the session got there first and recorded it
      try {
        await deps.audit.append(
          {
            traceId: state.request.traceId,
            event: 'SESSION_TAINTED',
            actorType: 'SYSTEM',
            agentId: state.agent?.id ?? null,
            agentType: state.agent?.type ?? null,
            sessionId: session.id,
            toolName: tool.name,
            result: 'success',
            data: {
              attemptSeq: state.attempt?.seq ?? null,
              untrusted: (state.taint & TAINT.untrusted) !== 0,
              privateData: (state.taint & TAINT.privateData) !== 0,
              reasons,
            },
          },
          { durable: false },
        );
      } catch (e) {
        deps.log?.error(
          {
            traceId: state.request.traceId,
            sessionId: session.id,
            err: e instanceof Error ? e.message : String(e),
          },
          'SESSION_TAINTED entry could not be written',
        );
      }
    },
  };
}
