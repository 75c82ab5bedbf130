import { linkAbort } from '../upstream/abort.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/**
 * Step 3: the call becomes reachable by the kill switch (issue #8). From here on it runs under
 * its own abort signal — aborted when the client goes away, or when an operator (or an automatic
 * response) kills its agent or session — which the approval wait and the upstream call honour.
 */
export function trackCall(deps: Pick<PipelineDeps, 'inFlight'>): Step {
  return {
    name: 'track-call',
    async run(state: CallState) {
      const inFlight = deps.inFlight;
      if (!inFlight || !state.agent || !state.session) return;
      const controller = new AbortController();
      // Throws the kill's error when the agent or session was killed while this call was being checked.
      const leave = inFlight.enter(state.agent.id, state.session.id, controller);
      const unlink = state.request.signal ? linkAbort(state.request.signal, controller) : undefined;
      state.signal = controller.signal;
      state.release = () => {
        unlink?.();
        leave();
      };
    },
  };
}

/** The signal a step waits on: the call's own (kill switch) when tracked, else the face's. */
export function callSignal(state: CallState): AbortSignal | undefined {
  return state.signal ?? state.request.signal;
}
