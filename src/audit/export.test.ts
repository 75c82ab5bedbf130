import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { isWardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import { exportJsonl, parseTimeArg, readPage, scanPages } from './export.js';
import { type AuditEntry, type AuditInput, AuditLog } from './index.js';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const MINUTE = 60_000;

function input(i: number): AuditInput {
  return {
    traceId: `tr_${i}`,
    // Every third entry is a denial; agents alternate; sessions per agent.
    event: i % 3 === 0 ? 'TOOL_DENIED' : 'TOOL_CALL',
    actorType: i % 10 === 0 ? 'HUMAN' : 'AI_AGENT',
    agentId: i % 2 === 0 ? 'agent-a' : 'agent-b',
    sessionId: `ses_${i % 4}`,
    toolName: 'lookup_order',
    parameters: { n: i },
    result: i % 3 === 0 ? 'denied' : 'success',
  };
}

/** Collects what an export writes. */
function collector() {
  const chunks: string[] = [];
  return {
    chunks,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== ''),
    write: async (t: string) => {
      chunks.push(t);
    },
  };
}

describeEachDialect('audit export', (target) => {
  let store: Store;
  const clock = new ManualClock(T0);
  const N = 57;

  beforeAll(async () => {
    store = await target.open();
    const log = new AuditLog(store, { clock });
    // One entry per minute: seq i at T0 + (i-1) minutes.
    for (let i = 1; i <= N; i++) {
      await log.append(input(i));
      clock.advance(MINUTE);
    }
  });
  afterAll(async () => {
    await store?.close();
    await target.cleanup();
  });

  it('exports every entry exactly as stored, one JSON line each, across page boundaries', async () => {
    const out = collector();
    const summary = await exportJsonl(store, out, { pageSize: 10 });
    expect(summary).toEqual({ entries: N, firstSeq: 1, lastSeq: N, throughSeq: N });
    // Six pages of 10 (the last short): written page by page, not all at once.
    expect(out.chunks).toHaveLength(6);
    const lines = out.lines();
    const entries = lines.map((l) => JSON.parse(l) as AuditEntry);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    const stored = new AuditLog(store);
    expect(lines[4]).toBe(JSON.stringify((await stored.read({ afterSeq: 4, limit: 1 }))[0]));
    // The chain links, and every entry names its actor type.
    for (const [i, e] of entries.entries()) {
      if (i > 0) expect(e.prevHash).toBe(entries[i - 1]!.hash);
      expect(['AI_AGENT', 'HUMAN', 'SYSTEM']).toContain(e.actorType);
    }
    expect(entries[9]!.actorType).toBe('HUMAN');
  });

  it('filters by events, agent and session, paging by seq through sparse matches', async () => {
    const denied = collector();
    const s1 = await exportJsonl(store, denied, { filter: { events: ['TOOL_DENIED'] }, pageSize: 4 });
    const seqs = denied.lines().map((l) => (JSON.parse(l) as AuditEntry).seq);
    expect(seqs).toEqual(Array.from({ length: 19 }, (_, i) => (i + 1) * 3));
    expect(s1).toMatchObject({ entries: 19, firstSeq: 3, lastSeq: 57 });

    const both = await readPage(
      store,
      { events: ['TOOL_DENIED', 'TOOL_CALL'], agentId: 'agent-a', sessionId: 'ses_2' },
      { afterSeq: 0, limit: 100 },
    );
    expect(both.map((e) => e.seq)).toEqual([2, 6, 10, 14, 18, 22, 26, 30, 34, 38, 42, 46, 50, 54]);
  });

  it('filters by time (since inclusive, until exclusive) and resumes after a seq', async () => {
    const out = collector();
    const s = await exportJsonl(store, out, {
      filter: { sinceTs: T0 + 10 * MINUTE, untilTs: T0 + 20 * MINUTE },
      afterSeq: 14,
      pageSize: 3,
    });
    expect(s).toMatchObject({ entries: 6, firstSeq: 15, lastSeq: 20 });
  });

  it('empty ranges write nothing', async () => {
    const out = collector();
    expect(await exportJsonl(store, out, { afterSeq: N })).toEqual({
      entries: 0,
      firstSeq: null,
      lastSeq: null,
      throughSeq: N,
    });
    expect(await exportJsonl(store, out, { filter: { agentId: 'nobody' }, pageSize: 5 })).toMatchObject({
      entries: 0,
    });
    expect(await exportJsonl(store, out, { filter: { sinceTs: T0 + 1000 * MINUTE } })).toMatchObject({
      entries: 0,
    });
    expect(out.chunks).toEqual([]);
  });

  it('stops at the head as it was when the scan began, even while the log grows', async () => {
    const log = new AuditLog(store, { clock });
    const seen: number[] = [];
    let appended = false;
    for await (const page of scanPages(store, { pageSize: 20 })) {
      if (!appended) {
        await log.append(input(1000));
        appended = true;
      }
      seen.push(...page.entries.map((e) => e.seq));
      expect(page.throughSeq).toBe(N);
    }
    expect(seen).toHaveLength(N);
    expect(seen.at(-1)).toBe(N);
  });
});

describe('parseTimeArg', () => {
  const now = Date.UTC(2026, 0, 31, 12, 0, 0);

  it('takes durations ago, dates and zoned date-times', () => {
    expect(parseTimeArg('--since', '24h', now)).toBe(now - 86_400_000);
    expect(parseTimeArg('--since', '7d', now)).toBe(now - 7 * 86_400_000);
    expect(parseTimeArg('--since', '30m', now)).toBe(now - 30 * 60_000);
    expect(parseTimeArg('--since', '2026-01-01', now)).toBe(Date.UTC(2026, 0, 1));
    expect(parseTimeArg('--since', '2026-01-01T08:30:00Z', now)).toBe(Date.UTC(2026, 0, 1, 8, 30));
    expect(parseTimeArg('--since', '2026-01-01T08:30:00+02:00', now)).toBe(Date.UTC(2026, 0, 1, 6, 30));
  });

  it('refuses anything else with INVALID_REQUEST naming the flag', () => {
    for (const bad of ['yesterday', '24', '-1h', '2026-13-45', '2026-01-01T08:30:00', '']) {
      let err: unknown;
      try {
        parseTimeArg('--until', bad, now);
      } catch (e) {
        err = e;
      }
      expect(isWardenError(err, 'INVALID_REQUEST'), bad).toBe(true);
      expect((err as Error).message).toContain('--until');
    }
  });
});
