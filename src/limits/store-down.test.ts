/**
 * A Redis that is down (a closed port) or hung (accepts, never answers): calls
 * are refused fast with LIMITS_UNAVAILABLE by default, or let through (and
 * said so) with `onStoreDown: allow`. No real Redis needed.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeRedis, REDIS_URL, uniqueNamespace } from '../../test/helpers/redis.js';
import type { LimitsConfig } from '../config/types.js';
import { isWardenError } from '../errors.js';
import { type Limiter, type LimiterLog, openLimiter, STORE_DOWN_ALLOWED } from './index.js';

const A = { agentId: 'agent-a', sessionId: 'sess-1' };
const FAST_MS = 2000;

function config(redisUrl: string, onStoreDown: 'deny' | 'allow'): LimitsConfig {
  return {
    store: 'redis',
    redisUrl,
    namespace: 'store-down',
    onStoreDown,
    rates: [{ per: 'agent', points: 5, durationMs: 60_000 }],
    budgets: [{ per: 'agent', amount: 10, periodMs: 60_000 }],
  };
}

function recordingLog() {
  const lines: Array<{ level: 'warn' | 'info'; msg: string }> = [];
  const log: LimiterLog = {
    warn: (_o, msg) => lines.push({ level: 'warn', msg }),
    info: (_o, msg) => lines.push({ level: 'info', msg }),
  };
  return { log, lines };
}

/** A TCP server that accepts connections and never says a word (a hung Redis). */
let hung: Server;
const sockets: Socket[] = [];
beforeAll(async () => {
  hung = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => hung.close(() => r()));
});

const open: Limiter[] = [];
afterEach(async () => {
  for (const l of open.splice(0)) await l.close();
});

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const t = performance.now();
  try {
    const value = await f();
    return { ms: performance.now() - t, value };
  } catch (error) {
    return { ms: performance.now() - t, error };
  }
}

describe('Redis down (closed port 127.0.0.1:1)', () => {
  it('deny (default): refuses fast with LIMITS_UNAVAILABLE, on every kind of check', async () => {
    const { log, lines } = recordingLog();
    const start = await timed(() =>
      openLimiter(config('redis://127.0.0.1:1', 'deny'), { costOf: () => 1, log }),
    );
    expect(start.ms).toBeLessThan(FAST_MS);
    const l = start.value!;
    open.push(l);
    expect(l.status()).toMatchObject({ store: 'redis', up: false });
    for (const check of [
      () => l.checkCaller(A),
      () => l.chargeBudgets({ ...A, tool: 'lookup_order' }),
      () => l.checkCaller(A),
    ]) {
      const r = await timed(check);
      expect(r.ms).toBeLessThan(FAST_MS);
      expect(isWardenError(r.error, 'LIMITS_UNAVAILABLE'), String(r.error)).toBe(true);
      const e = r.error as import('../errors.js').WardenError;
      expect(e.status).toBe(503);
      expect(e.rule).toBe('limits.store-unavailable');
      // The public message names no host; the detail (logs, audit) says what failed.
      expect(e.message).not.toContain('127.0.0.1');
      expect(e.detail).toContain('unreachable');
    }
    expect(lines.some((l) => l.level === 'warn' && /unreachable/.test(l.msg))).toBe(true);
  });

  it('allow: the call proceeds, marked limits.store-down-allowed, with a warning logged', async () => {
    const { log, lines } = recordingLog();
    const l = await openLimiter(config('redis://127.0.0.1:1', 'allow'), { costOf: () => 1, log });
    open.push(l);
    const r = await timed(() => l.checkCaller(A));
    expect(r.ms).toBeLessThan(FAST_MS);
    expect(r.value).toEqual({ rules: [STORE_DOWN_ALLOWED] });
    expect(await l.chargeBudgets({ ...A, tool: 'lookup_order' })).toEqual({ rules: [STORE_DOWN_ALLOWED] });
    expect(lines.some((x) => x.level === 'warn' && /WITHOUT rate limits/.test(x.msg))).toBe(true);
  });
});

describe('Redis hung (accepts, never answers)', () => {
  it('deny: refuses at once while the connection never becomes ready', async () => {
    const port = (hung.address() as import('node:net').AddressInfo).port;
    const l = await openLimiter(config(`redis://127.0.0.1:${port}`, 'deny'), {
      costOf: () => 1,
      connectWaitMs: 300,
    });
    open.push(l);
    const r = await timed(() => l.checkCaller(A));
    expect(r.ms).toBeLessThan(FAST_MS);
    expect(isWardenError(r.error, 'LIMITS_UNAVAILABLE'), String(r.error)).toBe(true);
  });
});

/** A TCP proxy to the real Redis that can stop forwarding (a Redis that hangs mid-connection). */
async function freezableProxy() {
  const target = new URL(REDIS_URL);
  const pairs: Socket[] = [];
  let frozen = false;
  const server = createServer((client) => {
    const upstream = createConnection(Number(target.port || 6379), target.hostname);
    pairs.push(client, upstream);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('data', (d) => {
      if (!frozen) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!frozen) client.write(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `redis://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`,
    freeze: () => {
      frozen = true;
    },
    close: async () => {
      for (const s of pairs) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describeRedis('Redis that hangs after connecting', () => {
  it('deny: a check fails after limits.redis.timeout (500 ms here), not never', async () => {
    const proxy = await freezableProxy();
    try {
      const l = await openLimiter(
        { ...config(proxy.url, 'deny'), namespace: uniqueNamespace(), redisTimeoutMs: 500 },
        { costOf: () => 1 },
      );
      open.push(l);
      expect(await l.checkCaller(A)).toEqual({ rules: ['limits.rate:agent'] });
      proxy.freeze();
      const r = await timed(() => l.checkCaller(A));
      expect(isWardenError(r.error, 'LIMITS_UNAVAILABLE'), String(r.error)).toBe(true);
      expect(r.ms).toBeGreaterThanOrEqual(400);
      expect(r.ms).toBeLessThan(FAST_MS);
    } finally {
      await proxy.close();
    }
  });
});
