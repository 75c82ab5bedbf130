/**
 * Encoded runs inside text (base64, base64url, hex, URL %-escapes), decoded
 * so detectors can see what an encoding hides. Linear scans, bounded in runs
 * and decoded bytes; a run counts only when it decodes to mostly printable UTF-8.
 */
import { isUtf8 } from 'node:buffer';
import { hasTokenRun } from './runs.js';

/** Encoded runs found in the original text, decoded (only those that decode to mostly printable UTF-8 text). */
export interface DecodedRun {
  encoding: 'base64' | 'base64url' | 'hex' | 'url';
  /** Offsets into the original; when the byte budget cut a run short, `end` is where the decoded part ends. */
  start: number;
  end: number;
  text: string;
}

/** The share of printable characters a decoding needs to count as text rather than chance or binary. */
const PRINTABLE_SHARE = 0.85;

/** Characters a URL-encoded run may hold besides %XX (RFC 3986 unreserved + most sub-delims and gen-delims). */
const URL_CHARS = "A-Za-z0-9\\-._~!$'()*+,;:@/=&?";
// The lookbehinds make each scan linear: a match can only start where a run starts, so a failed
// attempt is not retried from every position inside the same run.
const URL_RUN = new RegExp(`(?<![${URL_CHARS}%])[${URL_CHARS}]*(?:%[0-9A-Fa-f]{2}[${URL_CHARS}]*){3,}`, 'g');
const ESCAPE = /%[0-9A-Fa-f]{2}/g;

/**
 * Whether `text` holds at least `count` %-escapes: a URL run needs three. The engine finds '%' by
 * skipping, while URL_RUN reads every word of prose that merely mentions a percentage.
 */
function hasEscapes(text: string, count: number): boolean {
  ESCAPE.lastIndex = 0;
  let seen = 0;
  while (seen < count && ESCAPE.test(text)) seen++;
  return seen >= count;
}

const scanners = new Map<number, { base64: RegExp; hex: RegExp }>();

function scannersFor(minLength: number): { base64: RegExp; hex: RegExp } {
  let s = scanners.get(minLength);
  if (!s) {
    s = {
      base64: new RegExp(`(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{${minLength},}={0,2}`, 'g'),
      hex: new RegExp(`(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{2}){${Math.ceil(minLength / 2)},}(?![0-9A-Za-z])`, 'g'),
    };
    scanners.set(minLength, s);
  }
  return s;
}

interface Candidate {
  encoding: DecodedRun['encoding'];
  start: number;
  end: number;
}

/**
 * Finds base64 / base64url / hex / URL-encoded runs in `original` and returns
 * those that decode to printable UTF-8, in order of start; bounded by
 * `maxRuns` (default 32) and `maxDecodedBytes` (default 64 KiB, over all runs).
 */
export function decodeRuns(
  original: string,
  opts: { minLength?: number; maxRuns?: number; maxDecodedBytes?: number } = {},
): DecodedRun[] {
  const minLength = opts.minLength ?? 16;
  const maxRuns = opts.maxRuns ?? 32;
  let budget = opts.maxDecodedBytes ?? 64 * 1024;
  if (!Number.isInteger(minLength) || minLength < 4) throw new RangeError('minLength must be an integer ≥ 4');
  if (!Number.isInteger(maxRuns) || maxRuns < 0) throw new RangeError('maxRuns must be an integer ≥ 0');
  if (!Number.isInteger(budget) || budget < 0) throw new RangeError('maxDecodedBytes must be an integer ≥ 0');

  const { base64, hex } = scannersFor(minLength);
  const found: Candidate[] = [];
  // Base64 and hex runs are token runs of at least minLength; %-runs need a '%'. Prose has
  // neither, and skipping the scans there is most of the cost.
  if (hasTokenRun(original, minLength)) {
    for (const m of original.matchAll(base64)) {
      const encoding = /[-_]/.test(m[0]) ? 'base64url' : 'base64';
      found.push({ encoding, start: m.index, end: m.index + m[0].length });
    }
    for (const m of original.matchAll(hex))
      found.push({ encoding: 'hex', start: m.index, end: m.index + m[0].length });
  }
  if (hasEscapes(original, 3)) {
    for (const m of original.matchAll(URL_RUN)) {
      found.push({ encoding: 'url', start: m.index, end: m.index + m[0].length });
    }
  }
  found.sort((a, b) => a.start - b.start);

  const runs: DecodedRun[] = [];
  for (const c of found) {
    if (runs.length >= maxRuns || budget <= 0) break;
    const decoded = decodePrefix(original, c, budget);
    const text = printableText(decoded.bytes, decoded.end < c.end);
    if (text === null) continue;
    budget -= decoded.bytes.length;
    runs.push({ encoding: c.encoding, start: c.start, end: decoded.end, text });
  }
  return runs;
}

/** Decodes as much of the run as fits `budget` bytes (so one huge run costs no more memory than the budget). */
function decodePrefix(s: string, c: Candidate, budget: number): { bytes: Buffer; end: number } {
  const run = s.slice(c.start, c.end);
  if (c.encoding === 'hex') {
    const chars = Math.min(run.length, budget * 2);
    return { bytes: Buffer.from(run.slice(0, chars), 'hex'), end: c.start + chars };
  }
  if (c.encoding === 'url') {
    const bytes = Buffer.alloc(Math.min(run.length, budget));
    let n = 0;
    let i = 0;
    while (i < run.length && n < bytes.length) {
      if (
        run.charCodeAt(i) === 0x25 &&
        i + 2 < run.length &&
        /^[0-9A-Fa-f]{2}$/.test(run.slice(i + 1, i + 3))
      ) {
        bytes[n++] = Number.parseInt(run.slice(i + 1, i + 3), 16);
        i += 3;
      } else {
        bytes[n++] = run.charCodeAt(i);
        i += 1;
      }
    }
    return { bytes: bytes.subarray(0, n), end: c.start + i };
  }
  const chars = Math.min(run.length, Math.floor(budget / 3) * 4);
  return { bytes: Buffer.from(run.slice(0, chars), c.encoding), end: c.start + chars };
}

/** The bytes as text if they are valid UTF-8 and mostly printable, else null. */
function printableText(bytes: Uint8Array, truncated: boolean): string | null {
  // Most candidates (hashes, ids, random tokens) are not UTF-8: checking first spares the decoder's
  // exception, which dominated the scan of text made of such tokens (100 KB of them: 50 ms → 10 ms).
  if (!truncated && !isUtf8(bytes)) return null;
  let text: string;
  try {
    // A cut run may end inside a multi-byte sequence: stream mode leaves that tail out instead of failing.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: truncated });
  } catch {
    return null;
  }
  if (text.length === 0) return null;
  let printable = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (
      c === 0x09 ||
      c === 0x0a ||
      c === 0x0d ||
      (c >= 0x20 && c !== 0x7f && (c < 0x80 || c > 0x9f) && c !== 0xfffd)
    ) {
      printable++;
    }
  }
  return printable >= PRINTABLE_SHARE * text.length ? text : null;
}
