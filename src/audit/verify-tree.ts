/**
 * The verifier's second layer (issue #9): while `verifyChain` walks the entries,
 * this rebuilds the Merkle tree from them and holds it against
 * - every signed checkpoint in the store and every published one given (a file
 *   of JSON lines): the signature must verify with a trusted key, the signed
 *   payload must say what the row says, and the tree rebuilt from the entries
 *   must have the signed root and the signed head at the signed size. A chain
 *   rewritten and re-hashed from some entry on passes the chain check but not
 *   this one; a log cut short (head rewound too) ends before a checkpoint's size;
 * - the stored tile nodes and the builder's cursor, which proofs are made from.
 *
 * Memory: the tree is O(log n) hashes; stored checkpoints are read page by page
 * with the entries; published checkpoints are held as (size, root, head) — a
 * year of minutely checkpoints is half a million small records.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import {
  type Checkpoint,
  checkpointFromRow,
  openCheckpoint,
  parseCheckpoint,
  payloadMatches,
  type TrustedKeys,
} from './checkpoint.js';
import { guard } from './log.js';
import { MerkleAccumulator, toHex } from './merkle.js';
import { frontierFromJson } from './tree.js';
import { type HashRequest, inlineHasher, type TreeHasher, workerHasher } from './tree-hasher.js';
import type { VerifyProblem } from './types.js';

/** What the tree layer is checked against. */
export interface TreeVerifyOptions {
  /** Public keys checkpoints may be signed with. */
  trusted: TrustedKeys;
  /** Published checkpoints (e.g. the `audit.checkpoints.publish.file`), as JSON lines files. */
  publishedFiles?: readonly string[];
  /**
   * Hash the tree on a worker thread, overlapping with the chain walk: true, false, or by
   * default when the log has at least WORKER_THRESHOLD entries to check.
   */
  worker?: boolean;
}

/** Logs at least this long get the tree hashed on a worker thread (starting one costs ~30 ms). */
export const WORKER_THRESHOLD = 50_000;

/** What the tree layer found, beside the chain's verdict. */
export interface TreeVerifyReport {
  /** Stored checkpoints whose signature and root were checked against the entries. */
  checkpoints: number;
  /** Published checkpoints checked the same way. */
  published: number;
  /** Stored tile nodes compared with the ones the entries give. */
  nodes: number;
  /** The newest checkpoint checked. */
  latest?: { size: number; root: string; ts: number; kid: string };
  /** Entries up to this seq were pruned; the rest verified from the signed checkpoint there. */
  prunedThrough?: number;
  /** Entries after the newest checkpoint: not yet covered by a signature. */
  unsigned: number;
}

/** A checkpoint due at a size, with where it came from. */
interface Due {
  size: number;
  root: string;
  head: string;
  source: 'stored' | 'published';
  ts: number;
  kid: string;
}

const NODE_BATCH = 500;

export class TreeChecker {
  private hasher: TreeHasher | undefined;
  /** Entries handed to the hasher so far (the tree's size once they are hashed). */
  private size = 0;
  /** The batch being gathered for the hasher, and what to check once it is hashed. */
  private batch: HashRequest = { hashes: [], roots: [], frontierAt: null };
  private batchChecks: { d: Due; head: string }[] = [];
  private batchCursorHead: string | undefined;
  /** Batches handed to the hasher and not yet checked, in order. */
  private inflight: Promise<void> = Promise.resolve();
  /** The last accepted entry's leaf, not yet pushed (the chain walk may take it back). */
  private pending: { seq: number; hash: string } | undefined;
  private due: Due[] = [];
  private published: Due[] = [];
  private publishedAt = 0;
  /** Stored checkpoints fetched up to this size. */
  private fetchedTo = 0;
  private lastGood = 0;
  private problem: VerifyProblem | undefined;
  /**
   * The first stored node or cursor that differs from the entries. Reported last: when the
   * chain was re-hashed, the signed checkpoints tell the better story of the same damage.
   */
  private treeProblem: VerifyProblem | undefined;
  private nodes: { level: number; idx: number; hash: string }[] = [];
  private cursor: { size: number; head: string; frontier: string } | undefined;
  private logId = '';
  readonly report: TreeVerifyReport = { checkpoints: 0, published: 0, nodes: 0, unsigned: 0 };

  constructor(
    private readonly store: Store,
    private readonly opts: TreeVerifyOptions,
  ) {}

  /**
   * Read the prune point, the cursor and the published checkpoints. Returns where the chain
   * walk starts (after a prune: the pruned seq and hash, vouched for by the signed checkpoint
   * there), or a problem.
   */
  async start(): Promise<{ seq: number; hash: string } | VerifyProblem> {
    const state = await guard(() =>
      this.store.db.selectFrom('audit_tree').selectAll().where('id', '=', 1).executeTakeFirst(),
    );
    if (state === undefined) throw new WardenError('AUDIT_UNAVAILABLE', 'The audit log is unavailable');
    this.logId = state.log_id;
    this.cursor = { size: Number(state.size), head: state.head_hash, frontier: state.frontier };
    for (const file of this.opts.publishedFiles ?? []) {
      const p = await this.readPublished(file);
      if (p) return p;
    }
    this.published.sort((a, b) => a.size - b.size);
    const prune = await guard(() =>
      this.store.db
        .selectFrom('audit_prune')
        .selectAll()
        .orderBy('through_seq', 'desc')
        .limit(1)
        .executeTakeFirst(),
    );
    if (prune === undefined) {
      this.hasher = await this.makeHasher(0, []);
      return { seq: 0, hash: '' };
    }
    const k = Number(prune.through_seq);
    this.report.prunedThrough = k;
    const row = await guard(() =>
      this.store.db.selectFrom('audit_checkpoint').selectAll().where('tree_size', '=', k).executeTakeFirst(),
    );
    const bad = (message: string): VerifyProblem => ({ seq: k, kind: 'checkpoint-signature', message });
    if (row === undefined) return bad(`entries up to ${k} were pruned but no checkpoint was signed at ${k}`);
    const cp = checkpointFromRow(row, this.logId);
    const signed = await this.checkSignature(cp, 'stored');
    if (signed) return signed;
    let frontier: (Uint8Array | null)[];
    let rootThere: string;
    try {
      frontier = frontierFromJson(prune.frontier);
      rootThere = toHex(MerkleAccumulator.resume(k, frontier).root());
    } catch {
      return bad(`the right edge recorded for the prune at ${k} is malformed`);
    }
    if (rootThere !== cp.root || prune.through_hash !== cp.head) {
      return bad(`the prune record at ${k} does not match the checkpoint signed there: it was altered`);
    }
    this.report.checkpoints++;
    this.report.latest = { size: cp.size, root: cp.root, ts: cp.ts, kid: cp.kid };
    this.lastGood = k;
    this.fetchedTo = k;
    this.size = k;
    this.hasher = await this.makeHasher(k, frontier);
    this.publishedAt = this.published.findIndex((p) => p.size > k);
    if (this.publishedAt < 0) this.publishedAt = this.published.length;
    return { seq: k, hash: prune.through_hash };
  }

  /** Before a page of entries after `fromSeq`: fetch the stored checkpoints it may reach. */
  async prepare(fromSeq: number, pageSize: number): Promise<VerifyProblem | undefined> {
    const to = fromSeq + pageSize + 1;
    if (to > this.fetchedTo) {
      const rows = await guard(() =>
        this.store.db
          .selectFrom('audit_checkpoint')
          .selectAll()
          .where('tree_size', '>', this.fetchedTo)
          .where('tree_size', '<=', to)
          .orderBy('tree_size', 'asc')
          .execute(),
      );
      for (const row of rows) {
        const cp = checkpointFromRow(row, this.logId);
        const p = await this.checkSignature(cp, 'stored');
        if (p) return p;
        this.due.push({ ...cp, source: 'stored' });
      }
      this.fetchedTo = to;
    }
    return this.problem;
  }

  /** The chain walk accepted entry `seq` with chain hash `hash`. */
  accept(seq: number, hash: string): void {
    if (this.pending !== undefined) this.push(this.pending);
    this.pending = { seq, hash };
  }

  /** The chain walk took its last entry back (to re-check it on the slow path). */
  rewind(): boolean {
    if (this.pending === undefined) return false;
    this.pending = undefined;
    return true;
  }

  /**
   * After a page: hand its entries to the hasher and check what the one before gave (the
   * hasher works on this page while the walk reads the next); report the first problem.
   */
  async flush(): Promise<VerifyProblem | undefined> {
    if (this.problem) return this.problem;
    const before = this.inflight;
    this.dispatch();
    await before;
    if (this.nodes.length >= NODE_BATCH && this.treeProblem === undefined) await this.checkNodes();
    return this.problem;
  }

  /** Everything accepted so far hashed and checked: the first checkpoint problem, if any. */
  async settle(): Promise<VerifyProblem | undefined> {
    this.dispatch();
    await this.inflight;
    return this.problem;
  }

  /** Stop the worker, if any. */
  async close(): Promise<void> {
    const h = this.hasher;
    this.hasher = undefined;
    await h?.close();
  }

  /** After the walk: push the last entry, check what remains due. */
  async finish(lastSeq: number): Promise<VerifyProblem | undefined> {
    if (this.pending !== undefined) this.push(this.pending);
    this.pending = undefined;
    await this.settle();
    if (this.problem) return this.problem;
    await this.checkNodes();
    // Checkpoints beyond the end: the log was cut short after they were signed.
    const beyond = await guard(() =>
      this.store.db
        .selectFrom('audit_checkpoint')
        .selectAll()
        .where('tree_size', '>', lastSeq)
        .orderBy('tree_size', 'desc')
        .limit(1)
        .executeTakeFirst(),
    );
    const candidates: Due[] = [...this.due, ...this.published.slice(this.publishedAt)];
    if (beyond !== undefined) {
      const cp = checkpointFromRow(beyond, this.logId);
      const bad = await this.checkSignature(cp, 'stored');
      if (bad) return bad;
      candidates.push({ ...cp, source: 'stored' });
    }
    const far = candidates.filter((c) => c.size > lastSeq).sort((a, b) => b.size - a.size)[0];
    if (far !== undefined) {
      return {
        seq: lastSeq + 1,
        kind: 'truncated',
        message: `a ${far.source} checkpoint signed ${new Date(far.ts).toISOString()} covers ${far.size} entries but the log ends at ${lastSeq}: entries ${lastSeq + 1}..${far.size} were removed`,
      };
    }
    if (this.cursor !== undefined && this.cursor.size > lastSeq) {
      return {
        seq: lastSeq + 1,
        kind: 'truncated',
        message: `the Merkle tree was built over ${this.cursor.size} entries but the log ends at ${lastSeq}`,
      };
    }
    this.report.unsigned = lastSeq - (this.report.latest?.size ?? this.report.prunedThrough ?? 0);
    return this.treeProblem;
  }

  private async makeHasher(size: number, frontier: (Uint8Array | null)[]): Promise<TreeHasher> {
    let useWorker = this.opts.worker;
    if (useWorker === undefined) {
      const head = await guard(() =>
        this.store.db.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirst(),
      );
      useWorker = Number(head?.seq ?? 0) - size >= WORKER_THRESHOLD;
    }
    return useWorker ? workerHasher(size, frontier) : inlineHasher(size, frontier);
  }

  /** Entry `e` joins the batch; checkpoints and the cursor at its size are checked once it is hashed. */
  private push(e: { seq: number; hash: string }): void {
    if (this.problem) return;
    this.batch.hashes.push(e.hash);
    const size = ++this.size;
    const due = (d: Due) => {
      if (d.size < size) return; // below a prune point: covered by the archive
      this.batchChecks.push({ d, head: e.hash });
      this.batch.roots.push(size);
    };
    while (this.due.length > 0 && this.due[0]!.size <= size) due(this.due.shift()!);
    while (this.publishedAt < this.published.length && this.published[this.publishedAt]!.size <= size) {
      due(this.published[this.publishedAt++]!);
    }
    if (this.cursor !== undefined && this.cursor.size === size) {
      this.batch.frontierAt = size;
      this.batchCursorHead = e.hash;
    }
  }

  /** Hand the gathered batch to the hasher; its results are checked in order. */
  private dispatch(): void {
    if (this.batch.hashes.length === 0 || this.hasher === undefined) return;
    const req = this.batch;
    const checks = this.batchChecks;
    const cursorHead = this.batchCursorHead;
    this.batch = { hashes: [], roots: [], frontierAt: null };
    this.batchChecks = [];
    this.batchCursorHead = undefined;
    const hashed = this.hasher.run(req);
    // Mark it handled here; the chain below re-raises a failure where it is awaited.
    hashed.catch(() => {});
    this.inflight = this.inflight.then(async () => {
      const r = await hashed;
      for (const c of checks) this.checkDue(c.d, r.roots.get(c.d.size), c.head);
      if (this.treeProblem === undefined) this.nodes.push(...r.nodes);
      if (r.frontier !== null && cursorHead !== undefined) this.checkCursor(r.frontier, cursorHead);
    });
  }

  private checkDue(d: Due, root: string | undefined, head: string): void {
    if (this.problem) return;
    if (root !== d.root || head !== d.head) {
      const from = this.lastGood + 1;
      this.problem = {
        seq: from,
        kind: 'modified',
        message: `the entries do not give the root ${d.source === 'published' ? 'published' : 'signed'} at checkpoint ${d.size} (${new Date(d.ts).toISOString()}): entries ${from}..${d.size} were changed and the chain re-hashed over them`,
      };
      return;
    }
    this.lastGood = d.size;
    if (d.source === 'published') this.report.published++;
    else this.report.checkpoints++;
    if (this.report.latest === undefined || d.size >= this.report.latest.size) {
      this.report.latest = { size: d.size, root: d.root, ts: d.ts, kid: d.kid };
    }
  }

  private checkCursor(frontier: (string | null)[], head: string): void {
    const c = this.cursor!;
    let ok = c.head === head;
    try {
      ok &&=
        JSON.stringify(frontierFromJson(c.frontier).map((h) => (h ? toHex(h) : null))) ===
        JSON.stringify(frontier);
    } catch {
      ok = false;
    }
    if (!ok) {
      this.treeProblem ??= {
        seq: c.size,
        kind: 'tree-mismatch',
        message: `the Merkle tree builder's state at ${c.size} entries differs from the entries: checkpoints after it would sign a wrong root`,
      };
    }
  }

  private async checkNodes(): Promise<void> {
    const batch = this.nodes;
    this.nodes = [];
    for (let i = 0; i < batch.length && !this.treeProblem; i += NODE_BATCH) {
      const part = batch.slice(i, i + NODE_BATCH);
      const rows = await guard(() =>
        this.store.db
          .selectFrom('audit_tree_node')
          .select(['level', 'idx', 'hash'])
          .where((eb) => eb.or(part.map((n) => eb.and([eb('level', '=', n.level), eb('idx', '=', n.idx)]))))
          .execute(),
      );
      const stored = new Map(rows.map((r) => [`${r.level}:${Number(r.idx)}`, r.hash]));
      for (const n of part) {
        const s = stored.get(`${n.level}:${n.idx}`);
        if (s === undefined) continue;
        this.report.nodes++;
        if (s !== n.hash) {
          this.treeProblem ??= {
            seq: n.idx * 2 ** n.level + 1,
            kind: 'tree-mismatch',
            message: `the stored Merkle node over entries ${n.idx * 2 ** n.level + 1}..${(n.idx + 1) * 2 ** n.level} differs from the one the entries give: proofs over them would not verify`,
          };
          return;
        }
      }
    }
  }

  private async checkSignature(
    cp: Checkpoint,
    source: 'stored' | 'published',
  ): Promise<VerifyProblem | undefined> {
    const opened = await openCheckpoint(cp.jws, this.opts.trusted);
    const where = `${source} checkpoint ${cp.size}`;
    if (!opened.ok)
      return { seq: cp.size, kind: 'checkpoint-signature', message: `${where}: ${opened.reason}` };
    if (!payloadMatches(cp, opened.payload) || opened.kid !== cp.kid) {
      return {
        seq: cp.size,
        kind: 'checkpoint-signature',
        message: `${where}: its fields differ from what was signed`,
      };
    }
    if (opened.payload.log !== this.logId) {
      return {
        seq: cp.size,
        kind: 'checkpoint-signature',
        message: `${where} was signed for another log (${opened.payload.log}, this is ${this.logId})`,
      };
    }
    return undefined;
  }

  private async readPublished(file: string): Promise<VerifyProblem | undefined> {
    const bySize = new Map<number, Due>();
    let lineNo = 0;
    try {
      const lines = createInterface({
        input: createReadStream(file, 'utf8'),
        crlfDelay: Number.POSITIVE_INFINITY,
      });
      for await (const line of lines) {
        lineNo++;
        if (line.trim() === '') continue;
        let cp: Checkpoint | undefined;
        try {
          cp = parseCheckpoint(JSON.parse(line));
        } catch {
          cp = undefined;
        }
        if (cp === undefined) {
          return { seq: 0, kind: 'checkpoint-signature', message: `${file}:${lineNo} is not a checkpoint` };
        }
        const bad = await this.checkSignature(cp, 'published');
        if (bad) return { ...bad, message: `${file}:${lineNo}: ${bad.message}` };
        const seen = bySize.get(cp.size);
        if (seen !== undefined && (seen.root !== cp.root || seen.head !== cp.head)) {
          return {
            seq: cp.size,
            kind: 'checkpoint-signature',
            message: `${file}:${lineNo}: two checkpoints signed for size ${cp.size} disagree (a forked log)`,
          };
        }
        bySize.set(cp.size, {
          size: cp.size,
          root: cp.root,
          head: cp.head,
          ts: cp.ts,
          kid: cp.kid,
          source: 'published',
        });
      }
    } catch (e) {
      throw new WardenError(
        'INVALID_REQUEST',
        `cannot read published checkpoints ${file}: ${(e as Error).message}`,
      );
    }
    this.published.push(...bySize.values());
    return undefined;
  }
}
