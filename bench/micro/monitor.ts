/**
 * Monitoring and response (issue #8), what it costs: the kill switch's
 * in-flight registry that every call enters and leaves, and the anomaly
 * monitor reading fresh audit entries into its baselines (on SQLite with the
 * store's real pragmas; it runs beside the calls, not in their path).
 */
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/index.js';
import { monitoringSchema } from '../../src/config/index.js';
import { AnomalyMonitor, InFlightCalls } from '../../src/monitor/index.js';
import { openStore } from '../../src/store/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { tempDir } from './fixtures.js';
import { type BenchContext, type MicroResult, median, run, sig, usRow } from './harness.js';

const G = 'monitor';

/** Entries per timed tick: one default batch. */
const BATCH = 2_000;

/** The monitor group. */
export async function monitorBench(ctx: BenchContext): Promise<MicroResult[]> {
  const out: MicroResult[] = [];

  ctx.progress('monitor: in-flight registry');
  const inFlight = new InFlightCalls();
  // Other agents' calls are running too: the registry is not empty.
  for (let i = 0; i < 64; i++) inFlight.enter(`agent-${i % 8}`, `ses_${i}`, new AbortController());
  const enter = await run((w) => {
    const leave = inFlight.enter('agent-1', `ses_w${w}`, new AbortController());
    leave();
  }, ctx.timing);
  out.push(
    usRow(
      G,
      'in-flight: enter + leave (a call reachable by the kill switch)',
      enter,
      '64 other calls running',
    ),
  );

  ctx.progress('monitor: anomaly tick');
  const tmp = tempDir('warden-bench-monitor-');
  const store = await openStore(`sqlite:${join(tmp.dir, 'bench.db')}`);
  const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
  const audit = new AuditLog(store, { clock });
  const monitor = new AnomalyMonitor({
    store,
    audit,
    config: monitoringSchema.parse({}),
    clock,
    log: { warn: () => {}, error: () => {} },
    respond: {
      alert: () => {},
      holdSession: async () => {},
      quarantineSession: async () => {},
      killAgent: async () => {},
    },
  });
  try {
    const rates: number[] = [];
    const rounds = ctx.quick ? 3 : 5;
    let n = 0;
    for (let round = 0; round <= rounds; round++) {
      // 20 agents of 4 types × 5 tools, each call an outcome entry with a size and reported tokens.
      await Promise.all(
        Array.from({ length: BATCH }, () => {
          n += 1;
          const agent = n % 20;
          return audit.append(
            {
              traceId: `t${n}`,
              event: 'TOOL_CALL',
              actorType: 'AI_AGENT',
              agentId: `agent-${agent}`,
              agentType: `type-${agent % 4}`,
              sessionId: `ses_${agent}`,
              toolName: `tool_${n % 5}`,
              result: 'success',
              data: { phase: 'outcome', resultBytes: 1024, tokens: 500 },
            },
            { durable: false },
          );
        }),
      );
      clock.advance(1_000);
      const t0 = performance.now();
      await monitor.tick();
      const ms = performance.now() - t0;
      if (round > 0) rates.push((BATCH / ms) * 1000); // round 0 warms up
    }
    out.push({
      group: G,
      name: 'anomalies: tick over fresh audit entries (sqlite)',
      unit: 'entries/s',
      value: Math.round(median(rates)),
      spread: [Math.round(Math.min(...rates)), Math.round(Math.max(...rates))],
      rounds: rates.length,
      ops: rates.length * BATCH,
      note: `${BATCH} entries per tick (20 agents, 5 tools): buckets, tool sets, every rule; ${sig(BATCH / median(rates))} s per tick`,
    });
  } finally {
    await monitor.close();
    await store.close();
    tmp.remove();
  }
  return out;
}
