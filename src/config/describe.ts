/** How config values appear in error messages: short, and never a secret. */

const MAX_SHOWN = 60;

/** A value as it should appear after "got": quoted strings, truncated; `secret` names only the type. */
export function describeValue(v: unknown, secret = false): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Date) return secret ? 'a date' : v.toISOString();
  switch (typeof v) {
    case 'string': {
      if (secret) return 'a literal string';
      const s = v.length > MAX_SHOWN ? `${v.slice(0, MAX_SHOWN)}…` : v;
      return JSON.stringify(s);
    }
    case 'number':
    case 'bigint':
      return secret ? 'a number' : String(v);
    case 'boolean':
      return secret ? 'a boolean' : String(v);
    case 'object':
      return 'a mapping';
    default:
      return typeof v;
  }
}

/** Paths whose values may hold secrets or key material; messages there never echo the value. */
export function isSensitivePath(path: readonly PropertyKey[]): boolean {
  return path[0] === 'store' || path.includes('credentials') || path.includes('publicKey');
}
