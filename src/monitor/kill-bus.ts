/**
 * How a kill reaches every gateway process (issue #8). The store is the source
 * of truth — a killed agent's row and revoked sessions refuse its tokens on the
 * next call in every process — but a call already running elsewhere must be
 * aborted too. With Redis configured, a kill is published on a channel and
 * every process aborts its calls within milliseconds; without it (or when a
 * message is lost) each process polls the store for the agents and sessions it
 * has calls running for, so the abort still arrives within the poll interval.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createRedisClient, type RedisTimeouts, waitReady } from '../limits/redis.js';

/** One kill (or re-enable) as it travels between processes. */
export interface KillMessage {
  v: 1;
  kind: 'agent-killed' | 'session-killed' | 'agent-enabled';
  /** Agent id or session id. */
  id: string;
  /** For a session: its agent. */
  agentId?: string;
  reason: string;
  /** When the kill was committed (epoch ms), to measure propagation. */
  at: number;
  /** The process that published it (it ignores its own). */
  origin: string;
}

const KINDS = new Set(['agent-killed', 'session-killed', 'agent-enabled']);

/** Parse a message from the channel; anything malformed is dropped (the store poll still catches it). */
export function parseKillMessage(text: string): KillMessage | undefined {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof m !== 'object' || m === null) return undefined;
  const o = m as Record<string, unknown>;
  if (o.v !== 1 || typeof o.kind !== 'string' || !KINDS.has(o.kind)) return undefined;
  if (typeof o.id !== 'string' || o.id.length === 0 || o.id.length > 256) return undefined;
  if (typeof o.reason !== 'string' || typeof o.at !== 'number' || typeof o.origin !== 'string')
    return undefined;
  if (o.agentId !== undefined && typeof o.agentId !== 'string') return undefined;
  return o as unknown as KillMessage;
}

export interface KillBusOptions {
  url: string;
  /** Deployments sharing one Redis use different namespaces (limits.namespace). */
  namespace: string;
  timeouts?: RedisTimeouts;
  log: { warn(o: object, m: string): void };
}

/** Redis pub/sub for kills: one subscriber connection, one publisher connection. */
export class KillBus {
  /** This process, as the origin of what it publishes. */
  readonly origin = randomUUID();
  readonly channel: string;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private handler: ((m: KillMessage) => void) | undefined;

  constructor(private readonly opts: KillBusOptions) {
    this.channel = `${opts.namespace}:kill`;
    this.pub = createRedisClient(opts.url, opts.timeouts);
    this.pub.on('error', () => {});
    // A subscriber connection may not run other commands; it resubscribes after a reconnect.
    this.sub = new Redis(opts.url, {
      connectTimeout: opts.timeouts?.connectTimeoutMs ?? 1000,
      autoResubscribe: true,
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(times * 200, opts.timeouts?.maxReconnectDelayMs ?? 2000),
    });
    this.sub.on('error', () => {});
    this.sub.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      const m = parseKillMessage(text);
      if (!m || m.origin === this.origin) return;
      this.handler?.(m);
    });
  }

  /** Subscribe; resolves once subscribed or after `timeoutMs` (the store poll covers an outage). */
  async start(onMessage: (m: KillMessage) => void, timeoutMs = 2000): Promise<boolean> {
    this.handler = onMessage;
    const subscribed = this.sub.subscribe(this.channel).then(
      () => true,
      (e: unknown) => {
        this.opts.log.warn({ err: String(e) }, 'kill channel: subscribe failed; relying on the store poll');
        return false;
      },
    );
    const timer = new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref());
    return Promise.race([subscribed, timer]);
  }

  /** Publish a kill; false when Redis did not take it (the store poll will carry it instead). */
  async publish(m: Omit<KillMessage, 'v' | 'origin'>): Promise<boolean> {
    try {
      if (!(await waitReady(this.pub, 1000))) return false;
      await this.pub.publish(this.channel, JSON.stringify({ v: 1, origin: this.origin, ...m }));
      return true;
    } catch (e) {
      this.opts.log.warn({ err: String(e) }, 'kill channel: publish failed; relying on the store poll');
      return false;
    }
  }

  async close(): Promise<void> {
    this.handler = undefined;
    this.sub.disconnect();
    this.pub.disconnect();
  }
}
