/** The configuration module's public API: load `warden.yaml` or the embedded default. */
export { DEMO_TOOL_RISKS, MAX_TOKEN_TTL_MS } from './constants.js';
export { embeddedDefault } from './defaults.js';
export type { HeaderSecretRef } from './fields.js';
export type { LoadConfigOptions, LoadedConfig, LocatedIssue } from './load.js';
export { loadConfig } from './load.js';
export type { ConfigFile } from './schema.js';
export { configFileSchema } from './schema.js';
export {
  type ClassifierSettings,
  type InspectionConfig,
  type TaintConfig,
  TOOL_CAPABILITIES,
  type ToolCapability,
} from './schema-inspection.js';
export {
  ANOMALY_RESPONSES,
  ANOMALY_RULES,
  ANOMALY_SEVERITIES,
  monitoringSchema,
} from './schema-monitoring.js';
export { describeRef, resolveHeaderSecret, resolveSecret } from './secrets.js';
export type * from './types.js';
export { formatDuration, parseSize } from './units.js';
