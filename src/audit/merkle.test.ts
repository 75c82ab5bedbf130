import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  emptyRoot,
  equalHashes,
  fromHex,
  HASH_SIZE,
  inclusionProof,
  leafHash,
  MerkleAccumulator,
  nodeHash,
  rootFromLeafHashes,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

// Third-party vectors: transparency-dev/merkle testdata at one commit, copied unmodified
// (test/fixtures/transparency-dev-merkle/README.md).
const FIXTURES = new URL('../../test/fixtures/transparency-dev-merkle/', import.meta.url);

interface InclusionVector {
  leafIndex: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

function loadVectors<T>(kind: 'inclusion' | 'consistency'): { name: string; vector: T }[] {
  const root = new URL(`${kind}/`, FIXTURES);
  const out: { name: string; vector: T }[] = [];
  for (const dir of readdirSync(root).sort()) {
    for (const file of readdirSync(new URL(`${dir}/`, root)).sort()) {
      const text = readFileSync(new URL(`${dir}/${file}`, root), 'utf8');
      out.push({ name: `${dir}/${file}`, vector: JSON.parse(text) as T });
    }
  }
  return out;
}

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const proofOf = (proof: string[] | null): Uint8Array[] => (proof ?? []).map(b64);

// RFC 6962 reference tree (transparency-dev/merkle testonly/constants.go): leaf inputs and the
// expected root of every prefix, sizes 0..8.
const REFERENCE_LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(fromHex);
const REFERENCE_ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const REFERENCE_LEAF_HASHES = REFERENCE_LEAVES.map(leafHash);

const inclusionVectors = loadVectors<InclusionVector>('inclusion');
const consistencyVectors = loadVectors<ConsistencyVector>('consistency');

describe('transparency-dev/merkle vectors', () => {
  it('has the whole copied set', () => {
    expect(inclusionVectors).toHaveLength(82);
    expect(consistencyVectors).toHaveLength(84);
    expect(inclusionVectors.filter((v) => !v.vector.wantErr)).toHaveLength(5);
    expect(consistencyVectors.filter((v) => !v.vector.wantErr)).toHaveLength(5);
  });

  it.each(inclusionVectors)('inclusion $name', ({ vector: v }) => {
    const ok = verifyInclusion(v.leafIndex, v.treeSize, b64(v.leafHash), proofOf(v.proof), b64(v.root));
    expect(ok).toBe(!v.wantErr);
  });

  it.each(consistencyVectors)('consistency $name', ({ vector: v }) => {
    const ok = verifyConsistency(v.size1, v.size2, b64(v.root1), b64(v.root2), proofOf(v.proof));
    expect(ok).toBe(!v.wantErr);
  });

  it('generates the same proofs as the happy-path vectors over the reference tree', () => {
    for (const { vector: v } of inclusionVectors.filter((x) => !x.vector.wantErr)) {
      const hashes = REFERENCE_LEAF_HASHES;
      expect(toHex(rootFromLeafHashes(hashes.slice(0, v.treeSize)))).toBe(toHex(b64(v.root)));
      expect(inclusionProof(hashes, v.leafIndex, v.treeSize).map(toHex)).toEqual(proofOf(v.proof).map(toHex));
    }
    for (const { vector: v } of consistencyVectors.filter((x) => !x.vector.wantErr)) {
      expect(toHex(rootFromLeafHashes(REFERENCE_LEAF_HASHES.slice(0, v.size2)))).toBe(toHex(b64(v.root2)));
      expect(consistencyProof(REFERENCE_LEAF_HASHES, v.size1, v.size2).map(toHex)).toEqual(
        proofOf(v.proof).map(toHex),
      );
    }
  });
});

describe('RFC 6962 reference values', () => {
  it('hashes leaves, nodes and the empty tree', () => {
    expect(toHex(emptyRoot())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(toHex(leafHash(new Uint8Array()))).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
    expect(toHex(leafHash(Buffer.from('L123456')))).toBe(
      '395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56',
    );
    expect(toHex(nodeHash(Buffer.from('N123'), Buffer.from('N456')))).toBe(
      'aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb',
    );
  });

  it('computes the root of every prefix of the 8-leaf reference tree', () => {
    const acc = new MerkleAccumulator();
    for (let size = 0; size <= 8; size++) {
      expect(toHex(rootFromLeafHashes(REFERENCE_LEAF_HASHES.slice(0, size)))).toBe(REFERENCE_ROOTS[size]);
      expect(toHex(acc.root())).toBe(REFERENCE_ROOTS[size]);
      const next = REFERENCE_LEAF_HASHES[size];
      if (next) acc.push(next);
    }
  });
});

const MAX = 70;
const leafHashes = Array.from({ length: 300 }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));
const roots = Array.from({ length: MAX + 2 }, (_, n) => rootFromLeafHashes(leafHashes.slice(0, n)));
const rootOf = (n: number): Uint8Array => roots[n]!;

/** A copy of `hash` with one bit flipped. */
function flipBit(hash: Uint8Array, bit: number): Uint8Array {
  const copy = Uint8Array.from(hash);
  copy[(bit >> 3) % copy.length]! ^= 1 << (bit & 7);
  return copy;
}

/** Every one-element bit flip of a proof. */
function mutatedProofs(proof: readonly Uint8Array[], seed: number): Uint8Array[][] {
  return proof.map((p, j) => proof.map((q, k) => (k === j ? flipBit(p, seed * 7 + j * 13) : q)));
}

describe('inclusion proofs, sizes 1..70', () => {
  it('verify for every index and fail when mutated', () => {
    let checked = 0;
    for (let n = 1; n <= MAX; n++) {
      for (let i = 0; i < n; i++) {
        const leaf = leafHashes[i]!;
        const proof = inclusionProof(leafHashes, i, n);
        expect(verifyInclusion(i, n, leaf, proof, rootOf(n))).toBe(true);
        for (const bad of mutatedProofs(proof, i))
          expect(verifyInclusion(i, n, leaf, bad, rootOf(n))).toBe(false);
        expect(verifyInclusion(i, n, flipBit(leaf, i), proof, rootOf(n))).toBe(false);
        expect(verifyInclusion(i, n, leaf, proof, flipBit(rootOf(n), n))).toBe(false);
        if (n > 1) {
          expect(verifyInclusion((i + 1) % n, n, leaf, proof, rootOf(n))).toBe(false);
          expect(verifyInclusion((i + n - 1) % n, n, leaf, proof, rootOf(n))).toBe(false);
        }
        expect(verifyInclusion(n, n, leaf, proof, rootOf(n))).toBe(false);
        expect(verifyInclusion(i, n + 1, leaf, proof, rootOf(n + 1))).toBe(false);
        if (n - 1 > i) expect(verifyInclusion(i, n - 1, leaf, proof, rootOf(n - 1))).toBe(false);
        expect(verifyInclusion(i, n, leaf, [...proof, leaf], rootOf(n))).toBe(false);
        if (proof.length > 0) expect(verifyInclusion(i, n, leaf, proof.slice(1), rootOf(n))).toBe(false);
        checked++;
      }
    }
    expect(checked).toBe((MAX * (MAX + 1)) / 2);
  });
});

describe('consistency proofs, 1 ≤ m ≤ n ≤ 70', () => {
  it('verify for every pair and fail when mutated', () => {
    let checked = 0;
    for (let n = 1; n <= MAX; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(leafHashes, m, n);
        const rootM = rootOf(m);
        const rootN = rootOf(n);
        expect(verifyConsistency(m, n, rootM, rootN, proof)).toBe(true);
        for (const bad of mutatedProofs(proof, m))
          expect(verifyConsistency(m, n, rootM, rootN, bad)).toBe(false);
        expect(verifyConsistency(m, n, flipBit(rootM, m), rootN, proof)).toBe(false);
        expect(verifyConsistency(m, n, rootM, flipBit(rootN, n), proof)).toBe(false);
        if (m > 1) expect(verifyConsistency(m - 1, n, rootOf(m - 1), rootN, proof)).toBe(false);
        if (m < n) {
          expect(verifyConsistency(m + 1, n, rootOf(m + 1), rootN, proof)).toBe(false);
          expect(verifyConsistency(m, n, rootN, rootM, proof)).toBe(false);
          expect(verifyConsistency(m, n, rootM, rootN, proof.slice(0, -1))).toBe(false);
        }
        expect(verifyConsistency(m, n + 1, rootM, rootOf(n + 1), proof)).toBe(false);
        expect(verifyConsistency(m, n, rootM, rootN, [...proof, rootN])).toBe(false);
        expect(verifyConsistency(n, m, rootN, rootM, proof)).toBe(m === n);
        checked++;
      }
    }
    expect(checked).toBe((MAX * (MAX + 1)) / 2);
  });

  it('treats the empty first tree as consistent only with an empty proof', () => {
    expect(consistencyProof(leafHashes, 0, 5)).toEqual([]);
    expect(verifyConsistency(0, 5, emptyRoot(), rootOf(5), [])).toBe(true);
    expect(verifyConsistency(0, 5, emptyRoot(), rootOf(5), [rootOf(5)])).toBe(false);
    expect(verifyConsistency(0, 0, emptyRoot(), emptyRoot(), [])).toBe(true);
  });
});

describe('MerkleAccumulator', () => {
  it('matches rootFromLeafHashes for sizes 0..300', () => {
    const acc = new MerkleAccumulator();
    for (let size = 0; size <= leafHashes.length; size++) {
      expect(acc.size).toBe(size);
      expect(toHex(acc.root())).toBe(toHex(rootFromLeafHashes(leafHashes.slice(0, size))));
      const next = leafHashes[size];
      if (next) acc.push(next);
    }
  });

  it('rejects a leaf hash of the wrong length', () => {
    expect(() => new MerkleAccumulator().push(new Uint8Array(31))).toThrow(TypeError);
  });
});

describe('generators', () => {
  it('reject arguments outside the tree', () => {
    expect(() => inclusionProof(leafHashes, 5, 5)).toThrow(RangeError);
    expect(() => inclusionProof(leafHashes, -1, 5)).toThrow(RangeError);
    expect(() => inclusionProof(leafHashes, 0, 301)).toThrow(RangeError);
    expect(() => consistencyProof(leafHashes, 6, 5)).toThrow(RangeError);
    expect(() => consistencyProof(leafHashes, 1, 1.5)).toThrow(RangeError);
  });
});

describe('hostile input', () => {
  const leaf = leafHashes[3]!;
  const n = 11;
  const proof = inclusionProof(leafHashes, 3, n);
  const cProof = consistencyProof(leafHashes, 3, n);
  const numbers = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, Number.MAX_VALUE, -0.5];
  const asHash = (x: unknown): Uint8Array => x as Uint8Array;
  /** The proof with a hole where its second element was. */
  const sparse = (p: readonly Uint8Array[]): Uint8Array[] => {
    const copy = [...p];
    delete copy[1];
    return copy;
  };
  const badHashes = [
    new Uint8Array(0),
    new Uint8Array(31),
    new Uint8Array(33),
    asHash(null),
    asHash('00'.repeat(32)),
    asHash(Array.from({ length: 32 }, () => 0)),
  ];

  it('verifyInclusion answers false, never throws', () => {
    const cases: [number, number, Uint8Array, readonly Uint8Array[], Uint8Array][] = [];
    for (const x of numbers) {
      cases.push([x, n, leaf, proof, rootOf(n)], [3, x, leaf, proof, rootOf(n)]);
    }
    for (const h of badHashes) {
      cases.push(
        [3, n, h, proof, rootOf(n)],
        [3, n, leaf, proof, h],
        [3, n, leaf, [...proof.slice(1), h], rootOf(n)],
      );
    }
    cases.push(
      [3, n, leaf, asHash(null) as unknown as Uint8Array[], rootOf(n)],
      [3, n, leaf, Array.from({ length: 10_000 }, () => leaf), rootOf(n)],
      [3, n, leaf, new Array(2 ** 32 - 1), rootOf(n)],
      [3, n, leaf, sparse(proof), rootOf(n)],
      [2 ** 52, 2 ** 53 - 1, leaf, Array.from({ length: 60 }, () => leaf), rootOf(n)],
      [Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER, leaf, proof, rootOf(n)],
      [0, 0, leaf, [], leaf],
    );
    for (const args of cases) {
      expect(() => verifyInclusion(...args)).not.toThrow();
      expect(verifyInclusion(...args)).toBe(false);
    }
  });

  it('verifyConsistency answers false, never throws', () => {
    const cases: [number, number, Uint8Array, Uint8Array, readonly Uint8Array[]][] = [];
    for (const x of numbers) {
      cases.push([x, n, rootOf(3), rootOf(n), cProof], [3, x, rootOf(3), rootOf(n), cProof]);
    }
    for (const h of badHashes) {
      cases.push(
        [3, n, h, rootOf(n), cProof],
        [3, n, rootOf(3), h, cProof],
        [3, n, rootOf(3), rootOf(n), [...cProof.slice(1), h]],
      );
    }
    cases.push(
      [3, n, rootOf(3), rootOf(n), asHash(undefined) as unknown as Uint8Array[]],
      [n, 3, rootOf(n), rootOf(3), cProof],
      [0, n, rootOf(0), rootOf(n), cProof],
      [3, n, rootOf(3), rootOf(n), Array.from({ length: 10_000 }, () => leaf)],
      [3, n, rootOf(3), rootOf(n), new Array(2 ** 32 - 1)],
      [3, n, rootOf(3), rootOf(n), sparse(cProof)],
      [2 ** 52 + 1, 2 ** 53 - 1, rootOf(3), rootOf(n), Array.from({ length: 60 }, () => leaf)],
      [3, 3, rootOf(3), rootOf(4), []],
    );
    for (const args of cases) {
      expect(() => verifyConsistency(...args)).not.toThrow();
      expect(verifyConsistency(...args)).toBe(false);
    }
  });
});

describe('helpers', () => {
  it('round-trips hex and compares hashes by length first', () => {
    const h = leafHashes[0]!;
    expect(h).toHaveLength(HASH_SIZE);
    expect(fromHex(toHex(h))).toEqual(h);
    expect(() => fromHex('abc')).toThrow(TypeError);
    expect(() => fromHex('zz')).toThrow(TypeError);
    expect(equalHashes(h, Uint8Array.from(h))).toBe(true);
    expect(equalHashes(h, h.subarray(0, 31))).toBe(false);
    expect(equalHashes(h, flipBit(h, 255))).toBe(false);
  });
});
