import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { RiskClass } from '../config/types.js';
import type { Agent } from '../identity/index.js';
import type { AggregatedTool } from '../upstream/index.js';
import { mayUse } from './authorize.js';

/**
 * The tools a session may call, as MCP `Tool` definitions; everything else stays invisible.
 * With `riskOf`, each carries its configured risk class in `_meta["warden/risk"]`, so an agent
 * (and its user) knows beforehand which calls wait for a human; policy may still raise it per call.
 */
export function visibleTools(
  tools: readonly AggregatedTool[],
  agent: Agent,
  scopes: ReadonlySet<string>,
  riskOf?: (tool: string) => RiskClass,
): Tool[] {
  return tools
    .filter((t) => mayUse(agent, scopes, t.name))
    .map((t) => ({
      name: t.name,
      ...(t.description === undefined ? {} : { description: t.description }),
      inputSchema: t.inputSchema as Tool['inputSchema'],
      ...(t.outputSchema === undefined ? {} : { outputSchema: t.outputSchema as Tool['outputSchema'] }),
      ...(t.annotations === undefined ? {} : { annotations: t.annotations as Tool['annotations'] }),
      ...(riskOf ? { _meta: { 'warden/risk': riskOf(t.name) } } : {}),
    }));
}
