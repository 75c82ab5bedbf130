/** Monitoring and response (issue #8): the kill switch, circuit breakers, anomalies and how the gateway responds. */

export {
  type Anomaly,
  AnomalyMonitor,
  type AnomalyRecord,
  type AnomalyResponder,
  type BaselineView,
} from './anomaly/index.js';
export {
  type BreakerCall,
  type BreakerOutcome,
  type BreakerReason,
  type BreakerResetResult,
  type BreakerScope,
  Breakers,
  type BreakersOptions,
  type BreakerTarget,
  breakerOutcome,
  breakersFor,
  type OpenBreaker,
  UNTIL_RESET,
} from './breakers.js';
export { InFlightCalls, killedError } from './in-flight.js';
export {
  type KillActor,
  type KillReport,
  type KillRequest,
  KillSwitch,
  type KillSwitchDeps,
} from './kill.js';
export { KillBus, type KillMessage, parseKillMessage } from './kill-bus.js';
export { gatewayResponder } from './responder.js';
