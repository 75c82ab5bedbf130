/**
 * The audit log's Merkle tree (issue #9): RFC 9162 over the entries, leaf i being
 * the chain hash of entry seq i+1 (`entryLeafHash`). The chain already binds each
 * entry to its content and to every earlier entry; the tree adds what a chain
 * cannot give: short proofs that one entry is in a signed tree head (inclusion)
 * and that a later head extends an earlier one (consistency), checkable by anyone
 * holding the checkpoint key's public half.
 *
 * The tree is built in the background by `MerkleTree.advance`, from the builder
 * cursor in `audit_tree` (size built, the chain hash there, the right edge). Each
 * step checks that the entries it adds link (seq and prev_hash) before it trusts
 * their hashes, and moves the cursor with a compare-and-set, so several gateway
 * processes may advance the same tree: the loser re-reads and goes on from the
 * winner's cursor, and the nodes both wrote are equal.
 *
 * Stored nodes: the roots of complete subtrees at levels 8, 16, 24, … (`TILE`),
 * so any subtree hash needs at most 2^8 = 256 rows — leaves (entry hashes) below
 * level 8, stored nodes of the tile level below it above — and a proof, made of
 * at most 2·log2(n) subtree hashes, reads a few thousand rows at worst.
 *
 * After a retention prune the leaves before `through_seq` are gone; the pruned
 * frontier (the right edge at through_seq) still gives every subtree a proof for
 * a later entry needs (see `PrunedRange`). Proofs for pruned entries come from the
 * archive (src/audit/retention.ts).
 */
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';
import { emptyRoot, fromHex, leafHash, leafHashOfHex, MerkleAccumulator, nodeHash, toHex } from './merkle.js';

/** Stored subtree roots every TILE levels. */
export const TILE = 8;
/** Entries read per builder page. */
const PAGE = 5_000;
/** Most nodes per insert statement (3 parameters each). */
const NODE_CHUNK = 500;

/** Leaf hash of an entry: SHA-256(0x00 || its 32-byte chain hash). */
export function entryLeafHash(entryHashHex: string): Uint8Array {
  return /^[0-9a-f]{64}$/.test(entryHashHex) ? leafHashOfHex(entryHashHex) : leafHash(fromHex(entryHashHex));
}

/** The tree as built: size, the chain hash at that size, the right edge, the log's id. */
export interface TreeState {
  logId: string;
  size: number;
  headHash: string;
  frontier: (Uint8Array | null)[];
}

/** The chain does not link where the builder read it: the tree stops there (tampering or a bug). */
export class ChainBreakError extends Error {
  constructor(
    readonly seq: number,
    message: string,
  ) {
    super(message);
    this.name = 'ChainBreakError';
  }
}

/** The leaves before `throughSeq` are pruned; `frontier` is the right edge at that size. */
export interface PrunedRange {
  throughSeq: number;
  throughHash: string;
  frontier: (Uint8Array | null)[];
}

export function frontierToJson(frontier: readonly (Uint8Array | null)[]): string {
  return JSON.stringify(frontier.map((h) => (h === null ? null : toHex(h))));
}

export function frontierFromJson(text: string): (Uint8Array | null)[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) throw new TypeError('a frontier is a JSON array');
  return parsed.map((h) => {
    if (h === null) return null;
    if (typeof h !== 'string' || h.length !== 64) throw new TypeError('a frontier hash is 64 hex digits');
    return fromHex(h);
  });
}

/** Builds the tree over the log and answers subtree hashes and proofs from what it stored. */
export class MerkleTree {
  private readonly clock: Clock;

  constructor(
    private readonly store: Store,
    opts: { clock?: Clock } = {},
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  /** The builder's cursor. */
  async state(): Promise<TreeState> {
    const row = await this.store.db
      .selectFrom('audit_tree')
      .select(['log_id', 'size', 'head_hash', 'frontier'])
      .where('id', '=', 1)
      .executeTakeFirst();
    if (row === undefined) throw new Error('audit_tree row is missing');
    return {
      logId: row.log_id,
      size: Number(row.size),
      headHash: row.head_hash,
      frontier: frontierFromJson(row.frontier),
    };
  }

  /**
   * Extend the tree over the entries appended since it was last built, up to `limit` entries
   * (default: all). Returns the state reached. Throws ChainBreakError when the entries after
   * the cursor do not link to it (the tree never includes a broken chain).
   */
  async advance(limit = Number.POSITIVE_INFINITY): Promise<TreeState> {
    let added = 0;
    for (;;) {
      const state = await this.state();
      if (added >= limit) return state;
      const rows = await this.store.db
        .selectFrom('audit_log')
        .select(['seq', 'prev_hash', 'hash'])
        .where('seq', '>', state.size)
        .orderBy('seq', 'asc')
        .limit(Math.min(PAGE, limit - added))
        .execute();
      if (rows.length === 0) return state;
      const acc = MerkleAccumulator.resume(state.size, state.frontier);
      const nodes: { level: number; idx: number; hash: string }[] = [];
      let headHash = state.headHash;
      // A break stops the tree before the bad entry; what linked before it is still kept.
      let broken: ChainBreakError | undefined;
      for (const row of rows) {
        const seq = Number(row.seq);
        if (seq !== acc.size + 1) {
          broken = new ChainBreakError(
            acc.size + 1,
            `the audit log has no entry ${acc.size + 1} (the next is ${seq}): the Merkle tree stops at ${acc.size}`,
          );
          break;
        }
        if (row.prev_hash !== headHash || !/^[0-9a-f]{64}$/.test(row.hash)) {
          broken = new ChainBreakError(
            seq,
            `audit entry ${seq} does not link to entry ${seq - 1}: the Merkle tree stops at ${acc.size}`,
          );
          break;
        }
        acc.push(entryLeafHash(row.hash), (level, idx, hash) => {
          if (level % TILE === 0) nodes.push({ level, idx, hash: toHex(hash) });
        });
        headHash = row.hash;
      }
      if (acc.size === state.size) throw broken;
      const moved = await this.store.db.transaction().execute(async (trx) => {
        for (let i = 0; i < nodes.length; i += NODE_CHUNK) {
          await trx
            .insertInto('audit_tree_node')
            .values(nodes.slice(i, i + NODE_CHUNK))
            .onConflict((oc) => oc.columns(['level', 'idx']).doNothing())
            .execute();
        }
        const r = await trx
          .updateTable('audit_tree')
          .set({
            size: acc.size,
            head_hash: headHash,
            frontier: frontierToJson(acc.frontier()),
            updated_at: Math.trunc(this.clock.now()),
          })
          .where('id', '=', 1)
          .where('size', '=', state.size)
          .executeTakeFirst();
        return r.numUpdatedRows === 1n;
      });
      // Lost the race: another process moved the cursor; go on from where it is.
      if (moved) added += acc.size - state.size;
      if (moved && broken) throw broken;
    }
  }

  /** The latest prune, if any: leaves up to its throughSeq are gone from the store. */
  async pruned(): Promise<PrunedRange | undefined> {
    const row = await this.store.db
      .selectFrom('audit_prune')
      .select(['through_seq', 'through_hash', 'frontier'])
      .orderBy('through_seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      throughSeq: Number(row.through_seq),
      throughHash: row.through_hash,
      frontier: frontierFromJson(row.frontier),
    };
  }

  /** A reader over the tree of `size` leaves (≤ the built size) for roots and proofs. */
  async reader(): Promise<TreeReader> {
    const [state, pruned] = await Promise.all([this.state(), this.pruned()]);
    return new TreeReader(storeSource(this.store), state.size, pruned);
  }

  /** Stored nodes at `level` from `fromIdx`, ascending (for tests and tools; proofs read them through TreeReader). */
  async nodes(level: number, fromIdx: number, limit: number): Promise<{ idx: number; hash: string }[]> {
    const rows = await this.store.db
      .selectFrom('audit_tree_node')
      .select(['idx', 'hash'])
      .where('level', '=', level)
      .where('idx', '>=', fromIdx)
      .orderBy('idx', 'asc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ idx: Number(r.idx), hash: r.hash }));
  }
}

/** Where a TreeReader gets leaves and stored nodes: the store, or an archive file. */
export interface TreeSource {
  /** The leaf hashes of leaves [first, end); throws when any is missing. */
  leaves(first: number, end: number): Promise<Uint8Array[]>;
  /** The stored nodes at `level`, indexes [firstIdx, firstIdx + count), or undefined unless all are there. */
  tiles(level: number, firstIdx: number, count: number): Promise<Uint8Array[] | undefined>;
}

/** Leaves from audit_log, tiles from audit_tree_node. */
export function storeSource(store: Store): TreeSource {
  return {
    async leaves(first, end) {
      const rows = await store.db
        .selectFrom('audit_log')
        .select(['seq', 'hash'])
        .where('seq', '>', first)
        .where('seq', '<=', end)
        .orderBy('seq', 'asc')
        .execute();
      if (rows.length !== end - first || rows.some((r, i) => Number(r.seq) !== first + i + 1)) {
        throw new WardenError('AUDIT_UNAVAILABLE', `entries ${first + 1}..${end} are missing from the log`);
      }
      return rows.map((r) => entryLeafHash(r.hash));
    },
    async tiles(level, firstIdx, count) {
      const rows = await store.db
        .selectFrom('audit_tree_node')
        .select(['idx', 'hash'])
        .where('level', '=', level)
        .where('idx', '>=', firstIdx)
        .where('idx', '<', firstIdx + count)
        .orderBy('idx', 'asc')
        .execute();
      if (rows.length !== count || rows.some((r, i) => Number(r.idx) !== firstIdx + i)) return undefined;
      return rows.map((r) => fromHex(r.hash));
    },
  };
}

/** The largest power of two strictly below n (n > 1). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && 2 ** Math.round(Math.log2(n)) === n;
}

/** Fold 2^j subtree roots, left to right, into the root of the perfect tree over them. */
function foldPerfect(hashes: Uint8Array[]): Uint8Array {
  let layer = hashes;
  while (layer.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < layer.length; i += 2) next.push(nodeHash(layer[i]!, layer[i + 1]!));
    layer = next;
  }
  return layer[0]!;
}

/**
 * Subtree hashes and RFC 9162 proofs over the stored tree, built up to `builtSize` leaves.
 * Hashes read once are kept for the reader's life (make one per request).
 */
export class TreeReader {
  private readonly memo = new Map<string, Promise<Uint8Array>>();

  constructor(
    private readonly source: TreeSource,
    readonly builtSize: number,
    readonly pruned: PrunedRange | undefined,
  ) {}

  /** MTH of the first `size` leaves. */
  async root(size: number): Promise<Uint8Array> {
    this.checkSize(size);
    if (size === 0) return emptyRoot();
    return this.subtree(0, size);
  }

  /** The inclusion proof (audit path) of leaf `index` in the tree of `size` leaves. */
  async inclusion(index: number, size: number): Promise<Uint8Array[]> {
    this.checkSize(size);
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
      throw new WardenError('INVALID_REQUEST', `leaf ${index} is not in a tree of ${size} entries`);
    }
    return this.path(index, 0, size);
  }

  /** The consistency proof between the trees of `m` and `n` leaves (m ≤ n). */
  async consistency(m: number, n: number): Promise<Uint8Array[]> {
    this.checkSize(n);
    if (!Number.isSafeInteger(m) || m < 0 || m > n) {
      throw new WardenError('INVALID_REQUEST', `tree size ${m} is not between 0 and ${n}`);
    }
    if (m === 0 || m === n) return [];
    return this.subproof(m, 0, n, true);
  }

  private checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.builtSize) {
      throw new WardenError(
        'INVALID_REQUEST',
        `tree size ${size} is beyond the tree built so far (${this.builtSize} entries)`,
      );
    }
  }

  private async path(m: number, start: number, size: number): Promise<Uint8Array[]> {
    if (size === 1) return [];
    const k = splitPoint(size);
    if (m < k) return [...(await this.path(m, start, k)), await this.subtree(start + k, size - k)];
    return [...(await this.path(m - k, start + k, size - k)), await this.subtree(start, k)];
  }

  private async subproof(m: number, start: number, size: number, complete: boolean): Promise<Uint8Array[]> {
    if (m === size) return complete ? [] : [await this.subtree(start, size)];
    const k = splitPoint(size);
    if (m <= k)
      return [...(await this.subproof(m, start, k, complete)), await this.subtree(start + k, size - k)];
    return [...(await this.subproof(m - k, start + k, size - k, false)), await this.subtree(start, k)];
  }

  /** MTH of leaves [start, start + size); start is aligned as RFC 9162's recursion leaves it. */
  subtree(start: number, size: number): Promise<Uint8Array> {
    if (isPowerOfTwo(size) && start % size === 0) return this.perfect(Math.log2(size), start / size);
    const k = splitPoint(size);
    return Promise.all([this.subtree(start, k), this.subtree(start + k, size - k)]).then(([l, r]) =>
      nodeHash(l, r),
    );
  }

  /** The root of the perfect subtree of 2^level leaves starting at leaf index·2^level. */
  perfect(level: number, index: number): Promise<Uint8Array> {
    const key = `${level}:${index}`;
    let p = this.memo.get(key);
    if (p === undefined) {
      p = this.computePerfect(level, index);
      this.memo.set(key, p);
    }
    return p;
  }

  private async computePerfect(level: number, index: number): Promise<Uint8Array> {
    const width = 2 ** level;
    const first = index * width;
    const end = first + width;
    const pruned = this.pruned;
    if (pruned !== undefined && first < pruned.throughSeq) {
      // Below the prune point only the right edge there and the stored tile nodes survive.
      const edge = frontierNode(pruned, level, index);
      if (edge !== undefined) return edge;
      if (end > pruned.throughSeq) return this.halves(level, index);
      if (level < TILE) {
        throw new WardenError(
          'AUDIT_PRUNED',
          `entries ${first + 1}..${end} were pruned: prove them from the archive (warden audit prove --archive)`,
        );
      }
    }
    if (level % TILE === 0 && level > 0) {
      const stored = await this.source.tiles(level, index, 1);
      if (stored !== undefined) return stored[0]!;
    }
    const base = level - (level % TILE === 0 && level > 0 ? TILE : level % TILE);
    const count = 2 ** (level - base);
    if (base === 0) return foldPerfect(await this.source.leaves(first, end));
    const tiles = await this.source.tiles(base, index * count, count);
    if (tiles !== undefined) return foldPerfect(tiles);
    // Some tile node is missing (never stored, or removed): recompute from the level below.
    return this.halves(level, index);
  }

  private async halves(level: number, index: number): Promise<Uint8Array> {
    const [l, r] = await Promise.all([
      this.perfect(level - 1, index * 2),
      this.perfect(level - 1, index * 2 + 1),
    ]);
    return nodeHash(l, r);
  }
}

/** The pruned right edge's subtree at (level, index), if it is one. */
function frontierNode(pruned: PrunedRange, level: number, index: number): Uint8Array | undefined {
  const h = pruned.frontier[level];
  if (h === null || h === undefined) return undefined;
  // The edge's level-l subtree starts where the size's bits above l put it.
  const start = Math.floor(pruned.throughSeq / 2 ** (level + 1)) * 2 ** (level + 1);
  return start === index * 2 ** level ? h : undefined;
}
