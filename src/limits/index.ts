/** Rate limits and cost budgets: the limiter the pipeline's limit steps call. */
export {
  Limiter,
  type LimiterLog,
  type LimiterOptions,
  type LimiterStatus,
  type LimitPass,
  openLimiter,
  STORE_DOWN_ALLOWED,
} from './limiter.js';
export { DEFAULT_REDIS_TIMEOUTS, type RedisTimeouts } from './redis.js';
export { COST_UNITS_PER_COST, type LimitSubject, toCostUnits } from './rules.js';
