/**
 * The audit log: appends one at a time (each awaited: one transaction and one
 * fsync per entry) and under group commit (many appends in flight, gathered
 * into shared transactions), on SQLite with the store's real pragmas (WAL,
 * synchronous=FULL) and on PostgreSQL; then verifying a long chain.
 */
import { join } from 'node:path';
import { type AuditInput, AuditLog, verifyChain } from '../../src/audit/index.js';
import { openStore, redactUrl, type Store } from '../../src/store/index.js';
import { benchSchema, dropSchema, PG_URL, probePg, tempDir } from './fixtures.js';
import {
  against,
  type BenchContext,
  type MicroResult,
  median,
  rateRow,
  run,
  sig,
  skipped,
} from './harness.js';

const G = 'audit';
const GROUP_SIZES = [64, 256] as const;

let traces = 0;

/** A TOOL_CALL outcome entry as the pipeline writes it (parameters, decision reasons, data). */
export function sampleEntry(): AuditInput {
  traces += 1;
  return {
    traceId: `bench-${traces}`,
    event: 'TOOL_CALL',
    actorType: 'AI_AGENT',
    actorId: 'demo-support',
    agentId: 'demo-support',
    agentType: 'customer-support',
    sessionId: 'ses_4f8k2p1z9q',
    toolName: 'lookup_order',
    parameters: { orderId: 'ORD-4F8K2P1Z' },
    reasoning: 'The customer asked where their order is.',
    decision: {
      allowed: true,
      reasons: [
        'auth.token-valid',
        'session.guard',
        'arguments.valid',
        'policy:agent.allow:lookup_order',
        'risk.low',
      ],
    },
    result: 'success',
    latencyMs: 3,
    data: { phase: 'outcome', attemptSeq: traces },
  };
}

async function appendRows(ctx: BenchContext, store: Store, dialect: string): Promise<MicroResult[]> {
  const audit = new AuditLog(store);
  const out: MicroResult[] = [];
  ctx.progress(`audit: append single (${dialect})`);
  const serial = await run(() => audit.append(sampleEntry()), ctx.timing);
  out.push(
    rateRow(
      G,
      `append single (${dialect})`,
      serial,
      'entries/s',
      'each append awaited: one transaction per entry',
    ),
  );
  for (const n of GROUP_SIZES) {
    ctx.progress(`audit: group commit × ${n} (${dialect})`);
    const group = await run(() => audit.append(sampleEntry()), ctx.timing, n);
    const value = median(group.opsPerSec);
    const target = dialect === 'sqlite' ? `; ${against(value, 10_000, 'higher', '≥ 10,000 entries/s')}` : '';
    out.push(
      rateRow(
        G,
        `append, group commit, ${n} in flight (${dialect})`,
        group,
        'entries/s',
        `up to 256 entries per transaction; p50/p99 = one append's wait${target}`,
      ),
    );
  }
  return out;
}

/** Fill `store` with `n` chained entries (256 per transaction). */
async function fill(store: Store, n: number): Promise<void> {
  const audit = new AuditLog(store);
  for (let done = 0; done < n; done += 256) {
    await audit.appendMany(Array.from({ length: Math.min(256, n - done) }, sampleEntry));
  }
}

async function verifyRow(ctx: BenchContext): Promise<MicroResult> {
  const n = ctx.quick ? 10_000 : 50_000;
  const tmp = tempDir('verify');
  const store = await openStore(`sqlite:${join(tmp.dir, 'audit.db')}`);
  try {
    ctx.progress(`audit: building a ${n.toLocaleString('en-US')}-entry chain`);
    await fill(store, n);
    ctx.progress('audit: verify');
    const rates: number[] = [];
    // The first walk warms the page cache and the JIT; it is not counted.
    for (let r = -1; r < ctx.timing.rounds; r++) {
      const t = performance.now();
      const result = await verifyChain(store);
      const ms = performance.now() - t;
      if (!result.ok || result.entries !== n) {
        throw new Error(
          `verify failed on a clean chain: ${JSON.stringify(result.problem ?? result.entries)}`,
        );
      }
      if (r >= 0) rates.push((n * 1000) / ms);
    }
    const value = Math.round(median(rates));
    return {
      group: G,
      name: `verify chain, ${n.toLocaleString('en-US')} entries (sqlite)`,
      unit: 'entries/s',
      value,
      spread: [Math.round(Math.min(...rates)), Math.round(Math.max(...rates))],
      p50Us: sig(1e6 / value),
      rounds: rates.length,
      ops: n * rates.length,
      note: `verifyChain, default 1,000-row pages; p50Us = µs per entry; ${against(value, 200_000, 'higher', '≥ 200,000 entries/s')}`,
    };
  } finally {
    await store.close();
    tmp.remove();
  }
}

/** The audit group: appends on SQLite and PostgreSQL, then verify. */
export async function auditBench(ctx: BenchContext): Promise<MicroResult[]> {
  const out: MicroResult[] = [];
  const tmp = tempDir('audit');
  const sqlite = await openStore(`sqlite:${join(tmp.dir, 'audit.db')}`);
  try {
    out.push(...(await appendRows(ctx, sqlite, 'sqlite')));
  } finally {
    await sqlite.close();
    tmp.remove();
  }

  const why = await probePg();
  if (why !== null) {
    const note = `PostgreSQL not reachable at ${redactUrl(PG_URL)} within 1 s (${why})`;
    out.push(skipped(G, 'append single (postgres)', 'entries/s', note));
    for (const n of GROUP_SIZES) {
      out.push(skipped(G, `append, group commit, ${n} in flight (postgres)`, 'entries/s', note));
    }
  } else {
    const schema = benchSchema('audit');
    try {
      const pgStore = await openStore(PG_URL, { pgSchema: schema });
      try {
        out.push(...(await appendRows(ctx, pgStore, 'postgres')));
      } finally {
        await pgStore.close();
      }
    } finally {
      await dropSchema(schema);
    }
  }

  out.push(await verifyRow(ctx));
  return out;
}
