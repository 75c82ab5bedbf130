/**
 * Micro-benchmarks for every step of a tool call (issue #4): token
 * verification, authorization, argument validation, rate limits, audit append
 * and verify, and the whole in-process pipeline — real code over real stores.
 * Each benchmark warms up, then runs several rounds; a row reports the median
 * round and the min–max spread across rounds.
 *
 *   npx tsx bench/micro/index.ts [--json] [--quick] [--only token,audit]
 *
 * Groups: token, authz, arguments, ratelimit, audit, approvals, inspect, inspection, taint, monitor, pipeline. PostgreSQL
 * (WARDEN_BENCH_PG / WARDEN_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/test)
 * and Redis (WARDEN_BENCH_REDIS / WARDEN_TEST_REDIS_URL, default
 * redis://127.0.0.1:6379) rows are skipped, with a note, when unreachable.
 */
import { cpus } from 'node:os';
import { approvalsBench } from './approvals.js';
import { argumentsBench } from './arguments.js';
import { auditBench } from './audit.js';
import { authzBench } from './authz.js';
import { type BenchContext, type MicroResult, timingFor } from './harness.js';
import { inspectBench } from './inspect.js';
import { inspectionBench } from './inspection.js';
import { isMain } from './main.js';
import { monitorBench } from './monitor.js';
import { pipelineBench } from './pipeline.js';
import { ratelimitBench } from './ratelimit.js';
import { taintBench } from './taint.js';
import { tokenBench } from './token.js';

export type { MicroResult } from './harness.js';

/** The groups, in the order a tool call meets them (the pipeline last: it is all of them). */
const GROUPS: Record<string, (ctx: BenchContext) => Promise<MicroResult[]>> = {
  token: tokenBench,
  authz: authzBench,
  arguments: argumentsBench,
  ratelimit: ratelimitBench,
  audit: auditBench,
  approvals: approvalsBench,
  inspect: inspectBench,
  inspection: inspectionBench,
  taint: taintBench,
  monitor: monitorBench,
  pipeline: pipelineBench,
};

/** The group names `only` accepts. */
export const MICRO_GROUPS: readonly string[] = Object.keys(GROUPS);

/**
 * Run the micro-benchmarks (all groups, or `only` these). A group that fails
 * yields one row whose note starts with `failed:`; the others still run.
 */
export async function runMicro(
  opts: { quick?: boolean; only?: string[]; progress?: (msg: string) => void } = {},
): Promise<MicroResult[]> {
  const only = opts.only ?? MICRO_GROUPS;
  const unknown = only.filter((g) => !Object.hasOwn(GROUPS, g));
  if (unknown.length > 0) {
    throw new Error(
      `unknown micro-benchmark group(s) ${unknown.join(', ')}; known: ${MICRO_GROUPS.join(', ')}`,
    );
  }
  const quick = opts.quick ?? false;
  const ctx: BenchContext = { quick, timing: timingFor(quick), progress: opts.progress ?? (() => {}) };
  const out: MicroResult[] = [];
  for (const group of MICRO_GROUPS.filter((g) => only.includes(g))) {
    try {
      out.push(...(await GROUPS[group]!(ctx)));
    } catch (e) {
      const why = e instanceof Error ? (e.stack ?? e.message) : String(e);
      ctx.progress(`${group} failed: ${why}`);
      out.push({
        group,
        name: '(group failed)',
        unit: 'us/op',
        value: Number.NaN,
        spread: [Number.NaN, Number.NaN],
        rounds: 0,
        ops: 0,
        note: `failed: ${e instanceof Error ? e.message : String(e)}`,
      });
    }
  }
  return out;
}

function fmt(x: number | undefined, unit: MicroResult['unit'] | 'us'): string {
  if (x === undefined) return '';
  if (!Number.isFinite(x)) return '—';
  return unit === 'us' || unit === 'us/op' ? String(x) : Math.round(x).toLocaleString('en-US');
}

/** The results as an aligned text table (notes last, unpadded). */
export function formatTable(results: readonly MicroResult[]): string {
  const header = ['group', 'benchmark', 'median', 'unit', 'min – max', 'p50 µs', 'p99 µs', 'rounds', 'ops'];
  const rows = results.map((r) => [
    r.group,
    r.name,
    fmt(r.value, r.unit),
    r.unit,
    Number.isFinite(r.spread[0]) ? `${fmt(r.spread[0], r.unit)} – ${fmt(r.spread[1], r.unit)}` : '—',
    fmt(r.p50Us, 'us'),
    fmt(r.p99Us, 'us'),
    String(r.rounds),
    r.ops.toLocaleString('en-US'),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const numeric = new Set([2, 4, 5, 6, 7, 8]);
  const line = (cells: string[]) =>
    cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  const lines = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  results.forEach((r, i) => {
    lines.push(line(rows[i]!).trimEnd());
    if (r.note) lines.push(`${' '.repeat(widths[0]! + 2)}↳ ${r.note}`);
  });
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      `Usage: npx tsx bench/micro/index.ts [--quick] [--json] [--only ${MICRO_GROUPS.join(',')}]\n` +
        'Micro-benchmarks of each step of a tool call, over real stores; see docs/BENCHMARKS.md.\n',
    );
    return;
  }
  const at = argv.indexOf('--only');
  const only =
    at === -1
      ? undefined
      : (argv[at + 1] ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  const quick = argv.includes('--quick');
  const started = performance.now();
  const results = await runMicro({
    quick,
    ...(only ? { only } : {}),
    progress: (msg) => process.stderr.write(`${msg}\n`),
  });
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`;
  if (argv.includes('--json')) {
    const meta = { node: process.version, machine, quick, seconds };
    process.stdout.write(`${JSON.stringify({ ...meta, results }, null, 2)}\n`);
  } else {
    process.stdout.write(
      `${formatTable(results)}\n\nNode ${process.version}, ${machine}; ${seconds} s${quick ? ' (quick)' : ''}.\n`,
    );
  }
  if (results.some((r) => r.note?.startsWith('failed:'))) process.exitCode = 1;
}

if (isMain(import.meta.url)) {
  await main().catch((e: unknown) => {
    process.stderr.write(`bench/micro: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  });
}
