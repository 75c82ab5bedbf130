/**
 * The timing loops every micro-benchmark shares: warm up, then several timed
 * rounds; the headline is the median round, the spread its min and max, and
 * the latency percentiles come from every operation of every round.
 */

/** One row of the micro-benchmark report. */
export interface MicroResult {
  /** e.g. 'token', 'authz', 'arguments', 'ratelimit', 'audit', 'pipeline'. */
  group: string;
  /** e.g. 'verify EdDSA token (TokenService, SQLite)', 'append single (sqlite)'. */
  name: string;
  unit: 'us/op' | 'ops/s' | 'entries/s';
  /** The headline figure: median across rounds. */
  value: number;
  /** Min and max across rounds (same unit). */
  spread: [number, number];
  /** Per-operation latency percentiles, where meaningful. */
  p50Us?: number;
  p99Us?: number;
  rounds: number;
  ops: number;
  /** What a reader should know: settings, targets, why a row was skipped. */
  note?: string;
}

/** How long to warm up and how many rounds of what length to time. */
export interface Timing {
  warmupMs: number;
  rounds: number;
  roundMs: number;
}

/** What every benchmark group receives. */
export interface BenchContext {
  quick: boolean;
  timing: Timing;
  progress: (msg: string) => void;
}

/** Full runs: 5 rounds of 0.5 s; quick: 3 rounds of 0.15 s. */
export function timingFor(quick: boolean): Timing {
  return quick ? { warmupMs: 100, rounds: 3, roundMs: 150 } : { warmupMs: 300, rounds: 5, roundMs: 500 };
}

/** The raw outcome of a timed run. */
export interface Measured {
  /** Mean µs per operation in each round (wall time / ops). */
  usPerOp: number[];
  /** Operations per second in each round. */
  opsPerSec: number[];
  /** Process CPU time (user + system) per operation in each round, µs: below wall time = waiting (I/O, fsync). */
  cpuUsPerOp: number[];
  /** Latency of every timed operation, µs. */
  samplesUs: number[];
  ops: number;
}

/** An operation under test; `worker` is the index of the in-flight slot running it (0 when serial). */
export type Op = (worker: number) => unknown;

/** The median of `xs` (not mutated). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The `p` quantile (0..1) of samples already sorted ascending. */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Rounded to three significant digits (two decimals below 10): enough for a benchmark table. */
export function sig(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(x))));
  const f = 10 ** Math.min(digits, 2);
  return Math.round(x * f) / f;
}

/**
 * Runs `op` with `concurrency` operations continuously in flight (1 = serial,
 * each awaited before the next starts): `timing.warmupMs` untimed, then
 * `timing.rounds` rounds of `timing.roundMs` each.
 */
export async function run(op: Op, timing: Timing, concurrency = 1): Promise<Measured> {
  const [m] = await runAlternating([{ op, concurrency }], timing);
  return m!;
}

/**
 * Like {@link run} for several cases at once, taking turns within each round
 * (round 1 of every case, then round 2, …), so cases meant to be compared see
 * the same machine: a disk whose fsync latency drifts, a neighbour's load.
 */
export async function runAlternating(
  cases: ReadonlyArray<{ op: Op; concurrency?: number }>,
  timing: Timing,
): Promise<Measured[]> {
  const out = cases.map(() => ({
    usPerOp: [] as number[],
    opsPerSec: [] as number[],
    cpuUsPerOp: [] as number[],
    samplesUs: [] as number[],
    ops: 0,
  }));
  for (const c of cases) await runFor(c.op, c.concurrency ?? 1, timing.warmupMs, null);
  for (let r = 0; r < timing.rounds; r++) {
    for (const [i, c] of cases.entries()) {
      const m = out[i]!;
      const before = m.samplesUs.length;
      const cpu = process.cpuUsage();
      const start = performance.now();
      await runFor(c.op, c.concurrency ?? 1, timing.roundMs, m.samplesUs);
      const elapsed = performance.now() - start;
      const used = process.cpuUsage(cpu);
      const n = m.samplesUs.length - before;
      m.ops += n;
      m.usPerOp.push((elapsed * 1000) / n);
      m.opsPerSec.push((n * 1000) / elapsed);
      m.cpuUsPerOp.push((used.user + used.system) / n);
    }
  }
  return out;
}

/** `concurrency` workers, each starting its next operation as soon as its last one settles, until `ms` pass. */
async function runFor(op: Op, concurrency: number, ms: number, samples: number[] | null): Promise<void> {
  const end = performance.now() + ms;
  const worker = async (w: number) => {
    // At least one operation per worker, so a slow op still yields a sample.
    do {
      const t = performance.now();
      await op(w);
      samples?.push((performance.now() - t) * 1000);
    } while (performance.now() < end);
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
}

/** Latency percentiles of a run, µs. */
function percentiles(m: Measured): { p50Us: number; p99Us: number } {
  const sorted = Float64Array.from(m.samplesUs).sort();
  const s = Array.from(sorted);
  return { p50Us: sig(quantile(s, 0.5)), p99Us: sig(quantile(s, 0.99)) };
}

/** A µs/op row from a run (median of the rounds' mean µs/op). */
export function usRow(group: string, name: string, m: Measured, note?: string): MicroResult {
  return {
    group,
    name,
    unit: 'us/op',
    value: sig(median(m.usPerOp)),
    spread: [sig(Math.min(...m.usPerOp)), sig(Math.max(...m.usPerOp))],
    ...percentiles(m),
    rounds: m.usPerOp.length,
    ops: m.ops,
    ...(note === undefined ? {} : { note }),
  };
}

/** A throughput row from a run (median of the rounds' operations per second). */
export function rateRow(
  group: string,
  name: string,
  m: Measured,
  unit: 'ops/s' | 'entries/s',
  note?: string,
): MicroResult {
  return {
    group,
    name,
    unit,
    value: Math.round(median(m.opsPerSec)),
    spread: [Math.round(Math.min(...m.opsPerSec)), Math.round(Math.max(...m.opsPerSec))],
    ...percentiles(m),
    rounds: m.opsPerSec.length,
    ops: m.ops,
    ...(note === undefined ? {} : { note }),
  };
}

/** A row that could not be measured (a store not reachable, …). */
export function skipped(group: string, name: string, unit: MicroResult['unit'], why: string): MicroResult {
  return {
    group,
    name,
    unit,
    value: Number.NaN,
    spread: [Number.NaN, Number.NaN],
    rounds: 0,
    ops: 0,
    note: `skipped: ${why}`,
  };
}

/** "CPU 41 µs/op" (median round): how much of the wall time the process spent computing. */
export function cpuNote(m: Measured): string {
  return `CPU ${sig(median(m.cpuUsPerOp))} µs/op`;
}

/** `value` against a target, for notes: "target ≤ 150 µs: met" / "missed by 1.8×". */
export function against(value: number, target: number, better: 'lower' | 'higher', label: string): string {
  const ok = better === 'lower' ? value <= target : value >= target;
  if (ok) return `target ${label}: met`;
  const factor = better === 'lower' ? value / target : target / value;
  return `target ${label}: MISSED (${sig(factor)}× off)`;
}
