/**
 * Edit before approve: an approver's replacement values are checked against
 * the tool at decision time (so the approver hears at once), and the whole
 * edited call is checked again by the pipeline before it runs.
 */
import type { ToolConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { AggregatedTool } from '../upstream/index.js';
import { InputSchemas } from './input-schemas.js';
import { checkArguments, jsonDepthExceeds } from './validate-arguments.js';

/** Most keys an approver may replace in one decision. */
const MAX_PATCH_KEYS = 64;

/** A checker for `ApprovalServiceDeps.checkPatch`. */
export function patchChecker(deps: {
  tools(): AggregatedTool[];
  toolConfig(name: string): ToolConfig | undefined;
  maxJsonDepth: number;
}): (tool: string, patch: Record<string, unknown>) => void {
  const schemas = new InputSchemas();
  return (toolName, patch) => {
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
      throw new WardenError('INVALID_ARGUMENTS', 'arguments must be a JSON object of replacement values', {
        rule: 'approval.edit',
      });
    }
    const keys = Object.keys(patch);
    if (keys.length === 0 || keys.length > MAX_PATCH_KEYS) {
      throw new WardenError('INVALID_ARGUMENTS', `replace between 1 and ${MAX_PATCH_KEYS} arguments`, {
        rule: 'approval.edit',
      });
    }
    if (jsonDepthExceeds(patch, deps.maxJsonDepth)) {
      throw new WardenError('INVALID_ARGUMENTS', 'arguments are nested too deeply', {
        rule: 'approval.edit',
      });
    }
    const tool = deps.tools().find((t) => t.name === toolName);
    if (!tool) {
      throw new WardenError(
        'INVALID_ARGUMENTS',
        `tool "${toolName}" is not available to check the edit against`,
        {
          rule: 'approval.edit',
        },
      );
    }
    // Only the replaced keys are present, so `required` cannot apply here; the pipeline checks the whole call.
    const schema = tool.inputSchema as Record<string, unknown>;
    const relaxed: AggregatedTool = {
      ...tool,
      inputSchema: { ...schema, required: [] } as AggregatedTool['inputSchema'],
    };
    checkArguments(relaxed, patch, deps.toolConfig(toolName), schemas);
  };
}
