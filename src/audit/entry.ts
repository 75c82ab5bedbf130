/**
 * The entry's hash and its mapping to and from an `audit_log` row. Writer and
 * verifier both go through here, so they cannot disagree on what is hashed.
 */
import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import type { AuditLogTable } from '../store/index.js';
import type {
  ActorType,
  AuditDecision,
  AuditEntry,
  AuditEvent,
  AuditResult,
  TriggerSource,
} from './types.js';

// canonicalize is CommonJS whose typings say `export default`; under NodeNext TypeScript reads
// that as `module.exports.default`, but Node hands ESM importers `module.exports`, the function.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** SHA-256 hex of the RFC 8785 (JCS) encoding of every field of `entry` except `hash`. */
export function entryHash(entry: Omit<AuditEntry, 'hash'>): string {
  // Fields are picked by name so that extra properties on the argument (a full
  // AuditEntry passes structurally) never leak into the hash.
  const body = {
    seq: entry.seq,
    id: entry.id,
    ts: entry.ts,
    prevHash: entry.prevHash,
    traceId: entry.traceId,
    event: entry.event,
    actorType: entry.actorType,
    actorId: entry.actorId ?? null,
    agentId: entry.agentId ?? null,
    agentType: entry.agentType ?? null,
    sessionId: entry.sessionId ?? null,
    triggerUserId: entry.triggerUserId ?? null,
    triggerSource: entry.triggerSource ?? null,
    toolName: entry.toolName ?? null,
    parameters: entry.parameters ?? null,
    reasoning: entry.reasoning ?? null,
    decision: entry.decision ?? null,
    result: entry.result ?? null,
    latencyMs: entry.latencyMs ?? null,
    data: entry.data ?? null,
  };
  const text = canonicalize(body);
  if (text === undefined) throw new TypeError('audit entry is not JSON-encodable');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** JSON text for a JSON column; null stays SQL NULL. */
export function jsonColumn(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

function parseJson(text: string | null, column: string, seq: number): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new CorruptEntryError(seq, `${column} is not valid JSON`);
  }
}

/** A stored row that cannot even be decoded: verification reports it as modified. */
export class CorruptEntryError extends Error {
  constructor(
    readonly seq: number,
    reason: string,
  ) {
    super(`audit entry ${seq}: ${reason}`);
    this.name = 'CorruptEntryError';
  }
}

/** The row for `entry`. */
export function toRow(entry: AuditEntry): AuditLogTable {
  return {
    seq: entry.seq,
    id: entry.id,
    ts: entry.ts,
    trace_id: entry.traceId,
    event: entry.event,
    actor_type: entry.actorType,
    actor_id: entry.actorId,
    agent_id: entry.agentId,
    agent_type: entry.agentType,
    session_id: entry.sessionId,
    trigger_user_id: entry.triggerUserId,
    trigger_source: entry.triggerSource,
    tool_name: entry.toolName,
    parameters: jsonColumn(entry.parameters),
    reasoning: entry.reasoning,
    decision: jsonColumn(entry.decision),
    result: entry.result,
    latency_ms: entry.latencyMs,
    data: jsonColumn(entry.data),
    prev_hash: entry.prevHash,
    hash: entry.hash,
  };
}

/** The entry a row holds, JSON columns parsed; throws CorruptEntryError when one is not JSON. */
export function fromRow(row: AuditLogTable): AuditEntry {
  // Numbers are coerced because a tampered SQLite row may hold text in a number column;
  // the hash then fails to recompute instead of the verifier crashing.
  const seq = Number(row.seq);
  return {
    seq,
    id: row.id,
    ts: Number(row.ts),
    traceId: row.trace_id,
    // Stored values are trusted as far as their type goes: the hash is what vouches for them.
    event: row.event as AuditEvent,
    actorType: row.actor_type as ActorType,
    actorId: row.actor_id,
    agentId: row.agent_id,
    agentType: row.agent_type,
    sessionId: row.session_id,
    triggerUserId: row.trigger_user_id,
    triggerSource: row.trigger_source as TriggerSource | null,
    toolName: row.tool_name,
    parameters: parseJson(row.parameters, 'parameters', seq),
    reasoning: row.reasoning,
    decision: parseJson(row.decision, 'decision', seq) as AuditDecision | null,
    result: row.result as AuditResult | null,
    latencyMs: row.latency_ms === null ? null : Number(row.latency_ms),
    data: parseJson(row.data, 'data', seq) as Record<string, unknown> | null,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
