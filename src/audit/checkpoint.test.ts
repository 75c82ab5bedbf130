/**
 * Signed checkpoints and the tree layer of `verifyChain`, attacked as a database
 * admin would: triggers off, rows edited, hashes recomputed, history cut short.
 * The signing key is outside the database, so what an attacker cannot redo is
 * the signature — and a checkpoint published to a file outside the store.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type DialectTarget, describeEachDialect, makeTarget } from '../../test/helpers/dialects.js';
import { isWardenError } from '../errors.js';
import type { AuditLogTable, Store } from '../store/index.js';
import { ManualClock } from '../util/clock.js';
import {
  addTrustedKeys,
  type Checkpoint,
  Checkpointer,
  type CheckpointSigner,
  loadCheckpointSigner,
  openCheckpoint,
  type TrustedKeys,
} from './checkpoint.js';
import { entryHash, fromRow, toRow } from './entry.js';
import { AuditLog } from './log.js';
import { checkBundle, consistencyBundle, inclusionBundle } from './proofs.js';
import { MerkleTree } from './tree.js';
import type { AuditInput } from './types.js';
import { verifyChain } from './verify.js';

const quiet = { info() {}, warn() {}, error() {} };
const dir = mkdtempSync(join(tmpdir(), 'warden-cp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const input = (i: number): AuditInput => ({
  traceId: `tr_${i}`,
  event: 'TOOL_CALL',
  actorType: 'AI_AGENT',
  agentId: 'support-bot',
  toolName: i % 2 ? 'lookup_order' : 'send_email',
  parameters: { i },
  result: 'success',
});

let signer: CheckpointSigner;
let trusted: TrustedKeys;
let keyCounter = 0;

beforeAll(async () => {
  signer = await loadCheckpointSigner({ ref: { file: join(dir, 'cp.jwk') }, generate: true });
  trusted = new Map();
  await addTrustedKeys(trusted, signer.publicJwk, 'test');
});

async function unlock(store: Store): Promise<void> {
  if (store.dialect === 'sqlite') {
    for (const t of [
      'audit_log_no_update',
      'audit_log_no_delete',
      'audit_checkpoint_append_only',
      'audit_checkpoint_no_delete',
    ]) {
      await sql`DROP TRIGGER ${sql.raw(t)}`.execute(store.db);
    }
  } else {
    await sql`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`.execute(store.db);
    await sql`ALTER TABLE audit_checkpoint DISABLE TRIGGER audit_checkpoint_append_only`.execute(store.db);
  }
}

async function rows(store: Store): Promise<AuditLogTable[]> {
  return store.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
}

/** Re-hash the chain from `from` on, as an attacker covering an edit would, head included. */
async function rehash(store: Store, from: number): Promise<void> {
  const all = await rows(store);
  let prev = all[from - 2]?.hash ?? '0'.repeat(64);
  for (const r of all.slice(from - 1)) {
    const e = { ...fromRow(r), prevHash: prev };
    const hash = entryHash(e);
    await store.db
      .updateTable('audit_log')
      .set({ ...toRow({ ...e, hash }) })
      .where('seq', '=', r.seq)
      .execute();
    prev = hash;
  }
  await store.db.updateTable('audit_head').set({ hash: prev }).where('id', '=', 1).execute();
}

describeEachDialect('audit checkpoints and proofs', (base) => {
  const opened: { store?: Store; target: DialectTarget }[] = [];
  let published: string;

  interface World {
    store: Store;
    log: AuditLog;
    tree: MerkleTree;
    cps: Checkpointer;
    clock: ManualClock;
  }

  /** 600 entries with checkpoints at 300 and 600, published to a file; triggers off. */
  async function world(): Promise<World> {
    const slot: { store?: Store; target: DialectTarget } = { target: makeTarget(base.dialect) };
    opened.push(slot);
    const store = await slot.target.open();
    slot.store = store;
    const clock = new ManualClock(Date.UTC(2026, 10, 26));
    const log = new AuditLog(store, { clock });
    const tree = new MerkleTree(store, { clock });
    published = join(dir, `published-${keyCounter++}.jsonl`);
    const cps = new Checkpointer({
      store,
      tree,
      signer,
      clock,
      log: quiet,
      config: {
        enabled: true,
        intervalMs: 60_000,
        maxEntries: 10_000,
        signingKey: { ref: { file: join(dir, 'cp.jwk') }, generate: false },
        trustedKeyFiles: [],
        publish: { file: published, webhooks: [] },
      },
    });
    for (let i = 0; i < 600; i += 100) {
      await log.appendMany(Array.from({ length: 100 }, (_, k) => input(i + k)));
      clock.advance(1000);
      if (i + 100 === 300) await cps.checkpointNow();
    }
    await cps.checkpointNow();
    await unlock(store);
    return { store, log, tree, cps, clock };
  }

  /** Verify with the tree hashed inline and on a worker thread: both must say the same. */
  const verify = async (store: Store, files: string[] = []) => {
    const inline = await verifyChain(store, {
      pageSize: 128,
      tree: { trusted, publishedFiles: files, worker: false },
    });
    const worker = await verifyChain(store, {
      pageSize: 128,
      tree: { trusted, publishedFiles: files, worker: true },
    });
    expect({ ...worker, elapsedMs: 0 }).toEqual({ ...inline, elapsedMs: 0 });
    return inline;
  };

  afterEach(async () => {
    for (const { store, target } of opened.splice(0)) {
      await store?.close();
      await target.cleanup();
    }
  });

  it('signs checkpoints a verifier can open, publishes them, and verifies the intact log against both', async () => {
    const { store, cps } = await world();
    const list = await cps.list();
    expect(list.map((c) => c.size)).toEqual([600, 300]);
    const opened = await openCheckpoint(list[0]!.jws, trusted);
    expect(opened).toMatchObject({ ok: true, payload: { size: 600, root: list[0]!.root, v: 1 } });
    const lines = readFileSync(published, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Checkpoint);
    expect(lines.map((c) => c.size)).toEqual([300, 600]);
    const v = await verify(store, [published]);
    expect(v.ok, JSON.stringify(v.problem)).toBe(true);
    expect(v.tree).toMatchObject({ checkpoints: 2, published: 2, unsigned: 0, latest: { size: 600 } });
    expect(v.tree?.nodes).toBe(2);
  });

  it('is idempotent per size and refuses an empty log or a size beyond it', async () => {
    const { cps } = await world();
    const again = await cps.checkpointNow(300);
    expect(again.size).toBe(300);
    expect((await cps.list()).length).toBe(2);
    const e = await cps.checkpointNow(601).catch((x: unknown) => x);
    expect(isWardenError(e, 'INVALID_REQUEST')).toBe(true);
  });

  it('reports a chain edited and fully re-hashed (head too) against the signed root', async () => {
    const { store } = await world();
    await store.db
      .updateTable('audit_log')
      .set({ tool_name: 'delete_account' })
      .where('seq', '=', 420)
      .execute();
    await rehash(store, 420);
    // The chain alone no longer sees it…
    expect((await verifyChain(store)).ok).toBe(true);
    // …the signed checkpoint does, and bounds where.
    const v = await verify(store);
    expect(v.problem).toMatchObject({ seq: 301, kind: 'modified' });
    expect(v.problem?.message).toContain('entries 301..600');
  });

  it('reports a tail cut off with the head rewound as truncated, from the stored checkpoint', async () => {
    const { store } = await world();
    const all = await rows(store);
    await store.db.deleteFrom('audit_log').where('seq', '>', 550).execute();
    await store.db
      .updateTable('audit_head')
      .set({ seq: 550, hash: all[549]!.hash })
      .where('id', '=', 1)
      .execute();
    expect((await verifyChain(store)).ok).toBe(true);
    const v = await verify(store);
    expect(v.problem).toMatchObject({ seq: 551, kind: 'truncated' });
    expect(v.problem?.message).toContain('551..600');
  });

  it('catches a truncation that also removed the checkpoints and rewound the tree, from the published file', async () => {
    const { store } = await world();
    const all = await rows(store);
    await store.db.deleteFrom('audit_log').where('seq', '>', 450).execute();
    await store.db
      .updateTable('audit_head')
      .set({ seq: 450, hash: all[449]!.hash })
      .where('id', '=', 1)
      .execute();
    await store.db.deleteFrom('audit_checkpoint').where('tree_size', '>', 300).execute();
    await store.db.deleteFrom('audit_tree_node').where('idx', '>=', 1).execute();
    // Rewind the builder as if it had stopped at 300.
    const tree = new MerkleTree(store);
    await store.db
      .updateTable('audit_tree')
      .set({ size: 0, head_hash: '0'.repeat(64), frontier: '[]' })
      .where('id', '=', 1)
      .execute();
    await store.db.deleteFrom('audit_tree_node').execute();
    await tree.advance();
    expect((await verify(store)).ok).toBe(true);
    const v = await verify(store, [published]);
    expect(v.problem).toMatchObject({ seq: 451, kind: 'truncated' });
    expect(v.problem?.message).toContain('published');
  });

  it('reports a replaced checkpoint signature at its size', async () => {
    const { store, cps } = await world();
    const cp = (await cps.get(300))!;
    const [h, p] = cp.jws.split('.');
    const other = await loadCheckpointSigner({
      ref: { file: join(dir, `other-${keyCounter++}.jwk`) },
      generate: true,
    });
    const forged = await other.sign(JSON.parse(Buffer.from(p!, 'base64url').toString()));
    // Same header (kid of the real key), a signature from another key.
    const jws = `${h}.${p}.${forged.split('.')[2]}`;
    await store.db.updateTable('audit_checkpoint').set({ jws }).where('tree_size', '=', 300).execute();
    const v = await verify(store);
    expect(v.problem).toMatchObject({ seq: 300, kind: 'checkpoint-signature' });
    expect(v.problem?.message).toContain('does not verify');
  });

  it('reports a checkpoint signed by an untrusted key, and a row that disagrees with its signature', async () => {
    const { store, cps } = await world();
    const other = await loadCheckpointSigner({
      ref: { file: join(dir, `other-${keyCounter++}.jwk`) },
      generate: true,
    });
    const cp = (await cps.get(600))!;
    const p = JSON.parse(Buffer.from(cp.jws.split('.')[1]!, 'base64url').toString());
    await store.db
      .updateTable('audit_checkpoint')
      .set({ jws: await other.sign(p), kid: other.kid })
      .where('tree_size', '=', 600)
      .execute();
    expect((await verify(store)).problem).toMatchObject({ seq: 600, kind: 'checkpoint-signature' });
    expect((await verify(store)).problem?.message).toContain('not trusted');
    await store.db
      .updateTable('audit_checkpoint')
      .set({ jws: cp.jws, kid: cp.kid, root_hash: 'a'.repeat(64) })
      .where('tree_size', '=', 600)
      .execute();
    expect((await verify(store)).problem?.message).toContain('differ from what was signed');
  });

  it('reports a stored Merkle node that differs from the entries', async () => {
    const { store } = await world();
    await store.db
      .updateTable('audit_tree_node')
      .set({ hash: 'b'.repeat(64) })
      .where('level', '=', 8)
      .where('idx', '=', 1)
      .execute();
    const v = await verify(store);
    expect(v.problem).toMatchObject({ seq: 257, kind: 'tree-mismatch' });
  });

  it('proves inclusion and consistency with bundles anyone can check', async () => {
    const { store, tree, cps } = await world();
    const inc = await inclusionBundle(store, tree, cps, 257);
    expect(inc.treeSize).toBe(300);
    expect(await checkBundle(JSON.parse(JSON.stringify(inc)), trusted)).toMatchObject({ ok: true });
    const at600 = await inclusionBundle(store, tree, cps, 5, 600);
    expect(await checkBundle(at600, trusted)).toMatchObject({ ok: true });
    // A bundle with the entry's content changed fails, and so does one with a wrong path.
    const changed = { ...inc, entry: { ...inc.entry, toolName: 'delete_account' } };
    expect(await checkBundle(changed, trusted)).toMatchObject({ ok: false });
    const badPath = { ...inc, proof: [...inc.proof.slice(1), inc.proof[0]] };
    expect(await checkBundle(badPath, trusted)).toMatchObject({ ok: false });
    const noKey = await checkBundle(inc, new Map());
    expect(noKey).toMatchObject({ ok: false });

    const con = await consistencyBundle(tree, cps, 300);
    expect(con.to.size).toBe(600);
    expect(await checkBundle(con, trusted)).toMatchObject({ ok: true });
    expect(await checkBundle({ ...con, proof: con.proof.slice(1) }, trusted)).toMatchObject({ ok: false });
    expect(await checkBundle({ type: 'nope', proof: [] }, trusted)).toMatchObject({ ok: false });
    expect(await checkBundle(null, trusted)).toMatchObject({ ok: false });
  });

  it('answers clear errors for entries no checkpoint covers yet and unknown entries', async () => {
    const { store, log, tree, cps } = await world();
    await log.append(input(600));
    const e = await inclusionBundle(store, tree, cps, 601).catch((x: unknown) => x);
    expect(isWardenError(e, 'AUDIT_NOT_CHECKPOINTED')).toBe(true);
    const e2 = await inclusionBundle(store, tree, cps, 0).catch((x: unknown) => x);
    expect(isWardenError(e2, 'INVALID_REQUEST')).toBe(true);
    const e3 = await consistencyBundle(tree, cps, 299).catch((x: unknown) => x);
    expect(isWardenError(e3, 'AUDIT_NOT_CHECKPOINTED')).toBe(true);
  });

  it('stops the tree at a chain break and reports it in its status', async () => {
    const { store, log, cps } = await world();
    await log.appendMany([input(1), input(2)]);
    await store.db
      .updateTable('audit_log')
      .set({ prev_hash: 'c'.repeat(64) })
      .where('seq', '=', 602)
      .execute();
    await cps.tick();
    await cps.tick();
    expect(cps.status()).toMatchObject({ headSeq: 602, treeSize: 601, brokenAt: 602 });
  });

  it('signs on the interval or after maxEntries, and once more at shutdown', async () => {
    const { log, cps, clock, store } = await world();
    await log.appendMany(Array.from({ length: 10 }, (_, k) => input(k)));
    await cps.tick();
    expect((await cps.latest())?.size).toBe(600);
    clock.advance(60_000);
    await cps.tick();
    expect((await cps.latest())?.size).toBe(610);
    expect(cps.status()).toMatchObject({
      headSeq: 610,
      treeSize: 610,
      checkpoint: { size: 610 },
      brokenAt: null,
    });
    await log.append(input(1));
    await cps.close();
    expect((await cps.latest())?.size).toBe(611);
    // The trigger was dropped for tampering tests; the checkpoints are all there and verify.
    expect((await verifyChain(store, { tree: { trusted } })).ok).toBe(true);
  });
});

it('writes the default key file once, 0600, and refuses a key that is not a private Ed25519 JWK', async () => {
  const file = join(dir, 'race.jwk');
  const [a, b] = await Promise.all([
    loadCheckpointSigner({ ref: { file }, generate: true }),
    loadCheckpointSigner({ ref: { file }, generate: true }),
  ]);
  expect(a.kid).toBe(b.kid);
  const { statSync } = await import('node:fs');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const pub = join(dir, 'pub.jwk');
  writeFileSync(pub, JSON.stringify(a.publicJwk));
  const e = await loadCheckpointSigner({ ref: { file: pub }, generate: false }).catch((x: unknown) => x);
  expect(isWardenError(e, 'CONFIG_INVALID')).toBe(true);
  expect((e as Error).message).toContain('private Ed25519 JWK');
});

it('publishes checkpoints to a webhook with a Standard Webhooks signature, and alerts when it cannot', async () => {
  const { createServer } = await import('node:http');
  const { verifyWebhook } = await import('../notify/webhook-signature.js');
  const target = makeTarget('sqlite');
  const store = await target.open();
  const received: { body: string; headers: Record<string, string | string[] | undefined> }[] = [];
  let failing = false;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      received.push({ body, headers: req.headers });
      res.writeHead(failing ? 500 : 204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/checkpoints`;
  const secretFile = join(dir, 'hook.secret');
  writeFileSync(secretFile, 'whsec_dGVzdC1zZWNyZXQtZm9yLWNoZWNrcG9pbnRz');
  const alerts: { kind: string }[] = [];
  try {
    const log = new AuditLog(store);
    const tree = new MerkleTree(store);
    const cps = new Checkpointer({
      store,
      tree,
      signer,
      log: quiet,
      alert: (a) => alerts.push(a),
      config: {
        enabled: true,
        intervalMs: 60_000,
        maxEntries: 10_000,
        signingKey: { ref: { file: join(dir, 'cp.jwk') }, generate: false },
        trustedKeyFiles: [],
        publish: { webhooks: [{ url, secret: { file: secretFile }, timeoutMs: 2000 }] },
      },
    });
    await log.appendMany([input(1), input(2)]);
    const cp = await cps.checkpointNow();
    expect(received).toHaveLength(1);
    const got = received[0]!;
    const parsed = JSON.parse(got.body) as { type: string; checkpoint: Checkpoint };
    expect(parsed).toMatchObject({ type: 'audit.checkpoint', checkpoint: { size: 2, jws: cp.jws } });
    const check = verifyWebhook(
      'whsec_dGVzdC1zZWNyZXQtZm9yLWNoZWNrcG9pbnRz',
      got.headers,
      got.body,
      60_000,
      Date.now(),
    );
    expect(check.ok).toBe(true);
    expect(await openCheckpoint(parsed.checkpoint.jws, trusted)).toMatchObject({ ok: true });

    failing = true;
    await log.append(input(3));
    await cps.checkpointNow();
    // Three attempts, then one alert naming the receiver (not the secret).
    expect(received).toHaveLength(4);
    expect(alerts).toEqual([expect.objectContaining({ kind: 'audit.checkpoint-unpublished' })]);
  } finally {
    server.close();
    await store.close();
    await target.cleanup();
  }
}, 20_000);

it('trusts no key before the default key exists, but refuses a configured key it cannot read', async () => {
  const { loadTrustedKeys } = await import('./checkpoint.js');
  const base = {
    enabled: true,
    intervalMs: 60_000,
    maxEntries: 10_000,
    trustedKeyFiles: [] as string[],
    publish: { webhooks: [] },
  };
  // Fresh install: the default key is created by the first gateway start; nothing is signed yet.
  const fresh = await loadTrustedKeys({
    ...base,
    signingKey: { ref: { file: join(dir, 'never-created.jwk') }, generate: true },
  });
  expect(fresh.size).toBe(0);
  // A key the operator configured but that cannot be read is an error, not "no keys".
  const missing = await loadTrustedKeys({
    ...base,
    signingKey: { ref: { file: join(dir, 'configured-but-missing.jwk') }, generate: false },
  }).catch((x: unknown) => x);
  expect(isWardenError(missing, 'CONFIG_INVALID')).toBe(true);
  const garbage = join(dir, 'garbage.jwk');
  writeFileSync(garbage, 'not json');
  const bad = await loadTrustedKeys({
    ...base,
    signingKey: { ref: { file: join(dir, 'cp.jwk') }, generate: false },
    trustedKeyFiles: [garbage],
  }).catch((x: unknown) => x);
  expect(isWardenError(bad, 'CONFIG_INVALID')).toBe(true);
  expect((bad as Error).message).toContain('not JSON');
});
