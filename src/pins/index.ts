/** Tool-definition pinning (issue #7): hashes, the pin store, and the pinned view of the upstream pool. */
export { definitionHash, definitionOf, type ToolDefinition, toolHash } from './hash.js';
export { type DefinitionInspection, type DefinitionSignal, inspectDefinition } from './inspect.js';
export {
  PIN_RULES,
  PinnedTools,
  type PinnedToolsOptions,
  type PinningMode,
  type ToolDetail,
  type ToolSource,
  type ToolState,
  type ToolView,
  withheldError,
} from './pinned-tools.js';
export { type PinKey, type PinStatus, PinStore, type SeenDefinition, type ToolPin } from './pins.js';
