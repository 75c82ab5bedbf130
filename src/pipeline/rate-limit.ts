import { WardenError } from '../errors.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** Add the limit rules a check counted the call against to its decision (each once). */
export function noteRules(state: CallState, rules: readonly string[]): void {
  for (const r of rules) if (!state.allowedBy.includes(r)) state.allowedBy.push(r);
}

/**
 * After the session guard: per-agent and per-session rates, before anything
 * costly runs. Every authenticated attempt counts, refused later or not (like
 * the session call count): a hijacked agent probing for a way through burns
 * its own rate.
 */
export function rateLimit(deps: Pick<PipelineDeps, 'limiter'>): Step {
  return {
    name: 'rate-limit',
    async run(state: CallState) {
      if (!deps.limiter) return;
      const { agent, session } = state;
      if (!agent || !session) throw new WardenError('INTERNAL', 'Rate limit ran out of order');
      const pass = await deps.limiter.checkCaller({ agentId: agent.id, sessionId: session.id });
      noteRules(state, pass.rules);
    },
  };
}

/**
 * After resolve-tool: agent × tool rates, once the requested name is a known
 * tool — so a made-up name can never mint a counter key of its own.
 */
export function toolRateLimit(deps: Pick<PipelineDeps, 'limiter'>): Step {
  return {
    name: 'tool-rate-limit',
    async run(state: CallState) {
      if (!deps.limiter) return;
      const { agent, session, tool } = state;
      if (!agent || !session || !tool) throw new WardenError('INTERNAL', 'Tool rate limit ran out of order');
      const pass = await deps.limiter.checkTool({
        agentId: agent.id,
        sessionId: session.id,
        tool: tool.name,
      });
      noteRules(state, pass.rules);
    },
  };
}
