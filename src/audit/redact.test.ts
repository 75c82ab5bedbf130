import { describe, expect, it } from 'vitest';
import { cleanText, MAX_DEPTH, MAX_ITEMS, MAX_STRING, redactParameters, secretKind } from './redact.js';

const roundTrips = (v: unknown) => expect(JSON.parse(JSON.stringify(v))).toEqual(v);

describe('secretKind', () => {
  it.each([
    ['password', 'password'],
    ['db_passwd', 'password'],
    ['userPassword', 'password'],
    ['client_secret', 'secret'],
    ['token', 'token'],
    ['access_token', 'token'],
    ['X-Auth-Token', 'token'],
    ['refreshToken', 'token'],
    ['api_key', 'api_key'],
    ['apiKey', 'api_key'],
    ['X-API-Key', 'api_key'],
    ['Authorization', 'authorization'],
    ['proxy-authorization', 'authorization'],
    ['basicAuth', 'authorization'],
    ['Cookie', 'cookie'],
    ['set-cookie', 'cookie'],
    ['private_key', 'private_key'],
    ['privateKeyPem', 'private_key'],
    ['credentials', 'credential'],
    ['awsCredential', 'credential'],
    ['ssn', 'ssn'],
    ['social_security_number', 'ssn'],
    ['cardNumber', 'card'],
    ['card_number', 'card'],
    ['creditCard', 'card'],
    ['cvv', 'card'],
  ])('%s is a %s', (key, kind) => {
    expect(secretKind(key)).toBe(kind);
  });

  it.each([
    'max_tokens',
    'token_count',
    'tokens',
    'inputTokens',
    'author',
    'passenger',
    'keyboard',
    'orderId',
    'cardinality',
  ])('%s is not a secret', (key) => {
    expect(secretKind(key)).toBeNull();
  });

  it('answers the same from its cache, past its bound, and for keys too long to cache', () => {
    const keys = Array.from({ length: 5_000 }, (_, i) => (i % 3 === 0 ? `field${i}Password` : `field${i}`));
    const first = keys.map(secretKind);
    expect(first.filter((k) => k === 'password')).toHaveLength(1_667);
    expect(keys.map(secretKind)).toEqual(first);
    const long = `${'x'.repeat(80)}_api_key`;
    expect(secretKind(long)).toBe('api_key');
    expect(secretKind(long)).toBe('api_key');
  });
});

describe('redactParameters', () => {
  it('replaces values under secret keys at any depth, whatever their type', () => {
    const out = redactParameters({
      orderId: 'ORD-ABCD1234',
      password: 'hunter2',
      headers: { Authorization: 'Bearer abc', 'X-API-Key': 'sk-123' },
      credentials: { user: 'a', pass: 'b' },
      list: [{ access_token: 42 }],
      max_tokens: 512,
      token: null,
    });
    expect(out).toEqual({
      orderId: 'ORD-ABCD1234',
      password: '[REDACTED:password]',
      headers: { Authorization: '[REDACTED:authorization]', 'X-API-Key': '[REDACTED:api_key]' },
      credentials: '[REDACTED:credential]',
      list: [{ access_token: '[REDACTED:token]' }],
      max_tokens: 512,
      token: null,
    });
    expect(JSON.stringify(out)).not.toMatch(/hunter2|abc|sk-123/);
  });

  it('truncates long strings with a marker', () => {
    const out = redactParameters({ note: 'x'.repeat(5000) }) as { note: string };
    expect(out.note.startsWith('x'.repeat(MAX_STRING))).toBe(true);
    expect(out.note).toMatch(/…\[TRUNCATED:5000 chars\]$/);
    expect(out.note.length).toBeLessThan(MAX_STRING + 40);
  });

  it('leaves well-formed text alone and fixes each kind of bad unit', () => {
    const ok = 'plain text, ünïcödé and a pair 😀';
    expect(cleanText(ok)).toBe(ok);
    expect(cleanText('\uDC00lead')).toBe('\uFFFDlead');
    expect(cleanText('trail\uD83D')).toBe('trail\uFFFD');
    expect(cleanText('swapped \uDE00\uD83D pair')).toBe('swapped \uFFFD\uFFFD pair');
    expect(cleanText('nul\u0000here')).toBe('nul\uFFFDhere');
    expect(cleanText('abcdef', 3)).toBe('abc…[TRUNCATED:6 chars]');
  });

  it('does not split a surrogate pair at the cut', () => {
    const s = `${'a'.repeat(MAX_STRING - 1)}😀tail`;
    const out = cleanText(s);
    expect(out.startsWith('a'.repeat(MAX_STRING - 1))).toBe(true);
    expect(out).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });

  it('cuts nesting deeper than the limit', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 40; i++) deep = { d: deep };
    let out = redactParameters(deep);
    let levels = 0;
    while (typeof out === 'object' && out !== null) {
      out = (out as { d: unknown }).d;
      levels++;
    }
    expect(levels).toBe(MAX_DEPTH);
    expect(out).toBe('[TRUNCATED:depth]');
  });

  it('makes non-JSON values JSON-safe', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const out = redactParameters({
      fn: () => 1,
      big: 12345678901234567890n,
      undef: undefined,
      nan: Number.NaN,
      inf: Number.POSITIVE_INFINITY,
      sym: Symbol('s'),
      date: new Date(Date.UTC(2026, 0, 2)),
      bytes: Buffer.from('secret bytes'),
      map: new Map([['k', 1]]),
      set: new Set([1, 2]),
      err: new Error('boom'),
      cyclic,
      arr: [undefined, () => 1],
    });
    expect(out).toEqual({
      fn: '[UNSERIALIZABLE:function]',
      big: '12345678901234567890',
      nan: null,
      inf: null,
      sym: '[UNSERIALIZABLE:symbol]',
      date: '2026-01-02T00:00:00.000Z',
      bytes: '[BINARY:12 bytes]',
      map: { k: 1 },
      set: [1, 2],
      err: { name: 'Error', message: 'boom' },
      cyclic: { a: 1, self: '[CIRCULAR]' },
      arr: [null, '[UNSERIALIZABLE:function]'],
    });
    roundTrips(out);
    expect(redactParameters(undefined)).toBeNull();
  });

  it('survives throwing getters and proxies', () => {
    const getter = Object.defineProperty({ ok: 1 }, 'bad', {
      enumerable: true,
      get() {
        throw new Error('nope');
      },
    });
    const proxy = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('nope');
        },
      },
    );
    expect(redactParameters({ getter, proxy })).toEqual({
      getter: { ok: 1, bad: '[UNSERIALIZABLE:getter]' },
      proxy: '[UNSERIALIZABLE:object]',
    });
  });

  it('keeps a "__proto__" key as data, as JSON.parse does', () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const out = redactParameters(parsed);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":true},"a":1}');
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it('bounds the number of items and keys', () => {
    const out = redactParameters({
      arr: Array.from({ length: MAX_ITEMS + 5 }, (_, i) => i),
      obj: Object.fromEntries(Array.from({ length: MAX_ITEMS + 3 }, (_, i) => [`k${i}`, i])),
    }) as { arr: unknown[]; obj: Record<string, unknown> };
    expect(out.arr).toHaveLength(MAX_ITEMS + 1);
    expect(out.arr.at(-1)).toBe('[TRUNCATED:5 more items]');
    expect(out.obj['[TRUNCATED]']).toBe('3 more keys');
    expect(Object.keys(out.obj)).toHaveLength(MAX_ITEMS + 1);
  });

  it('makes strings storable: lone surrogates and NUL replaced', () => {
    expect(redactParameters({ s: 'a\uD800b\u0000c' })).toEqual({ s: 'a\uFFFDb\uFFFDc' });
  });
});
