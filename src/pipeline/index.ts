export { patchChecker } from './argument-edit.js';
export { auditedVerify } from './authenticate.js';
export { mayUse, toolScope } from './authorize.js';
export { pipelineDepsFor } from './from-config.js';
export { visibleTools } from './list-tools.js';
export { createPipeline, Pipeline } from './pipeline.js';
export { foldToolName } from './tool-names.js';
export type { CallState, PipelineDeps, Step, ToolCallRequest, ToolCallResult } from './types.js';
export { jsonDepthExceeds } from './validate-arguments.js';
