/** Child processes for the benchmark: forked tsx scripts and Warden gateways, with their CPU and memory. */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const TSX = ['--import', 'tsx'];
/** Full GC on SIGUSR2 (bench/macro/gc-on-signal.cjs), for the memory figure. */
const GC = ['--expose-gc', '--require', fileURLToPath(new URL('./gc-on-signal.cjs', import.meta.url))];
const CLK_TCK = 100; // Linux USER_HZ; `getconf CLK_TCK`

export interface Proc {
  name: string;
  child: ChildProcess;
  port: number;
  /** CPU seconds (user + system) the process has used so far. */
  cpu(): number;
  /** Resident set size in bytes. */
  rss(): number;
  /** Run a full garbage collection in the process and wait for it to settle. */
  collect(): Promise<void>;
  stop(): Promise<void>;
}

/** CPU seconds of `pid` from /proc (user + system). */
export function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Resident memory of `pid` in bytes, from /proc. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

function wrap(name: string, child: ChildProcess, port: number): Proc {
  const pid = child.pid!;
  return {
    name,
    child,
    port,
    cpu: () => cpuOf(pid),
    rss: () => rssOf(pid),
    collect: async () => {
      child.kill('SIGUSR2');
      await new Promise((r) => setTimeout(r, 500));
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Fork a bench script that announces `{ ready, port }` over IPC. */
export function forkScript(name: string, script: string, args: string[], log: string): Promise<Proc> {
  const out = openSync(log, 'a');
  const child = fork(script, args, { execArgv: [...TSX, ...GC], stdio: ['ignore', out, out, 'ipc'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within 30 s (see ${log})`)),
      30_000,
    );
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} (see ${log})`)));
    child.on('message', (m: { ready?: boolean; port?: number }) => {
      if (!m.ready) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve(wrap(name, child, m.port ?? 0));
    });
  });
}

/** A free loopback TCP port (for a gateway whose publicUrl must name its port up front). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Start `warden start --config FILE` (the real CLI, built code) and wait until /healthz answers. */
export async function startWarden(name: string, config: string, port: number, log: string): Promise<Proc> {
  const out = openSync(log, 'a');
  // WARDEN_BENCH_PROFILE=DIR: each gateway writes a V8 CPU profile there when it stops.
  const profile = process.env['WARDEN_BENCH_PROFILE'];
  const flags = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  // WARDEN_BENCH_HEAPSNAPSHOT=1: SIGWINCH writes a heap snapshot into the working directory
  // (the memory phase takes one before and one after opening the idle sessions).
  if (process.env['WARDEN_BENCH_HEAPSNAPSHOT']) flags.push('--heapsnapshot-signal=SIGWINCH');
  const child = spawn(process.execPath, [...flags, ...GC, 'bin/warden.js', 'start', '--config', config], {
    stdio: ['ignore', out, out],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} (see ${log})`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${name} not ready within 60 s (see ${log})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return wrap(name, child, port);
}
