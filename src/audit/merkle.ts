import { createHash, hash } from 'node:crypto';

// RFC 9162 (Certificate Transparency 2.0) §2.1 Merkle trees over SHA-256. The audit log's
// tamper evidence (issue #9) rests on these definitions, so they follow the RFC's wording
// closely; the verifiers take hostile input (proofs from a remote party) and answer `false`
// instead of throwing.

/** Size in bytes of every hash in this module (SHA-256). */
export const HASH_SIZE = 32;

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);
// Reused inputs for one-shot hashing (synchronous, so never shared by two calls at once).
const LEAF_SCRATCH = Buffer.alloc(1 + HASH_SIZE, 0x00);
const NODE_SCRATCH = Buffer.alloc(1 + 2 * HASH_SIZE, 0x01);

function sha256(...parts: readonly Uint8Array[]): Uint8Array {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

/** The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1). */
export function emptyRoot(): Uint8Array {
  return sha256();
}

/** The leaf hash SHA-256(0x00 || data) (RFC 9162 §2.1.1). */
export function leafHash(data: Uint8Array): Uint8Array {
  if (data.length === HASH_SIZE) {
    // The common case (a leaf is an entry's hash): one-shot hashing of a reused buffer, about
    // twice as fast as a Hash object for inputs this small.
    LEAF_SCRATCH.set(data, 1);
    return hash('sha256', LEAF_SCRATCH, 'buffer');
  }
  return sha256(LEAF_PREFIX, data);
}

/** Leaf hash of a 32-byte value given as 64 hex digits (no validation: the caller checked it). */
export function leafHashOfHex(hex: string): Uint8Array {
  LEAF_SCRATCH.write(hex, 1, HASH_SIZE, 'hex');
  return hash('sha256', LEAF_SCRATCH, 'buffer');
}

/** The interior node hash SHA-256(0x01 || left || right) (RFC 9162 §2.1.1). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length === HASH_SIZE && right.length === HASH_SIZE) {
    NODE_SCRATCH.set(left, 1);
    NODE_SCRATCH.set(right, 1 + HASH_SIZE);
    return hash('sha256', NODE_SCRATCH, 'buffer');
  }
  return sha256(NODE_PREFIX, left, right);
}

/** The largest power of two strictly below `n` (n > 1): the RFC's split point k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH over leafHashes[start, start + size); size ≥ 1. */
function subtreeRoot(hashes: readonly Uint8Array[], start: number, size: number): Uint8Array {
  if (size === 1) return hashes[start]!;
  const k = splitPoint(size);
  return nodeHash(subtreeRoot(hashes, start, k), subtreeRoot(hashes, start + k, size - k));
}

/** The Merkle Tree Hash MTH of a list of leaf hashes (RFC 9162 §2.1.1). */
export function rootFromLeafHashes(hashes: readonly Uint8Array[]): Uint8Array {
  return hashes.length === 0 ? emptyRoot() : subtreeRoot(hashes, 0, hashes.length);
}

function assertTreeSize(hashes: readonly Uint8Array[], treeSize: number): void {
  if (!Number.isSafeInteger(treeSize) || treeSize < 0 || treeSize > hashes.length) {
    throw new RangeError(`tree size ${treeSize} is outside 0..${hashes.length}`);
  }
}

/** PATH(m, D[n]) over leafHashes[start, start + size) (RFC 9162 §2.1.3.1). */
function path(hashes: readonly Uint8Array[], m: number, start: number, size: number): Uint8Array[] {
  if (size === 1) return [];
  const k = splitPoint(size);
  if (m < k) return [...path(hashes, m, start, k), subtreeRoot(hashes, start + k, size - k)];
  return [...path(hashes, m - k, start + k, size - k), subtreeRoot(hashes, start, k)];
}

/**
 * The inclusion proof of leaf `index` in the tree of the first `treeSize` leaf hashes
 * (RFC 9162 §2.1.3.1). Throws RangeError on arguments outside the tree: the caller owns the data.
 */
export function inclusionProof(
  leafHashes: readonly Uint8Array[],
  index: number,
  treeSize: number,
): Uint8Array[] {
  assertTreeSize(leafHashes, treeSize);
  if (!Number.isSafeInteger(index) || index < 0 || index >= treeSize) {
    throw new RangeError(`leaf index ${index} is outside 0..${treeSize - 1}`);
  }
  return path(leafHashes, index, 0, treeSize);
}

/** SUBPROOF(m, D[n], b) over leafHashes[start, start + size) (RFC 9162 §2.1.4.1). */
function subproof(
  hashes: readonly Uint8Array[],
  m: number,
  start: number,
  size: number,
  complete: boolean,
): Uint8Array[] {
  if (m === size) return complete ? [] : [subtreeRoot(hashes, start, size)];
  const k = splitPoint(size);
  if (m <= k) return [...subproof(hashes, m, start, k, complete), subtreeRoot(hashes, start + k, size - k)];
  return [...subproof(hashes, m - k, start + k, size - k, false), subtreeRoot(hashes, start, k)];
}

/**
 * The consistency proof between the trees of the first `m` and first `n` leaf hashes
 * (RFC 9162 §2.1.4.1); empty when m = 0 or m = n. Throws RangeError unless 0 ≤ m ≤ n ≤ length.
 */
export function consistencyProof(leafHashes: readonly Uint8Array[], m: number, n: number): Uint8Array[] {
  assertTreeSize(leafHashes, n);
  if (!Number.isSafeInteger(m) || m < 0 || m > n) throw new RangeError(`size ${m} is outside 0..${n}`);
  if (m === 0 || m === n) return [];
  return subproof(leafHashes, m, 0, n, true);
}

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === HASH_SIZE;
}

// Every proof element halves the verifier's size counter at least once, so no proof for a tree
// of safe-integer size has more elements than this; longer (or sparse) arrays are rejected before
// any hashing, which keeps a hostile `new Array(2 ** 32 - 1)` cheap.
const MAX_PROOF_LENGTH = 64;

function isProof(proof: unknown): proof is readonly Uint8Array[] {
  if (!Array.isArray(proof) || proof.length > MAX_PROOF_LENGTH) return false;
  for (let i = 0; i < proof.length; i++) if (!isHash(proof[i])) return false;
  return true;
}

function isTreeSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Byte equality of two hashes; lengths first. Hashes here are public, so no constant time. */
export function equalHashes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// Arithmetic instead of bit operators: JS bit operators truncate to 32 bits and tree sizes
// may exceed 2^32.
const isOdd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

/** Whether `proof` puts `leafHash` at `leafIndex` in the `treeSize` tree with `root` (RFC 9162 §2.1.3.2). */
export function verifyInclusion(
  leafIndex: number,
  treeSize: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!isTreeSize(leafIndex) || !isTreeSize(treeSize) || leafIndex >= treeSize) return false;
  if (!isHash(leafHash) || !isHash(root) || !isProof(proof)) return false;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalHashes(r, root);
}

/**
 * Whether `proof` shows the tree of size `m` with `rootM` is a prefix of the tree of size `n`
 * with `rootN` (RFC 9162 §2.1.4.2). m = 0 holds only with an empty proof; m = n only with an
 * empty proof and equal roots.
 */
export function verifyConsistency(
  m: number,
  n: number,
  rootM: Uint8Array,
  rootN: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!isTreeSize(m) || !isTreeSize(n) || m > n) return false;
  if (!isHash(rootM) || !isHash(rootN) || !isProof(proof)) return false;
  if (m === 0) return proof.length === 0;
  if (m === n) return proof.length === 0 && equalHashes(rootM, rootN);
  if (proof.length === 0) return false;
  // A power-of-two first tree is itself a complete subtree of the second: its root opens the path.
  const nodes = isPowerOfTwo(m) ? [rootM, ...proof] : proof;
  let fn = m - 1;
  let sn = n - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = nodes[0]!;
  let sr = nodes[0]!;
  for (const c of nodes.slice(1)) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalHashes(fr, rootM) && equalHashes(sr, rootN);
}

function isPowerOfTwo(x: number): boolean {
  let v = x;
  while (v > 1 && !isOdd(v)) v = half(v);
  return v === 1;
}

/**
 * A streaming MTH builder: push leaf hashes one by one and read the root at any size, keeping
 * only the roots of the perfect subtrees that make up the current tree (one per set bit of the
 * size, so O(log n) hashes for 10 M entries instead of the entries themselves).
 */
export class MerkleAccumulator {
  /** levels[i] is the root of the perfect subtree of 2^i leaves, when bit i of the size is set. */
  readonly #levels: (Uint8Array | undefined)[] = [];
  #size = 0;

  /**
   * An accumulator resumed at `size` leaves from its right edge (`frontier()` of one that
   * pushed them). Throws RangeError unless the frontier has exactly one hash per set bit.
   */
  static resume(size: number, frontier: readonly (Uint8Array | null | undefined)[]): MerkleAccumulator {
    if (!isTreeSize(size)) throw new RangeError(`tree size ${size} is not a non-negative safe integer`);
    const acc = new MerkleAccumulator();
    for (let level = 0; level < Math.max(frontier.length, 53); level++) {
      const bit = Math.floor(size / 2 ** level) % 2 === 1;
      const h = frontier[level] ?? undefined;
      if (bit !== (h !== undefined) || (h !== undefined && !isHash(h))) {
        throw new RangeError(`the frontier does not match tree size ${size} at level ${level}`);
      }
      acc.#levels[level] = h;
    }
    acc.#size = size;
    return acc;
  }

  /**
   * Appends one leaf hash (32 bytes). `onNode` sees every complete subtree root this push
   * creates: its level (leaves 2^level), index (it covers leaves index·2^level onwards) and hash.
   */
  push(leafHash: Uint8Array, onNode?: (level: number, index: number, hash: Uint8Array) => void): void {
    if (!isHash(leafHash)) throw new TypeError(`a leaf hash is ${HASH_SIZE} bytes`);
    let carry = leafHash;
    let level = 0;
    for (let left = this.#levels[level]; left !== undefined; left = this.#levels[level]) {
      carry = nodeHash(left, carry);
      this.#levels[level] = undefined;
      level++;
      onNode?.(level, (this.#size + 1) / 2 ** level - 1, carry);
    }
    this.#levels[level] = carry;
    this.#size++;
  }

  /** The number of leaves pushed so far. */
  get size(): number {
    return this.#size;
  }

  /** The right edge: the perfect subtree roots by level (null where the size's bit is clear). */
  frontier(): (Uint8Array | null)[] {
    const out: (Uint8Array | null)[] = [];
    for (let level = 0; 2 ** level <= this.#size; level++) out.push(this.#levels[level] ?? null);
    return out;
  }

  /** The MTH of the leaves pushed so far; equal to `rootFromLeafHashes` of the same list. */
  root(): Uint8Array {
    let acc: Uint8Array | undefined;
    for (const subtree of this.#levels) {
      if (subtree !== undefined) acc = acc === undefined ? subtree : nodeHash(subtree, acc);
    }
    return acc ?? emptyRoot();
  }
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Bytes of an even-length hex string; throws TypeError on anything else. */
export function fromHex(hex: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new TypeError('not an even-length hex string');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
