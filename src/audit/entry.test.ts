/**
 * The hash text is assembled from parts (writer) and by the database (verifier's
 * fast path); both must give exactly what canonicalizing the whole body gives,
 * which is how entries were hashed before and how every stored hash is defined.
 */
import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import type { AuditLogTable, Store } from '../store/index.js';
import { entryHash, fromRow, hashText, hashTextSql, jsonTexts, toRow } from './entry.js';
import type { AuditEntry } from './types.js';

const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** The definition: RFC 8785 text of the 20-field body, canonicalized whole (the original entryHash). */
function referenceText(e: Omit<AuditEntry, 'hash'>): string {
  const text = canonicalize({
    seq: e.seq,
    id: e.id,
    ts: e.ts,
    prevHash: e.prevHash,
    traceId: e.traceId,
    event: e.event,
    actorType: e.actorType,
    actorId: e.actorId ?? null,
    agentId: e.agentId ?? null,
    agentType: e.agentType ?? null,
    sessionId: e.sessionId ?? null,
    triggerUserId: e.triggerUserId ?? null,
    triggerSource: e.triggerSource ?? null,
    toolName: e.toolName ?? null,
    parameters: e.parameters ?? null,
    reasoning: e.reasoning ?? null,
    decision: e.decision ?? null,
    result: e.result ?? null,
    latencyMs: e.latencyMs ?? null,
    data: e.data ?? null,
  });
  if (text === undefined) throw new Error('not encodable');
  return text;
}

/** A small seeded generator (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Characters JSON escapes, and the ones it must not touch: controls, quotes, DEL, line
// separators, non-ASCII, astral (surrogate pairs) and lone surrogates.
const CHARS = [
  'a',
  'Z',
  '0',
  ' ',
  '"',
  '\\',
  '/',
  '\b',
  '\f',
  '\n',
  '\r',
  '\t',
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u0080',
  '\u00e9',
  '\u2028',
  '\u2029',
  '\u4e2d',
  '\ufeff',
  '\uffff',
  '\u{1f600}',
  '\u{10ffff}',
  '\ud800',
  '\udfff',
];
const NUMBERS = [
  0,
  -0,
  1,
  -1,
  42,
  0.1,
  -2.5e-7,
  1e21,
  1e-7,
  123456789012345680000,
  2 ** 53,
  5e-324,
  1.7976931348623157e308,
];
const KEYS = ['a', 'b', 'B', '10', '9', '1', '', '__proto__', 'é', '\u{1f600}', '\ufb33', 'aa', 'a\u0000'];

function generator(seed: number) {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const str = (): string => Array.from({ length: Math.floor(rnd() * 8) }, () => pick(CHARS)).join('');
  const json = (depth: number): unknown => {
    const r = rnd();
    if (depth >= 3 || r < 0.3) return pick([null, true, false, pick(NUMBERS), str()]);
    if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => json(depth + 1));
    // fromEntries defines own properties, so "__proto__" is a plain key, as JSON.parse makes it.
    return Object.fromEntries(
      Array.from({ length: Math.floor(rnd() * 5) }, () => [pick(KEYS), json(depth + 1)]),
    );
  };
  const maybe = <T>(f: () => T): T | null => (rnd() < 0.3 ? null : f());
  return (): AuditEntry => ({
    seq: 1 + Math.floor(rnd() * 1e6),
    id: `aud_${str()}`,
    ts: Math.floor(rnd() * 2e12),
    prevHash: 'f'.repeat(64),
    hash: 'e'.repeat(64),
    traceId: str(),
    event: 'TOOL_CALL',
    actorType: 'AI_AGENT',
    actorId: maybe(str),
    agentId: maybe(str),
    agentType: maybe(str),
    sessionId: maybe(str),
    triggerUserId: maybe(str),
    triggerSource: maybe(() => 'user' as const),
    toolName: maybe(str),
    parameters: maybe(() => json(0)),
    reasoning: maybe(str),
    decision: maybe(() => ({ allowed: rnd() < 0.5, code: str(), reasons: [str(), str()], rule: str() })),
    result: maybe(() => 'success' as const),
    latencyMs: maybe(() => Math.floor(rnd() * 1e6)),
    data: maybe(() => ({ phase: str(), [pick(KEYS)]: json(1), nested: json(0) })),
  });
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('entry hash', () => {
  it('assembles exactly the RFC 8785 text of the whole body, over varied entries', () => {
    const next = generator(8785);
    for (let i = 0; i < 2000; i++) {
      const entry = next();
      const expected = referenceText(entry);
      expect(hashText(entry, jsonTexts(entry))).toBe(expected);
      expect(entryHash(entry)).toBe(sha256(expected));
    }
  });

  it('treats absent optional fields as null and ignores properties that are not fields', () => {
    const entry = generator(1)();
    const bare = { ...entry, actorId: undefined, data: undefined, extra: 'x' } as unknown as AuditEntry;
    expect(entryHash(bare)).toBe(sha256(referenceText({ ...entry, actorId: null, data: null })));
  });

  it('refuses numbers JSON cannot hold, as canonicalize does', () => {
    const entry = generator(2)();
    expect(() => entryHash({ ...entry, ts: Number.NaN })).toThrow();
    expect(() => entryHash({ ...entry, latencyMs: Number.POSITIVE_INFINITY })).toThrow();
  });

  it('stores the JSON columns as their canonical text', () => {
    const entry: AuditEntry = {
      ...generator(3)(),
      parameters: { b: [1, { z: 0.5, a: '\u2028' }], a: null, '10': 1, '9': 2 },
      decision: { allowed: false, reasons: ['r'], rule: 'x', code: 'TOOL_DENIED' },
      data: null,
    };
    const row = toRow(entry);
    expect(row.parameters).toBe('{"10":1,"9":2,"a":null,"b":[1,{"a":"\u2028","z":0.5}]}');
    expect(row.decision).toBe('{"allowed":false,"code":"TOOL_DENIED","reasons":["r"],"rule":"x"}');
    expect(row.data).toBeNull();
    expect(fromRow(row)).toEqual(entry);
  });
});

describeEachDialect('hash text built by the database', (target) => {
  let store: Store;
  const { expression, checksJson } = hashTextSql(target.dialect);
  const select = CompiledQuery.raw(
    `select *, ${expression} as "hash_text" from "audit_log" order by "seq"`,
    [],
  );

  beforeAll(async () => {
    store = await target.open();
  });
  afterAll(async () => {
    try {
      await (store as Store | undefined)?.close();
    } finally {
      await target.cleanup();
    }
  });

  async function insert(rows: AuditLogTable[]): Promise<void> {
    await store.db.deleteFrom('audit_log').execute();
    for (const r of rows) await store.db.insertInto('audit_log').values(r).execute();
  }

  async function texts(): Promise<{ row: AuditLogTable; text: string | null }[]> {
    const rows = (await store.db.executeQuery<AuditLogTable & { hash_text: string | null }>(select)).rows;
    return rows.map(({ hash_text, ...row }) => ({ row, text: hash_text }));
  }

  beforeAll(async () => {
    // The append-only triggers would stop the clean-ups between cases.
    if (target.dialect === 'sqlite') {
      await sql`DROP TRIGGER audit_log_no_update`.execute(store.db);
      await sql`DROP TRIGGER audit_log_no_delete`.execute(store.db);
    } else {
      await sql`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`.execute(store.db);
    }
  });

  it('is the text hashText builds for the entry fromRow reads', async () => {
    const next = generator(2026);
    // NUL cannot be stored in PostgreSQL text, and the writer replaces it anyway.
    const clean = (e: AuditEntry): AuditEntry => JSON.parse(JSON.stringify(e).replaceAll('\\u0000', ' '));
    const entries = Array.from({ length: 300 }, (_, i) => ({ ...clean(next()), seq: i + 1, id: `aud_${i}` }));
    // Every UTF-16 code unit but NUL and the surrogates, in one string.
    const all = Array.from({ length: 0xffff }, (_, i) => String.fromCharCode(i + 1))
      .filter((c) => c < '\ud800' || c > '\udfff')
      .join('');
    entries.push({ ...entries[0]!, seq: 301, id: 'aud_all', reasoning: all, toolName: all.slice(0, 200) });
    const rows = entries.map((e) => toRow(e));
    if (target.dialect === 'sqlite') {
      // NUL, and text that is not UTF-8 (stored by an attacker), read back as fromRow reads it.
      rows.push({ ...rows[0]!, seq: 302, id: 'aud_nul', actor_id: 'a\u0000b' });
    }
    await insert(rows);
    if (target.dialect === 'sqlite') {
      await sql`INSERT INTO audit_log SELECT 303, 'aud_utf8', ts, trace_id, event, actor_type,
        CAST(x'61ff62e2' AS TEXT), agent_id, agent_type, session_id, trigger_user_id, trigger_source,
        CAST(x'22e28222eda080' AS TEXT), parameters, reasoning, decision, result, latency_ms, data,
        prev_hash, hash FROM audit_log WHERE seq = 1`.execute(store.db);
    }
    const got = await texts();
    expect(got).toHaveLength(entries.length + (target.dialect === 'sqlite' ? 2 : 0));
    for (const { row, text } of got) {
      const entry = fromRow(row);
      expect(text).toBe(hashText(entry, jsonTexts(entry)));
    }
  });

  it.runIf(target.dialect === 'sqlite')(
    'is NULL for SQLite rows that fromRow would read differently or not at all',
    async () => {
      expect(checksJson).toBe(true);
      const base = toRow(generator(5)());
      const cases: Partial<Record<keyof AuditLogTable, unknown>>[] = [
        { ts: 1.5 },
        { ts: 'soon' },
        { latency_ms: 'fast' },
        { seq: 2.5 },
        { data: '{"a":1' },
        { decision: '[1,]' },
        { parameters: Buffer.from('{}') },
      ];
      // Values of the wrong type, as an attacker with SQLite write access can store them.
      const rows = cases.map((c, i) => ({ ...base, ...c, id: `c${i}`, seq: c.seq ?? i + 10 }));
      await insert(rows as unknown as AuditLogTable[]);
      expect((await texts()).map((t) => t.text)).toEqual(cases.map(() => null));
    },
  );

  it.runIf(target.dialect === 'sqlite')(
    'agrees with JSON.parse on what is one JSON value (json_valid)',
    async () => {
      const corpus = [
        '{"a":1}',
        ' {"a":1}\n',
        '"a\tb"',
        '"a\u0001b"',
        "'a'",
        '[1,]',
        '{"a":1,}',
        '{a:1}',
        'NaN',
        'Infinity',
        '-Infinity',
        '0x10',
        '01',
        '1.',
        '.5',
        '+1',
        '-',
        '1e',
        '-0',
        '1e400',
        '"\\x41"',
        '"\\u12"',
        '"\\ud800"',
        '"\\u0000"',
        '{"a":1,"a":2}',
        '// c\n1',
        '/* c */1',
        '1 2',
        '1,2',
        '{"a":1},"b":{',
        '',
        ' ',
        'null',
        'tru',
        '"\u2028"',
        '[1]\u00a0',
        '[1]\u000b',
        '[1]\f',
        '"\u007f"',
        '1E+5',
        '[[[[[[[]]]]]]]',
      ];
      const q = CompiledQuery.raw(`select json_valid(value) as ok from json_each(?) order by key`, [
        JSON.stringify(corpus),
      ]);
      const got = (await store.db.executeQuery<{ ok: number }>(q)).rows.map((r) => r.ok === 1);
      const parses = (s: string) => {
        try {
          JSON.parse(s);
          return true;
        } catch {
          return false;
        }
      };
      expect(got).toEqual(corpus.map(parses));
    },
  );

  it.runIf(target.dialect === 'postgres')('leaves the JSON check to the caller on PostgreSQL', () => {
    expect(checksJson).toBe(false);
  });
});
