/** Detectors' shared ground (issue #7): normalisation with offset mapping, and decoding of encoded runs. */
export { CONFUSABLES } from './confusables.js';
export { type DecodedRun, decodeRuns } from './decode-runs.js';
export { type Normalized, normalize, toOriginal } from './normalize.js';
