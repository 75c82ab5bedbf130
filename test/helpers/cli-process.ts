/**
 * Runs the real `warden` command line as a child process (`node bin/warden.js …`),
 * the way an operator does, for black-box tests. Every child is bounded by a
 * timeout and tracked, so a suite can kill whatever is left in afterAll.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root and the `warden` bin script. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WARDEN_BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));

/** True when bin/warden.js will run the build (dist/); without it, it runs the sources through tsx. */
export const BUILT = existsSync(fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url)));

/**
 * How much longer everything takes without a build: tsx compiles every module of
 * every command on the fly (several seconds of CPU each). Scale timeouts by it.
 */
export const TIME_SCALE = BUILT ? 1 : 3;

/**
 * bin/warden.js runs dist/ when it exists: say so when the sources are newer
 * than the build, or these tests exercise yesterday's code.
 */
function warnIfBuildIsStale(): void {
  if (!BUILT) return;
  const builtAt = statSync(join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')).mtimeMs;
  const newer: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      // What tsconfig.build.json compiles: no tests, no fixtures.
      if (e.isDirectory()) {
        if (e.name !== 'fixtures') walk(path);
      } else if (/(?<!\.test|\.d)\.ts$/.test(e.name) && statSync(path).mtimeMs > builtAt) {
        newer.push(path.slice(REPO_ROOT.length));
      }
    }
  };
  for (const dir of ['src', 'examples']) walk(join(REPO_ROOT, dir));
  if (newer.length > 0) {
    console.warn(
      `[warden tests] dist/ is older than ${newer.length} source file(s) (e.g. ${newer[0]}): the CLI tests run the build; run \`npm run build\`.`,
    );
  }
}
warnIfBuildIsStale();

/** What a finished command left behind. */
export interface CliResult {
  /** Exit code; null when the process was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the timeout killed the process. */
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  /** Working directory: the test's temp workspace. */
  cwd: string;
  /** Kill the command (SIGKILL) after this long; default 30 s (× TIME_SCALE). */
  timeoutMs?: number;
  /** Extra environment variables (undefined removes one). */
  env?: Record<string, string | undefined>;
  /** Start the child in its own process group (so the whole group can be killed). */
  detached?: boolean;
  /** runWarden: 'low' waits while normal-priority commands are queued (for bulk checks beside a flow). */
  priority?: 'normal' | 'low';
}

/** A stack-trace frame, e.g. `    at foo (/x/y.js:1:2)` or `    at /x/y.js:1:2`. */
export const STACK_FRAME = /^\s+at (?:.+ \()?\S+:\d+:\d+\)?$/m;

/** Children still running, and whether each leads its own process group. */
const live = new Map<ChildProcess, { detached: boolean }>();

/**
 * The environment for a child: ours without anything that would make the CLI
 * read another config or print stacks, plus `extra`.
 */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, USER: 'warden-e2e' };
  for (const k of ['WARDEN_CONFIG', 'WARDEN_DEBUG', 'NODE_OPTIONS', 'DATABASE_URL']) delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Spawn `warden …args` (not awaited); the child is tracked until it exits. */
export function spawnWarden(args: string[], opts: RunOptions): ChildProcess {
  const child = spawn(process.execPath, [WARDEN_BIN, ...args], {
    cwd: opts.cwd,
    env: childEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  live.set(child, { detached: opts.detached ?? false });
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

/**
 * At most this many `runWarden` children at once in this test process: each
 * command spends over a second of CPU loading modules, so more would only slow
 * every one down (and eat into its timeout) without finishing sooner.
 */
const MAX_RUNNING = Math.max(2, availableParallelism());
let running = 0;
const queues: Record<'normal' | 'low', Array<() => void>> = { normal: [], low: [] };

async function slot(priority: 'normal' | 'low'): Promise<() => void> {
  if (running >= MAX_RUNNING) await new Promise<void>((r) => queues[priority].push(r));
  else running++;
  return () => {
    const next = queues.normal.shift() ?? queues.low.shift();
    if (next)
      next(); // the slot passes straight on
    else running--;
  };
}

/** Run `warden …args` to completion (or until the timeout, counted from the spawn, kills it). */
export async function runWarden(args: string[], opts: RunOptions): Promise<CliResult> {
  const release = await slot(opts.priority ?? 'normal');
  try {
    return await runNow(args, opts);
  } finally {
    release();
  }
}

function runNow(args: string[], opts: RunOptions): Promise<CliResult> {
  const started = Date.now();
  const child = spawnWarden(args, opts);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      child.kill('SIGKILL');
    },
    opts.timeoutMs ?? 30_000 * TIME_SCALE,
  );
  return new Promise<CliResult>((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // 'close' (not 'exit'): every byte of stdout and stderr has been read.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

/** A readable summary of a result, for assertion messages. */
export function describeResult(r: CliResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}${r.timedOut ? ' TIMED OUT' : ''}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** SIGKILL every tracked child still running (its whole group when detached); wait until they are gone. */
export async function killAllWardens(): Promise<void> {
  const waits: Array<Promise<void>> = [];
  for (const [child, { detached }] of live) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
    waits.push(new Promise<void>((r) => child.once('exit', () => r())));
    try {
      if (detached) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }
  await Promise.all(waits);
}

/** A process as `ps` shows it. */
export interface ProcessInfo {
  pid: number;
  args: string;
}

/** The direct children of `pid` (via `ps --ppid`). */
export function childProcesses(pid: number): ProcessInfo[] {
  let out: string;
  try {
    out = execFileSync('ps', ['--ppid', String(pid), '-o', 'pid=,args='], { encoding: 'utf8' });
  } catch (e) {
    // ps exits 1 when nothing matched.
    if ((e as { status?: number }).status === 1) return [];
    throw e;
  }
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const m = /^(\d+)\s+(.*)$/.exec(l);
      return { pid: Number(m?.[1]), args: m?.[2] ?? '' };
    });
}

/** True while `pid` exists and is not a zombie (a zombie has exited; only its parent has yet to reap it). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Poll `predicate` every `intervalMs` until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A `warden start` process that has said where it listens. */
export interface GatewayProcess {
  child: ChildProcess;
  pid: number;
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  stdout(): string;
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// The whole line (up to its newline), so a port split across two chunks is never read half.
const RUNNING = /Warden is running at (http:\/\/\S+:(\d+))\r?\n/;

/**
 * Spawn `warden start …args` in its own process group and wait (up to
 * `readyTimeoutMs`, default 20 s × TIME_SCALE) until it prints `Warden is running at <url>` on stderr. Rejects
 * with its output when it exits or times out first (the process is killed then).
 */
export async function startWardenProcess(
  args: string[],
  opts: RunOptions & { readyTimeoutMs?: number },
): Promise<GatewayProcess> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000 * TIME_SCALE;
  const child = spawnWarden(['start', ...args], { ...opts, detached: true });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid ?? 0), 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      reject(new Error(`warden start did not report its URL within ${readyTimeoutMs} ms:\n${err}`));
    }, readyTimeoutMs);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = RUNNING.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, port: Number(m[2]) });
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`warden start exited (${code ?? signal}) before it was running:\n${err}`));
    });
  });
  return {
    child,
    pid: child.pid!,
    ...url,
    stderr: () => err,
    stdout: () => out,
    exited,
  };
}
