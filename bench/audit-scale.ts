/**
 * Issue #9's scale check: `warden audit verify` over a long log stays within a
 * fixed memory bound. Fills a SQLite log with N entries (default 10 million),
 * builds the Merkle tree with a checkpoint every million entries, then verifies
 * chain + tree + checkpoints while sampling the process's memory, and prints
 * the resident set at each tenth of the walk: flat means streaming.
 *
 *   npx tsx bench/audit-scale.ts [--entries 10000000] [--json]
 *
 * Needs about 450 bytes of disk per entry (4.5 GB for 10 M) in the temp dir.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuditLog,
  addTrustedKeys,
  Checkpointer,
  loadCheckpointSigner,
  MerkleTree,
  verifyChain,
} from '../src/audit/index.js';
import { openStore } from '../src/store/index.js';
import { sampleEntry } from './micro/audit.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.indexOf(name);
const entries = flag('--entries') >= 0 ? Number(args[flag('--entries') + 1]) : 10_000_000;
const json = flag('--json') >= 0;
if (!Number.isSafeInteger(entries) || entries < 1000) {
  process.stderr.write('--entries must be an integer ≥ 1000\n');
  process.exit(2);
}
const log = (s: string) => process.stderr.write(`${s}\n`);
const mb = (b: number) => Math.round(b / 2 ** 20);

const dir = mkdtempSync(join(tmpdir(), 'warden-audit-scale-'));
const store = await openStore(`sqlite:${join(dir, 'audit.db')}`);
try {
  const audit = new AuditLog(store);
  let t = performance.now();
  const batch = 4096;
  for (let done = 0; done < entries; done += batch) {
    // Not flushed per batch: this fills a test log, it does not measure appends.
    await audit.appendMany(Array.from({ length: Math.min(batch, entries - done) }, sampleEntry), {
      durable: false,
    });
    if (done % (batch * 128) === 0)
      log(`filling: ${done.toLocaleString('en-US')} / ${entries.toLocaleString('en-US')}`);
  }
  const fillS = (performance.now() - t) / 1000;

  const tree = new MerkleTree(store);
  const signer = await loadCheckpointSigner({ ref: { file: join(dir, 'cp.jwk') }, generate: true });
  const checkpoints = new Checkpointer({
    store,
    tree,
    signer,
    log: { info() {}, warn() {}, error() {} },
    config: {
      enabled: true,
      intervalMs: 60_000,
      maxEntries: 1_000_000,
      signingKey: { ref: { file: join(dir, 'cp.jwk') }, generate: false },
      trustedKeyFiles: [],
      publish: { webhooks: [] },
    },
  });
  t = performance.now();
  const step = 1_000_000;
  for (let size = step; size < entries + step; size += step) {
    await tree.advance(Math.min(step, entries - (size - step)));
    await checkpoints.checkpointNow(Math.min(size, entries));
    log(`tree: ${Math.min(size, entries).toLocaleString('en-US')}`);
  }
  const buildS = (performance.now() - t) / 1000;

  const trusted = new Map();
  await addTrustedKeys(trusted, signer.publicJwk, 'scale');
  global.gc?.();
  const before = process.memoryUsage();
  let peakRss = before.rss;
  let peakHeap = before.heapUsed;
  const tenths: { done: number; rssMb: number; heapMb: number }[] = [];
  let nextTenth = 1;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 100);
  t = performance.now();
  const r = await verifyChain(store, {
    tree: { trusted },
    onProgress: (done, total) => {
      if (done >= (total * nextTenth) / 10) {
        const m = process.memoryUsage();
        tenths.push({ done, rssMb: mb(m.rss), heapMb: mb(m.heapUsed) });
        log(`verify: ${done.toLocaleString('en-US')}  rss ${mb(m.rss)} MB  heap ${mb(m.heapUsed)} MB`);
        nextTenth++;
      }
    },
  });
  const verifyS = (performance.now() - t) / 1000;
  clearInterval(sampler);
  if (!r.ok) throw new Error(`verify failed: ${JSON.stringify(r.problem)}`);
  const result = {
    entries,
    fillSeconds: Math.round(fillS),
    treeBuildEntriesPerSec: Math.round(entries / buildS),
    verifySeconds: Math.round(verifyS),
    verifyEntriesPerSec: Math.round(entries / verifyS),
    checkpointsChecked: r.tree?.checkpoints,
    rssBeforeMb: mb(before.rss),
    peakRssMb: mb(peakRss),
    peakHeapMb: mb(peakHeap),
    tenths,
    node: process.version,
  };
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    process.stdout.write(
      `verified ${entries.toLocaleString('en-US')} entries (chain + Merkle tree + ${result.checkpointsChecked} checkpoints) in ${result.verifySeconds} s: ${result.verifyEntriesPerSec.toLocaleString('en-US')} entries/s\n` +
        `memory: rss ${result.rssBeforeMb} MB before, peak ${result.peakRssMb} MB; heap peak ${result.peakHeapMb} MB\n` +
        `tree build ${result.treeBuildEntriesPerSec.toLocaleString('en-US')} entries/s; fill ${result.fillSeconds} s\n`,
    );
  }
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
