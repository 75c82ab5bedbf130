import { describe, expect, it } from 'vitest';
import { detectPii, redactJson, redactText, UNINSPECTED } from './index.js';

describe('redactText', () => {
  it('replaces each span with a marker naming its type', () => {
    const text = 'mail a@b.io or call +1 415 555 0132.';
    expect(redactText(text, detectPii(text))).toBe(
      'mail [REDACTED:EMAIL_ADDRESS] or call [REDACTED:PHONE_NUMBER].',
    );
  });

  it('accepts unsorted and overlapping spans without leaking the overlap', () => {
    const spans = [
      { type: 'B', start: 6, end: 10 },
      { type: 'A', start: 2, end: 8 },
    ];
    expect(redactText('0123456789xyz', spans)).toBe('01[REDACTED:A]xyz');
  });

  it('returns the text unchanged when there is nothing to redact', () => {
    expect(redactText('plain', [])).toBe('plain');
  });

  it('redacts by original offsets (zero-width split email)', () => {
    const text = 'to ja\u200Bne@example.com now';
    expect(redactText(text, detectPii(text))).toBe('to [REDACTED:EMAIL_ADDRESS] now');
  });
});

describe('redactJson', () => {
  const input = {
    user: { email: 'jane@example.com', 'ssn/id': 'SSN 123-45-6789', age: 41, ok: true, none: null },
    'jane@example.com': 'the key is untouched',
    history: [{ note: 'card 4111111111111111 declined' }, 'call +1 415 555 0132', 7],
  };

  it('redacts string leaves only, keeps structure, keys and JSON validity', () => {
    const { value, findings } = redactJson(input, detectPii);
    expect(value).toEqual({
      user: {
        email: '[REDACTED:EMAIL_ADDRESS]',
        'ssn/id': 'SSN [REDACTED:US_SSN]',
        age: 41,
        ok: true,
        none: null,
      },
      'jane@example.com': 'the key is untouched',
      history: [{ note: 'card [REDACTED:CREDIT_CARD] declined' }, 'call [REDACTED:PHONE_NUMBER]', 7],
    });
    expect(JSON.parse(JSON.stringify(value))).toEqual(value);
    expect(findings.map((f) => [f.path, f.type])).toEqual([
      ['/user/email', 'EMAIL_ADDRESS'],
      ['/user/ssn~1id', 'US_SSN'],
      ['/history/0/note', 'CREDIT_CARD'],
      ['/history/1', 'PHONE_NUMBER'],
    ]);
  });

  it('does not mutate the input', () => {
    const before = structuredClone(input);
    const { value } = redactJson(input, detectPii);
    expect(input).toEqual(before);
    expect(value).not.toBe(input);
  });

  it('redacts a top-level string and passes scalars through', () => {
    expect(redactJson('a@b.io', detectPii).value).toBe('[REDACTED:EMAIL_ADDRESS]');
    expect(redactJson(42, detectPii).value).toBe(42);
    expect(redactJson(null, detectPii).value).toBe(null);
  });

  it('fails closed beyond the depth bound', () => {
    const deep = { a: { b: { c: { d: 'a@b.io' } } }, top: 'x' };
    const { value, uninspected } = redactJson(deep, detectPii, { maxDepth: 2 });
    expect(value).toEqual({ a: { b: UNINSPECTED }, top: 'x' });
    expect(uninspected).toEqual(['/a/b']);
  });

  it('fails closed beyond the string budget', () => {
    const { value, uninspected } = redactJson(['a', 'b', 'c@d.io'], detectPii, { maxStrings: 2 });
    expect(value).toEqual(['a', 'b', UNINSPECTED]);
    expect(uninspected).toEqual(['/2']);
  });

  it('replaces a cycle instead of looping', () => {
    const o: Record<string, unknown> = { name: 'x' };
    o['self'] = o;
    const { value } = redactJson(o, detectPii);
    expect(value).toEqual({ name: 'x', self: UNINSPECTED });
  });

  it('keeps a "__proto__" key as data and drops what JSON would drop', () => {
    const parsed = JSON.parse('{"__proto__": {"mail": "a@b.io"}, "f": 1}') as unknown;
    const { value } = redactJson({ parsed, u: undefined, arr: [undefined] }, detectPii);
    expect(JSON.stringify(value)).toBe(
      '{"parsed":{"__proto__":{"mail":"[REDACTED:EMAIL_ADDRESS]"},"f":1},"arr":[null]}',
    );
    expect(({} as Record<string, unknown>)['mail']).toBeUndefined();
  });
});
