/** Behavioural baselines and anomaly detection over the audit log (issue #8); see docs/monitoring.md. */
export { AnomalyMonitor } from './monitor.js';
export type {
  Anomaly,
  AnomalyMetric,
  AnomalyMonitorDeps,
  AnomalyQuery,
  AnomalyRecord,
  AnomalyResponder,
  AnomalyResponseKind,
  AnomalyRule,
  AnomalySeverity,
  BaselineTool,
  BaselineView,
  MonitoringConfig,
  PerWindow,
} from './types.js';
