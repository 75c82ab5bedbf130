/**
 * Issue #9 as an operator and an auditor use it: the real `warden` command line
 * on a SQLite workspace. Checkpoints are signed and published to a file, proofs
 * are handed out and checked with the public key alone, a truncation that also
 * rewound the head, the tree and the stored checkpoints is caught against the
 * published file, and old entries are archived, pruned, and still provable.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWarden, TIME_SCALE } from '../helpers/cli-process.js';
import { createWorkspace, type Workspace } from '../helpers/cli-workspace.js';

async function workspace(): Promise<Workspace> {
  const ws = await createWorkspace([{ id: 'support-bot', allowedTools: ['lookup_order'] }]);
  ws.writeFile(
    'warden.yaml',
    `${ws.yaml}audit:\n  checkpoints:\n    publish:\n      file: published.jsonl\n`,
  );
  return ws;
}

describe('warden audit: checkpoints, proofs, tampering, retention (SQLite)', {
  timeout: 120_000 * TIME_SCALE,
}, () => {
  let ws: Workspace;
  const run = (...args: string[]) => runWarden([...args, '--config', ws.configFile], { cwd: ws.dir });
  const bare = (...args: string[]) => runWarden(args, { cwd: ws.dir });

  beforeAll(async () => {
    ws = await workspace();
    for (let i = 0; i < 4; i++) {
      expect((await run('token', 'issue', '--agent', 'support-bot')).code).toBe(0);
    }
  });
  afterAll(() => ws?.cleanup());

  it('signs and publishes a checkpoint, verifies against it, and proves an entry to someone holding only the key', async () => {
    const cp = await run('audit', 'checkpoint', '--json');
    expect(cp.code, cp.stderr).toBe(0);
    const size = JSON.parse(cp.stdout).checkpoint.size as number;
    expect(size).toBeGreaterThanOrEqual(4);
    const published = readFileSync(join(ws.dir, 'published.jsonl'), 'utf8').trim().split('\n');
    expect(JSON.parse(published.at(-1)!).size).toBe(size);

    const v = await run('audit', 'verify', '--json');
    expect(v.code, v.stdout).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, tree: { checkpoints: 1, published: 1 } });

    const keys = await run('audit', 'keys');
    expect(keys.code).toBe(0);
    ws.writeFile('pinned.jwk', keys.stdout);
    expect((await run('audit', 'prove', '2', '-o', join(ws.dir, 'entry-2.json'))).code).toBe(0);
    // The auditor's side: no config, no database — the bundle and the pinned key.
    const ok = await bare(
      'audit',
      'check-proof',
      join(ws.dir, 'entry-2.json'),
      '--public-key',
      join(ws.dir, 'pinned.jwk'),
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('proof holds: entry 2');
    const bundle = JSON.parse(readFileSync(join(ws.dir, 'entry-2.json'), 'utf8'));
    bundle.entry.toolName = 'delete_account';
    ws.writeFile('forged.json', JSON.stringify(bundle));
    const forged = await bare(
      'audit',
      'check-proof',
      join(ws.dir, 'forged.json'),
      '--public-key',
      join(ws.dir, 'pinned.jwk'),
    );
    expect(forged.code).toBe(1);
    expect(forged.stdout).toContain('proof FAILS');
  });

  it('catches a truncation that rewound the head, the tree and the stored checkpoints, against the published file', async () => {
    const db = new Database(ws.dbFile);
    try {
      for (const t of ['audit_log_no_delete', 'audit_checkpoint_no_delete']) db.exec(`DROP TRIGGER ${t}`);
      const keep = 2;
      const hash = (db.prepare('SELECT hash FROM audit_log WHERE seq = ?').get(keep) as { hash: string })
        .hash;
      db.prepare('DELETE FROM audit_log WHERE seq > ?').run(keep);
      db.prepare('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1').run(keep, hash);
      db.exec('DELETE FROM audit_checkpoint');
      db.exec(
        "UPDATE audit_tree SET size = 0, head_hash = '0000000000000000000000000000000000000000000000000000000000000000', frontier = '[]'",
      );
      db.exec('DELETE FROM audit_tree_node');
    } finally {
      db.close();
    }
    // The chain alone is fooled…
    const chain = await run('audit', 'verify', '--chain-only');
    expect(chain.code).toBe(0);
    // …the published checkpoint is not.
    const v = await run('audit', 'verify');
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/BROKEN at entry 3 \(truncated\): a published checkpoint/);
    const j = await run('audit', 'verify', '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, problem: { seq: 3, kind: 'truncated' } });
  });

  it('archives and prunes old entries, verifies the rest and the archive, and proves a pruned entry from it', async () => {
    const fresh = await workspace();
    const runFresh = (...args: string[]) =>
      runWarden([...args, '--config', fresh.configFile], { cwd: fresh.dir });
    try {
      for (let i = 0; i < 5; i++)
        expect((await runFresh('token', 'issue', '--agent', 'support-bot')).code).toBe(0);
      const a = await runFresh('audit', 'archive', '--through', '3', '--prune', '--json');
      expect(a.code, a.stderr).toBe(0);
      const result = JSON.parse(a.stdout);
      expect(result).toMatchObject({ archived: { from: 1, through: 3, entries: 3 }, pruned: { deleted: 3 } });
      const v = await runFresh('audit', 'verify');
      expect(v.code, v.stdout).toBe(0);
      expect(v.stdout).toContain('entries up to 3 were pruned');
      const va = await runFresh('audit', 'verify', '--archive', result.archived.file);
      expect(va.code).toBe(0);
      expect(va.stdout).toContain('archive intact: entries 1..3');
      const gone = await runFresh('audit', 'prove', '2');
      expect(gone.code).toBe(2);
      expect(gone.stderr).toContain('AUDIT_PRUNED');
      const p = await runFresh(
        'audit',
        'prove',
        '2',
        '--archive',
        result.archived.file,
        '-o',
        join(fresh.dir, 'p.json'),
      );
      expect(p.code, p.stderr).toBe(0);
      const c = await runFresh('audit', 'check-proof', join(fresh.dir, 'p.json'));
      expect(c.code, c.stdout).toBe(0);
      const bad = await runFresh('audit', 'archive', '--before', 'yesterday');
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--before must be');
    } finally {
      fresh.cleanup();
    }
  });
});
