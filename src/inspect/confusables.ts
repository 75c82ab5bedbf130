/**
 * Characters from other scripts that render like a Latin letter, folded to
 * that letter so an attacker cannot slip "іgnоrе" (Cyrillic і, о, е) past a
 * pattern written for "ignore".
 *
 * Source and criteria: written by hand from Unicode's confusables data (UTS #39,
 * confusables.txt) as remembered, then each name checked against the Unicode
 * character database; kept only when the glyph, in common fonts, is the Latin
 * letter's shape (Cyrillic а/е/о/р/с, Greek capitals, Armenian օ, Cherokee and
 * Lisu capitals, a few Latin letters such as dotless ı). Not listed:
 * - anything NFKC already folds (fullwidth, mathematical alphanumerics, Roman
 *   numerals, ℓ, ϲ): normalisation applies NFKC before this table;
 * - look-alikes of small capitals (Cyrillic к м н т в) and near misses (Greek ε,
 *   κ): folding those would merge letters a reader would tell apart anyway.
 * Case is kept: uppercase look-alikes fold to uppercase Latin.
 */
const PAIRS: ReadonlyArray<readonly [number, string]> = [
  // Cyrillic, lowercase
  [0x0430, 'a'], // а
  [0x0435, 'e'], // е
  [0x043e, 'o'], // о
  [0x0440, 'p'], // р
  [0x0441, 'c'], // с
  [0x0443, 'y'], // у
  [0x0445, 'x'], // х
  [0x0455, 's'], // ѕ
  [0x0456, 'i'], // і
  [0x0458, 'j'], // ј
  [0x0475, 'v'], // ѵ
  [0x04bb, 'h'], // һ
  [0x04cf, 'l'], // ӏ palochka
  [0x0501, 'd'], // ԁ
  [0x051b, 'q'], // ԛ
  [0x051d, 'w'], // ԝ
  // Cyrillic, uppercase
  [0x0405, 'S'], // Ѕ
  [0x0406, 'I'], // І
  [0x0408, 'J'], // Ј
  [0x0410, 'A'], // А
  [0x0412, 'B'], // В
  [0x0415, 'E'], // Е
  [0x041a, 'K'], // К
  [0x041c, 'M'], // М
  [0x041d, 'H'], // Н
  [0x041e, 'O'], // О
  [0x0420, 'P'], // Р
  [0x0421, 'C'], // С
  [0x0422, 'T'], // Т
  [0x0425, 'X'], // Х
  [0x0474, 'V'], // Ѵ
  [0x04ae, 'Y'], // Ү
  [0x04c0, 'I'], // Ӏ palochka
  [0x051a, 'Q'], // Ԛ
  [0x051c, 'W'], // Ԝ
  // Greek, lowercase
  [0x03b1, 'a'], // α
  [0x03b3, 'y'], // γ
  [0x03b9, 'i'], // ι
  [0x03bd, 'v'], // ν
  [0x03bf, 'o'], // ο
  [0x03c1, 'p'], // ρ
  [0x03c5, 'u'], // υ
  [0x03c7, 'x'], // χ
  [0x03f3, 'j'], // ϳ yot
  // Greek, uppercase
  [0x0391, 'A'], // Α
  [0x0392, 'B'], // Β
  [0x0395, 'E'], // Ε
  [0x0396, 'Z'], // Ζ
  [0x0397, 'H'], // Η
  [0x0399, 'I'], // Ι
  [0x039a, 'K'], // Κ
  [0x039c, 'M'], // Μ
  [0x039d, 'N'], // Ν
  [0x039f, 'O'], // Ο
  [0x03a1, 'P'], // Ρ
  [0x03a4, 'T'], // Τ
  [0x03a5, 'Y'], // Υ
  [0x03a7, 'X'], // Χ
  // Latin letters outside ASCII that read as ASCII ones
  [0x0131, 'i'], // ı dotless i
  [0x01c0, 'l'], // ǀ dental click
  [0x0237, 'j'], // ȷ dotless j
  [0x0251, 'a'], // ɑ
  [0x0261, 'g'], // ɡ script g
  [0x0269, 'i'], // ɩ
  // Armenian
  [0x0566, 'q'], // զ
  [0x0570, 'h'], // հ
  [0x0578, 'n'], // ո
  [0x057d, 'u'], // ս
  [0x0585, 'o'], // օ
  // Cherokee capitals
  [0x13a0, 'D'],
  [0x13a2, 'T'],
  [0x13aa, 'A'],
  [0x13ab, 'J'],
  [0x13ac, 'E'],
  [0x13b3, 'W'],
  [0x13b7, 'M'],
  [0x13bb, 'H'],
  [0x13c0, 'G'],
  [0x13c3, 'Z'],
  [0x13d9, 'V'],
  [0x13da, 'S'],
  [0x13de, 'L'],
  [0x13df, 'C'],
  [0x13e2, 'P'],
  [0x13e6, 'K'],
  [0x13f4, 'B'],
  // Lisu (Fraser alphabet: upright Latin capitals)
  [0xa4d0, 'B'],
  [0xa4d1, 'P'],
  [0xa4d3, 'D'],
  [0xa4d4, 'T'],
  [0xa4d6, 'G'],
  [0xa4d7, 'K'],
  [0xa4d9, 'J'],
  [0xa4da, 'C'],
  [0xa4dc, 'Z'],
  [0xa4dd, 'F'],
  [0xa4df, 'M'],
  [0xa4e0, 'N'],
  [0xa4e1, 'L'],
  [0xa4e2, 'S'],
  [0xa4e3, 'R'],
  [0xa4e6, 'V'],
  [0xa4e7, 'H'],
  [0xa4ea, 'W'],
  [0xa4eb, 'X'],
  [0xa4ec, 'Y'],
  [0xa4ee, 'A'],
  [0xa4f0, 'E'],
  [0xa4f2, 'I'],
  [0xa4f3, 'O'],
  [0xa4f4, 'U'],
];

/** Code point → the Latin letter it passes for (applied after NFKC). */
export const CONFUSABLES: ReadonlyMap<number, string> = new Map(PAIRS);
