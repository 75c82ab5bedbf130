/**
 * The entry's hash and its mapping to and from an `audit_log` row. Writer and
 * verifier both go through here, so they cannot disagree on what is hashed.
 *
 * The hash is SHA-256 hex of the RFC 8785 (JCS) text of the entry's 20 fields.
 * That text is assembled from its parts rather than by canonicalizing one big
 * object: the members in JCS order, scalars encoded as JCS encodes them (for
 * strings and numbers that is ECMAScript's JSON.stringify, RFC 8785 §3.2.2),
 * and the three JSON fields as their own canonical text. The writer stores
 * exactly that text in the JSON columns, so the database can assemble the
 * same hash text from a row (`hashTextSql`) without the row being parsed and
 * re-canonicalized; see verify.ts for how that is used and why it is sound.
 */
import { hash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import type { AuditLogTable, StoreDialect } from '../store/index.js';
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

/** The canonical (JCS) text of the three JSON fields; null for null (stored as SQL NULL). */
export interface JsonTexts {
  parameters: string | null;
  decision: string | null;
  data: string | null;
}

type Hashed = Omit<AuditEntry, 'hash'>;

/**
 * The hashed members in JCS order (keys sorted by UTF-16 code units, RFC 8785 §3.2.3),
 * each with its column and how it is encoded. entry.test.ts checks the order against
 * canonicalize itself.
 */
const MEMBERS = [
  ['actorId', 'actor_id', 'text'],
  ['actorType', 'actor_type', 'text'],
  ['agentId', 'agent_id', 'text'],
  ['agentType', 'agent_type', 'text'],
  ['data', 'data', 'json'],
  ['decision', 'decision', 'json'],
  ['event', 'event', 'text'],
  ['id', 'id', 'text'],
  ['latencyMs', 'latency_ms', 'integer'],
  ['parameters', 'parameters', 'json'],
  ['prevHash', 'prev_hash', 'text'],
  ['reasoning', 'reasoning', 'text'],
  ['result', 'result', 'text'],
  ['seq', 'seq', 'integer'],
  ['sessionId', 'session_id', 'text'],
  ['toolName', 'tool_name', 'text'],
  ['traceId', 'trace_id', 'text'],
  ['triggerSource', 'trigger_source', 'text'],
  ['triggerUserId', 'trigger_user_id', 'text'],
  ['ts', 'ts', 'integer'],
] as const satisfies ReadonlyArray<readonly [keyof Hashed, keyof AuditLogTable, 'text' | 'json' | 'integer']>;

/** What precedes each member's value in the hash text: `{"actorId":`, `,"actorType":`, … */
const PREFIXES = MEMBERS.map(([key], i) => `${i === 0 ? '{' : ','}${JSON.stringify(key)}:`);

/** SHA-256 hex of the RFC 8785 (JCS) encoding of every field of `entry` except `hash`. */
export function entryHash(entry: Hashed, json: JsonTexts = jsonTexts(entry)): string {
  return sha256Hex(hashText(entry, json));
}

/**
 * The JCS text `entryHash` hashes. `json` must be the canonical text of the entry's JSON
 * fields (`jsonTexts`); the writer passes the texts it stores instead of encoding twice.
 */
export function hashText(entry: Hashed, json: JsonTexts): string {
  // Fields are picked by name so that extra properties on the argument (a full
  // AuditEntry passes structurally) never reach the hash.
  let text = '';
  for (let i = 0; i < MEMBERS.length; i++) {
    const [key, , kind] = MEMBERS[i]!;
    const value =
      kind === 'json'
        ? (json[key as keyof JsonTexts] ?? 'null')
        : scalar(entry[key as Exclude<keyof Hashed, keyof JsonTexts>]);
    text += PREFIXES[i] + value;
  }
  return `${text}}`;
}

/** The canonical text of each JSON field of `entry`. */
export function jsonTexts(entry: Pick<AuditEntry, keyof JsonTexts>): JsonTexts {
  return {
    parameters: canonicalJson(entry.parameters),
    decision: canonicalJson(entry.decision),
    data: canonicalJson(entry.data),
  };
}

/** RFC 8785 (JCS) text of `value`; null and undefined give null (a SQL NULL column). */
export function canonicalJson(value: unknown): string | null {
  return value === null || value === undefined ? null : jcs(value);
}

/** SHA-256 of `text` (UTF-8), lowercase hex. */
export function sha256Hex(text: string): string {
  // The one-shot form: for texts this short, createHash's object costs more than the hashing.
  return hash('sha256', text, 'hex');
}

/** How the database assembles a row's hash text (see `hashTextSql`). */
export interface HashTextSql {
  /** A SQL expression over an `audit_log` row: the hash text, or NULL when the row cannot pass. */
  expression: string;
  /** True when a non-NULL result also means each JSON column holds exactly one JSON value. */
  checksJson: boolean;
}

/**
 * SQL that evaluates, for an `audit_log` row, to the text `hashText` builds for the entry
 * `fromRow` reads — when the JSON columns hold canonical text, as the writer stores them —
 * and to something else otherwise. Strings are JSON-quoted by the database (SQLite
 * json_quote, PostgreSQL to_json), which escape exactly as JSON.stringify does (entry.test.ts
 * checks every code unit either can store); a difference could only send a row to the slow path.
 *
 * The result is NULL where the text would not pin down what `fromRow` reads: unless seq and
 * ts hold integers (`fromRow` coerces a NULL, or in SQLite a planted REAL or TEXT, to a
 * number) and, in SQLite, latency_ms an integer or NULL. SQLite also returns NULL unless
 * each JSON column is NULL or text that json_valid accepts as RFC 8259 JSON (entry.test.ts
 * checks that it agrees with JSON.parse); a BLOB in a text column makes json_quote raise,
 * and the caller then takes the slow path. PostgreSQL 15 has no error-free JSON test, so
 * there the caller parses the JSON columns itself.
 */
export function hashTextSql(dialect: StoreDialect): HashTextSql {
  const parts: string[] = [];
  MEMBERS.forEach(([, column, kind], i) => {
    parts.push(`'${PREFIXES[i]}'`);
    const c = `"${column}"`;
    if (kind === 'json') parts.push(`coalesce(${c}, 'null')`);
    else if (dialect === 'sqlite') parts.push(`json_quote(${c})`);
    else parts.push(`coalesce(to_json(${c})::text, 'null')`);
  });
  parts.push(`'}'`);
  // concat() builds the text in one allocation; a chain of || copies it once per part.
  const text = `concat(${parts.join(', ')})`;
  if (dialect === 'postgres') {
    return {
      expression: `case when "seq" is not null and "ts" is not null then ${text} end`,
      checksJson: false,
    };
  }
  const json = MEMBERS.filter(([, , kind]) => kind === 'json').map(
    ([, column]) =>
      `(typeof("${column}") = 'null' or (typeof("${column}") = 'text' and json_valid("${column}")))`,
  );
  const guard = [
    `typeof("seq") = 'integer'`,
    `typeof("ts") = 'integer'`,
    `typeof("latency_ms") in ('integer', 'null')`,
    ...json,
  ].join(' and ');
  return { expression: `case when ${guard} then ${text} end`, checksJson: true };
}

/** Encodes a non-JSON field as canonicalize would. */
function scalar(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  // Numbers, and whatever a tampered row decodes to: canonicalize's own encoding (it throws on
  // NaN and Infinity, which the verifier counts as a mismatch).
  return jcs(value);
}

function jcs(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('audit entry is not JSON-encodable');
  return text;
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

/** The row for `entry`; its JSON columns hold their canonical text (`json`, when the caller has it). */
export function toRow(entry: AuditEntry, json: JsonTexts = jsonTexts(entry)): AuditLogTable {
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
    parameters: json.parameters,
    reasoning: entry.reasoning,
    decision: json.decision,
    result: entry.result,
    latency_ms: entry.latencyMs,
    data: json.data,
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
