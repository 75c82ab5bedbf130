/**
 * `npm run bench`: Warden's cost, measured against a direct connection and a
 * bare pass-through proxy in the same run on the same machine.
 *
 *   A  client → upstream directly
 *   B  client → bare SDK pass-through proxy (stateless: a server per request)
 *   B′ client → bare SDK pass-through proxy (stateful: a server per MCP session, like Warden)
 *   C  client → Warden, full pipeline, SQLite store, memory limits
 *   D  client → Warden, full pipeline, PostgreSQL store, Redis limits
 *
 * Configurations alternate within each round (the order rotates), several
 * rounds per cell; medians and min–max spreads are reported. The load
 * generator is a separate process (bench/macro/loadgen.ts) using the official
 * MCP SDK client. Then: capacity with a minimal upstream and raw keep-alive
 * HTTP, memory at N idle sessions, the pipeline's own per-step timings, and the
 * micro-benchmarks (bench/micro). Writes bench/results/latest.json.
 *
 *   npm run bench -- [--quick] [--rounds N] [--duration MS] [--warm MS] [--sessions 1,16,64]
 *                    [--sizes 1024,65536] [--only macro,capacity,memory,micro] [--json]
 *                    [--configs A,B,B′,C,D] [--idle N]
 *   WARDEN_BENCH_PROFILE=DIR writes each gateway's V8 CPU profile there (read it with bench/profile-top.ts).
 *   WARDEN_BENCH_HEAPSNAPSHOT=1 writes heap snapshots of C before and after the idle sessions (memory phase).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { generateAgentKeyPair } from '../src/identity/index.js';
import { probeRedis } from '../src/limits/redis.js';
import type { AuthSpec, Command, RunReply } from './macro/loadgen.js';
import { arg } from './macro/payload.js';
import { cpuOf, forkScript, freePort, type Proc, rssOf, startWarden } from './macro/procs.js';
import { parseSteps, type StepTiming } from './macro/steps.js';
import type { MacroCell, Spread } from './results.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(`Usage: npm run bench -- [options]

Warden against a direct connection (A), a bare SDK pass-through proxy (B stateless,
B′ stateful), Warden on SQLite (C) and Warden on PostgreSQL + Redis (D).

Options:
  --quick                fewer rounds, sessions and sizes (≈ 4 minutes)
  --rounds N             rounds per cell (default 3; quick 2)
  --duration MS          measured window per run (default 3000; quick 1500)
  --warm MS              load on each server before anything is measured, so that its JIT has
                         compiled the hot path (default 15000; quick 8000; 0 = measure cold)
  --sessions 1,16,64     concurrent MCP sessions
  --sizes 1024,65536     echo result sizes in bytes
  --configs A,B,B′,C,D   configurations to measure
  --only macro,capacity,memory,micro
  --idle N               idle sessions for the memory figure (default 10000; quick 1000)
  --json                 print the results JSON instead of the table
Environment: WARDEN_BENCH_PG, WARDEN_BENCH_REDIS (configuration D),
  WARDEN_BENCH_PROFILE=DIR (a V8 CPU profile per gateway); WARDEN_BENCH_HEAPSNAPSHOT=1 (heap
  snapshots of C before and after the idle sessions).
Writes bench/results/latest.json. See docs/BENCHMARKS.md.
`);
  process.exit(0);
}

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const list = (name: string, fallback: string) =>
  (arg(name, fallback) ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const ROUNDS = Number(arg('--rounds', quick ? '2' : '3'));
const DURATION = Number(arg('--duration', quick ? '1500' : '3000'));
const WARMUP = quick ? 300 : 500;
/**
 * Load on each server before the first measured run. V8 compiles a process's hot code while it
 * runs: in the gateway's first ~10 s of load TurboFan took 18–24 % of its CPU (perf, all
 * threads), under 1 % after 30 s. A gateway runs for days, so per-call figures are steady-state
 * ones; measured cold, the larger program (Warden) pays more of its compile than the small proxy.
 */
const WARM = Number(arg('--warm', quick ? '8000' : '15000'));
const SESSIONS = list('--sessions', quick ? '1,16' : '1,16,64').map(Number);
const SIZES = list('--sizes', quick ? '1024' : '1024,65536').map(Number);
const ONLY = new Set(list('--only', 'macro,capacity,memory,micro'));
const CONFIGS = new Set(list('--configs', 'A,B,B′,C,D').map((c) => (c === "B'" ? 'B′' : c)));
const IDLE_SESSIONS = Number(arg('--idle', quick ? '1000' : '10000'));
const PG_ADMIN = process.env['WARDEN_BENCH_PG'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env['WARDEN_BENCH_REDIS'] ?? 'redis://127.0.0.1:6379';

const progress = (msg: string) => process.stderr.write(`${msg}\n`);
const work = mkdtempSync(join(tmpdir(), 'warden-bench-'));
const logFile = join(work, 'processes.log');

// ---------- statistics ----------
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (sorted: number[], p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]!;
const r2 = (x: number) => Math.round(x * 100) / 100;
const spread = (xs: number[]): Spread => ({
  median: r2(median(xs)),
  min: r2(Math.min(...xs)),
  max: r2(Math.max(...xs)),
});

// ---------- the load generator ----------
class LoadGen {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  constructor() {
    this.child = fork(join(import.meta.dirname, 'macro', 'loadgen.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve) => this.child.once('message', () => resolve()));
  }
  get pid(): number {
    return this.child.pid!;
  }
  async send<T>(cmd: Command): Promise<T> {
    await this.ready;
    return new Promise((resolve, reject) => {
      this.child.once('message', (m: { ok: boolean; reply?: T; error?: string }) =>
        m.ok ? resolve(m.reply as T) : reject(new Error(m.error)),
      );
      this.child.send(cmd);
    });
  }
  close(): void {
    this.child.send({ type: 'exit' });
  }
}

// ---------- Warden configurations ----------
interface Target {
  key: string;
  label: string;
  url: string;
  /** Processes whose CPU is the server side's own (the proxy or gateway; the upstream for A). */
  server: Proc;
  auth?: AuthSpec;
}

async function wardenConfig(opts: {
  name: string;
  port: number;
  upstreamUrl: string;
  store: string;
  redis: boolean;
  agents: AuthSpec['agents'];
  publicKeys: Record<string, unknown>[];
}): Promise<string> {
  const dir = join(work, opts.name);
  mkdirSync(dir, { recursive: true });
  const config = {
    dataDir: join(dir, 'data'),
    server: { host: '127.0.0.1', port: opts.port, publicUrl: `http://127.0.0.1:${opts.port}` },
    store: { url: opts.store },
    tokens: { ttl: '15m', maxToolCalls: 100_000_000 },
    upstreams: [{ name: 'bench', transport: 'http', url: opts.upstreamUrl, timeout: '30s' }],
    agents: opts.agents.map((a, i) => ({
      id: a.id,
      type: 'bench-assistant',
      version: '1.0.0',
      environment: 'production',
      owner: 'bench',
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
      maxConcurrentSessions: 10_000,
      allowedTools: ['echo'],
      deniedTools: ['delete_everything'],
      scopes: ['bench:echo'],
      publicKey: opts.publicKeys[i],
      constraints: { maxToolCalls: 100_000_000, allowedCidrs: ['127.0.0.0/8', '::1/128'] },
    })),
    tools: {
      echo: {
        risk: 'low',
        tags: ['read'],
        cost: 0.001,
        arguments: { size: { type: 'integer', minimum: 1, maximum: 1_048_576 }, tag: { maxLength: 64 } },
        forbiddenKeys: ['debug'],
        resourceScopes: ['bench:echo:{tag}'],
      },
    },
    policy: {
      timezone: 'UTC',
      rules: [
        {
          id: 'no-writes-at-night',
          effect: 'forbid',
          toolTags: ['write'],
          when: { time: { outside: '00:00-23:59' } },
        },
        { id: 'bench-may-echo', effect: 'permit', agentTypes: ['bench-assistant'], tools: ['echo'] },
        {
          id: 'huge-echo-needs-approval',
          effect: 'obligation',
          tools: ['echo'],
          when: { arguments: { size: { gt: 1_000_000 } } },
          obligations: { approval: 'required' },
        },
      ],
    },
    limits: {
      store: opts.redis ? 'redis' : 'memory',
      ...(opts.redis ? { redis: { url: REDIS }, namespace: `bench-${process.pid}-${opts.name}` } : {}),
      rates: [
        { per: 'agent', points: 100_000_000, duration: '1m' },
        { per: 'session', points: 100_000_000, duration: '1m' },
        { per: 'agent-tool', points: 100_000_000, duration: '1m' },
      ],
      budgets: [{ per: 'agent', amount: 1_000_000_000, period: '1d' }],
    },
    log: { level: 'info' },
  };
  const file = join(dir, 'warden.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

/** Why configuration D cannot run here (PostgreSQL or Redis unreachable), or undefined. */
async function missingForD(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_ADMIN, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
  } catch (e) {
    return `PostgreSQL unreachable at ${PG_ADMIN} (${e instanceof Error ? e.message : String(e)}); set WARDEN_BENCH_PG`;
  } finally {
    await client.end().catch(() => {});
  }
  const redisProblem = await probeRedis(REDIS, 2000);
  if (redisProblem !== null) return `Redis unreachable at ${REDIS} (${redisProblem}); set WARDEN_BENCH_REDIS`;
  return undefined;
}

async function freshPgDatabase(name: string): Promise<string> {
  const client = new pg.Client({ connectionString: PG_ADMIN });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const u = new URL(PG_ADMIN);
  u.pathname = `/${name}`;
  return u.toString();
}

async function dropPgDatabase(name: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  await client.end();
}

async function metrics(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`);
  return r.ok ? r.text() : '';
}

// ---------- the measurements ----------
interface RoundResult {
  callsPerSec: number;
  p50: number;
  p99: number;
  cpuMsPer1000: number;
  upstreamCpuMsPer1000: number;
  loadgenCpuMsPer1000: number;
  errors: number;
}

interface Cell extends MacroCell {
  rounds: RoundResult[];
  upstreamCpuMsPer1000: Spread;
  loadgenCpuMsPer1000: Spread;
  firstError?: string;
}

/** Load on one server, not measured: its JIT compiles the hot path first (see WARM). */
async function warm(
  gen: LoadGen,
  key: string,
  url: string,
  auth: AuthSpec | undefined,
  type: 'run' | 'capacity' = 'run',
): Promise<void> {
  if (WARM <= 0) return;
  progress(`warming ${key} for ${WARM} ms (not measured)`);
  const common = { url, warmupMs: 0, durationMs: WARM, size: SIZES[0] ?? 1024, ...(auth ? { auth } : {}) };
  await gen.send<RunReply>(
    type === 'run' ? { type, sessions: 16, ...common } : { type, connections: 16, ...common },
  );
}

async function measureCell(
  gen: LoadGen,
  t: Target,
  upstream: Proc,
  sessions: number,
  size: number,
  samples: Map<string, number[]>,
  rounds: Map<string, RoundResult[]>,
  errors: Map<string, string>,
): Promise<void> {
  const key = `${t.key}|${sessions}|${size}`;
  const cpu0 = t.server.cpu();
  const up0 = upstream.cpu();
  const gen0 = cpuOf(gen.pid);
  const reply = await gen.send<RunReply>({
    type: 'run',
    url: t.url,
    sessions,
    warmupMs: WARMUP,
    durationMs: DURATION,
    size,
    ...(t.auth ? { auth: t.auth } : {}),
  });
  // CPU over the whole run (connect, warm-up, measured window, close), per measured call: an upper bound.
  const cpu = t.server.cpu() - cpu0;
  const up = upstream.cpu() - up0;
  const genCpu = cpuOf(gen.pid) - gen0;
  const all = reply.latencies.length + reply.errors;
  const sorted = [...reply.latencies].sort((a, b) => a - b);
  const list = samples.get(key) ?? [];
  for (const x of reply.latencies) list.push(x);
  samples.set(key, list);
  const windowCalls = all;
  const totalSeconds = (WARMUP + DURATION) / 1000;
  const callsInRun = (windowCalls * totalSeconds) / (DURATION / 1000);
  const rr: RoundResult = {
    callsPerSec: r2(reply.latencies.length / (DURATION / 1000)),
    p50: r2(pct(sorted, 0.5)),
    p99: r2(pct(sorted, 0.99)),
    cpuMsPer1000: r2(((t.key === 'A' ? up : cpu) * 1000 * 1000) / Math.max(1, callsInRun)),
    upstreamCpuMsPer1000: r2((up * 1000 * 1000) / Math.max(1, callsInRun)),
    loadgenCpuMsPer1000: r2((genCpu * 1000 * 1000) / Math.max(1, callsInRun)),
    errors: reply.errors,
  };
  rounds.set(key, [...(rounds.get(key) ?? []), rr]);
  if (reply.firstError && !errors.has(key)) errors.set(key, reply.firstError);
  progress(
    `  ${t.key.padEnd(3)} ${String(sessions).padStart(3)} sess ${String(size).padStart(6)} B: ${rr.callsPerSec} calls/s p50 ${rr.p50} ms p99 ${rr.p99} ms; CPU ms/1k calls: server ${rr.cpuMsPer1000} upstream ${rr.upstreamCpuMsPer1000} loadgen ${rr.loadgenCpuMsPer1000}${reply.errors ? ` errors ${reply.errors}` : ''}`,
  );
}

async function main(): Promise<void> {
  const startedAt = new Date();
  progress(`warden bench: work dir ${work}${quick ? ' (quick)' : ''}`);
  const agents: AuthSpec['agents'] = [];
  const publicKeys: Record<string, unknown>[] = [];
  for (let i = 0; i < 4; i++) {
    const pair = await generateAgentKeyPair();
    agents.push({ id: `bench-${i}`, privateJwk: pair.privateJwk as Record<string, unknown> });
    publicKeys.push(pair.publicJwk as Record<string, unknown>);
  }
  const procs: Proc[] = [];
  const gen = new LoadGen();
  const result: Record<string, unknown> = {
    startedAt: startedAt.toISOString(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
    },
    settings: {
      quick,
      rounds: ROUNDS,
      durationMs: DURATION,
      warmupMs: WARMUP,
      warmMs: WARM,
      sessions: SESSIONS,
      sizes: SIZES,
    },
  };
  const pgDbs: string[] = [];
  try {
    const upstream = await forkScript(
      'echo-upstream',
      join(import.meta.dirname, 'macro', 'echo-upstream.ts'),
      [],
      logFile,
    );
    procs.push(upstream);
    const upstreamUrl = `http://127.0.0.1:${upstream.port}/mcp`;

    if (ONLY.has('macro') || ONLY.has('memory')) {
      const proxy = await forkScript(
        'proxy',
        join(import.meta.dirname, 'macro', 'proxy.ts'),
        ['--upstream', upstreamUrl],
        logFile,
      );
      const proxyStateful = await forkScript(
        'proxy-stateful',
        join(import.meta.dirname, 'macro', 'proxy.ts'),
        ['--upstream', upstreamUrl, '--mode', 'stateful'],
        logFile,
      );
      procs.push(proxy, proxyStateful);
      const portC = await freePort();
      const wardenC = await startWarden(
        'warden-sqlite',
        await wardenConfig({
          name: 'c',
          port: portC,
          upstreamUrl,
          store: `sqlite:${join(work, 'c', 'warden.db')}`,
          redis: false,
          agents,
          publicKeys,
        }),
        portC,
        logFile,
      );
      procs.push(wardenC);
      // D needs PostgreSQL and Redis; without them it is skipped, and the report says why.
      const dMissing = CONFIGS.has('D') ? await missingForD() : 'not selected (--configs)';
      const portD = await freePort();
      let wardenD: Proc | undefined;
      if (dMissing === undefined) {
        pgDbs.push('warden_bench');
        const pgUrl = await freshPgDatabase('warden_bench');
        wardenD = await startWarden(
          'warden-pg-redis',
          await wardenConfig({
            name: 'd',
            port: portD,
            upstreamUrl,
            store: pgUrl,
            redis: true,
            agents,
            publicKeys,
          }),
          portD,
          logFile,
        );
        procs.push(wardenD);
      } else {
        progress(`configuration D skipped: ${dMissing}`);
        result['skipped'] = { D: dMissing };
      }
      const auth = (port: number): AuthSpec => ({
        tokenEndpoint: `http://127.0.0.1:${port}/oauth/token`,
        agents,
      });
      const targets: Target[] = [
        { key: 'A', label: 'direct', url: upstreamUrl, server: upstream },
        {
          key: 'B',
          label: 'bare SDK proxy (stateless)',
          url: `http://127.0.0.1:${proxy.port}/mcp`,
          server: proxy,
        },
        {
          key: 'B′',
          label: 'bare SDK proxy (stateful)',
          url: `http://127.0.0.1:${proxyStateful.port}/mcp`,
          server: proxyStateful,
        },
        {
          key: 'C',
          label: 'Warden, SQLite',
          url: `http://127.0.0.1:${portC}/mcp`,
          server: wardenC,
          auth: auth(portC),
        },
        ...(wardenD
          ? [
              {
                key: 'D',
                label: 'Warden, PostgreSQL + Redis',
                url: `http://127.0.0.1:${portD}/mcp`,
                server: wardenD,
                auth: auth(portD),
              },
            ]
          : []),
      ];
      result['configurations'] = Object.fromEntries(targets.map((t) => [t.key, t.label]));
      const measured = targets.filter((t) => CONFIGS.has(t.key));

      if (ONLY.has('macro')) {
        const samples = new Map<string, number[]>();
        const rounds = new Map<string, RoundResult[]>();
        const errors = new Map<string, string>();
        const steps0 = {
          C: parseSteps(await metrics(`http://127.0.0.1:${portC}`)),
          D: wardenD ? parseSteps(await metrics(`http://127.0.0.1:${portD}`)) : [],
        };
        for (const t of measured) await warm(gen, t.key, t.url, t.auth);
        for (const sessions of SESSIONS) {
          for (const size of SIZES) {
            for (let r = 0; r < ROUNDS; r++) {
              progress(`round ${r + 1}/${ROUNDS}, ${sessions} session(s), ${size} B`);
              const order = measured.map((_, i) => measured[(i + r) % measured.length]!);
              for (const t of order)
                await measureCell(gen, t, upstream, sessions, size, samples, rounds, errors);
            }
          }
        }
        const cells: Cell[] = [];
        for (const sessions of SESSIONS) {
          for (const size of SIZES) {
            for (const t of measured) {
              const key = `${t.key}|${sessions}|${size}`;
              const rs = rounds.get(key) ?? [];
              const sorted = (samples.get(key) ?? []).sort((a, b) => a - b);
              cells.push({
                config: t.key,
                sessions,
                size,
                rounds: rs,
                callsPerSec: spread(rs.map((x) => x.callsPerSec)),
                p50: r2(pct(sorted, 0.5)),
                p99: r2(pct(sorted, 0.99)),
                p999: r2(pct(sorted, 0.999)),
                cpuMsPer1000: spread(rs.map((x) => x.cpuMsPer1000)),
                upstreamCpuMsPer1000: spread(rs.map((x) => x.upstreamCpuMsPer1000)),
                loadgenCpuMsPer1000: spread(rs.map((x) => x.loadgenCpuMsPer1000)),
                errors: rs.reduce((n, x) => n + x.errors, 0),
                ...(errors.has(key) ? { firstError: errors.get(key)! } : {}),
              });
            }
          }
        }
        result['macro'] = cells;
        result['comparisons'] = compare(cells);
        result['steps'] = {
          C: diffSteps(steps0.C, parseSteps(await metrics(`http://127.0.0.1:${portC}`))),
          D: wardenD ? diffSteps(steps0.D, parseSteps(await metrics(`http://127.0.0.1:${portD}`))) : [],
        };
      }

      if (ONLY.has('memory')) {
        progress(`memory: opening ${IDLE_SESSIONS} idle sessions on C`);
        const heap = async () =>
          Number(
            /^warden_nodejs_heap_size_used_bytes (\S+)$/m.exec(
              await metrics(`http://127.0.0.1:${portC}`),
            )?.[1],
          );
        // Retained memory: a full GC before each reading, so uncollected garbage from opening
        // the sessions (OAuth, JSON, streams) is not counted as what a session holds.
        await wardenC.collect();
        if (process.env['WARDEN_BENCH_HEAPSNAPSHOT']) await snapshot(wardenC);
        const heapBefore = await heap();
        const before = wardenC.rss();
        const t0 = performance.now();
        const reply = await gen.send<{ opened: number }>({
          type: 'idle',
          url: `http://127.0.0.1:${portC}/mcp`,
          sessions: IDLE_SESSIONS,
          concurrency: 16,
          auth: auth(portC),
        });
        const openedMs = performance.now() - t0;
        await new Promise((r) => setTimeout(r, 1000));
        await wardenC.collect();
        const after = wardenC.rss();
        const heapAfter = await heap();
        if (process.env['WARDEN_BENCH_HEAPSNAPSHOT']) await snapshot(wardenC);
        const loadgenRss = rssOf(gen.pid);
        await gen.send({ type: 'close-idle' });
        result['memory'] = {
          sessions: reply.opened,
          rssBeforeMb: r2(before / 1048576),
          rssAfterMb: r2(after / 1048576),
          perSessionKb: r2((after - before) / 1024 / reply.opened),
          heapUsedBeforeMb: r2(heapBefore / 1048576),
          heapUsedAfterMb: r2(heapAfter / 1048576),
          heapPerSessionKb: r2((heapAfter - heapBefore) / 1024 / reply.opened),
          openedPerSec: r2(reply.opened / (openedMs / 1000)),
          loadgenRssMb: r2(loadgenRss / 1048576),
          note: 'each idle session = its own agent session token (OAuth client_credentials) + an initialized MCP session; measured after a full GC (retained memory)',
        };
        // The floor: the same idle sessions on the stateful bare proxy (an SDK server and
        // transport per session, no tokens, no checks).
        await proxyStateful.collect();
        const floorBefore = proxyStateful.rss();
        const floor = await gen.send<{ opened: number }>({
          type: 'idle',
          url: `http://127.0.0.1:${proxyStateful.port}/mcp`,
          sessions: IDLE_SESSIONS,
          concurrency: 16,
        });
        await new Promise((r) => setTimeout(r, 1000));
        await proxyStateful.collect();
        const floorAfter = proxyStateful.rss();
        await gen.send({ type: 'close-idle' });
        (result['memory'] as Record<string, unknown>)['bareProxyPerSessionKb'] = r2(
          (floorAfter - floorBefore) / 1024 / floor.opened,
        );
        progress(`  ${JSON.stringify(result['memory'])}`);
      }
      for (const p of [proxy, proxyStateful, wardenC, wardenD]) await p?.stop();
    }

    if (ONLY.has('capacity')) result['capacity'] = await capacity(gen, agents, publicKeys, procs);
    if (ONLY.has('micro')) {
      const { runMicro } = await import('./micro/index.js');
      result['micro'] = await runMicro({ quick, progress });
    }
  } finally {
    gen.close();
    for (const p of procs) await p.stop();
    for (const db of pgDbs) await dropPgDatabase(db).catch(() => {});
  }
  result['finishedAt'] = new Date().toISOString();
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(join(import.meta.dirname, 'results', 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  if (asJson) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(report(result));
  rmSync(work, { recursive: true, force: true });
}

function compare(cells: Cell[]) {
  const find = (c: string, s: number, z: number) =>
    cells.find((x) => x.config === c && x.sessions === s && x.size === z);
  const out = [];
  for (const s of SESSIONS) {
    for (const z of SIZES) {
      const a = find('A', s, z);
      const b = find('B', s, z);
      const b2 = find('B′', s, z);
      const c = find('C', s, z);
      const d = find('D', s, z);
      // A ratio needs both of its sides measured; a missing one is null.
      const ratio = (x: Cell | undefined, y: Cell | undefined) =>
        x && y ? r2(x.callsPerSec.median / y.callsPerSec.median) : null;
      const added = (x: Cell | undefined, k: 'p50' | 'p99') => (x && a ? r2(x[k] - a[k]) : null);
      out.push({
        sessions: s,
        size: z,
        cOverB: ratio(c, b),
        // CPU per call, C over B, in the same run: steadier than throughput on a shared machine,
        // where another tenant's load moves both servers alike. Lower is better; 1.0 is parity.
        cCpuOverB: c && b ? r2(c.cpuMsPer1000.median / b.cpuMsPer1000.median) : null,
        cOverBStateful: ratio(c, b2),
        dOverB: ratio(d, b),
        addedP50C: added(c, 'p50'),
        addedP99C: added(c, 'p99'),
        addedP50D: added(d, 'p50'),
        addedP99D: added(d, 'p99'),
      });
    }
  }
  return out;
}

function diffSteps(before: StepTiming[], after: StepTiming[]) {
  return after.map((a) => {
    const b = before.find((x) => x.step === a.step);
    const count = a.count - (b?.count ?? 0);
    const sum = a.sumSeconds - (b?.sumSeconds ?? 0);
    return { step: a.step, calls: count, meanUs: count ? r2((sum / count) * 1e6) : 0 };
  });
}

async function capacity(
  gen: LoadGen,
  agents: AuthSpec['agents'],
  publicKeys: Record<string, unknown>[],
  procs: Proc[],
) {
  progress('capacity: minimal upstream, raw keep-alive client');
  const raw = await forkScript(
    'raw-upstream',
    join(import.meta.dirname, 'macro', 'raw-upstream.ts'),
    [],
    logFile,
  );
  procs.push(raw);
  const rawUrl = `http://127.0.0.1:${raw.port}/mcp`;
  const port = await freePort();
  const warden = await startWarden(
    'warden-capacity',
    await wardenConfig({
      name: 'cap',
      port,
      upstreamUrl: rawUrl,
      store: `sqlite:${join(work, 'cap', 'warden.db')}`,
      redis: false,
      agents,
      publicKeys,
    }),
    port,
    logFile,
  );
  procs.push(warden);
  await warm(
    gen,
    'Warden (capacity)',
    `http://127.0.0.1:${port}/mcp`,
    { tokenEndpoint: `http://127.0.0.1:${port}/oauth/token`, agents },
    'capacity',
  );
  const rows = [];
  for (const [label, url, server, auth] of [
    ['minimal upstream directly', rawUrl, raw, undefined],
    [
      'Warden (SQLite) → minimal upstream',
      `http://127.0.0.1:${port}/mcp`,
      warden,
      { tokenEndpoint: `http://127.0.0.1:${port}/oauth/token`, agents },
    ],
  ] as const) {
    for (const connections of quick ? [16] : [16, 64]) {
      const rates: number[] = [];
      const p50s: number[] = [];
      const cpuPer1000: number[] = [];
      let firstError: string | undefined;
      let errors = 0;
      for (let r = 0; r < ROUNDS; r++) {
        const cpu0 = server.cpu();
        const reply = await gen.send<RunReply>({
          type: 'capacity',
          url,
          connections,
          warmupMs: WARMUP,
          durationMs: DURATION,
          size: 1024,
          ...(auth ? { auth } : {}),
        });
        const cpu = server.cpu() - cpu0;
        rates.push(reply.calls / (DURATION / 1000));
        p50s.push(
          pct(
            [...reply.latencies].sort((a, b) => a - b),
            0.5,
          ),
        );
        cpuPer1000.push(
          (cpu * 1e6) / Math.max(1, ((reply.calls + reply.errors) * (WARMUP + DURATION)) / DURATION),
        );
        errors += reply.errors;
        firstError ??= reply.firstError;
      }
      const row = {
        target: label,
        connections,
        callsPerSec: spread(rates),
        p50: r2(median(p50s)),
        cpuMsPer1000: spread(cpuPer1000),
        errors,
        ...(firstError ? { firstError } : {}),
      };
      progress(`  ${label}, ${connections} conns: ${row.callsPerSec.median} calls/s`);
      rows.push(row);
    }
  }
  await warden.stop();
  await raw.stop();
  return rows;
}

// ---------- the report ----------
function report(r: Record<string, unknown>): string {
  const lines: string[] = [];
  const m = r['machine'] as { cpus: number; model: string; node: string };
  lines.push(`Warden benchmark — ${m.cpus} × ${m.model}, Node ${m.node}`);
  const cells = r['macro'] as Cell[] | undefined;
  if (cells) {
    lines.push(
      '',
      'Tool calls through each configuration (echo tool; medians over rounds, [min–max]; latency pooled):',
    );
    lines.push(
      `${'cfg'.padEnd(4)}${'sess'.padStart(5)}${'size'.padStart(7)}${'calls/s'.padStart(9)}${'  [spread]'.padEnd(18)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}${'p99.9'.padStart(8)}${'CPU ms/1k'.padStart(11)}`,
    );
    for (const c of cells) {
      lines.push(
        `${c.config.padEnd(4)}${String(c.sessions).padStart(5)}${String(c.size).padStart(7)}${String(c.callsPerSec.median).padStart(9)}  [${c.callsPerSec.min}–${c.callsPerSec.max}]`.padEnd(
          43,
        ) +
          `${String(c.p50).padStart(8)}${String(c.p99).padStart(8)}${String(c.p999).padStart(8)}${String(c.cpuMsPer1000.median).padStart(11)}${c.errors ? `  errors ${c.errors}: ${c.firstError ?? ''}` : ''}`,
      );
    }
    lines.push('', 'Ratios and added latency (ms over A):');
    for (const x of r['comparisons'] as ReturnType<typeof compare>) {
      lines.push(
        `  ${String(x.sessions).padStart(3)} sess ${String(x.size).padStart(6)} B: C/B ${x.cOverB} (CPU per call ${x.cCpuOverB}×)  C/B′ ${x.cOverBStateful}  D/B ${x.dOverB}  C +p50 ${x.addedP50C} +p99 ${x.addedP99C}  D +p50 ${x.addedP50D} +p99 ${x.addedP99D}`,
      );
    }
    const steps = r['steps'] as Record<string, ReturnType<typeof diffSteps>>;
    lines.push('', "Pipeline steps (mean µs per call, from Warden's own histograms):");
    for (const [k, rows] of Object.entries(steps)) {
      lines.push(`  ${k}: ${rows.map((s) => `${s.step} ${s.meanUs}`).join(' · ') || '(no /metrics)'}`);
    }
  }
  const cap = r['capacity'] as Array<Record<string, unknown>> | undefined;
  if (cap) {
    lines.push('', 'Capacity (minimal upstream, raw keep-alive HTTP client, 1 KB):');
    for (const c of cap) {
      const s = c['callsPerSec'] as ReturnType<typeof spread>;
      lines.push(
        `  ${String(c['target']).padEnd(36)} ${String(c['connections']).padStart(3)} conns: ${s.median} calls/s [${s.min}–${s.max}], p50 ${c['p50']} ms${c['errors'] ? `, errors ${c['errors']}: ${c['firstError']}` : ''}`,
      );
    }
  }
  const mem = r['memory'] as Record<string, unknown> | undefined;
  if (mem) {
    lines.push(
      '',
      `Memory: ${mem['sessions']} idle sessions on C: RSS ${mem['rssBeforeMb']} → ${mem['rssAfterMb']} MB = ${mem['perSessionKb']} KB per session (JS heap in use ${mem['heapUsedBeforeMb']} → ${mem['heapUsedAfterMb']} MB = ${mem['heapPerSessionKb']} KB); the stateful bare proxy B′: ${mem['bareProxyPerSessionKb']} KB per session`,
    );
  }
  const micro = r['micro'] as
    | Array<{
        group: string;
        name: string;
        unit: string;
        value: number;
        spread: [number, number];
        note?: string;
      }>
    | undefined;
  if (micro) {
    lines.push('', 'Micro-benchmarks (median of rounds [min–max]):');
    for (const x of micro) {
      lines.push(
        `  ${`${x.group}: ${x.name}`.padEnd(58)} ${String(x.value).padStart(10)} ${x.unit} [${x.spread[0]}–${x.spread[1]}]${x.note ? `  ${x.note}` : ''}`,
      );
    }
  }
  lines.push('', 'Written: bench/results/latest.json', '');
  return lines.join('\n');
}

await main();

/** Ask a gateway started with WARDEN_BENCH_HEAPSNAPSHOT for a heap snapshot, and give it time to write it. */
async function snapshot(p: Proc): Promise<void> {
  p.child.kill('SIGWINCH');
  await new Promise((r) => setTimeout(r, 15_000));
}
