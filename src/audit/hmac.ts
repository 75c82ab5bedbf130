/**
 * Keyed HMAC of the sensitive values the audit log redacts (issue #9), as
 * Vault's audit devices do: a password or a detected API key is stored as
 * `[REDACTED:<kind>:hmac-sha256:<hex>]`, never in clear. Whoever holds the key
 * (an investigator with `warden audit hmac`) can ask "did this exact value pass
 * through?" and find the entries; whoever reads the log without it learns
 * nothing — not even for low-entropy values, which a plain hash would give
 * away to a dictionary.
 *
 * The key is a secret reference like the other keys: by default a file in the
 * data directory created on first start (32 random bytes, base64url, 0600).
 * Every process that writes or searches the log must use the same key.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { type Expression, type SqlBool, sql } from 'kysely';
import { describeRef } from '../config/index.js';
import type { AuditKeyRef } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { readOrCreateKey } from '../util/key-file.js';
import { canonicalJson } from './entry.js';
import type { AuditEvent, AuditInput } from './types.js';

/** Bytes of key material at least (RFC 2104 §3: the hash's output length is the useful minimum). */
export const MIN_HMAC_KEY_BYTES = 32;
/** What every HMAC this module makes starts with: the algorithm, so it can change one day. */
export const HMAC_PREFIX = 'hmac-sha256:';
/** An HMAC as stored: the prefix and 64 lowercase hex digits. */
export const HMAC_PATTERN = /^hmac-sha256:[0-9a-f]{64}$/;

/** HMAC-SHA256 of sensitive values under the log's key. */
export class AuditHmac {
  readonly #key: Buffer;

  /** `key`: the raw key bytes (at least {@link MIN_HMAC_KEY_BYTES}). */
  constructor(key: Uint8Array) {
    if (key.byteLength < MIN_HMAC_KEY_BYTES) {
      throw new WardenError('CONFIG_INVALID', `an audit HMAC key needs at least ${MIN_HMAC_KEY_BYTES} bytes`);
    }
    this.#key = Buffer.from(key);
  }

  /**
   * `hmac-sha256:<64 hex>` of `value`: a string as its UTF-8 bytes, anything else as its
   * canonical JSON (RFC 8785), so `{"a":1,"b":2}` and `{"b":2,"a":1}` agree.
   */
  of(value: unknown): string {
    const text = typeof value === 'string' ? value : (canonicalJson(value) ?? 'null');
    return HMAC_PREFIX + createHmac('sha256', this.#key).update(text, 'utf8').digest('hex');
  }

  /** Never the key: a log line or a JSON dump of an object holding this shows nothing. */
  toJSON(): string {
    return '[AuditHmac]';
  }
}

/**
 * The key's bytes from its text: hex, or base64/base64url, when the text is one (what
 * `openssl rand -hex 32` or `-base64 32` print, and what Warden generates); otherwise
 * the text's UTF-8 bytes. Throws CONFIG_INVALID when fewer than 32 bytes result.
 */
export function hmacKeyBytes(text: string, source = 'audit.hmac.key'): Buffer {
  const t = text.trim();
  let bytes: Buffer;
  if (/^(?:[0-9a-fA-F]{2})+$/.test(t)) bytes = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t) && t.replace(/=+$/, '').length % 4 !== 1) {
    // Node's base64 decoder reads both alphabets (+/ and -_), padded or not.
    bytes = Buffer.from(t, 'base64');
  } else bytes = Buffer.from(t, 'utf8');
  if (bytes.byteLength < MIN_HMAC_KEY_BYTES) {
    throw new WardenError(
      'CONFIG_INVALID',
      `${source}: the key has ${bytes.byteLength} bytes; at least ${MIN_HMAC_KEY_BYTES} random bytes are needed (generate one with: openssl rand -base64 32)`,
    );
  }
  return bytes;
}

/**
 * The log's HMAC from its key reference; when `generate` is set (the default file) and
 * the file does not exist, it is created first. Messages name the reference, never the key.
 */
export async function loadAuditHmacKey(keyRef: AuditKeyRef): Promise<AuditHmac> {
  const text = await readOrCreateKey(keyRef, () => `${randomBytes(32).toString('base64url')}\n`);
  return new AuditHmac(hmacKeyBytes(text, `audit.hmac.key ${describeRef(keyRef.ref)}`));
}

/** One entry whose parameters or data hold an HMAC. */
export interface HmacMatch {
  seq: number;
  ts: number;
  event: AuditEvent;
  agentId: string | null;
  traceId: string;
}

/**
 * Entries whose parameters or data contain `hmac` (newest first, at most `limit`). A full
 * scan of the two columns: HMACs sit inside JSON text, so no index helps.
 */
export async function searchHmac(store: Store, hmac: string, limit = 100): Promise<HmacMatch[]> {
  if (!HMAC_PATTERN.test(hmac)) throw new WardenError('INVALID_REQUEST', 'not an audit HMAC');
  // The pattern is a bound parameter; LIKE's own wildcards in it are escaped (an HMAC has
  // none, but the escape keeps this correct should the format ever change).
  const pattern = `%${hmac.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const rows = await store.db
    .selectFrom('audit_log')
    .select(['seq', 'ts', 'event', 'agent_id', 'trace_id'])
    .where((eb) => eb.or([likeEscaped('parameters', pattern), likeEscaped('data', pattern)]))
    .orderBy('seq', 'desc')
    .limit(Math.min(Math.max(Math.trunc(limit), 1), 10_000))
    .execute();
  return rows.map((r) => ({
    seq: Number(r.seq),
    ts: Number(r.ts),
    event: r.event as AuditEvent,
    agentId: r.agent_id,
    traceId: r.trace_id,
  }));
}

/** `column LIKE pattern ESCAPE '\'`: the same meaning on SQLite (no default escape) and PostgreSQL. */
function likeEscaped(column: 'parameters' | 'data', pattern: string): Expression<SqlBool> {
  return sql<SqlBool>`${sql.ref(column)} like ${pattern} escape ${sql.lit('\\')}`;
}

/** What an investigator's lookup answers. */
export interface HmacLookup {
  hmac: string;
  /** With `search`: the entries holding it, newest first. */
  matches?: HmacMatch[];
}

/**
 * An investigator's lookup (CLI and admin API): the HMAC of `value` and, with `search`, the
 * entries holding it. The lookup is audited (AUDIT_QUERIED: the HMAC and the count, never
 * the value) before it is answered; when it cannot be, it is refused (AUDIT_UNAVAILABLE).
 */
export async function lookupHmac(
  deps: {
    store: Store;
    hmac: Pick<AuditHmac, 'of'>;
    audit: { append(input: AuditInput): Promise<unknown> };
  },
  input: { value: string; search: boolean; limit?: number; actorId: string; traceId: string; via: string },
): Promise<HmacLookup> {
  const hmac = deps.hmac.of(input.value);
  const matches = input.search ? await searchHmac(deps.store, hmac, input.limit) : undefined;
  try {
    await deps.audit.append({
      traceId: input.traceId,
      event: 'AUDIT_QUERIED',
      actorType: 'HUMAN',
      actorId: input.actorId,
      result: 'success',
      data: {
        query: 'hmac',
        hmac,
        via: input.via,
        ...(matches === undefined ? {} : { matches: matches.length }),
      },
    });
  } catch (e) {
    throw new WardenError('AUDIT_UNAVAILABLE', 'The lookup could not be audited, so it was not answered', {
      rule: 'audit.fail-closed',
      detail: e instanceof Error ? e.message : String(e),
      cause: e,
    });
  }
  return { hmac, ...(matches === undefined ? {} : { matches }) };
}
