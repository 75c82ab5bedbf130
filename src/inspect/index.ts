/** Detectors' shared ground (issue #7): normalisation with offset mapping, and decoding of encoded runs. */

export { type ClassifierConfig, type ClassifierVerdict, httpClassifier } from './classifier.js';
export { CONFUSABLES } from './confusables.js';
export { type DecodedRun, decodeRuns } from './decode-runs.js';
export {
  detectInjection,
  INJECTION_THRESHOLD,
  type InjectionResult,
  type InjectionSignal,
  type InjectionSource,
} from './injection.js';
export {
  inspectResult,
  type ResultFindings,
  type ResultInspection,
  type ResultInspectionOptions,
  redactSecretsInJson,
  wrap as wrapUntrusted,
} from './inspect-result.js';
export { type InspectFinding, type Inspection, inspectText } from './inspect-text.js';
export { type Normalized, normalize, toOriginal } from './normalize.js';
export { detectPii, EXTRA_PII_TYPES, type Finding, PII_TYPES, type PiiType } from './pii.js';
export {
  inspectablePrefix,
  MAX_INSPECT_CHARS,
  type RedactJsonOptions,
  redactJson,
  redactText,
  type SpanMarker,
  UNINSPECTED,
} from './redact.js';
export { detectSecrets, type SecretFinding } from './secrets.js';
