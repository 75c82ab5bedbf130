import { WardenError } from '../errors.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** Depth of a JSON value, stopping as soon as it exceeds `limit` (so a hostile value costs little). */
export function jsonDepthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return false;
}

/** Step 5: arguments must be a JSON object of bounded depth (schema validation arrives with issue #3). */
export function validateArguments(deps: Pick<PipelineDeps, 'limits'>): Step {
  return {
    name: 'validate-arguments',
    async run(state: CallState) {
      const params = state.request.parameters ?? {};
      if (typeof params !== 'object' || params === null || Array.isArray(params)) {
        throw new WardenError('INVALID_ARGUMENTS', 'parameters must be a JSON object', {
          rule: 'arguments.object',
        });
      }
      if (jsonDepthExceeds(params, deps.limits.maxJsonDepth)) {
        throw new WardenError(
          'NESTING_TOO_DEEP',
          `parameters are nested deeper than ${deps.limits.maxJsonDepth}`,
          {
            rule: 'arguments.max-depth',
          },
        );
      }
      const reasoning = state.request.reasoning;
      if (reasoning !== undefined && reasoning !== null && typeof reasoning !== 'string') {
        throw new WardenError('INVALID_REQUEST', 'reasoning must be a string', { rule: 'request.reasoning' });
      }
      state.parameters = params as Record<string, unknown>;
      state.reasoning = typeof reasoning === 'string' ? reasoning.slice(0, 4000) : undefined;
    },
  };
}
