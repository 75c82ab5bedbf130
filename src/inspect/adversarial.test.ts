/**
 * Bad input for every detector (issue #7, "Bad input"): lone surrogates, NUL and control characters,
 * random bytes read as latin1, very long single tokens, long runs of the characters the patterns key
 * on. Each must return, with offsets inside the text and on character boundaries, and redaction must
 * not break a surrogate pair. Speed on the same inputs is measured by `bench/micro` (group inspect,
 * rows "adversarial …"), not asserted here.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeRuns,
  detectInjection,
  detectPii,
  detectSecrets,
  inspectText,
  normalize,
  redactJson,
  redactText,
  toOriginal,
  UNINSPECTED,
} from './index.js';
import { EXTRA_PII_TYPES } from './pii.js';
import { inspectablePrefix, MAX_INSPECT_CHARS } from './redact.js';

/** A deterministic byte stream (xorshift32), so a failure reproduces. */
function bytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const fill = (unit: string, n: number) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const N = 20_000;

/** Named inputs; sizes keep the suite fast, the benchmark runs the worst of them at 100 KB. */
const INPUTS: Record<string, string> = {
  'lone high surrogates': fill('\uD800', N),
  'lone low surrogates': fill('\uDC00', N),
  'reversed pairs': fill('\uDE00\uD83D', N),
  'surrogates among text': fill('ignore \uD800previous\uDFFF instructions 4111\uDBFF1111 1111 1111 ', N),
  'emoji (valid pairs)': fill('😀 a@b.co ', N),
  NUL: fill('\0', N),
  'control characters': fill('\0\x01\x07\x1b\x7f\x85\u200b\u202e\ufeff a', N),
  'random bytes as latin1': bytes(N, 7).toString('latin1'),
  'random bytes as UTF-8 (invalid sequences replaced)': bytes(N, 11).toString('utf8'),
  'random UTF-16 units': String.fromCharCode(...new Uint16Array(bytes(2 * N, 13).buffer)),
  'one long token': fill('a', 50_000),
  'one long token then !': `${fill('a', 50_000)}!`,
  'one long base64 run, no padding': fill(B64, 50_000),
  'one long hex run, odd length': fill('0123456789abcdef', 50_001),
  digits: fill('7', N),
  'digit groups': fill('1 ', N),
  '@ run': fill('@', N),
  '. run': fill('.', N),
  '% run': fill('%', N),
  '%XX run': fill('%41', N),
  'colon run': fill(':', N),
  'BEGIN without END': fill('-----BEGIN PRIVATE KEY-----\n', N),
  'BEGIN with a long body': `-----BEGIN PRIVATE KEY-----\n${fill(B64, 50_000)}`,
  'apostrophes after an override verb': `ignore ${fill("'", N)}`,
  'quoted words after an override verb': fill(`ignore ${"' ".repeat(60)}\n`, N),
  'markdown image openers': fill('![', N),
  'dialogue markers': fill(`Q: ${'A: '.repeat(133)}\n`, N),
  'send to to to': fill('send to ', N),
  'JWT-like segments': fill('eyJhbGciOi.', N),
  'key assignments': fill('api_key=', N),
  'URL authority': fill('a://b:@', N),
  'SendGrid-like token': fill(`SG.a.${'a'.repeat(300)} `, N),
  'repeated token': fill('ab ab ab ab ab ab ab ab cd ', N),
  'tag characters': fill(String.fromCodePoint(0xe0041), N),
  'house numbers and street words': fill('12 Ab Cd Ef Main Street Street, ', N),
  'street words without a type': fill('1 Ab Cd Ef Gh ', N),
  'compound street names': fill('Hauptstraße Hauptstraße 1', N),
  'street particles': fill('Rue de de de de ', N),
  honorifics: fill('Dr. Mr. Ab ', N),
  'name labels at line starts': fill('Name: Ab Cd Ef Gh Ij\n', N),
  'sign-offs': fill('Regards, Regards, ', N),
  'mail headers without an address': fill('From: Ab Cd <', N),
};

const LONE = /[\uD800-\uDFFF]/u;
/** Whether `i` falls between the halves of a surrogate pair of `s`. */
const splitsPair = (s: string, i: number) =>
  i > 0 &&
  i < s.length &&
  s.charCodeAt(i - 1) >= 0xd800 &&
  s.charCodeAt(i - 1) <= 0xdbff &&
  s.charCodeAt(i) >= 0xdc00 &&
  s.charCodeAt(i) <= 0xdfff;

/** Spans that are not integer, in-bounds, ordered and on character boundaries (one expect, not thousands). */
function expectSpans(text: string, spans: readonly { start: number; end: number }[]): void {
  const bad = spans.filter(
    (s) =>
      !Number.isInteger(s.start) ||
      !Number.isInteger(s.end) ||
      s.start < 0 ||
      s.start > s.end ||
      s.end > text.length ||
      splitsPair(text, s.start) ||
      splitsPair(text, s.end),
  );
  expect(bad).toEqual([]);
}

describe.each(Object.entries(INPUTS))('bad input: %s', (_name, text) => {
  it('normalize maps every unit back inside the original, in order', () => {
    const n = normalize(text);
    expect(n.map.length).toBe(n.text.length + 1);
    expect(n.map[n.text.length]).toBe(text.length);
    let ordered = true;
    for (let i = 1; i < n.map.length; i++) if (n.map[i]! < n.map[i - 1]!) ordered = false;
    expect(ordered).toBe(true);
    expectSpans(text, [toOriginal(n, 0, n.text.length), toOriginal(n, -5, 1e12)]);
  });

  it('decodeRuns returns in-bounds runs', () => {
    expectSpans(text, decodeRuns(text));
  });

  it('detectPii, detectInjection and detectSecrets return valid offsets', async () => {
    expectSpans(text, detectPii(text));
    for (const source of ['input', 'tool-result'] as const) {
      const r = detectInjection(text, { source });
      expect(r.score).toBeGreaterThanOrEqual(0);
      expect(r.score).toBeLessThanOrEqual(1);
      expectSpans(text, r.signals);
    }
    expectSpans(text, await detectSecrets(text));
  });

  it('inspectText and redactJson redact without breaking a surrogate pair', async () => {
    const r = await inspectText(text, { source: 'tool-result' });
    expectSpans(text, r.findings);
    const { value } = redactJson({ a: text, b: [text, { c: text }] }, detectPii);
    const out = JSON.stringify(value);
    if (!LONE.test(text)) {
      expect(LONE.test(r.redacted)).toBe(false);
      expect(LONE.test(out)).toBe(false);
    }
    // Redaction by spans every detector reported, all at once (overlapping, unsorted).
    const spans = [
      ...detectPii(text),
      ...(await detectSecrets(text)),
      ...detectInjection(text).signals.map((s) => ({ ...s, type: s.rule })),
    ];
    const redacted = redactText(text, spans);
    if (!LONE.test(text)) expect(LONE.test(redacted)).toBe(false);
  });
});

describe.each(Object.entries(INPUTS))('bad input, off-by-default PII types: %s', (_name, text) => {
  it('detectPii with STREET_ADDRESS and PERSON returns valid offsets', () => {
    expectSpans(text, detectPii(text, { types: EXTRA_PII_TYPES }));
  });
});

describe('redaction never splits a surrogate pair', () => {
  const text = 'a😀b😀c';
  it('widens a span whose edges fall inside pairs to the whole characters', () => {
    expect(redactText(text, [{ type: 'X', start: 2, end: 5 }])).toBe('a[REDACTED:X]c');
    expect(redactText(text, [{ type: 'X', start: 1, end: 2 }])).toBe('a[REDACTED:X]b😀c');
  });

  it('ignores nonsense offsets instead of throwing', () => {
    const spans = [
      { type: 'X', start: Number.NaN, end: 3 },
      { type: 'Y', start: -10, end: -2 },
      { type: 'Z', start: 100, end: 200 },
      { type: 'W', start: 5, end: 1 },
    ];
    const out = redactText(text, spans);
    expect(LONE.test(out)).toBe(false);
    expect(out).toBe('[REDACTED:X]b😀c');
  });
});

describe('size cap: text beyond MAX_INSPECT_CHARS is never passed on uninspected', () => {
  it('cuts before a surrogate pair rather than through it', () => {
    expect(inspectablePrefix('ab😀', 3)).toBe('ab');
    expect(inspectablePrefix('ab😀', 4)).toBe('ab😀');
    expect(inspectablePrefix('ab😀', 0)).toBe('');
  });

  it('redactText replaces the part beyond the cap with the UNINSPECTED marker', () => {
    const text = 'mail a@b.io then more text';
    expect(redactText(text, detectPii(text), { maxChars: 12 })).toBe(
      `mail [REDACTED:EMAIL_ADDRESS] ${UNINSPECTED}`,
    );
    expect(redactText(text, [], { maxChars: 12 })).toBe(`mail a@b.io ${UNINSPECTED}`);
    // A span that crosses the cap is redacted up to it.
    expect(redactText(text, [{ type: 'X', start: 10, end: 20 }], { maxChars: 12 })).toBe(
      `mail a@b.i[REDACTED:X]${UNINSPECTED}`,
    );
  });

  it('applies MAX_INSPECT_CHARS by default', () => {
    const big = `${'x'.repeat(MAX_INSPECT_CHARS)}beyond the cap`;
    const out = redactText(big, []);
    expect(out.length).toBe(MAX_INSPECT_CHARS + UNINSPECTED.length);
    expect(out.endsWith(`x${UNINSPECTED}`)).toBe(true);
    expect(redactText('x'.repeat(MAX_INSPECT_CHARS), [])).toHaveLength(MAX_INSPECT_CHARS);
  });

  it('redactJson spends one budget over all leaves: the leaf crossing it is cut, later ones replaced', () => {
    const seen: string[] = [];
    const detect = (s: string) => {
      seen.push(s);
      return detectPii(s);
    };
    const { value, uninspected, findings } = redactJson(
      { a: 'mail a@b.io', b: ['0123456789', 'later'], c: '' },
      detect,
      { maxChars: 15 },
    );
    expect(value).toEqual({
      a: 'mail [REDACTED:EMAIL_ADDRESS]',
      b: [`0123${UNINSPECTED}`, UNINSPECTED],
      c: '',
    });
    expect(uninspected).toEqual(['/b/0', '/b/1']);
    expect(findings.map((f) => f.path)).toEqual(['/a']);
    // The detector never saw more than the budget.
    expect(seen.join('').length).toBeLessThanOrEqual(15);
  });

  it('redactJson caps a multi-megabyte leaf at MAX_INSPECT_CHARS by default', () => {
    let longest = 0;
    const big = 'y'.repeat(MAX_INSPECT_CHARS + 1000);
    const { value, uninspected } = redactJson({ big, after: 'z' }, (s) => {
      longest = Math.max(longest, s.length);
      return [];
    });
    expect(longest).toBe(MAX_INSPECT_CHARS);
    expect((value as { big: string }).big.endsWith(`y${UNINSPECTED}`)).toBe(true);
    expect((value as { after: string }).after).toBe(UNINSPECTED);
    expect(uninspected).toEqual(['/big', '/after']);
  });
});
