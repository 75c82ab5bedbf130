import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDialect, makeTarget } from '../../test/helpers/dialects.js';
import { isWardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { AuditLog } from './log.js';
import {
  consistencyProof,
  inclusionProof,
  MerkleAccumulator,
  rootFromLeafHashes,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
import { ChainBreakError, entryLeafHash, MerkleTree } from './tree.js';
import type { AuditInput } from './types.js';

const input = (i: number): AuditInput => ({
  traceId: `tr_${i}`,
  event: 'TOOL_CALL',
  actorType: 'AI_AGENT',
  agentId: 'a',
  toolName: 't',
  parameters: { i },
});

async function appendN(log: AuditLog, n: number): Promise<void> {
  for (let done = 0; done < n; done += 200) {
    await log.appendMany(Array.from({ length: Math.min(200, n - done) }, (_, k) => input(done + k)));
  }
}

async function leaves(store: Store): Promise<Uint8Array[]> {
  const rows = await store.db.selectFrom('audit_log').select('hash').orderBy('seq').execute();
  return rows.map((r) => entryLeafHash(r.hash));
}

const hex = (xs: Uint8Array[]) => xs.map(toHex);

describeEachDialect('Merkle tree over the audit log', (target) => {
  let store: Store;
  let log: AuditLog;
  let tree: MerkleTree;

  beforeAll(async () => {
    store = await target.open();
    log = new AuditLog(store);
    tree = new MerkleTree(store);
  });
  afterAll(async () => {
    await (store as Store | undefined)?.close();
    await target.cleanup();
  });

  it('starts empty and builds nothing from an empty log', async () => {
    const s = await tree.advance();
    expect(s.size).toBe(0);
    expect(s.logId).toMatch(/^[0-9a-f-]{36}$/);
    expect(toHex((await tree.reader()).builtSize === 0 ? rootFromLeafHashes([]) : new Uint8Array())).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('builds in steps, and its roots and proofs equal the reference over the same leaves', async () => {
    await appendN(log, 300);
    // Two steps that end off a tile boundary, then the rest.
    expect((await tree.advance(37)).size).toBe(37);
    expect((await tree.advance(200)).size).toBe(237);
    await appendN(log, 300);
    const s = await tree.advance();
    expect(s.size).toBe(600);
    const all = await leaves(store);
    expect(all).toHaveLength(600);
    const ref = new MerkleAccumulator();
    for (const l of all) ref.push(l);
    expect(toHex(MerkleAccumulator.resume(s.size, s.frontier).root())).toBe(toHex(ref.root()));
    const stored = await tree.nodes(8, 0, 10);
    expect(stored.map((n) => n.idx)).toEqual([0, 1]);
    expect(stored[1]?.hash).toBe(toHex(rootFromLeafHashes(all.slice(256, 512))));

    const r = await tree.reader();
    for (const size of [1, 2, 3, 255, 256, 257, 511, 512, 513, 600]) {
      expect(toHex(await r.root(size)), `root ${size}`).toBe(toHex(rootFromLeafHashes(all.slice(0, size))));
    }
    for (const [i, size] of [
      [0, 1],
      [0, 600],
      [255, 256],
      [256, 600],
      [599, 600],
      [300, 513],
    ] as const) {
      const proof = await r.inclusion(i, size);
      expect(hex(proof), `inclusion ${i}/${size}`).toEqual(hex(inclusionProof(all, i, size)));
      expect(verifyInclusion(i, size, all[i]!, proof, rootFromLeafHashes(all.slice(0, size)))).toBe(true);
    }
    for (const [m, n] of [
      [1, 600],
      [256, 512],
      [255, 257],
      [300, 600],
      [600, 600],
    ] as const) {
      const proof = await r.consistency(m, n);
      expect(hex(proof), `consistency ${m}/${n}`).toEqual(hex(consistencyProof(all, m, n)));
      expect(
        verifyConsistency(
          m,
          n,
          rootFromLeafHashes(all.slice(0, m)),
          rootFromLeafHashes(all.slice(0, n)),
          proof,
        ),
      ).toBe(true);
    }
  });

  it('refuses sizes beyond what was built, with a clear error', async () => {
    const r = await tree.reader();
    const e = await r.root(r.builtSize + 1).catch((x: unknown) => x);
    expect(isWardenError(e, 'INVALID_REQUEST')).toBe(true);
    expect(String((e as Error).message)).toContain('beyond the tree built so far');
  });

  it('two builders racing on one store agree on one tree', async () => {
    await appendN(log, 700);
    const other = new MerkleTree(store);
    const [a, b] = await Promise.all([tree.advance(), other.advance()]);
    expect(a.size).toBe(1300);
    expect(b.size).toBe(1300);
    const all = await leaves(store);
    const r = await tree.reader();
    expect(toHex(await r.root(1300))).toBe(toHex(rootFromLeafHashes(all)));
    const stored = await tree.nodes(8, 0, 100);
    expect(stored.map((n) => n.idx)).toEqual([0, 1, 2, 3, 4]);
    for (const n of stored) {
      expect(n.hash).toBe(toHex(rootFromLeafHashes(all.slice(n.idx * 256, n.idx * 256 + 256))));
    }
  });

  it('stops at a broken link instead of building over it', async () => {
    await appendN(log, 3);
    // Forge the last entry's link (the append-only trigger stands in the way: go around it).
    if (target.dialect === 'sqlite') {
      await sql`DROP TRIGGER audit_log_no_update`.execute(store.db);
    } else {
      await sql`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`.execute(store.db);
    }
    await sql`UPDATE audit_log SET prev_hash = ${'f'.repeat(64)} WHERE seq = 1302`.execute(store.db);
    const e = await tree.advance().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ChainBreakError);
    expect((e as ChainBreakError).seq).toBe(1302);
    expect((await tree.state()).size).toBe(1301);
  });
});

describe('Merkle tree tiles above level 8 [sqlite]', () => {
  const target = makeTarget('sqlite');
  let store: Store;
  afterAll(async () => {
    await (store as Store | undefined)?.close();
    await target.cleanup();
  });

  it('stores level-16 nodes and proves across them', async () => {
    store = await target.open();
    const log = new AuditLog(store);
    const n = 65_536 + 300;
    await appendN(log, n);
    const tree = new MerkleTree(store);
    expect((await tree.advance()).size).toBe(n);
    const all = await leaves(store);
    const l16 = await tree.nodes(16, 0, 10);
    expect(l16).toEqual([{ idx: 0, hash: toHex(rootFromLeafHashes(all.slice(0, 65_536))) }]);
    const r = await tree.reader();
    expect(toHex(await r.root(n))).toBe(toHex(rootFromLeafHashes(all)));
    expect(toHex(await r.root(40_000))).toBe(toHex(rootFromLeafHashes(all.slice(0, 40_000))));
    for (const i of [0, 12_345, 65_535, 65_536, n - 1]) {
      expect(hex(await r.inclusion(i, n))).toEqual(hex(inclusionProof(all, i, n)));
    }
    expect(hex(await r.consistency(40_000, n))).toEqual(hex(consistencyProof(all, 40_000, n)));
  }, 60_000);
});
