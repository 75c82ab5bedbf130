/**
 * The Redis connection behind shared counters, tuned so that a dead or hung
 * Redis answers *fast*: a call waiting on a counter must not hang the gateway,
 * it must be refused (or allowed, by config) within milliseconds.
 */
import { Redis } from 'ioredis';

/** Connection knobs (defaults suit a Redis on the same network). */
export interface RedisTimeouts {
  /** Give up a TCP connect after this long. */
  connectTimeoutMs: number;
  /** A command unanswered after this long fails (a hung Redis, a network partition). */
  commandTimeoutMs: number;
  /** Reconnect backoff cap: a Redis that comes back is used again within this long. */
  maxReconnectDelayMs: number;
}

/**
 * Redis on the same network answers in well under a millisecond, so a second
 * is an outage, not load. Not much less: a gateway whose event loop stalls
 * (a cold start's first burst) would see replies that arrived in time as
 * timeouts, refusing calls whose points Redis had already counted.
 */
export const DEFAULT_REDIS_TIMEOUTS: RedisTimeouts = {
  connectTimeoutMs: 1000,
  commandTimeoutMs: 1000,
  maxReconnectDelayMs: 2000,
};

/** A Redis client that never queues commands while disconnected and keeps reconnecting in the background. */
export function createRedisClient(url: string, timeouts: RedisTimeouts = DEFAULT_REDIS_TIMEOUTS): Redis {
  return new Redis(url, {
    connectTimeout: timeouts.connectTimeoutMs,
    commandTimeout: timeouts.commandTimeoutMs,
    // Without the offline queue a command on a broken connection fails at once instead of
    // waiting for a reconnect that may never come: that is what makes fail-closed fast.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 200, timeouts.maxReconnectDelayMs),
    // Nothing in Warden subscribes on this connection; keep it a plain command channel.
    autoResubscribe: false,
    lazyConnect: false,
    // Commands issued in the same tick (a call's rules, and concurrent calls') leave in one
    // write: fewer system calls per call, same replies.
    enableAutoPipelining: true,
  });
}

/** Wait until `client` is ready, failed, or `timeoutMs` passed; true when ready. Never throws. */
export function waitReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onError);
      resolve(ready);
    };
    const onReady = () => done(true);
    const onError = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    client.once('ready', onReady);
    client.once('error', onError);
    client.once('end', onError);
  });
}

/** Close `client` without waiting on a dead server: QUIT when connected, else drop the socket. */
export async function closeRedisClient(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    await client.quit().catch(() => client.disconnect());
    return;
  }
  client.disconnect();
}

/** Null when Redis at `url` answers PING within `timeoutMs`; otherwise why not. Never throws, leaves nothing open. */
export async function probeRedis(url: string, timeoutMs = 1000): Promise<string | null> {
  const client = new Redis(url, {
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    client.disconnect();
  }
}
