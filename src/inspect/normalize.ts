/**
 * Normalisation before any detector looks (issue #7): patterns are written
 * for plain Latin text, so invisible characters, compatibility forms and
 * look-alike letters are folded away first, and every character of the
 * result remembers where it came from so a finding can point at the original.
 */
import { CONFUSABLES } from './confusables.js';

/** Text as detectors see it, with a map back to the original. */
export interface Normalized {
  readonly original: string;
  /**
   * NFKC (per code point), zero-width / bidi / control characters removed,
   * invisible tag characters decoded to the ASCII they stand for, confusables
   * folded to Latin, whitespace runs collapsed to one space. Case is kept:
   * detectors match case-insensitively.
   */
  readonly text: string;
  /**
   * For each UTF-16 index i of `text`, the index in `original` where the
   * character it came from starts; length text.length + 1, the last entry
   * original.length, so end offsets map too.
   */
  readonly map: Uint32Array;
  /** Set when `text` is `original` unchanged, so `map` is the identity (built only when read). */
  readonly identity?: true;
}

const PLAIN = 0;
const REMOVE = 1;
const SPACE = 2;
const OTHER = 3;

/** The class of every BMP code unit; surrogates are OTHER and resolved in the loop. */
const CLASS: Uint8Array = buildClasses();

function buildClasses(): Uint8Array {
  const c = new Uint8Array(0x10000).fill(OTHER);
  for (let u = 0x21; u < 0x7f; u++) c[u] = PLAIN;
  // C0 and C1 controls: nothing a reader sees, so nothing a pattern should have to skip.
  for (let u = 0; u < 0x20; u++) c[u] = REMOVE;
  for (let u = 0x7f; u <= 0x9f; u++) c[u] = REMOVE;
  const ranges: ReadonlyArray<readonly [number, number, number]> = [
    // Unicode White_Space (\v, \f and NEL too: removing them would glue words together).
    [0x09, 0x0d, SPACE],
    [0x20, 0x20, SPACE],
    [0x85, 0x85, SPACE],
    [0xa0, 0xa0, SPACE],
    [0x1680, 0x1680, SPACE],
    [0x2000, 0x200a, SPACE],
    [0x2028, 0x2029, SPACE],
    [0x202f, 0x202f, SPACE],
    [0x205f, 0x205f, SPACE],
    [0x3000, 0x3000, SPACE],
    // Invisible: soft hyphen, combining grapheme joiner, Arabic letter mark, Mongolian vowel separator.
    [0xad, 0xad, REMOVE],
    [0x34f, 0x34f, REMOVE],
    [0x61c, 0x61c, REMOVE],
    [0x180e, 0x180e, REMOVE],
    // Zero-width space / non-joiner / joiner, LRM, RLM.
    [0x200b, 0x200f, REMOVE],
    // Bidi embeddings and overrides (the "Trojan Source" reordering trick).
    [0x202a, 0x202e, REMOVE],
    // Word joiner, invisible operators, bidi isolates, deprecated format controls.
    [0x2060, 0x206f, REMOVE],
    // Variation selectors, byte-order mark / zero-width no-break space.
    [0xfe00, 0xfe0f, REMOVE],
    [0xfeff, 0xfeff, REMOVE],
  ];
  for (const [from, to, cls] of ranges) c.fill(cls, from, to + 1);
  return c;
}

/** NFKC then confusable folding of one code point, as UTF-16 (BMP: cached forever, at most 64 Ki entries). */
const BMP_CACHE: Array<string | undefined> = new Array(0x10000);
/** The same for astral code points, bounded: cleared when full. */
const ASTRAL_CACHE = new Map<number, string>();
const ASTRAL_CACHE_MAX = 4096;

function expand(ch: string): string {
  let n = ch.normalize('NFKC');
  // Spacing accents (´ ¨ ¸ …) decompose to space + combining mark; the space would split a word in two
  // and make the mapping depend on what precedes, so it goes.
  if (n !== ch && n.charCodeAt(0) === 0x20) n = n.replace(/^ +/, '');
  let out = '';
  for (const c of n) out += CONFUSABLES.get(c.codePointAt(0)!) ?? c;
  return out;
}

function expandBmp(u: number): string {
  let e = BMP_CACHE[u];
  if (e === undefined) {
    e = expand(String.fromCharCode(u));
    BMP_CACHE[u] = e;
  }
  return e;
}

function expandAstral(cp: number): string {
  // Tag characters: U+E0020–E007E spell ASCII invisibly (a known way to smuggle instructions), so they
  // are decoded, not dropped; the rest of the block (language tag, cancel tag) is removed.
  if (cp >= 0xe0000 && cp <= 0xe007f) {
    return cp >= 0xe0020 && cp <= 0xe007e ? String.fromCharCode(cp - 0xe0000) : '';
  }
  if (cp >= 0xe0100 && cp <= 0xe01ef) return ''; // variation selectors supplement
  let e = ASTRAL_CACHE.get(cp);
  if (e === undefined) {
    e = expand(String.fromCodePoint(cp));
    if (ASTRAL_CACHE.size >= ASTRAL_CACHE_MAX) ASTRAL_CACHE.clear();
    ASTRAL_CACHE.set(cp, e);
  }
  return e;
}

/**
 * Normalizes `original` for detectors (see {@link Normalized}); linear time,
 * output at most 18 UTF-16 units per input code point (NFKC's longest expansion).
 */
export function normalize(original: string): Normalized {
  const len = original.length;
  if (unchangedByNormalize(original)) return identity(original);
  const units = utf16Units(original);
  // The buffers are locals that no closure captures (a `grow` closure reassigning them would make
  // every write in the loop a context load).
  let cap = len + 16;
  let out: Uint16Array = new Uint16Array(cap);
  let map: Uint32Array = new Uint32Array(cap + 1);
  let n = 0;
  // Whether the last unit written is a space: collapsing looks through removed characters.
  let lastSpace = false;
  for (let i = 0; i < len; ) {
    // Room for the one unit the plain and space paths write; an expansion checks for its own length.
    if (n === cap) {
      cap *= 2;
      out = grown16(out, n, cap);
      map = grown32(map, n, cap + 1);
    }
    const u = units[i]!;
    const cls = CLASS[u]!;
    if (cls === PLAIN) {
      out[n] = u;
      map[n++] = i++;
      lastSpace = false;
      continue;
    }
    if (cls === SPACE) {
      if (!lastSpace) {
        out[n] = 0x20;
        map[n++] = i;
        lastSpace = true;
      }
      i++;
      continue;
    }
    if (cls === REMOVE) {
      i++;
      continue;
    }
    let width = 1;
    let e: string;
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < len) {
      const lo = units[i + 1]!;
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        width = 2;
        e = expandAstral(((u - 0xd800) << 10) + (lo - 0xdc00) + 0x10000);
      } else {
        e = expandBmp(u);
      }
    } else {
      e = expandBmp(u);
    }
    if (n + e.length > cap) {
      cap = Math.max(cap * 2, n + e.length);
      out = grown16(out, n, cap);
      map = grown32(map, n, cap + 1);
    }
    for (let k = 0; k < e.length; k++) {
      const v = e.charCodeAt(k);
      if (v === 0x20) {
        if (lastSpace) continue;
        lastSpace = true;
      } else {
        lastSpace = false;
      }
      out[n] = v;
      map[n++] = i;
    }
    i += width;
  }
  map[n] = len;
  return { original, text: unitsToString(out, n), map: map.slice(0, n + 1) };
}

function grown16(a: Uint16Array, used: number, cap: number): Uint16Array {
  const b = new Uint16Array(cap);
  b.set(a.subarray(0, used));
  return b;
}

function grown32(a: Uint32Array, used: number, cap: number): Uint32Array {
  const b = new Uint32Array(cap);
  b.set(a.subarray(0, used));
  return b;
}

/**
 * Whether normalising `s` would give `s` back: only characters copied as they are, and no
 * whitespace but single spaces. Most machine output is like this; it then needs no copy and
 * no offset map (allocating both cost ~1 ms per 64 KB, most of it in the garbage collector).
 */
function unchangedByNormalize(s: string): boolean {
  // Printable ASCII is the only class copied as is (see buildClasses); the regex engine scans for the
  // first unit outside it about twice as fast as a charCodeAt loop.
  return !CHANGED_BY_NORMALIZE.test(s);
}

const CHANGED_BY_NORMALIZE = /[^\x20-\x7e]| {2}/;

/** The normalisation of a text that normalising leaves as it is: the identity map, built only if asked for. */
function identity(original: string): Normalized {
  let map: Uint32Array | undefined;
  return {
    original,
    text: original,
    identity: true,
    get map() {
      if (!map) {
        map = new Uint32Array(original.length + 1);
        for (let i = 0; i <= original.length; i++) map[i] = i;
      }
      return map;
    },
  };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The UTF-16 units of `s` in an array. Node's encoder copies them in one native pass, against a
 * charCodeAt loop that costs ~4 ns a unit on a small machine (typed-array reads cost a third);
 * lone surrogates are copied as they are.
 */
function utf16Units(s: string): Uint16Array {
  if (LITTLE_ENDIAN) {
    const b = Buffer.from(s, 'utf16le');
    if (b.byteOffset % 2 === 0) return new Uint16Array(b.buffer, b.byteOffset, s.length);
  }
  const u = new Uint16Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u;
}

/** UTF-16 units to a string, lone surrogates kept (a TextDecoder would replace them; Node's utf16le decoder does not). */
function unitsToString(units: Uint16Array, n: number): string {
  if (LITTLE_ENDIAN) return Buffer.from(units.buffer, units.byteOffset, n * 2).toString('utf16le');
  const CHUNK = 8192;
  if (n <= CHUNK) return String.fromCharCode.apply(null, units.subarray(0, n) as unknown as number[]);
  const parts: string[] = [];
  for (let at = 0; at < n; at += CHUNK) {
    const sub = units.subarray(at, Math.min(n, at + CHUNK));
    parts.push(String.fromCharCode.apply(null, sub as unknown as number[]));
  }
  return parts.join('');
}

/**
 * Maps a [start, end) range of normalized text to the original's [start, end),
 * widened to whole original characters (a range inside 'ﬁ' → 'fi' maps to all of 'ﬁ');
 * removed characters and collapsed whitespace after the range's last character are included.
 */
export function toOriginal(n: Normalized, start: number, end: number): { start: number; end: number } {
  const len = n.text.length;
  const s = Math.min(Math.max(0, Math.trunc(start) || 0), len);
  const e = Math.min(Math.max(s, Math.trunc(end) || 0), len);
  const os = n.map[s]!;
  if (e === s) return { start: os, end: os };
  const last = n.map[e - 1]!;
  // An expansion's units share a start; the range ends where the next original character begins.
  let k = e;
  while (n.map[k]! === last) k++;
  return { start: os, end: n.map[k]! };
}
