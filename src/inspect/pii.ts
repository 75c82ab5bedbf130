/**
 * PII detection (issue #7): emails, phone numbers, payment cards, IBANs, US
 * SSNs and IP addresses; on request, street addresses and person names found
 * by their context (off by default: they have no checksum). Every detector is a hand scanner or a regex whose
 * match length is bounded by a constant, so a whole scan is linear in the
 * input; candidates are then validated (Luhn, mod-97, SSN allocation rules,
 * octet ranges, node:net isIP) and scored. Detection runs on normalized text
 * so full-width digits and zero-width splitting do not hide anything; offsets
 * are mapped back to the original.
 */
import { isIP } from 'node:net';
import { type Normalized, normalize, toOriginal } from './normalize.js';
import { scanAddresses, scanPersons } from './pii-context.js';

/** The PII kinds this detector reports (Presidio's names, so corpora line up). */
export type PiiType =
  | 'EMAIL_ADDRESS'
  | 'PHONE_NUMBER'
  | 'CREDIT_CARD'
  | 'IBAN_CODE'
  | 'US_SSN'
  | 'IP_ADDRESS'
  | 'STREET_ADDRESS'
  | 'PERSON';

/** One finding; `start`/`end` are UTF-16 offsets into the ORIGINAL text, `score` in [0, 1]. */
export interface Finding {
  kind: 'pii';
  type: PiiType;
  start: number;
  end: number;
  score: number;
}

/** The default types (what a caller gets without `types`), in the order findings are tie-broken. */
export const PII_TYPES: readonly PiiType[] = [
  'CREDIT_CARD',
  'IBAN_CODE',
  'US_SSN',
  'EMAIL_ADDRESS',
  'IP_ADDRESS',
  'PHONE_NUMBER',
];

/**
 * Types detected only when asked for by `types`: shape and context, no checksum, so a false
 * finding redacts ordinary words (see docs/DETECTORS.md for their measured precision).
 */
export const EXTRA_PII_TYPES: readonly PiiType[] = ['STREET_ADDRESS', 'PERSON'];

/** Tie-break order over every type. */
const TYPE_ORDER: readonly PiiType[] = [...PII_TYPES, ...EXTRA_PII_TYPES];

/** A candidate in normalized offsets. */
interface Cand {
  type: PiiType;
  start: number;
  end: number;
  score: number;
}

const isDigit = (c: number) => c >= 48 && c <= 57;
const isAlpha = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isAlnum = (c: number) => isDigit(c) || isAlpha(c);
const isHex = (c: number) => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);

const DIGIT_RUN = /\d+/g;

/**
 * Where each maximal run of ASCII digits starts. Cards, IBANs, SSNs and phone numbers can only
 * start at (or one or two units before) such a run, so their scanners visit these offsets instead
 * of every unit of the text: prose holds few digits, and the regex engine finds them faster than
 * a charCodeAt loop.
 */
function digitRunStarts(t: string): number[] {
  const out: number[] = [];
  DIGIT_RUN.lastIndex = 0;
  for (let m = DIGIT_RUN.exec(t); m !== null; m = DIGIT_RUN.exec(t)) out.push(m.index);
  return out;
}

/** Lower-cased text in [from, to), clamped: context windows are short, so this stays O(1) per candidate. */
function window(t: string, from: number, to: number): string {
  return t.slice(Math.max(0, from), Math.min(t.length, to)).toLowerCase();
}

// ---------------------------------------------------------------- emails

/** RFC 5321 limits: local part ≤ 64, domain ≤ 253; they also bound the work per '@'. */
const LOCAL_MAX = 64;
const DOMAIN_MAX = 253;
const isLocalChar = (c: number) => isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
const isDomainChar = (c: number) => isAlnum(c) || c === 46 || c === 45;

/** Expands left and right of each '@' (bounded), so a long run without '@' costs nothing extra. */
function scanEmails(t: string, out: Cand[]): void {
  for (let at = t.indexOf('@'); at !== -1; at = t.indexOf('@', at + 1)) {
    let s = at;
    while (s > 0 && at - s < LOCAL_MAX && isLocalChar(t.charCodeAt(s - 1))) s--;
    while (s < at && !isAlnum(t.charCodeAt(s))) s++; // a local part does not start with '.', '-', '+'
    if (s === at) continue;
    let e = at + 1;
    while (e < t.length && e - at <= DOMAIN_MAX && isDomainChar(t.charCodeAt(e))) e++;
    while (e > at + 1 && !isAlnum(t.charCodeAt(e - 1))) e--; // sentence-final '.' is not part of the domain
    const domain = t.slice(at + 1, e);
    const labels = domain.split('.');
    const tld = labels[labels.length - 1] ?? '';
    if (labels.length < 2 || !/^[a-z]{2,24}$/i.test(tld)) continue;
    if (labels.some((l) => l.length === 0 || l.length > 63 || l.startsWith('-') || l.endsWith('-'))) continue;
    out.push({ type: 'EMAIL_ADDRESS', start: s, end: e, score: 0.95 });
  }
}

// ---------------------------------------------------------------- cards

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = digits.length - 1, dbl = false; i >= 0; i--, dbl = !dbl) {
    let d = digits.charCodeAt(i) - 48;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Whether the number starts with an issuer prefix of a major network (ISO/IEC 7812 IIN ranges). */
function knownIssuer(d: string): boolean {
  const p2 = Number(d.slice(0, 2));
  const p4 = Number(d.slice(0, 4));
  if (d[0] === '4' || d[0] === '6') return true; // Visa; Discover, Maestro, UnionPay, RuPay
  if (p2 >= 50 && p2 <= 59) return true; // Mastercard 51–55, Maestro 50, 56–59
  if (p4 >= 2221 && p4 <= 2720) return true; // Mastercard 2-series
  if ([30, 34, 35, 36, 37, 38, 39].includes(p2)) return true; // Diners, Amex, JCB
  return d.length === 15 && (p4 === 1800 || p4 === 2131 || d[0] === '1'); // JCB legacy, UATP
}

/** Maestro is the one network with 12-digit numbers (IIN 50, 56–69). */
const maestroPrefix = (d: string) => d[0] === '6' || d.startsWith('50') || /^5[6-9]/.test(d);

/**
 * Digit runs of 12–19 digits, optionally grouped by one consistent separator
 * (space or '-') into groups of 3–6 digits, Luhn-checked.
 */
function scanCards(t: string, runs: readonly number[], out: Cand[]): void {
  const n = t.length;
  // `i`: where the next number may start (the end of the last one read); a number starts a digit run.
  let i = 0;
  for (const start of runs) {
    if (start < i) continue;
    i = start;
    const prev = i > 0 ? t.charCodeAt(i - 1) : 32;
    if (isAlpha(prev) || prev === 43 /* + */ || prev === 46 || prev === 95) continue;
    let j = i;
    let digits = '';
    let sep = -1;
    let groups = 0;
    let badGroup = false;
    for (;;) {
      const gs = j;
      while (j < n && isDigit(t.charCodeAt(j)) && digits.length <= 19) digits += t[j++];
      const glen = j - gs;
      groups++;
      if (glen < 3 || glen > 6) badGroup = true;
      const s = t.charCodeAt(j);
      if ((s === 32 || s === 45) && (sep === -1 || sep === s) && isDigit(t.charCodeAt(j + 1))) {
        sep = s;
        j++;
        continue;
      }
      break;
    }
    const next = j < n ? t.charCodeAt(j) : 32;
    const len = digits.length;
    const ok =
      len >= 12 &&
      len <= 19 &&
      !isAlnum(next) &&
      !(next === 46 && isDigit(t.charCodeAt(j + 1))) &&
      (groups === 1 || !badGroup) &&
      !/^(\d)\1+$/.test(digits) &&
      luhn(digits);
    if (ok) {
      const known = knownIssuer(digits);
      if (len >= 13) out.push({ type: 'CREDIT_CARD', start: i, end: j, score: known ? 0.95 : 0.7 });
      else if (maestroPrefix(digits)) out.push({ type: 'CREDIT_CARD', start: i, end: j, score: 0.6 });
    }
    i = j;
  }
}

// ---------------------------------------------------------------- IBAN

/** IBAN length per country (SWIFT IBAN registry). */
// biome-ignore format: a table reads better dense
const IBAN_LENGTH: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21,
  CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18,
  FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26,
  IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27, MD: 24,
  ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29,
  PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23,
  ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

/** ISO 13616 check: move the first four characters to the end, letters to 10–35, the number mod 97 is 1. */
function ibanValid(iban: string): boolean {
  const s = iban.slice(4) + iban.slice(0, 4);
  let r = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isDigit(c)) r = (r * 10 + (c - 48)) % 97;
    else r = (r * 100 + (c - 55)) % 97; // 'A' (65) → 10
  }
  return r === 1;
}

/** Country code + 2 check digits, then exactly the country's length in alphanumerics, single spaces allowed. */
function scanIbans(t: string, runs: readonly number[], out: Cand[]): void {
  const n = t.length;
  // The check digits follow two letters, so they start a digit run; `next`: the end of the last IBAN.
  let next = 0;
  for (const run of runs) {
    const i = run - 2;
    if (i < next || i + 4 > n) continue;
    if (!isDigit(t.charCodeAt(i + 3))) continue;
    if (!isAlpha(t.charCodeAt(i)) || !isAlpha(t.charCodeAt(i + 1))) continue;
    if (i > 0 && isAlnum(t.charCodeAt(i - 1))) continue;
    const want = IBAN_LENGTH[t.slice(i, i + 2).toUpperCase()];
    if (want === undefined) continue;
    let j = i;
    let compact = '';
    while (j < n && compact.length < want) {
      const c = t.charCodeAt(j);
      if (isAlnum(c)) {
        compact += t[j];
        j++;
      } else if (c === 32 && compact.length >= 4 && j + 1 < n && isAlnum(t.charCodeAt(j + 1))) j++;
      else break;
    }
    if (compact.length !== want || (j < n && isAlnum(t.charCodeAt(j)))) continue;
    const upper = compact.toUpperCase();
    if (!ibanValid(upper)) continue;
    out.push({ type: 'IBAN_CODE', start: i, end: j, score: 0.95 });
    next = j;
  }
}

// ---------------------------------------------------------------- US SSN

const SSN_RE = /(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\w]|[.-]\d)/y;
const SSN_CONTEXT = /\b(ssn|ss#|ssa|social security|social sec|taxpayer|tin)\b/;

/** SSA allocation rules: area not 000, 666 or 9xx; group not 00; serial not 0000. */
function ssnValid(area: string, group: string, serial: string): boolean {
  return area !== '000' && area !== '666' && area[0] !== '9' && group !== '00' && serial !== '0000';
}

function scanSsns(t: string, runs: readonly number[], out: Cand[]): void {
  // Tried only where a digit run starts: a number preceded by a digit is rejected below anyway, and
  // no run inside one SSN's span can start another (its inner groups are too short).
  let next = 0;
  for (const start of runs) {
    if (start < next) continue;
    const before = start > 0 ? t.charCodeAt(start - 1) : 32;
    if (isAlpha(before) || before === 46 || before === 95 || before === 45) continue;
    SSN_RE.lastIndex = start;
    const m = SSN_RE.exec(t);
    if (m === null) continue;
    const [, area = '', sep = '', group = '', serial = ''] = m;
    const end = start + m[0].length;
    next = end;
    if (!ssnValid(area, group, serial)) continue;
    const ctx = SSN_CONTEXT.test(window(t, start - 48, start));
    // Bare nine digits are too common (order numbers, zip+4) to flag without a word that says what they are.
    if (sep === '' && !ctx) continue;
    out.push({ type: 'US_SSN', start, end, score: sep === '-' ? (ctx ? 0.95 : 0.85) : ctx ? 0.8 : 0.6 });
  }
}

// ---------------------------------------------------------------- IP addresses

const inRun = (c: number) => isAlnum(c) || c === 58 || c === 46;
// Boundaries are checked by hand: a leading lookbehind would run at every position of the text.
const IPV4_RE = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)/g;

function scanIps(t: string, out: Cand[]): void {
  for (const m of t.matchAll(IPV4_RE)) {
    const before = m.index > 0 ? t.charCodeAt(m.index - 1) : 32;
    if (isAlnum(before) || before === 46 || before === 95) continue;
    const octets = [m[1], m[2], m[3], m[4]];
    if (octets.some((o) => o === undefined || Number(o) > 255 || (o.length > 1 && o[0] === '0'))) continue;
    out.push({ type: 'IP_ADDRESS', start: m.index, end: m.index + m[0].length, score: 0.85 });
  }
  // IPv6: around each ':', the maximal run of [0-9A-Za-z:.] (so 'std::vector' stays whole and fails), at
  // least two colons, at most 45 characters (the longest textual IPv6 with an embedded IPv4), checked by
  // node:net. A run is expanded at most 46 characters each way and never revisited: linear.
  const n = t.length;
  for (let p = t.indexOf(':'); p !== -1; p = t.indexOf(':', p + 1)) {
    let i = p;
    while (i > 0 && p - i <= 46 && inRun(t.charCodeAt(i - 1))) i--;
    let j = p + 1;
    while (j < n && j - p <= 46 && inRun(t.charCodeAt(j))) j++;
    p = j;
    let e = j;
    while (e > i && t.charCodeAt(e - 1) === 46) e--; // sentence-final '.'
    if (
      e - i < 3 ||
      e - i > 45 ||
      (i > 0 && inRun(t.charCodeAt(i - 1))) ||
      (j < n && inRun(t.charCodeAt(j)))
    ) {
      continue;
    }
    let colons = 0;
    let hexOnly = true;
    for (let k = i; k < e && hexOnly; k++) {
      const d = t.charCodeAt(k);
      if (d === 58) colons++;
      else if (!isHex(d) && d !== 46) hexOnly = false;
    }
    if (colons >= 2 && hexOnly && isIP(t.slice(i, e)) === 6) {
      out.push({ type: 'IP_ADDRESS', start: i, end: e, score: colons >= 4 ? 0.85 : 0.6 });
    }
  }
}

// ---------------------------------------------------------------- phones

// "number" alone is not here: "licence number", "card number" and "order number" are not phones.
const PHONE_BEFORE =
  /\b(phone|ph|tel|telephone|mobile|mob|cell|cellphone|fax|call|called|calling|contact|reach|text|sms|whatsapp|dial|ring|answering|message|messages|voicemail)\b|\b(office|home|work|desk)\s?:\s?$/;
const isLineBreak = (o: number) => o === 10 || o === 13 || o === 0x2028 || o === 0x2029 || o === 0x85;
const EXTENSION = /^ ?(?:x|ext\.?|extension) ?\d{1,6}(?!\w)/i;
const PHONE_AFTER = /^\W{0,3}(office|mobile|cell|fax|home|work|phone|tel|desk)\b/;

const isMonth = (s: string) => s.length <= 2 && Number(s) >= 1 && Number(s) <= 12;
const isDay = (s: string) => s.length <= 2 && Number(s) >= 1 && Number(s) <= 31;
const isYear = (s: string) => s.length === 4 && /^(1[89]|20)/.test(s);

/** Whether the groups read as a date (yyyy-mm-dd, dd-mm-yyyy, mm.dd.yyyy), which share a phone's shape. */
function looksLikeDate(groups: readonly string[]): boolean {
  if (groups.length < 3) return false;
  const [a = '', b = '', c = ''] = groups;
  return (
    (isYear(a) && isMonth(b) && isDay(c)) ||
    (isDay(a) && isMonth(b) && isYear(c)) ||
    (isMonth(a) && isDay(b) && isYear(c))
  );
}

/**
 * E.164 and national formats: an optional '+' (or '00'), then digit groups
 * separated by one space, '-' or '.', with optional parenthesised area code,
 * and an optional extension. 7–15 digits. Short or unseparated numbers need a
 * context word ("phone", "call", "fax" …); the original text is consulted so
 * a number never continues across a line break.
 */
function scanPhones(
  t: string,
  original: string,
  map: Uint32Array | undefined,
  runs: readonly number[],
  out: Cand[],
): void {
  const n = t.length;
  // `i`: where the next number may start; `r`: the first digit run not yet behind it.
  let i = 0;
  let r = 0;
  for (;;) {
    // A number starts at a digit run, or just before it: '+', '(' or '+('. (Inline, not a closure:
    // a closure over `i` would make every use of it in this loop a context load.)
    let start = n;
    for (; r < runs.length; r++) {
      const run = runs[r]!;
      if (run < i) continue;
      const p1 = t.charCodeAt(run - 1);
      if (run - 2 >= i && t.charCodeAt(run - 2) === 43 && p1 === 40) start = run - 2;
      else if (run - 1 >= i && (p1 === 40 || p1 === 43)) start = run - 1;
      else start = run;
      break;
    }
    if (start >= n) break;
    i = start;
    const c0 = t.charCodeAt(i);
    const prev = i > 0 ? t.charCodeAt(i - 1) : 32;
    const startable =
      isDigit(c0) || c0 === 40 || (c0 === 43 && (isDigit(t.charCodeAt(i + 1)) || t[i + 1] === '('));
    if (
      !startable ||
      isAlnum(prev) ||
      prev === 43 ||
      prev === 46 ||
      prev === 95 ||
      prev === 45 ||
      prev === 47
    ) {
      i++;
      continue;
    }
    let j = i;
    const plus = c0 === 43;
    if (plus) j++;
    const groups: string[] = [];
    let digitCount = 0;
    let parens = false;
    let seps = 0;
    let groupEnd = j; // end of the last accepted group
    for (;;) {
      const gStart = j;
      let g = '';
      if (t.charCodeAt(j) === 40) {
        let k = j + 1;
        while (k < n && isDigit(t.charCodeAt(k)) && k - j <= 5) k++;
        if (k === j + 1 || t.charCodeAt(k) !== 41) break;
        g = t.slice(j + 1, k);
        j = k + 1;
        parens = true;
      } else {
        while (j < n && isDigit(t.charCodeAt(j)) && j - gStart <= 15) j++;
        if (j === gStart) break;
        g = t.slice(gStart, j);
      }
      // A group followed by ':' is a clock time, not part of a number.
      if (t.charCodeAt(j) === 58 && isDigit(t.charCodeAt(j + 1))) {
        j = gStart;
        break;
      }
      groups.push(g);
      digitCount += g.length;
      groupEnd = j;
      if (digitCount > 15) break;
      const s = t.charCodeAt(j);
      const afterParen = t.charCodeAt(j - 1) === 41;
      if (
        (s === 32 || s === 45 || s === 46) &&
        !(s === 32 && isLineBreak(original.charCodeAt(map === undefined ? j : map[j]!)))
      ) {
        const nx = t.charCodeAt(j + 1);
        if (isDigit(nx) || nx === 40) {
          j++;
          seps++;
          continue;
        }
      } else if (afterParen && isDigit(s)) {
        continue;
      }
      break;
    }
    const end = groupEnd;
    const next = end < n ? t.charCodeAt(end) : 32;
    // Skip the whole consumed run whatever the outcome: no position is scanned twice.
    const resume = Math.max(end, i + 1);
    if (
      groups.length === 0 ||
      digitCount < 7 ||
      digitCount > 15 ||
      (isAlnum(next) && !(next === 120 || next === 88)) ||
      (next === 46 && isDigit(t.charCodeAt(end + 1))) ||
      looksLikeDate(groups)
    ) {
      i = resume;
      continue;
    }
    // Extension: x123, ext. 123, ext 123.
    let e = end;
    // Only worth a slice and a regex when an 'x' or 'e' follows, after at most one space.
    const lead = t.charCodeAt(t.charCodeAt(end) === 32 ? end + 1 : end) | 0x20; // NaN past the end: 0x20
    const ext = lead === 0x78 || lead === 0x65 ? EXTENSION.exec(t.slice(end, end + 20)) : null;
    if (ext) e = end + ext[0].length;
    else if (isAlnum(next)) {
      i = resume;
      continue;
    }
    const intl = plus || groups[0]!.startsWith('00');
    const ctx = PHONE_BEFORE.test(window(t, i - 48, i)) || PHONE_AFTER.test(window(t, e, e + 16));
    const shaped = seps >= 1 || parens;
    let score: number;
    if (intl) score = ctx ? 0.9 : 0.75;
    else if (ctx) score = digitCount >= 10 ? 0.85 : 0.7;
    else if (shaped && digitCount >= 10 && (seps >= 2 || parens)) score = 0.45;
    else score = 0;
    if (score > 0) out.push({ type: 'PHONE_NUMBER', start: i, end: e, score });
    i = Math.max(e, i + 1);
  }
}

// ---------------------------------------------------------------- entry point

/** Detects PII in `text`; findings are sorted by start, non-overlapping, offsets in the original text. */
export function detectPii(
  text: string,
  opts: { types?: readonly PiiType[]; normalized?: Normalized } = {},
): Finding[] {
  const want = new Set<PiiType>(opts.types ?? PII_TYPES);
  // Callers running several detectors on one text normalise it once (the normalisation of `text` only).
  const norm = opts.normalized?.original === text ? opts.normalized : normalize(text);
  const t = norm.text;
  const cands: Cand[] = [];
  const runs =
    want.has('CREDIT_CARD') || want.has('IBAN_CODE') || want.has('US_SSN') || want.has('PHONE_NUMBER')
      ? digitRunStarts(t)
      : [];
  if (want.has('EMAIL_ADDRESS')) scanEmails(t, cands);
  if (want.has('CREDIT_CARD')) scanCards(t, runs, cands);
  if (want.has('IBAN_CODE')) scanIbans(t, runs, cands);
  if (want.has('US_SSN')) scanSsns(t, runs, cands);
  if (want.has('IP_ADDRESS')) scanIps(t, cands);
  // An unchanged text's map is the identity: not building it saves a copy of the text's length.
  if (want.has('PHONE_NUMBER')) scanPhones(t, text, norm.identity ? undefined : norm.map, runs, cands);
  if (want.has('STREET_ADDRESS')) scanAddresses(t, text, norm.map, cands);
  if (want.has('PERSON')) scanPersons(t, text, norm.map, cands);
  if (cands.length === 0) return [];
  // Overlaps: the higher score wins (validated beats shape-only), then the longer span, then type order.
  const rank = (type: PiiType) => TYPE_ORDER.indexOf(type);
  cands.sort(
    (a, b) => b.score - a.score || b.end - b.start - (a.end - a.start) || rank(a.type) - rank(b.type),
  );
  // Occupancy costs the sum of candidate lengths, which is linear: each scanner's candidates are disjoint.
  const taken = new Uint8Array(t.length);
  const kept: Cand[] = [];
  for (const c of cands) {
    let free = true;
    for (let k = c.start; k < c.end && free; k++) if (taken[k] === 1) free = false;
    if (!free) continue;
    taken.fill(1, c.start, c.end);
    kept.push(c);
  }
  kept.sort((a, b) => a.start - b.start);
  return kept.map((c) => {
    const o = toOriginal(norm, c.start, c.end);
    return { kind: 'pii', type: c.type, start: o.start, end: o.end, score: c.score };
  });
}
