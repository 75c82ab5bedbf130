import { WardenError } from '../errors.js';
import { callSignal } from './track-call.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** Step 7: run the tool upstream. The agent's token never leaves Warden; the pool injects upstream credentials. */
export function execute(deps: Pick<PipelineDeps, 'tools'>): Step {
  return {
    name: 'execute',
    async run(state: CallState) {
      if (!state.tool || !state.parameters || !state.attempt) {
        throw new WardenError('INTERNAL', 'Execution ran out of order');
      }
      const signal = callSignal(state);
      // The user the session acts for: an upstream with per-user credentials uses their own account.
      const userId = state.session?.userId ?? null;
      const { onUpstreamProgress, session } = state.request;
      state.result = await deps.tools.callTool(state.tool.name, state.parameters, {
        ...(signal ? { signal } : {}),
        ...(userId ? { userId } : {}),
        ...(onUpstreamProgress ? { onProgress: onUpstreamProgress } : {}),
        ...(session ? { session } : {}),
      });
    },
  };
}
