/**
 * Config fields that zod's built-ins cannot describe well: units, dates,
 * secret references, store URLs, public keys, CIDRs, URLs. Each is parsed by
 * hand so its message says exactly what was expected — and never echoes a
 * value that might be a secret.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { parseDuration } from '../util/duration.js';
import { describeValue } from './describe.js';
import type { SecretRef } from './types.js';
import { formatDuration, parseSize } from './units.js';

/** A problem found at `path` (relative to where the check ran). */
export interface PathMessage {
  path: PropertyKey[];
  message: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; issues: PathMessage[] };

export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const fail = (message: string, path: PropertyKey[] = []): Parsed<never> => ({
  ok: false,
  issues: [{ message, path }],
});

/** A field checked by a hand-written parser, so its message can say exactly what was expected. */
export function field<T>(expected: string, parse: (v: unknown) => Parsed<T>) {
  return z.unknown().transform((v, ctx): T => {
    // Only required fields see undefined here: `.default()` and `.optional()` handle it before us.
    if (v === undefined) {
      ctx.addIssue({ code: 'custom', message: `missing required key (expected ${expected})` });
      return z.NEVER;
    }
    const r = parse(v);
    if (r.ok) return r.value;
    for (const i of r.issues) ctx.addIssue({ code: 'custom', message: i.message, path: i.path });
    return z.NEVER;
  });
}

/** A duration ("30s" or integer ms) bounded by `min` and an optional hard `max`. */
export function durationField(opts: { min: number; max?: number; why?: string }) {
  return field('a duration', (v) => {
    const expected = 'expected a duration like 250ms, 30s, 15m, 24h or 7d (or integer milliseconds)';
    let ms: number;
    if (typeof v === 'string') {
      try {
        ms = parseDuration(v);
      } catch {
        return fail(`${expected}, got ${describeValue(v)}`);
      }
    } else if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
      ms = v;
    } else {
      return fail(`${expected}, got ${describeValue(v)}`);
    }
    if (ms < opts.min) return fail(`expected at least ${formatDuration(opts.min)}, got ${describeValue(v)}`);
    if (opts.max !== undefined && ms > opts.max) {
      const why = opts.why === undefined ? '' : ` (${opts.why})`;
      return fail(`${describeValue(v)} exceeds the hard maximum of ${formatDuration(opts.max)}${why}`);
    }
    return ok(ms);
  });
}

export const sizeField = field('a size', (v) => {
  if (typeof v === 'string' || typeof v === 'number') {
    try {
      const n = parseSize(v);
      if (n > 0) return ok(n);
    } catch {
      // fall through to the message below
    }
  }
  return fail(`expected a size like 100b, 512kb or 1mb (or integer bytes), got ${describeValue(v)}`);
});

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(?:([Zz])|([+-])(\d{2}):?(\d{2})))?$/;

/** Parse an ISO-8601 date (UTC) or date-time with a zone into epoch ms; null when invalid. */
export function parseIsoDate(s: string): number | null {
  const m = ISO_DATE.exec(s.trim());
  if (!m) return null;
  const [y, mo, d, h = 0, mi = 0, sec = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((x) =>
    x === undefined ? undefined : Number(x),
  ) as [number, number, number, number?, number?, number?];
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || sec > 59) return null;
  const ms = m[7] === undefined ? 0 : Math.floor(Number(m[7]) * 1000);
  const offsetMin = m[9] === undefined ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
  if (offsetMin !== 0 && (Number(m[10]) > 23 || Number(m[11]) > 59)) return null;
  return Date.UTC(y, mo - 1, d, h, mi, sec, ms) - offsetMin * 60_000;
}

export const dateField = field('an ISO-8601 date-time', (v) => {
  if (v instanceof Date && !Number.isNaN(v.getTime())) return ok(v.getTime());
  const t = typeof v === 'string' ? parseIsoDate(v) : null;
  if (t === null) {
    return fail(`expected an ISO-8601 date-time such as 2027-01-01T00:00:00Z, got ${describeValue(v)}`);
  }
  return ok(t);
});

const SECRET_HINT =
  'secrets must be references — {env: VARIABLE} or {file: PATH} — never literal values in the config file';
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A header secret keeps its optional prefix (e.g. "Bearer "). */
export type HeaderSecretRef = SecretRef & { prefix?: string };

/** A secret reference {env} | {file} (plus `prefix` for headers); a literal value is refused. */
export function secretRef(v: unknown, allowPrefix: false): Parsed<SecretRef>;
export function secretRef(v: unknown, allowPrefix: true): Parsed<HeaderSecretRef>;
export function secretRef(v: unknown, allowPrefix: boolean): Parsed<HeaderSecretRef> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return fail(`${SECRET_HINT}; got ${describeValue(v, true)}`);
  }
  const o = v as Record<string, unknown>;
  const allowed = allowPrefix ? ['env', 'file', 'prefix'] : ['env', 'file'];
  const issues: PathMessage[] = Object.keys(o)
    .filter((k) => !allowed.includes(k))
    .map((k) => ({
      path: [k],
      message: `unknown key "${k}" in a secret reference (expected ${allowed.join(', ')})`,
    }));
  if (allowPrefix && o.prefix !== undefined && typeof o.prefix !== 'string') {
    issues.push({ path: ['prefix'], message: `expected a string, got ${describeValue(o.prefix)}` });
  }
  let ref: SecretRef | undefined;
  if ('env' in o && 'file' in o) {
    issues.push({ path: [], message: 'a secret reference has exactly one of env or file, not both' });
  } else if ('env' in o) {
    if (typeof o.env === 'string' && ENV_NAME.test(o.env)) ref = { env: o.env };
    else
      issues.push({
        path: ['env'],
        message: `expected an environment variable name, got ${describeValue(o.env)}`,
      });
  } else if ('file' in o) {
    if (typeof o.file === 'string' && o.file.trim() !== '') ref = { file: o.file };
    else issues.push({ path: ['file'], message: `expected a file path, got ${describeValue(o.file)}` });
  } else {
    issues.push({ path: [], message: SECRET_HINT });
  }
  if (issues.length > 0 || ref === undefined) return { ok: false, issues };
  return ok(typeof o.prefix === 'string' ? { ...ref, prefix: o.prefix } : ref);
}

/** Check a literal (non-reference) store URL; `fromSecret` allows credentials, which only a secret may hold. */
export function checkStoreUrl(url: string, fromSecret: boolean): string | null {
  if (url.startsWith('sqlite:')) return url.length > 'sqlite:'.length ? null : 'sqlite: needs a file path';
  if (!/^postgres(ql)?:\/\//.test(url)) {
    return 'expected sqlite:PATH or a postgres:// URL';
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'expected a valid postgres:// URL';
  }
  if (!fromSecret && (u.password !== '' || u.searchParams.has('password'))) {
    return `the postgres URL contains a password; ${SECRET_HINT} (e.g. url: {env: DATABASE_URL})`;
  }
  return null;
}

export const storeUrlField = field('a store URL', (v): Parsed<string | SecretRef> => {
  if (typeof v === 'string') {
    const problem = checkStoreUrl(v, false);
    return problem === null ? ok(v) : fail(problem);
  }
  return secretRef(v, false);
});

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

/** Check a public JWK: asymmetric, parseable, and free of private members. */
export function checkPublicJwk(v: unknown): Parsed<Record<string, unknown>> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return fail(`expected a public JWK mapping or {file: PATH}, got ${describeValue(v, true)}`);
  }
  const jwk = v as Record<string, unknown>;
  const priv = PRIVATE_JWK_MEMBERS.filter((k) => k in jwk);
  if (priv.length > 0) {
    const names = priv.map((k) => `"${k}"`).join(', ');
    return fail(
      `the JWK contains private key member(s) ${names}: only the agent's public key belongs in the config (the private key stays with the agent)`,
    );
  }
  if (jwk.kty === 'OKP' && jwk.crv !== 'Ed25519') return fail('an OKP key must use crv Ed25519');
  if (jwk.kty !== 'OKP' && jwk.kty !== 'EC' && jwk.kty !== 'RSA') {
    return fail(`expected kty OKP (Ed25519), EC or RSA, got ${describeValue(jwk.kty)}`);
  }
  try {
    const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    const bits = key.asymmetricKeyDetails?.modulusLength;
    if (jwk.kty === 'RSA' && (bits === undefined || bits < 2048))
      return fail('an RSA key must be at least 2048 bits');
  } catch (e) {
    return fail(`not a valid public JWK (${(e as Error).message})`);
  }
  return ok({ ...jwk });
}

/** `publicKey` as written: an inline JWK, or a file still to be read by the loader. */
export type PublicKeySource = { jwk: Record<string, unknown> } | { file: string };

export const publicKeyField = field('a public JWK', (v): Parsed<PublicKeySource> => {
  if (typeof v === 'object' && v !== null && 'file' in v) {
    const o = v as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => k !== 'file');
    if (extra.length > 0) {
      return fail(`expected either an inline JWK or {file: PATH}, not both (extra key "${extra[0]}")`);
    }
    if (typeof o.file !== 'string' || o.file.trim() === '') {
      return fail(`expected a file path, got ${describeValue(o.file)}`, ['file']);
    }
    return ok({ file: o.file });
  }
  const r = checkPublicJwk(v);
  return r.ok ? ok({ jwk: r.value }) : r;
});

export const cidrField = field('a CIDR range', (v) => {
  if (typeof v === 'string' && (ipaddr.IPv4.isValidCIDRFourPartDecimal(v) || ipaddr.IPv6.isValidCIDR(v))) {
    return ok(v);
  }
  return fail(`expected a CIDR range such as 10.0.0.0/8 or ::1/128, got ${describeValue(v)}`);
});

/** An http(s) URL without credentials; `showValue` false keeps a bad value out of messages. */
export function httpUrlField(showValue: boolean) {
  return field('an http(s) URL', (v) => {
    let u: URL | undefined;
    try {
      u = typeof v === 'string' ? new URL(v) : undefined;
    } catch {
      u = undefined;
    }
    if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
      return fail(`expected an http:// or https:// URL, got ${describeValue(v, !showValue)}`);
    }
    if (u.password !== '' || u.username !== '') {
      return fail(`the URL contains credentials; ${SECRET_HINT}`);
    }
    return ok(u.href);
  });
}

export const publicUrlField = httpUrlField(true).pipe(
  z.string().refine((s) => !s.includes('?') && !s.includes('#'), {
    error: 'expected a base URL without query or fragment',
  }),
);
