/**
 * Redis for limit tests, at 127.0.0.1:6379 (or WARDEN_TEST_REDIS_URL).
 *
 * Redis missing: in CI (CI=true or WARDEN_REQUIRE_REDIS=1) that is a failure;
 * on a laptop the Redis suites are skipped with a clear message. Each test
 * gets its own key namespace, so runs (and parallel files) never share counters.
 */
import { describe } from 'vitest';
import { probeRedis } from '../../src/limits/redis.js';
import { REDIS_URL } from './dialects.js';

export { REDIS_URL };

const required = process.env.CI === 'true' || process.env.WARDEN_REQUIRE_REDIS === '1';

const redisProblem = await probeRedis(REDIS_URL);
if (redisProblem !== null) {
  if (required) throw new Error(`Redis is required (CI) but unreachable at ${REDIS_URL}: ${redisProblem}`);
  console.warn(
    `[warden tests] Redis unreachable at ${REDIS_URL} (${redisProblem}): Redis suites are SKIPPED.`,
  );
}

/** True when Redis suites run in this process. */
export const redisAvailable = redisProblem === null;

let counter = 0;

/** A key namespace no other test (or earlier run) uses. */
export function uniqueNamespace(): string {
  return `t_${process.pid}_${Date.now().toString(36)}_${counter++}`;
}

/** `describe` that is skipped (with the message above) when Redis is unavailable outside CI. */
export function describeRedis(name: string, fn: () => void): void {
  (redisAvailable ? describe : describe.skip)(name, fn);
}
