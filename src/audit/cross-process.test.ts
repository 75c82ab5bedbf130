/**
 * Several processes appending to one store at once (a SQLite file, a PostgreSQL
 * schema): the head row's lock (not the in-process queue) must keep seq
 * gap-free across them, and their tree builders and checkpoint signers, racing
 * on the same tree, must leave one tree every checkpoint agrees with.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { AuditLog, addTrustedKeys, loadCheckpointSigner, MerkleTree, verifyChain } from './index.js';

const PER_WORKER = 200;
const WORKERS = ['a', 'b', 'c'];
const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');

// Written to a temp dir at test time so no test-only module ships in src/ builds.
const WORKER = `
import { openStore } from ${JSON.stringify(join(root, 'src/store/index.ts'))};
import { AuditLog, Checkpointer, loadCheckpointSigner, MerkleTree } from ${JSON.stringify(join(root, 'src/audit/index.ts'))};
const [url, schema, name, count, keyFile] = process.argv.slice(2);
const store = await openStore(url, schema === '-' ? {} : { pgSchema: schema, poolSize: 4 });
const log = new AuditLog(store);
const tree = new MerkleTree(store);
const signer = await loadCheckpointSigner({ ref: { file: keyFile }, generate: false });
const quiet = { info() {}, warn() {}, error() {} };
const cps = new Checkpointer({ store, tree, signer, log: quiet, config: {
  enabled: true, intervalMs: 1000, maxEntries: 40, signingKey: { ref: { file: keyFile }, generate: false },
  trustedKeyFiles: [], publish: { webhooks: [] } } });
process.stdout.write('ready\\n');
await new Promise((r) => process.stdin.once('data', r));
// Every process builds the tree and signs while the others append.
let appending = true;
const building = (async () => { while (appending) { await cps.tick(); await new Promise((r) => setTimeout(r, 15)); } })();
// One at a time: every append is its own transaction, the most lock hand-overs between processes.
for (let i = 0; i < Number(count); i++) {
  await log.append({ traceId: name + '-' + i, event: 'TOOL_CALL', actorType: 'SYSTEM', data: { worker: name, i } });
}
appending = false;
await building;
await cps.close();
await store.close();
process.stdout.write('done\\n');
`;

function waitFor(child: ChildProcess, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(`${line}\n`)) resolve();
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('exit', (code) => {
      if (!out.includes(`${line}\n`)) reject(new Error(`worker exited ${code} before "${line}": ${err}`));
    });
  });
}

describeEachDialect('audit log across processes', (target) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-audit-xp-'));
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await target.cleanup();
  });
  const total = WORKERS.length * PER_WORKER;

  it(`keeps ${total} appends from ${WORKERS.length} processes gap-free, one tree, every checkpoint verifying`, {
    timeout: 180_000,
  }, async () => {
    // Migrate once up front so the workers do not race to create the schema.
    await (await target.open()).close();
    const keyFile = join(dir, 'checkpoint.jwk');
    const signer = await loadCheckpointSigner({ ref: { file: keyFile }, generate: true });
    const script = join(dir, 'worker.mts');
    writeFileSync(script, WORKER);
    const workers = WORKERS.map((name) =>
      spawn(
        process.execPath,
        ['--import', 'tsx', script, target.url, target.pgSchema ?? '-', name, String(PER_WORKER), keyFile],
        {
          cwd: root,
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      ),
    );
    try {
      await Promise.all(workers.map((w) => waitFor(w, 'ready')));
      const finished = workers.map((w) => waitFor(w, 'done'));
      // Release both at once, after both are up, so their appends really overlap.
      for (const w of workers) w.stdin?.write('go\n');
      await Promise.all(finished);
    } finally {
      for (const w of workers) if (w.exitCode === null) w.kill();
    }

    const store = await target.open();
    try {
      const log = new AuditLog(store);
      const entries = await log.read({ limit: 10_000 });
      expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      const byWorker = (w: string) =>
        entries.filter((e) => e.data?.['worker'] === w).map((e) => e.data?.['i']);
      // Each worker's entries are all there, in its own order.
      for (const w of WORKERS) expect(byWorker(w)).toEqual(Array.from({ length: PER_WORKER }, (_, i) => i));
      const switches = entries.filter(
        (e, i) => i > 0 && e.data?.['worker'] !== entries[i - 1]?.data?.['worker'],
      );
      console.info(
        `[audit cross-process ${target.dialect}] ${switches.length} hand-overs between the writers`,
      );
      // The last process to close built the tree to the end and signed it.
      expect((await new MerkleTree(store).state()).size).toBe(total);
      const signed = await store.db.selectFrom('audit_checkpoint').select('tree_size').execute();
      expect(signed.length).toBeGreaterThan(2);
      expect(Math.max(...signed.map((r) => Number(r.tree_size)))).toBe(total);
      const trusted = new Map();
      await addTrustedKeys(trusted, signer.publicJwk, 'test');
      const v = await verifyChain(store, { tree: { trusted } });
      expect(v, JSON.stringify(v.problem)).toMatchObject({ ok: true, entries: total, headSeq: total });
      expect(v.tree?.checkpoints).toBe(signed.length);
    } finally {
      await store.close();
    }
  });
});
