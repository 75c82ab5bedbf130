/**
 * v1 redaction of what the audit log stores: secret-looking keys, oversized
 * strings and deep or odd values. Pattern detectors (secrets inside values,
 * PII) come with the inspect/ area; this pass only needs the key names.
 *
 * The output is always plain JSON (objects, arrays, strings, finite numbers,
 * booleans, null), so `JSON.parse(JSON.stringify(x))` returns it unchanged and
 * the hash computed at append time is the one verification re-derives.
 */

/** Strings longer than this are cut (an argument is evidence, not storage). */
export const MAX_STRING = 2_000;
/** Containers nested deeper than this are cut: bounds recursion on hostile input. */
export const MAX_DEPTH = 16;
/** Arrays and objects keep at most this many items; the rest is summarised. */
export const MAX_ITEMS = 1_000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Key names seen recently and their kinds: tools and entries reuse a small vocabulary of keys. */
const KIND_CACHE = new Map<string, string | null>();
const KIND_CACHE_MAX = 4_096;
/** Longer keys are classified anew each time rather than held in the cache. */
const KIND_CACHE_KEY_MAX = 64;

/** The kind of secret a key name suggests (`password`, `token`, …), or null. */
export function secretKind(key: string): string | null {
  if (key.length > KIND_CACHE_KEY_MAX) return classifyKey(key);
  let kind = KIND_CACHE.get(key);
  if (kind === undefined) {
    kind = classifyKey(key);
    // Full: start again rather than track recency; the hot keys come back at once.
    if (KIND_CACHE.size >= KIND_CACHE_MAX) KIND_CACHE.clear();
    KIND_CACHE.set(key, kind);
  }
  return kind;
}

function classifyKey(key: string): string | null {
  // Split camelCase and separators into words: "X-API-Key" → x api key, "accessToken" → access token.
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '');
  const joined = words.join('');
  const last = words.at(-1) ?? '';
  const has = (...parts: string[]) => parts.some((p) => joined.includes(p));
  if (has('privatekey', 'signingkey')) return 'private_key';
  if (has('apikey', 'accesskey')) return 'api_key';
  if (has('password', 'passwd', 'passphrase') || words.includes('pwd')) return 'password';
  if (has('secret')) return 'secret';
  if (has('authorization') || last === 'auth') return 'authorization';
  if (has('cookie')) return 'cookie';
  if (has('credential') || joined === 'connectionstring' || last === 'dsn') return 'credential';
  // Only a trailing "token" word: access_token, X-Auth-Token — but not max_tokens or token_count,
  // which are LLM usage numbers worth keeping.
  if (last === 'token' || last === 'jwt' || last === 'bearer' || last === 'otp') return 'token';
  if (words.includes('ssn') || has('socialsecurity')) return 'ssn';
  if (
    has('cardnum', 'cardno', 'creditcard', 'debitcard', 'ccnumber') ||
    words.some((w) => /^cv[vc]2?$/.test(w))
  ) {
    return 'card';
  }
  return null;
}

/** `String.prototype.isWellFormed` (Node 20+; the ES2024 lib, not ours, declares it). */
type WellFormed = string & { isWellFormed(): boolean };

// Lone UTF-16 surrogates do not survive UTF-8 storage (they become U+FFFD), and NUL is
// refused by PostgreSQL text: fix both up front so what is hashed is what is stored.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** A string safe to store in a text column and to hash: well-formed UTF-16, no NUL, at most `max` chars. */
export function cleanText(s: string, max: number = MAX_STRING): string {
  // Most texts need nothing: one native check each instead of two rewriting passes.
  if (s.length <= max && (s as WellFormed).isWellFormed() && !s.includes('\u0000')) return s;
  let out = s.replace(LONE_SURROGATE, '\uFFFD').replaceAll('\u0000', '\uFFFD');
  if (out.length > max) {
    let cut = max;
    // Do not split a surrogate pair at the cut.
    const code = out.charCodeAt(cut - 1);
    if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
    out = `${out.slice(0, cut)}…[TRUNCATED:${s.length} chars]`;
  }
  return out;
}

/** Keys a redacted value: `hmac-sha256:<hex>` (see hmac.ts). */
export type ValueHmac = (value: unknown) => string;

/**
 * `value` made safe to store in the audit log: secrets under secret-looking keys replaced, size
 * bounded, plain JSON. With `hmac`, a replaced value becomes `[REDACTED:<kind>:hmac-sha256:<hex>]`:
 * the same value always gives the same marker, so an investigator holding the key can find it.
 */
export function redactParameters(value: unknown, hmac?: ValueHmac): unknown {
  return walk(value, 0, { ancestors: new Set(), hmac }) ?? null;
}

/** One whole `[REDACTED:<TYPE>:hmac-sha256:<hex>]` marker. */
const KEYED_MARKER = /^\[REDACTED:[A-Za-z0-9_.-]{1,64}:hmac-sha256:[0-9a-f]{64}\]$/;

interface Ctx {
  ancestors: Set<object>;
  hmac: ValueHmac | undefined;
}

/** The marker for a value under a secret-looking key. */
function marker(kind: string, x: unknown, hmac: ValueHmac | undefined): string {
  if (hmac === undefined) return `[REDACTED:${kind}]`;
  // Already one detector marker with its HMAC (inspect-input), of the whole value: keep it, so
  // the HMAC stays that of the value itself and an investigator's lookup finds it.
  if (typeof x === 'string' && KEYED_MARKER.test(x)) return x;
  try {
    return `[REDACTED:${kind}:${hmac(x)}]`;
  } catch {
    // A value that has no canonical JSON (a cycle, a BigInt deep inside) is still redacted.
    return `[REDACTED:${kind}]`;
  }
}

/** Returns undefined for "omit" (undefined in an object), as JSON.stringify does. */
function walk(v: unknown, depth: number, ctx: Ctx): Json | undefined {
  switch (typeof v) {
    case 'string':
      return cleanText(v);
    case 'number':
      return Number.isFinite(v) ? v : null;
    case 'boolean':
      return v;
    case 'bigint':
      // Exact as a string; a JSON number would lose precision past 2^53.
      return v.toString();
    case 'undefined':
      return undefined;
    case 'function':
    case 'symbol':
      return `[UNSERIALIZABLE:${typeof v}]`;
  }
  if (v === null || typeof v !== 'object') return null;
  if (depth >= MAX_DEPTH) return '[TRUNCATED:depth]';
  if (ctx.ancestors.has(v)) return '[CIRCULAR]';
  ctx.ancestors.add(v);
  try {
    return container(v, depth, ctx);
  } catch {
    // Proxies and getters can throw anything; the audit write must not.
    return '[UNSERIALIZABLE:object]';
  } finally {
    ctx.ancestors.delete(v);
  }
}

function container(v: object, depth: number, ctx: Ctx): Json | undefined {
  if (ArrayBuffer.isView(v)) return `[BINARY:${v.byteLength} bytes]`;
  if (v instanceof ArrayBuffer) return `[BINARY:${v.byteLength} bytes]`;
  if (Array.isArray(v)) return list(v, depth, ctx);
  if (v instanceof Set) return list([...v], depth, ctx);
  if (v instanceof Map)
    return record(
      [...v].map(([k, x]) => [String(k), x]),
      depth,
      ctx,
    );
  if (v instanceof Error)
    return record(
      [
        ['name', v.name],
        ['message', v.message],
      ],
      depth,
      ctx,
    );
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  // Dates and similar: use their JSON form, one level deeper so a toJSON chain cannot loop.
  if (typeof toJSON === 'function') return walk(toJSON.call(v), depth + 1, ctx);
  const entries = Object.keys(v).map((k): [string, unknown] => {
    try {
      return [k, (v as Record<string, unknown>)[k]];
    } catch {
      return [k, '[UNSERIALIZABLE:getter]'];
    }
  });
  return record(entries, depth, ctx);
}

function list(items: readonly unknown[], depth: number, ctx: Ctx): Json[] {
  const n = Math.min(items.length, MAX_ITEMS);
  // Index loop, not map(): holes become null, as in JSON.
  const out: Json[] = [];
  for (let i = 0; i < n; i++) out.push(walk(items[i], depth + 1, ctx) ?? null);
  if (items.length > n) out.push(`[TRUNCATED:${items.length - n} more items]`);
  return out;
}

function record(entries: [string, unknown][], depth: number, ctx: Ctx): { [key: string]: Json } {
  const out: [string, Json][] = [];
  for (const [key, x] of entries.slice(0, MAX_ITEMS)) {
    const kind = secretKind(key);
    // null/undefined under a secret key reveal nothing; keep them so "no password given" stays visible.
    const value =
      kind !== null && x !== null && x !== undefined ? marker(kind, x, ctx.hmac) : walk(x, depth + 1, ctx);
    if (value !== undefined) out.push([cleanText(key), value]);
  }
  if (entries.length > MAX_ITEMS) out.push(['[TRUNCATED]', `${entries.length - MAX_ITEMS} more keys`]);
  // fromEntries defines own properties, so a "__proto__" key stays data (as JSON.parse makes it).
  return Object.fromEntries(out);
}
