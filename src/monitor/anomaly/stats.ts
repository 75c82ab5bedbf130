/**
 * Baseline arithmetic over hourly buckets, shared by the rules and the
 * baseline view. A baseline is an average per *active* window — a window in
 * which the agent ran the tool — not per calendar window: an agent that works
 * office hours would otherwise look three times busier than "usual" every
 * morning, and one deployed two days ago would be judged by a week it was
 * not there for.
 */
import type { MonitoringConfig } from '../../config/index.js';
import type { PerWindow } from './types.js';

export const HOUR_MS = 3_600_000;

/** One hour of one (scope, key, tool). */
export interface HourStats {
  calls: number;
  resultBytes: number;
  /** Summed over the calls that reported tokens. */
  tokens: number;
  tokenCalls: number;
  denials: number;
}

/** Totals over a range of hours, and the windows they fell in. */
export interface RangeStats {
  calls: number;
  resultBytes: number;
  tokens: number;
  tokenCalls: number;
  denials: number;
  /** Windows with at least one call. */
  windows: number;
  /** Windows with at least one call that reported tokens. */
  tokenWindows: number;
}

export const emptyHour = (): HourStats => ({
  calls: 0,
  resultBytes: 0,
  tokens: 0,
  tokenCalls: 0,
  denials: 0,
});

/** Start of the hour of `ts`. */
export const hourOf = (ts: number): number => Math.floor(ts / HOUR_MS) * HOUR_MS;
/** Start of the (epoch-aligned) window of `ts`. */
export const windowOf = (ts: number, windowMs: number): number => Math.floor(ts / windowMs) * windowMs;

/** Adds `b` into `a`. */
export function addHour(a: HourStats, b: HourStats): void {
  a.calls += b.calls;
  a.resultBytes += b.resultBytes;
  a.tokens += b.tokens;
  a.tokenCalls += b.tokenCalls;
  a.denials += b.denials;
}

/** Totals of the hours in [from, to), with their active windows counted. */
export function rangeStats(
  hours: Iterable<[number, HourStats]>,
  from: number,
  to: number,
  windowMs: number,
): RangeStats {
  const out: RangeStats = {
    calls: 0,
    resultBytes: 0,
    tokens: 0,
    tokenCalls: 0,
    denials: 0,
    windows: 0,
    tokenWindows: 0,
  };
  const windows = new Set<number>();
  const tokenWindows = new Set<number>();
  for (const [hour, h] of hours) {
    if (hour < from || hour >= to) continue;
    out.calls += h.calls;
    out.resultBytes += h.resultBytes;
    out.tokens += h.tokens;
    out.tokenCalls += h.tokenCalls;
    out.denials += h.denials;
    if (h.calls > 0) windows.add(windowOf(hour, windowMs));
    if (h.tokenCalls > 0) tokenWindows.add(windowOf(hour, windowMs));
  }
  out.windows = windows.size;
  out.tokenWindows = tokenWindows.size;
  return out;
}

type Evidence = Pick<MonitoringConfig['anomalies'], 'minBaselineCalls' | 'minBaselineWindows'>;

/** Enough calls over enough windows to judge calls and data volume by. */
export function hasCallEvidence(s: RangeStats, e: Evidence): boolean {
  return s.calls >= e.minBaselineCalls && s.windows >= e.minBaselineWindows;
}

/** Enough calls that reported tokens, over enough windows, to judge token burn by. */
export function hasTokenEvidence(s: RangeStats, e: Evidence): boolean {
  return s.tokenCalls >= e.minBaselineCalls && s.tokenWindows >= e.minBaselineWindows;
}

/** The per-window averages the ratio rules compare with; null where evidence is short. */
export function perWindow(s: RangeStats, e: Evidence): PerWindow {
  const calls = hasCallEvidence(s, e);
  return {
    calls: calls ? s.calls / s.windows : null,
    resultBytes: calls ? s.resultBytes / s.windows : null,
    modelTokens: hasTokenEvidence(s, e) ? s.tokens / s.tokenWindows : null,
  };
}

/** The value under `key`, made and stored first when absent. */
export function entry<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

/** A number fit for an audit entry: finite, at most 3 decimals. */
export function round(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 1000) / 1000 : 0;
}
