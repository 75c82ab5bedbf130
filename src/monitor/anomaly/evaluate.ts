/**
 * One batch of the audit log, judged: the bucket and tool increments it adds,
 * and the anomalies its entries set off. Entries older than one window are
 * history — they feed the baselines but are not judged, so a monitor catching
 * up on a backlog (or switched on over an old log) learns from it silently.
 */
import { createHash } from 'node:crypto';
import type { AnomalyRule, MonitoringConfig } from '../../config/index.js';
import type { ActiveHours } from './active-hours.js';
import {
  addHour,
  emptyHour,
  entry,
  type HourStats,
  hasCallEvidence,
  hasTokenEvidence,
  hourOf,
  type RangeStats,
  rangeStats,
  round,
  windowOf,
} from './stats.js';
import type { BucketDelta, MonitorEvent, MonitorStore, Scope, ToolSeen } from './store.js';
import type { Anomaly } from './types.js';

/** An anomaly before severity and response are decided. */
export type Candidate = Omit<Anomaly, 'id' | 'ts' | 'severity' | 'response' | 'count'> & { dedup: string };

/** What committing a batch writes, and what it raises. */
export interface BatchPlan {
  buckets: BucketDelta[];
  tools: ToolSeen[];
  /** In the order their triggering entries were written. */
  candidates: Candidate[];
}

export interface PlanContext {
  store: MonitorStore;
  config: MonitoringConfig;
  now: number;
  /** null when the off-hours rule is off. */
  activeHours: ActiveHours | null;
  /** The cursor the batch starts after (denials up to it are history). */
  cursor: number;
}

/** A stable key for "this rule already fired for this": stored unique, so processes agree. */
export function dedupKey(parts: ReadonlyArray<string | number>): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

const pairKey = (agentId: string, tool: string) => `${agentId}\u0000${tool}`;
const uniq = <T>(xs: Iterable<T>): T[] => [...new Set(xs)];

/** A baseline picked for one metric: the agent's own, else its type's per-agent one. */
interface Picked {
  stats: RangeStats;
  scope: Scope;
}

/** Judges one batch of events (in seq order) against the stored baselines. */
export async function planBatch(events: readonly MonitorEvent[], ctx: PlanContext): Promise<BatchPlan> {
  const { config, now, store } = ctx;
  const W = config.windowMs;
  const L = config.learningPeriodMs;
  const rules = config.anomalies;
  const liveFrom = now - W;
  const isLive = (e: MonitorEvent) => e.ts >= liveFrom;

  // 1. What the batch adds to the buckets and to the tools ever run.
  const buckets = new Map<string, BucketDelta>();
  const tools = new Map<string, ToolSeen>();
  /** Agent-scope increments per (agent, tool), by hour: the part of a baseline this batch adds. */
  const batchHours = new Map<string, Map<number, HourStats>>();
  const addBucket = (scope: Scope, key: string, agentType: string, e: MonitorEvent, hour: number) => {
    const k = `${scope}\u0000${key}\u0000${e.tool}\u0000${hour}`;
    const b = entry(buckets, k, () => ({ scope, key, tool: e.tool, hour, agentType, ...emptyHour() }));
    addHour(b, deltaOf(e));
  };
  const addTool = (scope: Scope, key: string, e: MonitorEvent) => {
    const k = `${scope}\u0000${key}\u0000${e.tool}`;
    const t = tools.get(k);
    if (t === undefined) tools.set(k, { scope, key, tool: e.tool, first: e.ts, last: e.ts });
    else {
      t.first = Math.min(t.first, e.ts);
      t.last = Math.max(t.last, e.ts);
    }
  };
  for (const e of events) {
    const hour = hourOf(e.ts);
    addBucket('agent', e.agentId, e.agentType ?? '', e, hour);
    if (e.agentType !== null) addBucket('type', e.agentType, e.agentType, e, hour);
    if (e.kind !== 'call') continue;
    addTool('agent', e.agentId, e);
    if (e.agentType !== null) addTool('type', e.agentType, e);
    const m = entry(batchHours, pairKey(e.agentId, e.tool), () => new Map<number, HourStats>());
    addHour(entry(m, hour, emptyHour), deltaOf(e));
  }

  // 2. The stored state the live entries are judged against.
  const liveCalls = events.filter((e) => e.kind === 'call' && isLive(e));
  const ratioOn = rules.frequency.enabled || rules.volume.enabled || rules.tokenBurn.enabled;
  const livePairs = new Set(liveCalls.map((e) => pairKey(e.agentId, e.tool)));
  const storedHours = new Map<string, Map<number, HourStats>>();
  if (ratioOn && liveCalls.length > 0) {
    const windows = liveCalls.map((e) => windowOf(e.ts, W));
    const rows = await store.agentHours(
      uniq(liveCalls.map((e) => e.agentId)),
      uniq(liveCalls.map((e) => e.tool)),
      Math.min(...windows) - L,
      Math.max(...windows) + W,
    );
    for (const r of rows) {
      const p = pairKey(r.key, r.tool);
      if (!livePairs.has(p)) continue;
      entry(storedHours, p, () => new Map<number, HourStats>()).set(r.hour, r.stats);
    }
  }
  const firstUse = rules.firstUse;
  const firstUseKey = (e: MonitorEvent) => (firstUse.scope === 'type' ? e.agentType : e.agentId);
  const known =
    firstUse.enabled && liveCalls.length > 0
      ? await store.knownTools(
          firstUse.scope,
          uniq(liveCalls.map(firstUseKey).filter((k): k is string => k !== null)),
        )
      : new Map<string, Map<string, ToolSeen>>();
  /** When a key first ran any tool: stored, else in this batch. */
  const firstSeen = (key: string): number => {
    let first = Number.POSITIVE_INFINITY;
    for (const t of known.get(key)?.values() ?? []) first = Math.min(first, t.first);
    if (first !== Number.POSITIVE_INFINITY) return first;
    for (const t of tools.values()) {
      if (t.scope === firstUse.scope && t.key === key) first = Math.min(first, t.first);
    }
    return first;
  };
  const inGrace = (key: string, ts: number) =>
    config.newAgents.mode === 'learn' && ts - firstSeen(key) < config.newAgents.learnForMs;

  // Baselines, computed once per (agent, tool, window) and type (type, tool, window).
  const ownCache = new Map<string, RangeStats>();
  const typeCache = new Map<string, RangeStats | null>();
  const own = (e: MonitorEvent, ws: number): RangeStats => {
    const k = `${pairKey(e.agentId, e.tool)}\u0000${ws}`;
    let s = ownCache.get(k);
    if (s === undefined) {
      const p = pairKey(e.agentId, e.tool);
      s = rangeStats(mergedHours(storedHours.get(p), batchHours.get(p)), ws - L, ws, W);
      ownCache.set(k, s);
    }
    return s;
  };
  const ofType = async (e: MonitorEvent, ws: number): Promise<RangeStats | null> => {
    if (e.agentType === null) return null;
    const k = `${e.agentType}\u0000${e.tool}\u0000${ws}`;
    if (!typeCache.has(k)) {
      const m = await store.typeStats(e.agentType, [e.tool], ws - L, ws, W);
      typeCache.set(k, m.get(e.tool) ?? null);
    }
    return typeCache.get(k) ?? null;
  };
  const pick = async (
    e: MonitorEvent,
    ws: number,
    enough: (s: RangeStats) => boolean,
  ): Promise<Picked | null> => {
    const mine = own(e, ws);
    if (enough(mine)) return { stats: mine, scope: 'agent' };
    const theirs = await ofType(e, ws);
    return theirs !== null && enough(theirs) ? { stats: theirs, scope: 'type' } : null;
  };
  const callEvidence = (s: RangeStats) => hasCallEvidence(s, rules);
  const tokenEvidence = (s: RangeStats) => hasTokenEvidence(s, rules);

  // 3. The entries, in order.
  const candidates: Candidate[] = [];
  const fired = new Set<string>();
  const once = (rule: AnomalyRule, agentId: string, tool: string | null, ws: number): boolean => {
    const k = JSON.stringify([rule, agentId, tool, ws]);
    if (fired.has(k)) return false;
    fired.add(k);
    return true;
  };
  const seenInBatch = new Set<string>();
  const running = new Map<string, HourStats>();
  const denials = new Map<string, MonitorEvent[]>();
  const base = (e: MonitorEvent) => ({
    agentId: e.agentId,
    agentType: e.agentType,
    sessionId: e.sessionId,
    windowMs: W,
    traceId: e.traceId,
    triggerSeq: e.seq,
  });

  for (const e of events) {
    const live = isLive(e);
    const ws = windowOf(e.ts, W);
    const hours = ctx.activeHours;
    if (live && hours !== null && !hours.isActive(e.ts) && once('off-hours', e.agentId, null, ws)) {
      candidates.push({
        ...base(e),
        rule: 'off-hours',
        tool: null,
        windowStart: ws,
        metric: 'localTime',
        observed: null,
        baseline: null,
        factor: null,
        threshold: null,
        details: {
          localTime: hours.describe(e.ts),
          timezone: hours.config.timezone,
          activeHours: hours.config.hours,
          activeDays: hours.config.days.join(','),
          lastTool: e.tool === '' ? null : e.tool,
        },
        dedup: dedupKey(['off-hours', e.agentId, '', ws]),
      });
    }
    if (e.kind === 'denial') {
      const list = denials.get(e.agentId) ?? [];
      list.push(e);
      denials.set(e.agentId, list);
      continue;
    }

    // First use: the first call of a tool by the key, stored or in this batch.
    const key = firstUse.enabled ? firstUseKey(e) : null;
    if (key !== null && !known.get(key)?.has(e.tool) && !seenInBatch.has(pairKey(key, e.tool))) {
      seenInBatch.add(pairKey(key, e.tool));
      if (live && !inGrace(key, e.ts)) {
        candidates.push({
          ...base(e),
          rule: 'first-use',
          tool: e.tool,
          windowStart: ws,
          metric: 'firstUse',
          observed: 1,
          baseline: 0,
          factor: null,
          threshold: null,
          details: { scope: firstUse.scope, knownTools: known.get(key)?.size ?? 0 },
          dedup: dedupKey(['first-use', firstUse.scope, key, e.tool]),
        });
      }
    }

    // Ratio rules: the window so far (stored + this batch up to this entry) against the baseline.
    const p = pairKey(e.agentId, e.tool);
    if (!ratioOn || !livePairs.has(p)) continue;
    const rk = `${p}\u0000${ws}`;
    let run = running.get(rk);
    if (run === undefined) {
      run = emptyHour();
      for (const [hour, h] of storedHours.get(p) ?? []) if (hour >= ws && hour < ws + W) addHour(run, h);
      running.set(rk, run);
    }
    addHour(run, deltaOf(e));
    if (!live) continue;

    if (rules.frequency.enabled && !fired.has(JSON.stringify(['frequency', e.agentId, e.tool, ws]))) {
      const b = await pick(e, ws, callEvidence);
      const avg = b === null ? 0 : b.stats.calls / b.stats.windows;
      if (
        b !== null &&
        run.calls > rules.frequency.factor * avg &&
        once('frequency', e.agentId, e.tool, ws)
      ) {
        candidates.push(ratio(e, ws, 'frequency', 'calls', run.calls, avg, rules.frequency.factor, b));
      }
    }
    if (rules.volume.enabled && !fired.has(JSON.stringify(['volume', e.agentId, e.tool, ws]))) {
      const b = await pick(e, ws, callEvidence);
      const avg = b === null ? 0 : b.stats.resultBytes / b.stats.windows;
      // A baseline that returned nothing (or entries from before results were measured) is no evidence.
      if (
        b !== null &&
        avg > 0 &&
        run.resultBytes > rules.volume.factor * avg &&
        once('volume', e.agentId, e.tool, ws)
      ) {
        candidates.push(ratio(e, ws, 'volume', 'resultBytes', run.resultBytes, avg, rules.volume.factor, b));
      }
    }
    // Token burn: only calls that reported tokens count; a window without a report is unknown.
    if (
      rules.tokenBurn.enabled &&
      run.tokenCalls > 0 &&
      !fired.has(JSON.stringify(['token-burn', e.agentId, e.tool, ws]))
    ) {
      const b = await pick(e, ws, tokenEvidence);
      const avg = b === null ? 0 : b.stats.tokens / b.stats.tokenWindows;
      if (
        b !== null &&
        avg > 0 &&
        run.tokens > rules.tokenBurn.factor * avg &&
        once('token-burn', e.agentId, e.tool, ws)
      ) {
        const c = ratio(e, ws, 'token-burn', 'modelTokens', run.tokens, avg, rules.tokenBurn.factor, b);
        c.details = {
          ...c.details,
          reportingCalls: run.tokenCalls,
          baselineReportingCalls: b.stats.tokenCalls,
          baselineWindows: b.stats.tokenWindows,
        };
        candidates.push(c);
      }
    }
  }

  if (rules.denialBurst.enabled) candidates.push(...(await denialBursts(denials, ctx, isLive, once)));
  candidates.sort((a, b) => a.triggerSeq - b.triggerSeq);
  return { buckets: [...buckets.values()], tools: [...tools.values()], candidates };

  function ratio(
    e: MonitorEvent,
    ws: number,
    rule: 'frequency' | 'volume' | 'token-burn',
    metric: 'calls' | 'resultBytes' | 'modelTokens',
    observed: number,
    avg: number,
    threshold: number,
    b: Picked,
  ): Candidate {
    return {
      ...base(e),
      rule,
      tool: e.tool,
      windowStart: ws,
      metric,
      observed,
      baseline: round(avg),
      factor: avg > 0 ? round(observed / avg) : null,
      threshold,
      details: { baselineScope: b.scope, baselineCalls: b.stats.calls, baselineWindows: b.stats.windows },
      dedup: dedupKey([rule, e.agentId, e.tool, ws]),
    };
  }
}

/** Denial bursts: at a live denial, at least `count` of the agent's denials within `within`. */
async function denialBursts(
  byAgent: Map<string, MonitorEvent[]>,
  ctx: PlanContext,
  isLive: (e: MonitorEvent) => boolean,
  once: (rule: AnomalyRule, agentId: string, tool: string | null, ws: number) => boolean,
): Promise<Candidate[]> {
  const { count, withinMs } = ctx.config.anomalies.denialBurst;
  const W = ctx.config.windowMs;
  const out: Candidate[] = [];
  for (const [agentId, list] of byAgent) {
    const live = list.filter(isLive);
    if (live.length === 0) continue;
    const earliest = Math.min(...live.map((e) => e.ts));
    // The newest count-1 earlier denials are all a window ending at a live one can hold.
    const prior = await ctx.store.priorDenials(agentId, earliest - withinMs, ctx.cursor, count - 1);
    const all: Array<{ ts: number; e: MonitorEvent | null }> = [
      ...prior.map((ts) => ({ ts, e: null })),
      ...list.map((e) => ({ ts: e.ts, e })),
    ].sort((a, b) => a.ts - b.ts);
    let left = 0;
    for (let i = 0; i < all.length; i++) {
      const at = all[i]!;
      while (all[left]!.ts <= at.ts - withinMs) left++;
      const n = i - left + 1;
      const e = at.e;
      if (e === null || !isLive(e) || n < count) continue;
      const ws = windowOf(e.ts, W);
      if (!once('denial-burst', agentId, null, ws)) continue;
      out.push({
        agentId,
        agentType: e.agentType,
        sessionId: e.sessionId,
        windowMs: W,
        traceId: e.traceId,
        triggerSeq: e.seq,
        rule: 'denial-burst',
        tool: null,
        windowStart: ws,
        metric: 'denials',
        observed: n,
        baseline: null,
        factor: null,
        threshold: count,
        details: { withinMs, lastTool: e.tool === '' ? null : e.tool },
        dedup: dedupKey(['denial-burst', agentId, '', ws]),
      });
    }
  }
  return out;
}

/** One event's contribution to a bucket. */
function deltaOf(e: MonitorEvent): HourStats {
  if (e.kind === 'denial') return { ...emptyHour(), denials: 1 };
  return {
    calls: 1,
    resultBytes: e.resultBytes,
    tokens: e.tokens ?? 0,
    tokenCalls: e.tokens === null ? 0 : 1,
    denials: 0,
  };
}

/** Stored hours plus this batch's, without changing either. */
function mergedHours(
  stored: Map<number, HourStats> | undefined,
  batch: Map<number, HourStats> | undefined,
): Map<number, HourStats> {
  const out = new Map<number, HourStats>();
  for (const src of [stored, batch]) {
    for (const [hour, h] of src ?? []) {
      const acc = out.get(hour) ?? emptyHour();
      addHour(acc, h);
      out.set(hour, acc);
    }
  }
  return out;
}
