/**
 * Proof bundles (issue #9): self-contained JSON anyone can check with the
 * checkpoint key's public half and nothing else — not the database, not Warden.
 *
 * - inclusion: an entry as stored, its leaf index, the audit path, and the signed
 *   checkpoint whose root the path leads to. Checking recomputes the entry's chain
 *   hash from its content, so the bundle proves the content, not just a hash.
 * - consistency: two signed checkpoints and the proof that the later tree extends
 *   the earlier one (nothing signed at the first size was changed or dropped since).
 */
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import {
  type Checkpoint,
  type Checkpointer,
  openCheckpoint,
  parseCheckpoint,
  payloadMatches,
  type TrustedKeys,
} from './checkpoint.js';
import { entryHash, fromRow } from './entry.js';
import { fromHex, toHex, verifyConsistency, verifyInclusion } from './merkle.js';
import { entryLeafHash, type MerkleTree } from './tree.js';
import type { AuditEntry } from './types.js';

export interface InclusionBundle {
  type: 'warden.audit.inclusion';
  entry: AuditEntry;
  leafIndex: number;
  treeSize: number;
  proof: string[];
  checkpoint: Checkpoint;
}

export interface ConsistencyBundle {
  type: 'warden.audit.consistency';
  from: Checkpoint;
  to: Checkpoint;
  proof: string[];
}

export type ProofBundle = InclusionBundle | ConsistencyBundle;

/** The outcome of checking a bundle. */
export type BundleCheck = { ok: true; summary: string } | { ok: false; reason: string };

/** An inclusion proof for entry `seq` in the checkpoint at `size` (default: the first covering it). */
export async function inclusionBundle(
  store: Store,
  tree: MerkleTree,
  checkpoints: Checkpointer,
  seq: number,
  size?: number,
): Promise<InclusionBundle> {
  if (!Number.isSafeInteger(seq) || seq < 1)
    throw new WardenError('INVALID_REQUEST', 'seq must be a positive integer');
  const checkpoint = size === undefined ? await checkpoints.covering(seq) : await checkpoints.get(size);
  if (checkpoint === undefined) {
    const latest = await checkpoints.latest();
    throw new WardenError(
      'AUDIT_NOT_CHECKPOINTED',
      size === undefined
        ? `entry ${seq} is newer than the latest checkpoint (${latest?.size ?? 'none'}): sign one with warden audit checkpoint, or wait for the next`
        : `no checkpoint was signed at size ${size}`,
    );
  }
  if (seq > checkpoint.size) {
    throw new WardenError(
      'INVALID_REQUEST',
      `entry ${seq} is not in the checkpoint of ${checkpoint.size} entries`,
    );
  }
  const row = await store.db.selectFrom('audit_log').selectAll().where('seq', '=', seq).executeTakeFirst();
  if (row === undefined) {
    const pruned = await tree.pruned();
    if (pruned !== undefined && seq <= pruned.throughSeq) {
      throw new WardenError(
        'AUDIT_PRUNED',
        `entry ${seq} was archived and pruned: prove it from the archive (warden audit prove ${seq} --archive FILE)`,
      );
    }
    throw new WardenError('NOT_FOUND', `there is no audit entry ${seq}`);
  }
  const reader = await tree.reader();
  const proof = await reader.inclusion(seq - 1, checkpoint.size);
  return {
    type: 'warden.audit.inclusion',
    entry: fromRow(row),
    leafIndex: seq - 1,
    treeSize: checkpoint.size,
    proof: proof.map(toHex),
    checkpoint,
  };
}

/** A consistency proof between the checkpoints at `from` and `to` (default: the latest). */
export async function consistencyBundle(
  tree: MerkleTree,
  checkpoints: Checkpointer,
  from: number,
  to?: number,
): Promise<ConsistencyBundle> {
  const a = await checkpoints.get(from);
  const b = to === undefined ? await checkpoints.latest() : await checkpoints.get(to);
  if (a === undefined)
    throw new WardenError('AUDIT_NOT_CHECKPOINTED', `no checkpoint was signed at size ${from}`);
  if (b === undefined)
    throw new WardenError('AUDIT_NOT_CHECKPOINTED', `no checkpoint was signed at size ${to ?? '(latest)'}`);
  if (a.size > b.size)
    throw new WardenError('INVALID_REQUEST', `checkpoint ${a.size} is newer than checkpoint ${b.size}`);
  const reader = await tree.reader();
  const proof = await reader.consistency(a.size, b.size);
  return { type: 'warden.audit.consistency', from: a, to: b, proof: proof.map(toHex) };
}

async function checkSigned(c: unknown, trusted: TrustedKeys, what: string): Promise<Checkpoint | string> {
  const cp = parseCheckpoint(c);
  if (cp === undefined) return `${what} is not a checkpoint`;
  const opened = await openCheckpoint(cp.jws, trusted);
  if (!opened.ok) return `${what}: ${opened.reason}`;
  if (!payloadMatches(cp, opened.payload)) return `${what}: its fields differ from what was signed`;
  return cp;
}

function hexList(v: unknown): Uint8Array[] | undefined {
  if (!Array.isArray(v) || v.length > 64) return undefined;
  const out: Uint8Array[] = [];
  for (const h of v) {
    if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) return undefined;
    out.push(fromHex(h));
  }
  return out;
}

/** Check a bundle (untrusted JSON) against the trusted keys. Never throws on bad input. */
export async function checkBundle(value: unknown, trusted: TrustedKeys): Promise<BundleCheck> {
  const b = value as {
    type?: unknown;
    proof?: unknown;
    checkpoint?: unknown;
    entry?: unknown;
    leafIndex?: unknown;
    treeSize?: unknown;
    from?: unknown;
    to?: unknown;
  } | null;
  if (typeof b !== 'object' || b === null) return { ok: false, reason: 'not a proof bundle' };
  const proof = hexList(b.proof);
  if (proof === undefined) return { ok: false, reason: 'the proof is not a list of SHA-256 hex hashes' };
  if (b.type === 'warden.audit.inclusion') {
    const cp = await checkSigned(b.checkpoint, trusted, 'the checkpoint');
    if (typeof cp === 'string') return { ok: false, reason: cp };
    const entry = b.entry as AuditEntry | undefined;
    if (typeof entry !== 'object' || entry === null || !Number.isSafeInteger(entry.seq)) {
      return { ok: false, reason: 'the bundle holds no entry' };
    }
    let hash: string;
    try {
      hash = entryHash(entry);
    } catch {
      return { ok: false, reason: 'the entry cannot be encoded' };
    }
    if (hash !== entry.hash)
      return { ok: false, reason: `entry ${entry.seq}'s content does not match its hash` };
    if (b.leafIndex !== entry.seq - 1 || b.treeSize !== cp.size) {
      return { ok: false, reason: 'the leaf index or tree size does not match the entry and the checkpoint' };
    }
    const ok = verifyInclusion(entry.seq - 1, cp.size, entryLeafHash(hash), proof, fromHex(cp.root));
    return ok
      ? {
          ok: true,
          summary: `entry ${entry.seq} (${entry.event}, ${new Date(entry.ts).toISOString()}) is in the log of ${cp.size} entries signed ${new Date(cp.ts).toISOString()} by key ${cp.kid}`,
        }
      : { ok: false, reason: `the audit path does not lead from entry ${entry.seq} to the signed root` };
  }
  if (b.type === 'warden.audit.consistency') {
    const from = await checkSigned(b.from, trusted, 'the first checkpoint');
    if (typeof from === 'string') return { ok: false, reason: from };
    const to = await checkSigned(b.to, trusted, 'the second checkpoint');
    if (typeof to === 'string') return { ok: false, reason: to };
    if (from.log !== to.log) return { ok: false, reason: 'the checkpoints belong to different logs' };
    const ok = verifyConsistency(from.size, to.size, fromHex(from.root), fromHex(to.root), proof);
    return ok
      ? {
          ok: true,
          summary: `the log of ${to.size} entries (signed ${new Date(to.ts).toISOString()}) extends the log of ${from.size} entries (signed ${new Date(from.ts).toISOString()}) unchanged`,
        }
      : {
          ok: false,
          reason: `checkpoint ${to.size} does not extend checkpoint ${from.size}: history was rewritten`,
        };
  }
  return {
    ok: false,
    reason: 'unknown bundle type (expected warden.audit.inclusion or warden.audit.consistency)',
  };
}
