/**
 * Before and after, on a noisy machine: runs the macro benchmark on two
 * checkouts in alternating order (after, before, before, after, …) and reports,
 * per cell, what stays comparable when the machine's speed drifts between runs:
 * C's CPU per call over the bare proxy B's *in the same run*, and C / B in
 * calls/s, each as a mean over the runs with its range.
 *
 * Both checkouts must be built (`npm run build`; the bench runs dist/). The
 * before one is typically a worktree: `git worktree add /tmp/base <commit>`,
 * `ln -s "$PWD/node_modules" /tmp/base/`, `(cd /tmp/base && npm run build)`.
 *
 * Run: `npx tsx bench/compare.ts --before /tmp/base [--after .] [--runs 3] [--json] -- [bench/run.ts options]`
 * (default bench options: `--quick --sizes 1024 --sessions 1,16 --configs B,C --only macro`).
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { MacroCell as Cell } from './results.js';

const USAGE = `Usage: npx tsx bench/compare.ts --before DIR [--after DIR] [--runs N] [--json] [-- BENCH OPTIONS]

Runs \`npx tsx bench/run.ts BENCH OPTIONS --json\` N times in each checkout, alternating
(after, before, before, after, ...), and prints per cell the mean and range of C's CPU per
call over B's in the same run, of C / B in calls/s, and of C's CPU per 1,000 calls.

  --before DIR   the checkout measured as "before" (built: npm run build)
  --after DIR    the checkout measured as "after" (default: the current directory)
  --runs N       runs per checkout (default 3)
  --json         print the comparison as JSON instead of a table
  BENCH OPTIONS  passed to bench/run.ts (default: --quick --sizes 1024 --sessions 1,16
                 --configs B,C --only macro); must include B and C in --configs
`;

type Side = 'before' | 'after';
interface Sample {
  cpuOverB: number;
  callsOverB: number;
  cpuPer1000: number;
}

function parseArgs(argv: string[]) {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? argv : argv.slice(0, dash);
  const bench =
    dash === -1
      ? ['--quick', '--sizes', '1024', '--sessions', '1,16', '--configs', 'B,C', '--only', 'macro']
      : argv.slice(dash + 1);
  if (own.includes('--help') || own.includes('-h')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const value = (name: string) => {
    const i = own.indexOf(name);
    return i === -1 ? undefined : own[i + 1];
  };
  const before = value('--before');
  if (before === undefined) fail('--before DIR is required');
  const runs = Number(value('--runs') ?? '3');
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) fail('--runs must be an integer from 1 to 20');
  return {
    dirs: { before: resolve(before), after: resolve(value('--after') ?? '.') } as Record<Side, string>,
    runs,
    json: own.includes('--json'),
    bench: bench.filter((a) => a !== '--json'),
  };
}

function fail(message: string): never {
  process.stderr.write(`compare: ${message}\n\n${USAGE}`);
  process.exit(2);
}

/** One bench run in `dir`: its macro cells, or an error naming the run. */
function runBench(dir: string, args: string[]): Promise<Cell[]> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('npx', ['tsx', 'bench/run.ts', ...args, '--json'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bench in ${dir} exited ${code}:\n${err.slice(-2000)}`));
      try {
        resolvePromise((JSON.parse(out) as { macro: Cell[] }).macro);
      } catch {
        reject(new Error(`bench in ${dir} printed no JSON results:\n${err.slice(-2000)}`));
      }
    });
  });
}

const key = (c: { sessions: number; size: number }) =>
  `${c.sessions} session${c.sessions === 1 ? '' : 's'}, ${c.size / 1024} KB`;

/** C against B of the same run, per cell. */
function samples(cells: Cell[]): Map<string, Sample> {
  const out = new Map<string, Sample>();
  for (const c of cells) {
    if (c.config !== 'C') continue;
    const b = cells.find((x) => x.config === 'B' && x.sessions === c.sessions && x.size === c.size);
    if (!b || b.cpuMsPer1000.median <= 0 || b.callsPerSec.median <= 0) continue;
    out.set(key(c), {
      cpuOverB: c.cpuMsPer1000.median / b.cpuMsPer1000.median,
      callsOverB: c.callsPerSec.median / b.callsPerSec.median,
      cpuPer1000: c.cpuMsPer1000.median,
    });
  }
  return out;
}

function stats(xs: number[]) {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

async function main() {
  const { dirs, runs, json, bench } = parseArgs(process.argv.slice(2));
  // Without --configs, bench/run.ts measures every configuration, B and C among them.
  const at = bench.indexOf('--configs');
  const configs = at === -1 ? ['B', 'C'] : (bench[at + 1] ?? '').split(',');
  if (!configs.includes('B') || !configs.includes('C')) {
    fail('the bench options must measure both B and C (--configs B,C)');
  }
  // ABBA order: a drift in the machine's speed falls on both sides alike.
  const order: Side[] = [];
  for (let i = 0; i < runs; i++)
    order.push(...((i % 2 === 0 ? ['after', 'before'] : ['before', 'after']) as Side[]));
  const collected: Record<Side, Map<string, Sample>[]> = { before: [], after: [] };
  const startedAt = new Date().toISOString();
  for (const [i, side] of order.entries()) {
    const t0 = Date.now();
    process.stderr.write(`[${i + 1}/${order.length}] ${side} (${dirs[side]}) … `);
    collected[side].push(samples(await runBench(dirs[side], bench)));
    process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  const cells = [...new Set(order.flatMap((s) => collected[s].flatMap((m) => [...m.keys()])))];
  const result = cells.map((cell) => {
    const side = (s: Side) => {
      const got = collected[s].map((m) => m.get(cell)).filter((x): x is Sample => x !== undefined);
      return {
        cpuOverB: stats(got.map((g) => g.cpuOverB)),
        callsOverB: stats(got.map((g) => g.callsOverB)),
        cpuPer1000: stats(got.map((g) => g.cpuPer1000)),
      };
    };
    return { cell, before: side('before'), after: side('after') };
  });
  if (json) {
    process.stdout.write(`${JSON.stringify({ startedAt, dirs, runs, bench, result }, null, 2)}\n`);
    return;
  }
  const f = (s: ReturnType<typeof stats>, digits: number) =>
    `${s.mean.toFixed(digits)} [${s.min.toFixed(digits)}–${s.max.toFixed(digits)}]`;
  process.stdout.write(
    `\nBefore: ${dirs.before}\nAfter:  ${dirs.after}\n${runs} run(s) each, alternating; bench: ${bench.join(' ')}\n` +
      'Means over the runs [min–max]; C CPU / B CPU and C / B calls/s are taken within each run.\n\n',
  );
  const rows = [['cell', 'side', 'C CPU / B CPU', 'C / B calls/s', 'C CPU ms / 1k calls']];
  for (const r of result) {
    for (const s of ['before', 'after'] as Side[]) {
      rows.push([r.cell, s, f(r[s].cpuOverB, 2), f(r[s].callsOverB, 2), f(r[s].cpuPer1000, 0)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) {
    process.stdout.write(
      `${row
        .map((v, i) => v.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`compare: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
