/**
 * What the micro-benchmarks run against: a real store-backed identity world
 * (embedded-default config over a temp SQLite file, demo agent with a key
 * pair, one session token), the support desk's real input schemas, and probes
 * for the optional PostgreSQL and Redis servers.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createSupportDeskServer } from '../../examples/support-desk/server.js';
import { embeddedDefault } from '../../src/config/index.js';
import type { WardenConfig } from '../../src/config/types.js';
import { generateAgentKeyPair } from '../../src/identity/index.js';
import { probeRedis as probeRedisAt } from '../../src/limits/redis.js';
import { openServices, type Services, syncAgents } from '../../src/server/services.js';
import { redactUrl } from '../../src/store/index.js';
import type { AggregatedTool } from '../../src/upstream/index.js';

/** The test suites' defaults (test/helpers/dialects.ts); WARDEN_BENCH_* as bench/run.ts reads them, then WARDEN_TEST_*. */
export const PG_URL =
  process.env.WARDEN_BENCH_PG ?? process.env.WARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL =
  process.env.WARDEN_BENCH_REDIS ?? process.env.WARDEN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The agent every benchmark acts as (the embedded default's demo agent). */
export const AGENT_ID = 'demo-support';

/** A temp directory, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `warden-bench-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An open identity world and how to tear it down. */
export interface World {
  config: WardenConfig;
  services: Services;
  /** A valid session token of the demo agent, issued by TokenService.issue. */
  token: string;
  close(): Promise<void>;
}

/**
 * The embedded default over a temp SQLite file, as the gateway opens it
 * (openServices, syncAgents, keys.init), with the demo agent given a key pair
 * and a call limit no benchmark reaches. `tweak` may adjust the config first.
 */
export async function openWorld(
  opts: {
    alg?: 'EdDSA' | 'ES256';
    inMemory?: boolean;
    tweak?: (config: WardenConfig) => void;
    /** The PostgreSQL schema to open the store in, when `tweak` points store.url at PostgreSQL. */
    pgSchema?: string;
  } = {},
): Promise<World> {
  const tmp = tempDir('world');
  try {
    const config = embeddedDefault({ cwd: tmp.dir, now: Date.now() });
    // In memory: the same code without a file or an fsync (diagnostic rows only).
    config.store.url = opts.inMemory ? 'sqlite::memory:' : `sqlite:${join(tmp.dir, 'w.db')}`;
    config.tokens.alg = opts.alg ?? 'EdDSA';
    for (const agent of config.agents) {
      const pair = await generateAgentKeyPair();
      agent.publicJwk = pair.publicJwk as Record<string, unknown>;
    }
    const demo = config.agents.find((a) => a.id === AGENT_ID)!;
    demo.maxConcurrentSessions = 100;
    // Every pipeline call claims one from the session; a benchmark must never run out.
    demo.constraints.maxToolCalls = 1_000_000_000;
    opts.tweak?.(config);
    const services = await openServices(config, opts.pgSchema ? { pgSchema: opts.pgSchema } : {});
    try {
      await syncAgents(services, config);
      await services.keys.init();
      const { token } = await services.tokens.issue(AGENT_ID, { clientIp: '127.0.0.1' });
      return {
        config,
        services,
        token,
        close: async () => {
          await services.store.close();
          tmp.remove();
        },
      };
    } catch (e) {
      await services.store.close();
      throw e;
    }
  } catch (e) {
    tmp.remove();
    throw e;
  }
}

/** The support desk's tools as the pool publishes them: real input schemas, listed over MCP in-process. */
export async function supportDeskTools(): Promise<AggregatedTool[]> {
  const server = createSupportDeskServer();
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(b);
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(a);
  try {
    const { tools } = await client.listTools();
    return tools.map((t) => ({
      name: t.name,
      upstream: 'support-desk',
      upstreamName: t.name,
      ...(t.title === undefined ? {} : { title: t.title }),
      ...(t.description === undefined ? {} : { description: t.description }),
      inputSchema: t.inputSchema as Record<string, unknown>,
    }));
  } finally {
    await client.close();
    await server.close();
  }
}

/** Null when PostgreSQL answers at PG_URL within 1 s; why not otherwise. */
async function probePg(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 1000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await c.end().catch(() => {});
  }
}

/** The note for rows skipped because PostgreSQL does not answer at PG_URL, or null when it does. */
export async function pgSkipNote(): Promise<string | null> {
  const why = await probePg();
  return why === null ? null : `PostgreSQL not reachable at ${redactUrl(PG_URL)} within 1 s (${why})`;
}

/** Runs `fn` in a schema of its own ({@link benchSchema}), dropped afterwards whatever happens. */
export async function inBenchSchema<T>(tag: string, fn: (schema: string) => Promise<T>): Promise<T> {
  const schema = benchSchema(tag);
  try {
    return await fn(schema);
  } finally {
    await dropSchema(schema);
  }
}

/** A fresh schema name for one run; the `t_<pid>_` prefix is what .ci/run sweeps if a run dies before dropping it. */
function benchSchema(tag: string): string {
  return `t_${process.pid}_bench_${tag}_${Date.now().toString(36)}`;
}

/** Drop a schema made by {@link benchSchema}. */
async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}

/** Null when Redis answers PING at REDIS_URL within 1 s; why not otherwise. */
export function probeRedis(): Promise<string | null> {
  return probeRedisAt(REDIS_URL);
}

/** Delete every Redis key under `namespace:` (a run's counters; they would expire on their own anyway). */
export async function deleteRedisNamespace(namespace: string): Promise<void> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}
