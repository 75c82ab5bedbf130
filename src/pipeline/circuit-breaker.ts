import type { CallState, PipelineDeps, Step } from './types.js';

/**
 * Refuses the call while the session's or the agent's circuit breaker is open
 * (CIRCUIT_OPEN, rule `breaker.<scope>.<reason>`). Early, before rate limits:
 * a refused call spends nothing else. How calls end is told to the breakers by
 * the pipeline once the outcome is known (`breakers.record`).
 */
export function circuitBreaker(deps: Pick<PipelineDeps, 'breakers'>): Step {
  return {
    name: 'circuit-breaker',
    async run(state: CallState) {
      await deps.breakers?.check(state);
    },
  };
}
