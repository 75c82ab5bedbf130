import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { isWardenError } from '../errors.js';
import { redactSecretsInJson } from '../inspect/index.js';
import type { Store } from '../store/index.js';
import { AuditHmac, hmacKeyBytes, loadAuditHmacKey, lookupHmac, searchHmac } from './hmac.js';
import { AuditLog } from './log.js';
import { redactParameters } from './redact.js';

const KEY = Buffer.alloc(32, 7);
const AWS_KEY = 'AKIAZ7QH4KD2LMN3PQ5T';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-hmac-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('AuditHmac', () => {
  it('is HMAC-SHA256 of the UTF-8 value, prefixed', () => {
    const h = new AuditHmac(KEY);
    const expected = createHmac('sha256', KEY).update('hunter2', 'utf8').digest('hex');
    expect(h.of('hunter2')).toBe(`hmac-sha256:${expected}`);
  });

  it('is deterministic across instances with the same key, and differs with another key', () => {
    expect(new AuditHmac(KEY).of('hunter2')).toBe(new AuditHmac(Buffer.from(KEY)).of('hunter2'));
    expect(new AuditHmac(Buffer.alloc(32, 8)).of('hunter2')).not.toBe(new AuditHmac(KEY).of('hunter2'));
    expect(new AuditHmac(KEY).of('hunter3')).not.toBe(new AuditHmac(KEY).of('hunter2'));
  });

  it('keys non-strings by their canonical JSON (key order does not matter)', () => {
    const h = new AuditHmac(KEY);
    expect(h.of({ b: 2, a: 1 })).toBe(h.of({ a: 1, b: 2 }));
    expect(h.of({ a: 1, b: 2 })).toBe(h.of('{"a":1,"b":2}'));
    expect(h.of(1234)).toBe(h.of('1234'));
  });

  it('never shows the key', () => {
    const h = new AuditHmac(KEY);
    expect(JSON.stringify({ h })).toBe('{"h":"[AuditHmac]"}');
  });
});

describe('hmacKeyBytes', () => {
  it('decodes hex, base64 and base64url; takes other text as UTF-8', () => {
    const raw = randomBytes(32);
    expect(hmacKeyBytes(raw.toString('hex'))).toEqual(raw);
    expect(hmacKeyBytes(raw.toString('base64'))).toEqual(raw);
    expect(hmacKeyBytes(raw.toString('base64url'))).toEqual(raw);
    const phrase = 'correct horse battery staple, and then some more words';
    expect(hmacKeyBytes(phrase)).toEqual(Buffer.from(phrase, 'utf8'));
  });

  it('refuses fewer than 32 bytes with CONFIG_INVALID, without showing the key', () => {
    for (const short of [randomBytes(16).toString('hex'), randomBytes(31).toString('base64'), 'hunter2']) {
      let err: unknown;
      try {
        hmacKeyBytes(short);
      } catch (e) {
        err = e;
      }
      expect(isWardenError(err, 'CONFIG_INVALID')).toBe(true);
      expect((err as Error).message).toMatch(/at least 32 random bytes/);
      expect((err as Error).message).not.toContain(short);
    }
  });
});

describe('loadAuditHmacKey', () => {
  afterEach(() => {
    delete process.env['WARDEN_TEST_HMAC_KEY'];
  });

  it('creates the default file once (0600, 32 random bytes), and every racer ends with the same key', async () => {
    const file = join(dir, 'race', 'nested', 'audit-hmac.key');
    const racers = await Promise.all(
      Array.from({ length: 8 }, () => loadAuditHmacKey({ ref: { file }, generate: true })),
    );
    const hmacs = new Set(racers.map((h) => h.of('x')));
    expect(hmacs.size).toBe(1);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url')).toHaveLength(32);
    // A later start reads the same key.
    expect((await loadAuditHmacKey({ ref: { file }, generate: true })).of('x')).toBe([...hmacs][0]);
  });

  it('does not create a key that is not the default, and refuses a short one', async () => {
    const missing = join(dir, 'missing.key');
    await expect(loadAuditHmacKey({ ref: { file: missing }, generate: false })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
    const short = join(dir, 'short.key');
    writeFileSync(short, 'hunter2\n');
    await expect(loadAuditHmacKey({ ref: { file: short }, generate: false })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/has \d+ bytes; at least 32/),
    });
  });

  it('reads an environment variable reference', async () => {
    process.env['WARDEN_TEST_HMAC_KEY'] = KEY.toString('hex');
    const h = await loadAuditHmacKey({ ref: { env: 'WARDEN_TEST_HMAC_KEY' }, generate: false });
    expect(h.of('v')).toBe(new AuditHmac(KEY).of('v'));
  });
});

describe('redaction with an HMAC', () => {
  const h = new AuditHmac(KEY);
  const of = (v: unknown) => h.of(v);

  it('keys values under secret-looking keys; null stays visible; without a key markers stay plain', () => {
    expect(redactParameters({ password: 'hunter2', token: null, user: 'ann' }, of)).toEqual({
      password: `[REDACTED:password:${h.of('hunter2')}]`,
      token: null,
      user: 'ann',
    });
    expect(redactParameters({ password: 'hunter2' })).toEqual({ password: '[REDACTED:password]' });
    expect(redactParameters({ credentials: { user: 'a', pin: 1234 } }, of)).toEqual({
      credentials: `[REDACTED:credential:${h.of({ pin: 1234, user: 'a' })}]`,
    });
  });

  it('a secret found by a detector is keyed over the exact matched text', async () => {
    const r = await redactSecretsInJson(
      { note: `use ${AWS_KEY} here`, apiKey: AWS_KEY },
      { mark: (type, matched) => `[REDACTED:${type}:${h.of(matched)}]` },
    );
    const note = (r.marked as { note: string }).note;
    expect(note).toMatch(/^use \[REDACTED:[A-Z_]+:hmac-sha256:[0-9a-f]{64}\] here$/);
    expect(note).toContain(h.of(AWS_KEY));
    // The plain copy (what approvers see) has no HMAC.
    expect((r.value as { note: string }).note).toMatch(/^use \[REDACTED:[A-Z_]+\] here$/);
    // A whole-value detector marker under a secret key keeps the value's own HMAC.
    const stored = redactParameters(r.marked, of) as { apiKey: string };
    expect(stored.apiKey).toContain(h.of(AWS_KEY));
  });
});

describeEachDialect('HMAC search', (target) => {
  let store: Store;
  const h = new AuditHmac(KEY);
  beforeAll(async () => {
    store = await target.open();
    const log = new AuditLog(store, { hmac: h });
    await log.append({
      traceId: 't1',
      event: 'TOOL_CALL',
      actorType: 'AI_AGENT',
      parameters: { password: 'p1' },
    });
    await log.append({ traceId: 't2', event: 'TOOL_CALL', actorType: 'AI_AGENT', data: { secret: 'p1' } });
    await log.append({
      traceId: 't3',
      event: 'TOOL_CALL',
      actorType: 'AI_AGENT',
      parameters: { password: 'p2' },
    });
  });
  afterAll(async () => {
    await (store as Store | undefined)?.close();
    await target.cleanup();
  });

  it('finds the entries holding a value, newest first, in parameters and data', async () => {
    const found = await searchHmac(store, h.of('p1'));
    expect(found.map((m) => m.traceId)).toEqual(['t2', 't1']);
    expect(await searchHmac(store, h.of('nothing'))).toEqual([]);
    expect(await searchHmac(store, h.of('p1'), 1)).toHaveLength(1);
  });

  it('refuses anything that is not an HMAC (no pattern of the caller reaches LIKE)', async () => {
    await expect(searchHmac(store, '%')).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('a lookup is audited with the HMAC and the count, never the value', async () => {
    const log = new AuditLog(store, { hmac: h });
    const r = await lookupHmac(
      { store, hmac: h, audit: log },
      { value: 'p1', search: true, actorId: 'op', traceId: 'look-1', via: 'api' },
    );
    expect(r.matches).toHaveLength(2);
    const [entry] = await log.read({ traceId: 'look-1' });
    expect(entry).toMatchObject({ event: 'AUDIT_QUERIED', actorType: 'HUMAN', actorId: 'op' });
    expect(entry?.data).toEqual({ query: 'hmac', hmac: h.of('p1'), matches: 2, via: 'api' });
    expect(JSON.stringify(entry)).not.toContain('"p1"');
  });
});
