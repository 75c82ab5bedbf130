/**
 * The macro cells of a results file (`bench/run.ts --json`, bench/results/latest.json), as the
 * benchmark writes them and its readers (report-md.ts, compare.ts) take them.
 */

/** A figure over a cell's rounds. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** One configuration at one session count and result size. */
export interface MacroCell {
  config: string;
  sessions: number;
  size: number;
  callsPerSec: Spread;
  /** Latency percentiles in ms over every measured call of every round. */
  p50: number;
  p99: number;
  p999: number;
  /** The server's CPU (the gateway's, for B, C and D) per 1,000 calls. */
  cpuMsPer1000: Spread;
  errors: number;
}
