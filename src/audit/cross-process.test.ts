/**
 * Two processes appending to one SQLite file at once: the head row's write
 * lock (not the in-process queue) must keep seq gap-free across them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../store/index.js';
import { AuditLog, verifyChain } from './index.js';

const PER_WORKER = 200;
const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');

// Written to a temp dir at test time so no test-only module ships in src/ builds.
const WORKER = `
import { openStore } from ${JSON.stringify(join(root, 'src/store/index.ts'))};
import { AuditLog } from ${JSON.stringify(join(root, 'src/audit/index.ts'))};
const [url, name, count] = process.argv.slice(2);
const store = await openStore(url);
const log = new AuditLog(store);
process.stdout.write('ready\\n');
await new Promise((r) => process.stdin.once('data', r));
// One at a time: every append is its own transaction, the most lock hand-overs between processes.
for (let i = 0; i < Number(count); i++) {
  await log.append({ traceId: name + '-' + i, event: 'TOOL_CALL', actorType: 'SYSTEM', data: { worker: name, i } });
}
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

describe('audit log across processes [sqlite]', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-audit-xp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`keeps ${2 * PER_WORKER} appends from two processes gap-free and verifiable`, {
    timeout: 120_000,
  }, async () => {
    const url = `sqlite:${join(dir, 'warden.db')}`;
    // Migrate once up front so the workers do not race to create the schema.
    (await openStore(url)).close();
    const script = join(dir, 'worker.mts');
    writeFileSync(script, WORKER);
    const workers = ['a', 'b'].map((name) =>
      spawn(process.execPath, ['--import', 'tsx', script, url, name, String(PER_WORKER)], {
        cwd: root,
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
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

    const store = await openStore(url);
    try {
      const log = new AuditLog(store);
      const entries = await log.read({ limit: 10_000 });
      expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 2 * PER_WORKER }, (_, i) => i + 1));
      const byWorker = (w: string) =>
        entries.filter((e) => e.data?.['worker'] === w).map((e) => e.data?.['i']);
      // Each worker's entries are all there, in its own order.
      expect(byWorker('a')).toEqual(Array.from({ length: PER_WORKER }, (_, i) => i));
      expect(byWorker('b')).toEqual(Array.from({ length: PER_WORKER }, (_, i) => i));
      const switches = entries.filter(
        (e, i) => i > 0 && e.data?.['worker'] !== entries[i - 1]?.data?.['worker'],
      );
      console.info(`[audit cross-process] ${switches.length} hand-overs between the two writers`);
      expect(await verifyChain(store)).toMatchObject({
        ok: true,
        entries: 2 * PER_WORKER,
        headSeq: 2 * PER_WORKER,
      });
    } finally {
      await store.close();
    }
  });
});
