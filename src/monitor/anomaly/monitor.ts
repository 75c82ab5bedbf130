/**
 * The anomaly monitor: reads the audit log from its cursor in bounded
 * batches, keeps the hourly baselines, judges the rules and sets off the
 * responses. Any number of gateway processes may run one on the same store:
 * each batch is committed by exactly one of them (see store.ts), and only the
 * process that committed an anomaly responds to it and audits it.
 */
import { randomId } from '../../util/clock.js';
import { ActiveHours } from './active-hours.js';
import { AnomalyStore, type NewAnomaly } from './anomaly-store.js';
import { type Candidate, planBatch } from './evaluate.js';
import { anomalyAuditInput, responseOf, runResponse, severityOf } from './respond.js';
import { HOUR_MS, hourOf, perWindow, rangeStats, windowOf } from './stats.js';
import { MonitorStore } from './store.js';
import type {
  Anomaly,
  AnomalyMonitorDeps,
  AnomalyQuery,
  AnomalyRecord,
  BaselineTool,
  BaselineView,
} from './types.js';

/** Batches one tick reads at most (then the next tick goes on): bounds a tick's work. */
const MAX_BATCHES_PER_TICK = 10;
/** A committed anomaly not audited after this long is finished by whichever process sees it. */
const CLAIM_LEASE_MS = 60_000;
/** Unfinished anomalies taken over per tick. */
const RECOVER_PER_TICK = 20;

/** Anomalies raised so far in one tick, against `maxPerTick` and `maxPerAgent`. */
interface TickBudget {
  total: number;
  perAgent: Map<string, number>;
}

/** Behavioural baselines and anomaly detection over the audit log (issue #8). */
export class AnomalyMonitor {
  private readonly monitorStore: MonitorStore;
  private readonly anomalies: AnomalyStore;
  private readonly activeHours: ActiveHours | null;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();
  private cursorReady = false;
  private prunedHour = Number.NaN;

  constructor(private readonly deps: AnomalyMonitorDeps) {
    this.monitorStore = new MonitorStore(deps.store);
    this.anomalies = new AnomalyStore(deps.store);
    const off = deps.config.anomalies.offHours;
    this.activeHours = off.enabled ? new ActiveHours(off) : null;
  }

  /** Runs `tick` every `config.intervalMs` in the background (unref'd; a tick never overlaps the next). */
  start(): void {
    if (!this.deps.config.enabled || this.closed || this.timer !== undefined) return;
    const loop = (delay: number) => {
      this.timer = setTimeout(() => {
        this.tick()
          .then(
            () => undefined,
            (e: unknown) => this.deps.log.error({ err: e }, 'anomaly monitor tick failed'),
          )
          .finally(() => {
            if (!this.closed) loop(this.deps.config.intervalMs);
          });
      }, delay);
      this.timer.unref();
    };
    loop(this.deps.config.intervalMs);
  }

  /** Stops the loop and waits for a running tick. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain.catch(() => {});
  }

  /**
   * Processes the entries written since the last tick (at most ten batches), judges them and
   * responds; returns the anomalies this process raised. Throws when the store fails.
   */
  tick(): Promise<Anomaly[]> {
    const run = this.chain.then(() => this.runTick());
    this.chain = run.catch(() => {});
    return run;
  }

  /** Stored anomalies, newest first. */
  list(q: AnomalyQuery = {}): Promise<AnomalyRecord[]> {
    return this.anomalies.list(q);
  }

  /** What has been learned about one agent or agent type, as the rules see it now. */
  async baseline(q: { scope: 'agent' | 'type'; key: string }): Promise<BaselineView> {
    const { config } = this.deps;
    const W = config.windowMs;
    const L = config.learningPeriodMs;
    const now = this.deps.clock.now();
    const to = windowOf(now, W);
    const from = to - L;
    const [rows, known] = await Promise.all([
      this.monitorStore.keyHours(q.scope, q.key, from, to + W),
      this.monitorStore.knownTools(q.scope, [q.key]),
    ]);
    const typeStats =
      q.scope === 'type' ? await this.monitorStore.typeStats(q.key, undefined, from, to, W) : undefined;
    const seen = known.get(q.key) ?? new Map();
    const byTool = new Map<string, Array<[number, (typeof rows)[number]['stats']]>>();
    for (const r of rows) {
      const list = byTool.get(r.tool) ?? [];
      list.push([r.hour, r.stats]);
      byTool.set(r.tool, list);
    }
    for (const tool of seen.keys()) if (!byTool.has(tool)) byTool.set(tool, []);
    const tools: BaselineTool[] = [...byTool.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([tool, hours]) => {
        const learned = rangeStats(hours, from, to, W);
        const current = rangeStats(hours, to, to + W, W);
        const t = seen.get(tool);
        return {
          tool,
          firstSeen: t?.first ?? null,
          lastSeen: t?.last ?? null,
          learned: {
            calls: learned.calls,
            resultBytes: learned.resultBytes,
            modelTokens: learned.tokenCalls > 0 ? learned.tokens : null,
            reportingCalls: learned.tokenCalls,
            denials: learned.denials,
            activeWindows: learned.windows,
          },
          perWindow: perWindow(typeStats?.get(tool) ?? learned, config.anomalies),
          current: {
            calls: current.calls,
            resultBytes: current.resultBytes,
            modelTokens: current.tokenCalls > 0 ? current.tokens : null,
            denials: current.denials,
          },
        };
      });
    let firstSeen: number | null = null;
    for (const t of seen.values()) firstSeen = firstSeen === null ? t.first : Math.min(firstSeen, t.first);
    const learning =
      config.newAgents.mode === 'learn' &&
      q.scope === config.anomalies.firstUse.scope &&
      (firstSeen === null || now - firstSeen < config.newAgents.learnForMs);
    return {
      scope: q.scope,
      key: q.key,
      windowMs: W,
      learningPeriodMs: L,
      from,
      to,
      firstSeen,
      learning,
      tools,
    };
  }

  private async runTick(): Promise<Anomaly[]> {
    if (!this.deps.config.enabled) return [];
    const now = this.deps.clock.now();
    if (!this.cursorReady) {
      await this.monitorStore.ensureCursor(now);
      this.cursorReady = true;
    }
    await this.recover();
    const raised: Anomaly[] = [];
    const budget: TickBudget = { total: 0, perAgent: new Map() };
    for (let i = 0; i < MAX_BATCHES_PER_TICK; i++) {
      const r = await this.processBatch(budget);
      raised.push(...r.raised);
      if (r.done) break;
    }
    await this.prune(now);
    return raised;
  }

  /** One batch: read, judge, commit (if no other process did), respond. */
  private async processBatch(budget: TickBudget): Promise<{ done: boolean; raised: Anomaly[] }> {
    const { config, clock } = this.deps;
    const store = this.monitorStore;
    const [from, head] = await Promise.all([store.cursor(), store.head()]);
    if (head <= from) return { done: true, raised: [] };
    const to = Math.min(from + config.batchSize, head);
    const now = clock.now();
    const events = await store.events(from, to);
    const plan = await planBatch(events, {
      store,
      config,
      now,
      activeHours: this.activeHours,
      cursor: from,
    });
    const anomalies = await this.decide(plan.candidates, now, budget);
    const inserted = await store.commit(from, to, now, plan.buckets, plan.tools, anomalies);
    // Another process committed this batch first: its anomalies are its own to answer.
    if (inserted === null) return { done: false, raised: [] };
    const raised = anomalies.filter((a) => inserted.has(a.id));
    for (const a of raised) {
      budget.total += 1;
      budget.perAgent.set(a.agentId, (budget.perAgent.get(a.agentId) ?? 0) + 1);
    }
    for (const a of raised) await this.finish(a);
    return { done: to >= head, raised: raised.map(toAnomaly) };
  }

  /**
   * Drops what fired already (stored de-duplication keys), caps what is left per agent and per
   * tick, and gives each its severity (the agent's n-th within the period) and response.
   */
  private async decide(candidates: Candidate[], now: number, budget: TickBudget): Promise<NewAnomaly[]> {
    if (candidates.length === 0) return [];
    const { config } = this.deps;
    const taken = await this.anomalies.existingDedups(candidates.map((c) => c.dedup));
    const fresh = candidates.filter((c) => !taken.has(c.dedup));
    if (fresh.length === 0) return [];
    const counts = await this.anomalies.recentCounts(
      [...new Set(fresh.map((c) => c.agentId))],
      now - config.severity.periodMs,
    );
    const perAgent = new Map<string, NewAnomaly[]>();
    const suppressed = new Map<string, number>();
    const out: NewAnomaly[] = [];
    for (const c of fresh) {
      const mine = perAgent.get(c.agentId) ?? [];
      const used = (budget.perAgent.get(c.agentId) ?? 0) + mine.length;
      if (used >= config.anomalies.maxPerAgent || budget.total + out.length >= config.anomalies.maxPerTick) {
        suppressed.set(c.agentId, (suppressed.get(c.agentId) ?? 0) + 1);
        continue;
      }
      const count = (counts.get(c.agentId) ?? 0) + mine.length + 1;
      const severity = severityOf(count, config.severity);
      const a: NewAnomaly = {
        ...c,
        id: randomId('anm'),
        ts: now,
        severity,
        response: responseOf(c.rule, severity, config.responses),
        count,
        respondedAt: null,
        responseError: null,
        auditSeq: null,
      };
      mine.push(a);
      perAgent.set(c.agentId, mine);
      out.push(a);
    }
    // An alert storm stays bounded: what was held back is counted on the agent's last anomaly.
    for (const [agentId, n] of suppressed) {
      const last = perAgent.get(agentId)?.at(-1);
      if (last !== undefined) last.details = { ...last.details, suppressed: n };
      this.deps.log.warn({ agentId, suppressed: n }, 'anomalies held back by the per-tick cap');
    }
    return out;
  }

  /** Responds (unless done before a crash), records it, audits it. Never throws. */
  private async finish(a: AnomalyRecord): Promise<void> {
    const { clock, log, metrics, respond } = this.deps;
    let responseError = a.responseError;
    try {
      if (a.respondedAt === null) {
        metrics?.anomaly(a.rule, a.severity);
        responseError = await runResponse(toAnomaly(a), respond);
        if (responseError !== null) {
          log.error({ anomalyId: a.id, response: a.response, err: responseError }, 'anomaly response failed');
        }
        await this.anomalies.markResponded(a.id, clock.now(), responseError);
      }
      const entry = await this.deps.audit.append(anomalyAuditInput(toAnomaly(a), responseError));
      await this.anomalies.markAudited(a.id, entry.seq);
    } catch (e) {
      // Left unaudited: after the claim lease, this or another process finishes it.
      log.error({ err: e, anomalyId: a.id }, 'anomaly could not be recorded');
    }
  }

  /** Finishes anomalies a crashed process committed but did not audit. */
  private async recover(): Promise<void> {
    const now = this.deps.clock.now();
    const left = await this.anomalies.claimUnfinished(now, CLAIM_LEASE_MS, RECOVER_PER_TICK);
    for (const a of left) await this.finish(a);
  }

  /** Forgets buckets older than any baseline can reach, at most once an hour. */
  private async prune(now: number): Promise<void> {
    const hour = hourOf(now);
    if (hour === this.prunedHour) return;
    this.prunedHour = hour;
    const { learningPeriodMs, windowMs } = this.deps.config;
    try {
      await this.monitorStore.prune(hourOf(now - learningPeriodMs - 2 * windowMs - HOUR_MS));
    } catch (e) {
      this.deps.log.warn({ err: e }, 'could not prune monitoring buckets');
    }
  }
}

/** The public view of a stored anomaly (no storage fields). */
function toAnomaly(a: Anomaly): Anomaly {
  return {
    id: a.id,
    ts: a.ts,
    rule: a.rule,
    severity: a.severity,
    response: a.response,
    agentId: a.agentId,
    agentType: a.agentType,
    sessionId: a.sessionId,
    tool: a.tool,
    windowStart: a.windowStart,
    windowMs: a.windowMs,
    metric: a.metric,
    observed: a.observed,
    baseline: a.baseline,
    factor: a.factor,
    threshold: a.threshold,
    count: a.count,
    details: a.details,
    traceId: a.traceId,
    triggerSeq: a.triggerSeq,
  };
}
