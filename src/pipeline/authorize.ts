import { WardenError } from '../errors.js';
import type { CallState, Step } from './types.js';

/** The scope that lets a session call `tool`. */
export function toolScope(tool: string): string {
  return `tool:${tool}:execute`;
}

/**
 * Step 4 (spine version, replaced by Cedar in issue #3): default deny; the
 * agent's denied list wins; then its allowed list (read live from the registry,
 * so a change applies to sessions already open); then the token's scopes.
 */
export function authorize(): Step {
  return {
    name: 'authorize',
    async run(state: CallState) {
      const { agent, tool, scopes } = state;
      if (!agent || !tool || !scopes) throw new WardenError('INTERNAL', 'Authorization ran out of order');
      if (agent.deniedTools.includes(tool.name)) {
        throw new WardenError('TOOL_DENIED', `Tool "${tool.name}" is denied for this agent`, {
          rule: `agent.deniedTools:${tool.name}`,
        });
      }
      if (!agent.allowedTools.includes(tool.name)) {
        throw new WardenError(
          'TOOL_NOT_ALLOWED',
          `Tool "${tool.name}" is not in this agent's allowed tools`,
          {
            rule: 'agent.allowedTools:default-deny',
          },
        );
      }
      const needed = toolScope(tool.name);
      if (!scopes.has(needed)) {
        throw new WardenError('INSUFFICIENT_SCOPE', 'The session token lacks the scope for this tool', {
          rule: 'token.scope',
          data: { requiredScopes: [needed] },
        });
      }
      state.allowedBy.push(`agent.allowedTools:${tool.name}`, `token.scope:${needed}`);
    },
  };
}

/** Whether a session with this agent and scopes may see (and so list) `toolName`. */
export function mayUse(
  agent: { allowedTools: string[]; deniedTools: string[] },
  scopes: ReadonlySet<string>,
  toolName: string,
): boolean {
  return (
    !agent.deniedTools.includes(toolName) &&
    agent.allowedTools.includes(toolName) &&
    scopes.has(toolScope(toolName))
  );
}
