/**
 * Tool-name hygiene. Names match exactly or not at all; a name that differs
 * from a real tool only by case, whitespace, invisible characters or Unicode
 * compatibility forms is a confusable, denied and named as such — the trick an
 * injected agent would use to slip past a deny list written for the real name.
 */

/** Whitespace, format controls, bidi controls, variation selectors, fillers (U+034F, a combining mark, is removed separately). */
const INVISIBLE =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: each invisible code point is matched on its own, on purpose
  /[\s\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]/gu;
/** Letters that NFKC leaves alone but that look like ASCII ones (Cyrillic, Greek). */
const HOMOGLYPHS: Record<string, string> = {
  а: 'a',
  е: 'e',
  о: 'o',
  р: 'p',
  с: 'c',
  у: 'y',
  х: 'x',
  і: 'i',
  ј: 'j',
  ѕ: 's',
  ԁ: 'd',
  ɡ: 'g',
  һ: 'h',
  ӏ: 'l',
  ο: 'o',
  α: 'a',
  ν: 'v',
  τ: 't',
  ι: 'i',
  κ: 'k',
  ρ: 'p',
  υ: 'u',
  χ: 'x',
};
const HOMOGLYPH_RE = new RegExp(`[${Object.keys(HOMOGLYPHS).join('')}]`, 'gu');

/** A folded key under which confusable spellings of a tool name collide. */
export function foldToolName(name: string): string {
  return name
    .normalize('NFKC')
    .replace(INVISIBLE, '')
    .replace(/\u034f/gu, '')
    .toLowerCase()
    .replace(HOMOGLYPH_RE, (ch) => HOMOGLYPHS[ch] ?? ch)
    .replace(/[-\s]/g, '_');
}

/** A syntactically acceptable tool name: 1–128 of A–Z a–z 0–9 _ - . / (MCP's recommended set). */
export const TOOL_NAME = /^[A-Za-z0-9_.\-/]{1,128}$/;
