/**
 * The audit log: appends one at a time (each awaited: one transaction and one
 * fsync per entry) and under group commit (many appends in flight, gathered
 * into shared transactions), on SQLite with the store's real pragmas (WAL,
 * synchronous=FULL) and on PostgreSQL; then verifying a long chain.
 */
import { join } from 'node:path';
import {
  type AuditInput,
  AuditLog,
  addTrustedKeys,
  Checkpointer,
  loadCheckpointSigner,
  MerkleTree,
  verifyChain,
} from '../../src/audit/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { inBenchSchema, PG_URL, pgSkipNote, tempDir } from './fixtures.js';
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

/** Median rate of `rounds` timed runs of `fn` over `n` entries, after one untimed warm-up. */
async function rateOf(ctx: BenchContext, n: number, fn: () => Promise<void>): Promise<number[]> {
  const rates: number[] = [];
  for (let r = -1; r < ctx.timing.rounds; r++) {
    const t = performance.now();
    await fn();
    const ms = performance.now() - t;
    if (r >= 0) rates.push((n * 1000) / ms);
  }
  return rates;
}

function entriesRow(name: string, rates: number[], n: number, note: string): MicroResult {
  const value = Math.round(median(rates));
  return {
    group: G,
    name,
    unit: 'entries/s',
    value,
    spread: [Math.round(Math.min(...rates)), Math.round(Math.max(...rates))],
    rounds: rates.length,
    ops: n * rates.length,
    // A rate of whole runs, not of single entries: no percentiles, the mean per entry instead.
    note: `${note}; = ${sig(1e6 / value)} µs per entry`,
  };
}

/**
 * Verify throughput: the chain alone, and the chain with the Merkle tree rebuilt and every
 * checkpoint checked (issue #9); and the background tree builder's throughput.
 */
async function verifyRows(ctx: BenchContext): Promise<MicroResult[]> {
  const n = ctx.quick ? 10_000 : 50_000;
  const tmp = tempDir('verify');
  const store = await openStore(`sqlite:${join(tmp.dir, 'audit.db')}`);
  try {
    ctx.progress(`audit: building a ${n.toLocaleString('en-US')}-entry chain`);
    await fill(store, n);
    ctx.progress('audit: verify');
    const expectOk = (result: Awaited<ReturnType<typeof verifyChain>>) => {
      if (!result.ok || result.entries !== n) {
        throw new Error(
          `verify failed on a clean chain: ${JSON.stringify(result.problem ?? result.entries)}`,
        );
      }
    };
    const chain = await rateOf(ctx, n, async () => expectOk(await verifyChain(store)));

    ctx.progress('audit: Merkle tree build');
    const tree = new MerkleTree(store);
    const rewind = () =>
      store.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('audit_tree_node').execute();
        await trx
          .updateTable('audit_tree')
          .set({ size: 0, head_hash: '0'.repeat(64), frontier: '[]' })
          .where('id', '=', 1)
          .execute();
      });
    const build = await rateOf(ctx, n, async () => {
      await rewind();
      if ((await tree.advance()).size !== n) throw new Error('the tree did not reach the end');
    });

    ctx.progress('audit: verify with tree and checkpoints');
    const signer = await loadCheckpointSigner({ ref: { file: join(tmp.dir, 'cp.jwk') }, generate: true });
    const checkpoints = new Checkpointer({
      store,
      tree,
      signer,
      log: { info() {}, warn() {}, error() {} },
      config: {
        enabled: true,
        intervalMs: 60_000,
        maxEntries: 10_000,
        signingKey: { ref: { file: join(tmp.dir, 'cp.jwk') }, generate: false },
        trustedKeyFiles: [],
        publish: { webhooks: [] },
      },
    });
    // One checkpoint per 1,000 entries: far denser than the default (10,000 or a minute).
    for (let size = 1_000; size <= n; size += 1_000) await checkpoints.checkpointNow(size);
    const trusted = new Map();
    await addTrustedKeys(trusted, signer.publicJwk, 'bench');
    const withTree = await rateOf(ctx, n, async () => {
      const r = await verifyChain(store, { tree: { trusted } });
      expectOk(r);
      if (r.tree?.checkpoints !== n / 1_000) throw new Error('not every checkpoint was checked');
    });
    const target = (v: number) => against(v, 200_000, 'higher', '≥ 200,000 entries/s');
    const chainValue = median(chain);
    const treeValue = median(withTree);
    return [
      entriesRow(
        `verify chain, ${n.toLocaleString('en-US')} entries (sqlite)`,
        chain,
        n,
        `verifyChain, default 1,000-row pages; ${target(chainValue)}`,
      ),
      entriesRow(
        `verify chain + Merkle tree + ${n / 1_000} checkpoints (sqlite)`,
        withTree,
        n,
        `verifyChain with tree: the tree rebuilt, tile nodes and signatures checked; ${Math.round((treeValue / chainValue) * 100)} % of chain-only; ${target(treeValue)}`,
      ),
      entriesRow(
        'Merkle tree build, from empty (sqlite)',
        build,
        n,
        'MerkleTree.advance: read, link-check, hash and store tiles; the background builder keeps up while appends stay below this',
      ),
    ];
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

  const note = await pgSkipNote();
  if (note !== null) {
    out.push(skipped(G, 'append single (postgres)', 'entries/s', note));
    for (const n of GROUP_SIZES) {
      out.push(skipped(G, `append, group commit, ${n} in flight (postgres)`, 'entries/s', note));
    }
  } else {
    await inBenchSchema('audit', async (schema) => {
      const pgStore = await openStore(PG_URL, { pgSchema: schema });
      try {
        out.push(...(await appendRows(ctx, pgStore, 'postgres')));
      } finally {
        await pgStore.close();
      }
    });
  }

  out.push(...(await verifyRows(ctx)));
  return out;
}
