import { describe, expect, it } from 'vitest';
import {
  hashPassword,
  KEY_BYTES,
  MAX_PASSWORD_LENGTH,
  passwordProblem,
  SALT_BYTES,
  SCRYPT_LOG2N,
  SCRYPT_P,
  SCRYPT_R,
  verifyPassword,
} from './password.js';
import { DUMMY_HASH } from './store.js';

const PW = 'correct horse battery staple';

describe('hashPassword / verifyPassword', () => {
  it('stores scrypt$15$8$1$<16-byte salt>$<32-byte key>, and verifies the right password only', async () => {
    const stored = await hashPassword(PW);
    const parts = stored.split('$');
    expect(parts.slice(0, 4)).toEqual(['scrypt', '15', '8', '1']);
    expect(Buffer.from(parts[4]!, 'base64url')).toHaveLength(SALT_BYTES);
    expect(Buffer.from(parts[5]!, 'base64url')).toHaveLength(KEY_BYTES);
    expect(stored).not.toContain(PW);
    expect(await verifyPassword(PW, stored)).toBe(true);
    expect(await verifyPassword(`${PW} `, stored)).toBe(false);
    expect(await verifyPassword('Correct horse battery staple', stored)).toBe(false);
    expect(await verifyPassword('', stored)).toBe(false);
  });

  it('salts: the same password hashes differently each time, and each hash verifies', async () => {
    const [a, b] = await Promise.all([hashPassword(PW), hashPassword(PW)]);
    expect(a).not.toBe(b);
    expect(await verifyPassword(PW, a!)).toBe(true);
    expect(await verifyPassword(PW, b!)).toBe(true);
  });

  it('verifies a value with other (bounded) parameters: the cost can change without rehashing everyone', async () => {
    // Derived outside hashPassword, with N = 2^10, r = 4, p = 2.
    const { scryptSync } = await import('node:crypto');
    const key = scryptSync('some other password', 'saltsaltsalt', 32, { N: 2 ** 10, r: 4, p: 2 });
    const stored = `scrypt$10$4$2$${Buffer.from('saltsaltsalt').toString('base64url')}$${key.toString('base64url')}`;
    expect(await verifyPassword('some other password', stored)).toBe(true);
    expect(await verifyPassword('some other passwore', stored)).toBe(false);
  });

  it('normalises to NFC: a composed and a decomposed é are the same password', async () => {
    const stored = await hashPassword('caf\u00e9-au-lait-noir');
    expect(await verifyPassword('cafe\u0301-au-lait-noir', stored)).toBe(true);
  });

  it('is false (and quick) for malformed stored values and absurd parameters', async () => {
    const good = await hashPassword(PW);
    const [, , , , salt, key] = good.split('$');
    const bad = [
      '',
      'plain-text-password',
      'scrypt',
      good.replace('scrypt$', 'bcrypt$'),
      `${good}$extra`,
      `scrypt$15$8$1$${salt}`,
      `scrypt$015$8$1$${salt}$${key}`,
      `scrypt$x$8$1$${salt}$${key}`,
      `scrypt$0$8$1$${salt}$${key}`,
      `scrypt$15$8$1$${salt}$${key}=`,
      `scrypt$15$8$1$${salt}$${key}!`,
      `scrypt$15$8$1$$${key}`,
      `scrypt$15$8$1$${salt}$AAAA`,
      // Denial of service through a stored value: each would need gigabytes or minutes.
      `scrypt$21$8$1$${salt}$${key}`,
      `scrypt$40$8$1$${salt}$${key}`,
      `scrypt$20$64$1$${salt}$${key}`,
      `scrypt$20$8$16$${salt}$${key}`,
      `scrypt$15$8$999$${salt}$${key}`,
    ];
    const started = Date.now();
    for (const stored of bad) expect(await verifyPassword(PW, stored), stored).toBe(false);
    // None of them ran scrypt at 2^20 (about a second each) or worse.
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('the dummy hash for unknown users uses the current parameters (so it costs what a real login does)', () => {
    expect(DUMMY_HASH.split('$').slice(0, 4)).toEqual([
      'scrypt',
      String(SCRYPT_LOG2N),
      String(SCRYPT_R),
      String(SCRYPT_P),
    ]);
  });
});

describe('passwordProblem', () => {
  it('accepts 12 to 1024 characters that are not all the same', () => {
    expect(passwordProblem('abcdefghijkl')).toBeNull();
    expect(passwordProblem(PW)).toBeNull();
    expect(passwordProblem('ab'.repeat(MAX_PASSWORD_LENGTH / 2))).toBeNull();
    // Characters, not UTF-16 units: twelve emoji are twelve characters.
    expect(passwordProblem('🔑🔒'.repeat(6))).toBeNull();
  });

  it('says what is wrong', () => {
    expect(passwordProblem('')).toMatch(/too short: at least 12 characters \(got 0\)/);
    expect(passwordProblem('abcdefghijk')).toMatch(/too short: at least 12 characters \(got 11\)/);
    expect(passwordProblem('🔑'.repeat(11))).toMatch(/too short/);
    expect(passwordProblem('ab'.repeat(513))).toMatch(/too long: at most 1024 characters \(got 1026\)/);
    expect(passwordProblem('a'.repeat(12))).toMatch(/repeats one character/);
    expect(passwordProblem('🔑'.repeat(20))).toMatch(/repeats one character/);
    expect(passwordProblem('abcdefghijkl\n')).toMatch(/control character/);
    expect(passwordProblem('abcdef\tghijkl')).toMatch(/control character/);
  });
});
