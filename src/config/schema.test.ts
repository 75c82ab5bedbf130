import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkPublicJwk, checkStoreUrl, parseIsoDate } from './fields.js';
import { formatDuration, parseSize } from './units.js';

describe('parseSize / formatDuration', () => {
  it('parses 1024-based sizes and integer bytes', () => {
    expect(parseSize('1mb')).toBe(1_048_576);
    expect(parseSize('512KB')).toBe(524_288);
    expect(parseSize('100b')).toBe(100);
    expect(parseSize(42)).toBe(42);
    expect(() => parseSize('1 mile')).toThrow(TypeError);
    expect(() => parseSize(1.5)).toThrow(TypeError);
  });

  it('formats with the largest exact unit', () => {
    expect(formatDuration(900_000)).toBe('15m');
    expect(formatDuration(86_400_000)).toBe('1d');
    expect(formatDuration(1500)).toBe('1500ms');
  });
});

describe('parseIsoDate', () => {
  it('applies offsets and fractions', () => {
    expect(parseIsoDate('2027-01-01T00:00:00Z')).toBe(Date.UTC(2027, 0, 1));
    expect(parseIsoDate('2027-01-01T02:30:00+02:30')).toBe(Date.UTC(2027, 0, 1));
    expect(parseIsoDate('2027-01-01T00:00:00.250Z')).toBe(Date.UTC(2027, 0, 1, 0, 0, 0, 250));
    expect(parseIsoDate('2027-01-01')).toBe(Date.UTC(2027, 0, 1));
  });

  it('refuses impossible dates and zoneless times', () => {
    for (const s of [
      '2027-02-29',
      '2027-04-31T00:00:00Z',
      '2027-01-01T24:00:00Z',
      '2027-01-01T10:00',
      'soon',
    ]) {
      expect(parseIsoDate(s), s).toBeNull();
    }
    expect(parseIsoDate('2028-02-29')).toBe(Date.UTC(2028, 1, 29));
  });
});

describe('checkPublicJwk', () => {
  it('accepts Ed25519 and P-256 public keys', () => {
    for (const type of ['ed25519', 'ec'] as const) {
      const { publicKey } =
        type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
      expect(checkPublicJwk(publicKey.export({ format: 'jwk' })).ok).toBe(true);
    }
  });

  it('refuses private members, symmetric keys, other curves and short RSA keys', () => {
    const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    expect(checkPublicJwk(priv)).toMatchObject({
      ok: false,
      issues: [{ message: expect.stringContaining('"d"') }],
    });
    expect(checkPublicJwk({ kty: 'oct', k: 'AAAA' }).ok).toBe(false);
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
    expect(checkPublicJwk(x25519)).toMatchObject({
      ok: false,
      issues: [{ message: 'an OKP key must use crv Ed25519' }],
    });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    expect(checkPublicJwk(rsa)).toMatchObject({
      ok: false,
      issues: [{ message: 'an RSA key must be at least 2048 bits' }],
    });
  });
});

describe('checkStoreUrl', () => {
  it('allows a password only when the URL came from a secret', () => {
    const url = 'postgresql://u:pw@db:5432/w';
    expect(checkStoreUrl(url, false)).toContain('contains a password');
    expect(checkStoreUrl(url, true)).toBeNull();
    expect(checkStoreUrl('sqlite:', false)).toBe('sqlite: needs a file path');
    expect(checkStoreUrl('mysql://x', true)).toBe('expected sqlite:PATH or a postgres:// URL');
  });
});
