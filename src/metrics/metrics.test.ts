import { describe, expect, it } from 'vitest';
import { ManualClock } from '../util/clock.js';
import { Metrics, noMetrics, noMonitorMetrics, timedAppends, UNKNOWN_TOOL } from './index.js';

/** Samples of the exposition as `name{labels}` → value (labels as printed). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const fresh = (clock = new ManualClock()) => ({
  clock,
  metrics: new Metrics({ processMetrics: false, clock, readingTtlMs: 5_000 }),
});

describe('Metrics', () => {
  it('counts calls by outcome, code, tool and decision; an unresolved tool is (unknown)', async () => {
    const { metrics } = fresh();
    metrics.call('success', undefined, 0.01, 'lookup_order');
    metrics.call('failure', 'UPSTREAM_ERROR', 0.01, 'lookup_order');
    metrics.call('denied', 'TOOL_UNKNOWN', 0.001, undefined);
    metrics.call('pending', 'APPROVAL_PENDING', 0.002, 'issue_refund');
    const s = samples(await metrics.text());
    expect(
      s.get('warden_tool_calls_total{outcome="success",code="",tool="lookup_order",decision="allowed"}'),
    ).toBe(1);
    expect(
      s.get(
        'warden_tool_calls_total{outcome="failure",code="UPSTREAM_ERROR",tool="lookup_order",decision="allowed"}',
      ),
    ).toBe(1);
    expect(
      s.get(
        `warden_tool_calls_total{outcome="denied",code="TOOL_UNKNOWN",tool="${UNKNOWN_TOOL}",decision="denied"}`,
      ),
    ).toBe(1);
    expect(
      s.get(
        'warden_tool_calls_total{outcome="pending",code="APPROVAL_PENDING",tool="issue_refund",decision="pending"}',
      ),
    ).toBe(1);
    expect(s.get('warden_tool_call_seconds_count{outcome="success"}')).toBe(1);
  });

  it('reports calls in flight as scraped', async () => {
    const { metrics } = fresh();
    metrics.callsRunning(1);
    metrics.callsRunning(1);
    expect(samples(await metrics.text()).get('warden_tool_calls_in_flight')).toBe(2);
    metrics.callsRunning(-1);
    metrics.callsRunning(-1);
    expect(samples(await metrics.text()).get('warden_tool_calls_in_flight')).toBe(0);
  });

  it('counts anomalies, breaker trips and kills, and times kill propagation', async () => {
    const { metrics } = fresh();
    metrics.anomaly('tool-frequency', 'high');
    metrics.anomaly('tool-frequency', 'high');
    metrics.breakerOpened('session', 'failures');
    metrics.killed('agent');
    metrics.killPropagated(0.02);
    const s = samples(await metrics.text());
    expect(s.get('warden_anomalies_total{rule="tool-frequency",severity="high"}')).toBe(2);
    expect(s.get('warden_circuit_breaker_trips_total{scope="session",reason="failures"}')).toBe(1);
    expect(s.get('warden_kills_total{scope="agent"}')).toBe(1);
    expect(s.get('warden_kill_propagation_seconds_count')).toBe(1);
    expect(s.get('warden_kill_propagation_seconds_bucket{le="0.025"}')).toBe(1);
    expect(s.get('warden_kill_propagation_seconds_bucket{le="0.01"}')).toBe(0);
  });

  it('times audit appends by durability, failed ones too', async () => {
    const { metrics } = fresh();
    let n = 0;
    const log = timedAppends(
      {
        append: async (_input: string, opts?: { durable?: boolean }) => {
          if (++n === 3) throw new Error('disk full');
          return opts?.durable !== false;
        },
      },
      metrics,
    );
    await log.append('a');
    await log.append('b', { durable: false });
    await expect(log.append('c', { durable: true })).rejects.toThrow('disk full');
    const s = samples(await metrics.text());
    expect(s.get('warden_audit_append_seconds_count{durable="true"}')).toBe(2);
    expect(s.get('warden_audit_append_seconds_count{durable="false"}')).toBe(1);
  });

  it('reads approvals pending once per TTL however many scrapes ask', async () => {
    const { metrics, clock } = fresh();
    let reads = 0;
    let pending = 3;
    metrics.collectApprovalsPending(async () => {
      reads++;
      await new Promise((r) => setTimeout(r, 10));
      return pending;
    });
    const texts = await Promise.all(Array.from({ length: 20 }, () => metrics.text()));
    for (const t of texts) expect(samples(t).get('warden_approvals_pending')).toBe(3);
    expect(reads).toBe(1);
    pending = 4;
    clock.advance(4_999);
    expect(samples(await metrics.text()).get('warden_approvals_pending')).toBe(3);
    clock.advance(1);
    expect(samples(await metrics.text()).get('warden_approvals_pending')).toBe(4);
    expect(reads).toBe(2);
  });

  it('answers the scrape when the store fails: NaN, counted, asked again only after the TTL', async () => {
    const { metrics, clock } = fresh();
    let reads = 0;
    metrics.collectApprovalsPending(async () => {
      reads++;
      throw new Error('store down');
    });
    const first = await metrics.text();
    // prom-client prints NaN as `Nan`; Prometheus reads either (Go's ParseFloat ignores case).
    expect(first).toMatch(/^warden_approvals_pending NaN$/im);
    expect(samples(first).get('warden_metrics_reading_errors_total{source="approvals_pending"}')).toBe(1);
    await metrics.text();
    expect(reads).toBe(1);
    clock.advance(5_000);
    const again = samples(await metrics.text());
    expect(again.get('warden_metrics_reading_errors_total{source="approvals_pending"}')).toBe(2);
  });

  it('does not hang a scrape on a reading that never answers', async () => {
    const { metrics } = fresh();
    metrics.collectApprovalsPending(() => new Promise<number>(() => {}));
    const t0 = Date.now();
    const text = await metrics.text();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(text).toMatch(/^warden_approvals_pending NaN$/im);
    expect(samples(text).get('warden_metrics_reading_errors_total{source="approvals_pending"}')).toBe(1);
  });

  it('serves open breakers by scope, and no samples when the reading fails', async () => {
    const { metrics, clock } = fresh();
    let fail = false;
    let open: Record<string, number> = { session: 2, agent: 1 };
    metrics.collectOpenBreakers(() => {
      if (fail) throw new Error('monitor down');
      return open;
    });
    let s = samples(await metrics.text());
    expect(s.get('warden_circuit_breakers_open{scope="session"}')).toBe(2);
    expect(s.get('warden_circuit_breakers_open{scope="agent"}')).toBe(1);
    open = { session: 1 };
    clock.advance(5_000);
    s = samples(await metrics.text());
    expect(s.get('warden_circuit_breakers_open{scope="session"}')).toBe(1);
    // A scope with no open breaker any more is gone, not stuck at its last value.
    expect(s.has('warden_circuit_breakers_open{scope="agent"}')).toBe(false);
    fail = true;
    clock.advance(5_000);
    s = samples(await metrics.text());
    expect([...s.keys()].some((k) => k.startsWith('warden_circuit_breakers_open'))).toBe(false);
    expect(s.get('warden_metrics_reading_errors_total{source="circuit_breakers_open"}')).toBe(1);
  });

  it('does not serve a gauge whose source was never wired', async () => {
    const text = await fresh().metrics.text();
    expect(text).not.toContain('warden_approvals_pending');
    expect(text).not.toContain('warden_circuit_breakers_open');
  });

  it('no-op implementations take every call', () => {
    noMetrics.step('x', 1);
    noMetrics.call('success', undefined, 1, 't');
    noMetrics.callsRunning(1);
    noMetrics.auditFailure('outcome');
    noMonitorMetrics.anomaly('r', 's');
    noMonitorMetrics.breakerOpened('session', 'failures');
    noMonitorMetrics.killed('agent');
    noMonitorMetrics.killPropagated(1);
  });
});
