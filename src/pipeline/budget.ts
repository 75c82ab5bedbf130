import { WardenError } from '../errors.js';
import { noteRules } from './rate-limit.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/**
 * The last check before the attempt is recorded and the tool runs: charge the
 * tool's cost to the agent's budgets. It sits after every step that can refuse
 * so that only calls that run are charged; once charged, nothing is refunded
 * (an upstream that failed or timed out may still have done the costly work).
 */
export function budget(deps: Pick<PipelineDeps, 'limiter'>): Step {
  return {
    name: 'budget',
    async run(state: CallState) {
      if (!deps.limiter) return;
      const { agent, session, tool } = state;
      if (!agent || !session || !tool) throw new WardenError('INTERNAL', 'Budget ran out of order');
      const pass = await deps.limiter.chargeBudgets({
        agentId: agent.id,
        sessionId: session.id,
        tool: tool.name,
      });
      noteRules(state, pass.rules);
    },
  };
}
