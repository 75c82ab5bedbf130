/**
 * Password hashing for the embedded user store: scrypt (RFC 7914) from
 * node:crypto, stored as `scrypt$<log2N>$<r>$<p>$<salt>$<hash>` (base64url), so
 * the cost can rise later without invalidating stored hashes.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt cost for new hashes: N = 2^15, r = 8, p = 1 (32 MiB, tens of milliseconds; OWASP's minimum is 2^17 at r = 8 / p = 1 or this memory-equivalent). */
export const SCRYPT_LOG2N = 15;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
export const SALT_BYTES = 16;
export const KEY_BYTES = 32;

/** Password length bounds, in characters (code points). */
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 1024;

/**
 * Bounds on the parameters a stored value may name: a stored hash is data, and
 * a tampered or corrupt one must not make one login cost gigabytes or minutes.
 */
const MAX_LOG2N = 20;
const MAX_R = 32;
const MAX_P = 16;
/** scrypt needs 128·N·r bytes, and its work grows with N·r·p: both capped at 1 GiB worth. */
const MAX_COST = 2 ** 30;

interface ScryptParams {
  log2N: number;
  r: number;
  p: number;
}

/** scrypt as a promise; `maxmem` leaves room above the 128·N·r bytes the parameters need (Node's default is 32 MiB, exactly N = 2^15, r = 8, too little). */
function derive(
  password: string,
  salt: Buffer,
  keyLength: number,
  { log2N, r, p }: ScryptParams,
): Promise<Buffer> {
  const N = 2 ** log2N;
  return new Promise((resolve, reject) => {
    scrypt(
      Buffer.from(password.normalize('NFC'), 'utf8'),
      salt,
      keyLength,
      { N, r, p, maxmem: 128 * N * r + 16 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

/** Hash `password` for storage: `scrypt$15$8$1$<salt b64url>$<hash b64url>`, with a fresh 16-byte salt. */
export async function hashPassword(password: string): Promise<string> {
  const params = { log2N: SCRYPT_LOG2N, r: SCRYPT_R, p: SCRYPT_P };
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, KEY_BYTES, params);
  return [
    'scrypt',
    SCRYPT_LOG2N,
    SCRYPT_R,
    SCRYPT_P,
    salt.toString('base64url'),
    key.toString('base64url'),
  ].join('$');
}

const INTEGER = /^[1-9]\d{0,2}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

/** Decode unpadded base64url exactly (Buffer.from skips characters it does not know), within `min`..`max` bytes. */
function decode(text: string, min: number, max: number): Buffer | null {
  if (!B64URL.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.length < min || bytes.length > max || bytes.toString('base64url') !== text) return null;
  return bytes;
}

/** A stored value's parts, or null when it is malformed or names parameters outside the bounds. */
function parseStored(stored: string): (ScryptParams & { salt: Buffer; key: Buffer }) | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [, n, r, p, salt, key] = parts as [string, string, string, string, string, string];
  if (!INTEGER.test(n) || !INTEGER.test(r) || !INTEGER.test(p)) return null;
  const params = { log2N: Number(n), r: Number(r), p: Number(p) };
  if (params.log2N > MAX_LOG2N || params.r > MAX_R || params.p > MAX_P) return null;
  if (128 * 2 ** params.log2N * params.r * params.p > MAX_COST) return null;
  const saltBytes = decode(salt, 8, 64);
  const keyBytes = decode(key, 16, 64);
  if (!saltBytes || !keyBytes) return null;
  return { ...params, salt: saltBytes, key: keyBytes };
}

/** True when `password` matches `stored` (compared in constant time); false for a malformed or out-of-bounds stored value. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseStored(stored);
  // Longer than any password we accept: it cannot match, and hashing it would be work for nothing.
  if (!parsed || password.length > 4 * MAX_PASSWORD_LENGTH) return false;
  const key = await derive(password, parsed.salt, parsed.key.length, parsed);
  return timingSafeEqual(key, parsed.key);
}

/** What is wrong with `password` as a new password, or null when it is acceptable. */
export function passwordProblem(password: string): string | null {
  const chars = [...password];
  if (chars.length < MIN_PASSWORD_LENGTH) {
    return `the password is too short: at least ${MIN_PASSWORD_LENGTH} characters (got ${chars.length})`;
  }
  if (chars.length > MAX_PASSWORD_LENGTH) {
    return `the password is too long: at most ${MAX_PASSWORD_LENGTH} characters (got ${chars.length})`;
  }
  if (new Set(chars).size === 1) return 'the password repeats one character: use different characters';
  // A control character (a newline from a pasted file, say) cannot be typed at the login page.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f-\u009f]/.test(password)) return 'the password contains a control character';
  return null;
}
