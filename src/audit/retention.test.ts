/**
 * Retention on both dialects: archive with a checkpoint at the cut, prune, and
 * everything stays provable — the rest of the log from the signed prune point,
 * pruned entries from their archive; damaged archives and out-of-order prunes
 * are refused, and the append-only trigger still refuses any other delete.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type DialectTarget, describeEachDialect, makeTarget } from '../../test/helpers/dialects.js';
import { isWardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import {
  addTrustedKeys,
  Checkpointer,
  type CheckpointSigner,
  loadCheckpointSigner,
  type TrustedKeys,
} from './checkpoint.js';
import { AuditLog } from './log.js';
import { checkBundle, inclusionBundle } from './proofs.js';
import { archiveEntries, inclusionFromArchive, pruneArchived, verifyArchive } from './retention.js';
import { MerkleTree } from './tree.js';
import type { AuditInput } from './types.js';
import { verifyChain } from './verify.js';

const quiet = { info() {}, warn() {}, error() {} };
const dir = mkdtempSync(join(tmpdir(), 'warden-ret-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let signer: CheckpointSigner;
const trusted: TrustedKeys = new Map();
let n = 0;

beforeAll(async () => {
  signer = await loadCheckpointSigner({ ref: { file: join(dir, 'cp.jwk') }, generate: true });
  await addTrustedKeys(trusted, signer.publicJwk, 'test');
});

const input = (i: number): AuditInput => ({
  traceId: `tr_${i}`,
  event: 'TOOL_CALL',
  actorType: 'AI_AGENT',
  agentId: 'support-bot',
  toolName: 'lookup_order',
  parameters: { i },
  result: 'success',
});

describeEachDialect('audit retention', (base) => {
  const opened: { store?: Store; target: DialectTarget }[] = [];

  async function world() {
    const slot: { store?: Store; target: DialectTarget } = { target: makeTarget(base.dialect) };
    opened.push(slot);
    const store = await slot.target.open();
    slot.store = store;
    const log = new AuditLog(store);
    const tree = new MerkleTree(store);
    const checkpoints = new Checkpointer({
      store,
      tree,
      signer,
      log: quiet,
      config: {
        enabled: true,
        intervalMs: 60_000,
        maxEntries: 10_000,
        signingKey: { ref: { file: join(dir, 'cp.jwk') }, generate: false },
        trustedKeyFiles: [],
        publish: { webhooks: [] },
      },
    });
    for (let i = 0; i < 600; i += 200)
      await log.appendMany(Array.from({ length: 200 }, (_, k) => input(i + k)));
    await checkpoints.checkpointNow();
    return { store, log, tree, checkpoints };
  }

  afterEach(async () => {
    for (const { store, target } of opened.splice(0)) {
      await store?.close();
      await target.cleanup();
    }
  });

  it('archives with a checkpoint at the cut, prunes, and keeps the rest and the pruned entries provable', async () => {
    const w = await world();
    const file = join(dir, `a-${n++}.jsonl`);
    const a = await archiveEntries(w, { through: 300, file, trusted });
    expect(a).toMatchObject({ from: 1, through: 300, entries: 300 });
    expect((await w.checkpoints.get(300))?.size).toBe(300);
    const v = await verifyArchive(file, trusted);
    expect(v).toMatchObject({ ok: true, from: 1, through: 300, entries: 300, sha256: a.sha256 });

    const p = await pruneArchived(
      { ...w, audit: w.log },
      { file, trusted, by: 'operator:root', traceId: 'prune-1' },
    );
    expect(p).toMatchObject({ through: 300, deleted: 300 });
    const left = await w.store.db.selectFrom('audit_log').select('seq').orderBy('seq').limit(1).execute();
    expect(Number(left[0]?.seq)).toBe(301);
    const audited = await w.log.read({ event: 'AUDIT_PRUNED' });
    expect(audited[0]).toMatchObject({
      actorType: 'HUMAN',
      actorId: 'operator:root',
      data: { through: 300 },
    });

    // The rest verifies from the signed prune point, and later checkpoints still check.
    await w.checkpoints.checkpointNow();
    const after = await verifyChain(w.store, { tree: { trusted } });
    expect(after.ok, JSON.stringify(after.problem)).toBe(true);
    expect(after.tree).toMatchObject({ prunedThrough: 300 });

    // Live entries are proved from the store; pruned ones from the archive.
    const live = await inclusionBundle(w.store, w.tree, w.checkpoints, 450);
    expect(await checkBundle(live, trusted)).toMatchObject({ ok: true });
    const gone = await inclusionBundle(w.store, w.tree, w.checkpoints, 100).catch((x: unknown) => x);
    expect(isWardenError(gone, 'AUDIT_PRUNED')).toBe(true);
    const fromArchive = await inclusionFromArchive(file, 100, trusted);
    expect(await checkBundle(fromArchive, trusted)).toMatchObject({ ok: true });

    // A second archive continues from the prune point and verifies on its own.
    const file2 = join(dir, `a-${n++}.jsonl`);
    const b = await archiveEntries(w, { through: 520, file: file2, trusted });
    expect(b).toMatchObject({ from: 301, through: 520, entries: 220 });
    const second = await inclusionFromArchive(file2, 301, trusted);
    expect(await checkBundle(second, trusted)).toMatchObject({ ok: true });
    await pruneArchived(
      { ...w, audit: w.log },
      { file: file2, trusted, by: 'operator:root', traceId: 'prune-2' },
    );
    const again = await verifyChain(w.store, { tree: { trusted } });
    expect(again.ok, JSON.stringify(again.problem)).toBe(true);
    expect(again.tree?.prunedThrough).toBe(520);
    // The worker thread resumes from the prune point's right edge as the inline hasher does.
    const onWorker = await verifyChain(w.store, { tree: { trusted, worker: true } });
    expect({ ...onWorker, elapsedMs: 0 }).toEqual({ ...again, elapsedMs: 0 });
  });

  it('refuses a damaged archive, an out-of-order prune, and deletes no prune covers', async () => {
    const w = await world();
    const file = join(dir, `a-${n++}.jsonl`);
    await archiveEntries(w, { through: 200, file, trusted });
    const original = readFileSync(file, 'utf8').split('\n');
    const lines = [...original];
    const entry = JSON.parse(lines[50]!);
    entry.toolName = 'delete_account';
    lines[50] = JSON.stringify(entry);
    const bad = join(dir, `bad-${n++}.jsonl`);
    writeFileSync(bad, lines.join('\n'));
    const v = await verifyArchive(bad, trusted);
    expect(v.problem).toMatchObject({ seq: 50, kind: 'modified' });
    const refused = await pruneArchived(
      { ...w, audit: w.log },
      { file: bad, trusted, by: 'root', traceId: 't' },
    ).catch((x: unknown) => x);
    expect(isWardenError(refused, 'INVALID_REQUEST')).toBe(true);
    // A cut-short archive is truncated.
    const short = join(dir, `short-${n++}.jsonl`);
    writeFileSync(short, original.slice(0, 120).join('\n'));
    expect((await verifyArchive(short, trusted)).problem).toMatchObject({ kind: 'truncated' });
    // An archive whose signature is not trusted.
    expect((await verifyArchive(file, new Map())).problem).toMatchObject({ kind: 'checkpoint-signature' });

    // Nothing was deleted, and the trigger still refuses a delete no prune covers.
    const count = await w.store.db
      .selectFrom('audit_log')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirst();
    expect(Number(count?.n)).toBe(600);
    await expect(w.store.db.deleteFrom('audit_log').where('seq', '=', 5).execute()).rejects.toThrow(
      /append-only/,
    );

    // Entries up to the cut must be archived in order: a later archive cannot be pruned first.
    const later = join(dir, `later-${n++}.jsonl`);
    await pruneArchived({ ...w, audit: w.log }, { file, trusted, by: 'root', traceId: 't' });
    const dup = await pruneArchived(
      { ...w, audit: w.log },
      { file, trusted, by: 'root', traceId: 't' },
    ).catch((x: unknown) => x);
    expect(isWardenError(dup, 'INVALID_REQUEST')).toBe(true);
    await expect(archiveEntries(w, { through: 150, file: later, trusted })).rejects.toThrow(
      /archived and pruned already/,
    );
    await expect(w.store.db.deleteFrom('audit_log').where('seq', '=', 250).execute()).rejects.toThrow(
      /append-only/,
    );
  });
});
