/**
 * The one door to the Cedar wasm module. Importing it through here first turns
 * off V8's inlining of JS→Wasm calls: on Node 20 (V8 11.3) a lazy deoptimization
 * that lands while an inlined call is inside Cedar aborts the whole process
 * ("Fatal error … unreachable code" in Deoptimizer::DoComputeBuiltinContinuation,
 * at a "JS to Wasm builtin continuation frame"). Loading 10,000 policies hit it in
 * most runs; with the flag, none did. Nothing is lost: a Cedar call costs tens of
 * microseconds, the un-inlined wrapper tens of nanoseconds.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-turbo-inline-js-wasm-calls');

export {
  checkParseSchema,
  isAuthorized,
  policySetTextToParts,
  policyToJson,
  preparsePolicySet,
  schemaToText,
  statefulIsAuthorized,
  validate,
} from '@cedar-policy/cedar-wasm/nodejs';
