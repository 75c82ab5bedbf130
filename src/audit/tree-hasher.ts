/**
 * The verifier's Merkle hashing, inline or on a worker thread (issue #4's verify
 * target). The tree costs two SHA-256 per entry, about a quarter of a verify
 * walk; on a worker it overlaps with the main thread reading rows and checking
 * the chain. Both hashers build the same RFC 9162 tree from the same right
 * edge: the worker runs the same fold as MerkleAccumulator (leaf 0x00 ‖ hash,
 * node 0x01 ‖ left ‖ right, carry up while the level is full).
 */
import { Worker } from 'node:worker_threads';
import { leafHashOfHex, MerkleAccumulator, toHex } from './merkle.js';
import { TILE } from './tree.js';

/** One batch: entry hashes in order, and what to report at which sizes. */
export interface HashRequest {
  hashes: string[];
  /** Sizes (within the batch) whose root to report. */
  roots: number[];
  /** A size (within the batch) whose right edge to report. */
  frontierAt: number | null;
}

export interface HashResult {
  roots: Map<number, string>;
  /** Tile nodes (levels 8, 16, …) completed by the batch. */
  nodes: { level: number; idx: number; hash: string }[];
  frontier: (string | null)[] | null;
}

export interface TreeHasher {
  run(req: HashRequest): Promise<HashResult>;
  close(): Promise<void>;
}

/** Hashes on the calling thread. */
export function inlineHasher(size: number, frontier: readonly (Uint8Array | null)[]): TreeHasher {
  const acc = MerkleAccumulator.resume(size, frontier);
  return {
    async run(req) {
      const want = new Set(req.roots);
      const out: HashResult = { roots: new Map(), nodes: [], frontier: null };
      const onNode = (level: number, idx: number, hash: Uint8Array) => {
        if (level % TILE === 0) out.nodes.push({ level, idx, hash: toHex(hash) });
      };
      for (const h of req.hashes) {
        acc.push(leafHashOfHex(h), onNode);
        if (want.has(acc.size)) out.roots.set(acc.size, toHex(acc.root()));
        if (req.frontierAt === acc.size)
          out.frontier = acc.frontier().map((x) => (x === null ? null : toHex(x)));
      }
      return out;
    },
    close: async () => {},
  };
}

// Plain CommonJS run by `new Worker(code, { eval: true })`: no file to resolve in src/ or dist/.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { hash } = require('node:crypto');
const TILE = ${TILE};
let size = workerData.size;
const levels = workerData.frontier.map((h) => (h === null ? undefined : Buffer.from(h, 'hex')));
const leafBuf = Buffer.alloc(33, 0);
const nodeBuf = Buffer.alloc(65, 1);
const node = (l, r) => { nodeBuf.set(l, 1); nodeBuf.set(r, 33); return hash('sha256', nodeBuf, 'buffer'); };
const root = () => {
  let acc;
  for (const t of levels) if (t !== undefined) acc = acc === undefined ? t : node(t, acc);
  return acc === undefined ? hash('sha256', Buffer.alloc(0), 'buffer') : acc;
};
const frontier = () => {
  const out = [];
  for (let l = 0; 2 ** l <= size; l++) out.push(levels[l] === undefined ? null : levels[l].toString('hex'));
  return out;
};
parentPort.on('message', (m) => {
  const bytes = Buffer.from(m.bytes);
  const want = new Set(m.roots);
  const out = { id: m.id, roots: [], nodes: [], frontier: null };
  for (let i = 0; i < m.count; i++) {
    leafBuf.set(bytes.subarray(i * 32, i * 32 + 32), 1);
    let carry = hash('sha256', leafBuf, 'buffer');
    let level = 0;
    while (levels[level] !== undefined) {
      carry = node(levels[level], carry);
      levels[level] = undefined;
      level++;
      if (level % TILE === 0) out.nodes.push([level, (size + 1) / 2 ** level - 1, carry.toString('hex')]);
    }
    levels[level] = carry;
    size++;
    if (want.has(size)) out.roots.push([size, root().toString('hex')]);
    if (m.frontierAt === size) out.frontier = frontier();
  }
  parentPort.postMessage(out);
});
`;

/** Hashes on a worker thread; batches are answered in order. */
export function workerHasher(size: number, frontier: readonly (Uint8Array | null)[]): TreeHasher {
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { size, frontier: frontier.map((h) => (h === null ? null : toHex(h))) },
  });
  worker.unref();
  let next = 0;
  const waiting = new Map<number, { resolve(r: HashResult): void; reject(e: unknown): void }>();
  let failed: unknown;
  const failAll = (e: unknown) => {
    failed ??= e;
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`the tree hashing worker exited (${code})`)));
  worker.on(
    'message',
    (m: {
      id: number;
      roots: [number, string][];
      nodes: [number, number, string][];
      frontier: (string | null)[] | null;
    }) => {
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      w?.resolve({
        roots: new Map(m.roots),
        nodes: m.nodes.map(([level, idx, hash]) => ({ level, idx, hash })),
        frontier: m.frontier,
      });
    },
  );
  return {
    run(req) {
      if (failed !== undefined) return Promise.reject(failed);
      const bytes = Buffer.alloc(req.hashes.length * 32);
      for (let i = 0; i < req.hashes.length; i++) bytes.write(req.hashes[i]!, i * 32, 32, 'hex');
      const id = next++;
      const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      return new Promise<HashResult>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker.postMessage(
          { id, bytes: ab, count: req.hashes.length, roots: req.roots, frontierAt: req.frontierAt },
          [ab as ArrayBuffer],
        );
      });
    },
    async close() {
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}
