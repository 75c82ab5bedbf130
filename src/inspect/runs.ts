/**
 * A linear pre-check the detectors share: whether a text has a run of at least `min` token
 * characters (letters, digits, `+ / = _ . -`). Every encoded run and every credential format the
 * detectors know is such a run, so text without one (most prose) can skip those scans. A regex
 * like /[A-Za-z0-9+/=_.-]{16}/ re-tries at every position and cost ~0.8 ms per 64 KB of prose.
 */
const TOKEN = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_.-')
  TOKEN[c.charCodeAt(0)] = 1;

const isToken = (c: number) => c < 128 && TOKEN[c] === 1;

/**
 * Whether `text` holds at least `min` consecutive token characters. It reads one unit in every
 * `min` where there is no run (Boyer–Moore's skip: a run of `min` must cover every `min`-th
 * position), and each unit at most twice where there are short ones.
 */
export function hasTokenRun(text: string, atLeast: number): boolean {
  const n = text.length;
  const min = Math.max(1, atLeast);
  // `from`: no run of `min` starts before it. Probe the last unit a run starting at `from` would cover.
  let from = 0;
  while (from + min <= n) {
    const probe = from + min - 1;
    if (!isToken(text.charCodeAt(probe))) {
      from = probe + 1;
      continue;
    }
    // Back from the probe to where its run starts (not before `from`), then forward to `min` units.
    let s = probe;
    while (s > from && isToken(text.charCodeAt(s - 1))) s--;
    let e = probe + 1;
    while (e < s + min && e < n && isToken(text.charCodeAt(e))) e++;
    if (e - s >= min) return true;
    from = e + 1; // text[e] is not a token unit (or the text ended)
  }
  return false;
}

/** JavaScript's `\s` over the BMP (no whitespace lies outside it). */
const SPACE = new Uint8Array(0x10000);
for (let u = 0; u < 0x10000; u++) if (/\s/u.test(String.fromCharCode(u))) SPACE[u] = 1;

/** The longest a repeated token may be, in code points. */
const TOKEN_MAX = 30;
/** How many times in a row a token must stand. */
const REPEATS = 10;

/**
 * The first run of one token standing at least 10 times in a row, separated by single spaces:
 * exactly what `/(?<!\S)(\S{1,30})(?: \1(?!\S)){9,}/u` matches first, found in one pass over the
 * words. The regex backtracks through every word's length at every word start and re-checks its
 * lookbehind at every position: three times the cost on prose.
 */
export function findRepeatedToken(text: string): { index: number; length: number } | null {
  const n = text.length;
  let prevStart = -1;
  let prevEnd = -1;
  let runStart = -1;
  let count = 0;
  for (let i = 0; i < n; ) {
    if (SPACE[text.charCodeAt(i)] === 1) {
      i++;
      continue;
    }
    const s = i;
    while (i < n && SPACE[text.charCodeAt(i)] !== 1) i++;
    const len = i - s;
    // Code points, not units: only a token of 31–60 units can hold 30 code points.
    const fits = len <= TOKEN_MAX || (len <= 2 * TOKEN_MAX && codePoints(text, s, i) <= TOKEN_MAX);
    const repeats =
      fits &&
      count > 0 &&
      s === prevEnd + 1 &&
      text.charCodeAt(prevEnd) === 0x20 &&
      len === prevEnd - prevStart &&
      sameUnits(text, prevStart, s, len);
    if (repeats) count++;
    else {
      if (count >= REPEATS) return { index: runStart, length: prevEnd - runStart };
      count = fits ? 1 : 0;
      runStart = s;
    }
    prevStart = s;
    prevEnd = i;
  }
  return count >= REPEATS ? { index: runStart, length: prevEnd - runStart } : null;
}

function codePoints(text: string, from: number, to: number): number {
  let count = to - from;
  for (let k = from + 1; k < to; k++) {
    const c = text.charCodeAt(k);
    if (c >= 0xdc00 && c <= 0xdfff) {
      const hi = text.charCodeAt(k - 1);
      if (hi >= 0xd800 && hi <= 0xdbff) count--;
    }
  }
  return count;
}

function sameUnits(text: string, a: number, b: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (text.charCodeAt(a + k) !== text.charCodeAt(b + k)) return false;
  return true;
}
