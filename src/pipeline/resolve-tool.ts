import { WardenError } from '../errors.js';
import { withheldError } from '../pins/index.js';
import { foldToolName, TOOL_NAME } from './tool-names.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** Step 3: the requested name must be exactly one known tool; confusable spellings are named and refused. */
export function resolveTool(deps: Pick<PipelineDeps, 'tools'>): Step {
  return {
    name: 'resolve-tool',
    async run(state: CallState) {
      const name = state.request.toolName;
      if (typeof name !== 'string' || name.length === 0) {
        throw new WardenError('INVALID_REQUEST', 'toolName must be a non-empty string', {
          rule: 'request.tool-name',
        });
      }
      state.toolName = name;
      const tools = deps.tools.listTools();
      const exact = TOOL_NAME.test(name) ? tools.find((t) => t.name === name) : undefined;
      if (exact) {
        state.tool = exact;
        return;
      }
      // Listed upstream but not published: say so (pinning), rather than "unknown".
      const withheld = TOOL_NAME.test(name) ? deps.tools.withheld?.(name) : undefined;
      if (withheld) throw withheldError(name, withheld);
      const folded = foldToolName(name);
      const lookalike = tools.find((t) => foldToolName(t.name) === folded);
      if (lookalike) {
        throw new WardenError('TOOL_UNKNOWN', 'Unknown tool (the name imitates another tool)', {
          rule: 'tool.confusable-name',
          detail: `"${name}" folds to the name of "${lookalike.name}"`,
        });
      }
      throw new WardenError('TOOL_UNKNOWN', 'Unknown tool', { rule: 'tool.unknown' });
    },
  };
}
