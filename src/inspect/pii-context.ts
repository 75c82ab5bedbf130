/**
 * The PII kinds with no checksum (issue #7, "names and addresses where
 * feasible"): street addresses, found by their shape (a house number, words,
 * a street-type word) and validated where a format exists (US state + ZIP, UK
 * postcode); and person names, found only next to words that say a name
 * follows (an honorific, a label, a salutation, a sign-off, a mail header),
 * never as a bare pair of capitalised words. Precision is put before recall:
 * a false finding redacts ordinary words from a tool result. Every pattern is
 * bounded (at most a few dozen characters per candidate, a fixed number of
 * words), so a scan stays linear.
 */
import type { PiiType } from './pii.js';

interface Cand {
  type: PiiType;
  start: number;
  end: number;
  score: number;
}

const isLineBreak = (o: number) => o === 10 || o === 13 || o === 0x2028 || o === 0x2029 || o === 0x85;

/**
 * Whether the space at `j` of the normalized text stands for a line break of the original (the
 * normalisation collapses whitespace runs). A run is read once per candidate edge that lands on it.
 */
function breakAt(t: string, original: string, map: Uint32Array, j: number): boolean {
  if (t.charCodeAt(j) !== 32) return false;
  const to = map[j + 1] ?? original.length;
  for (let k = map[j] ?? to; k < to; k++) if (isLineBreak(original.charCodeAt(k))) return true;
  return false;
}

/** A line break, or two or more spaces (a footer laid out in columns: "660 Mission Street  San Francisco"). */
function fieldGapAt(t: string, original: string, map: Uint32Array, j: number): boolean {
  if (t.charCodeAt(j) !== 32) return false;
  return (map[j + 1] ?? original.length) - (map[j] ?? 0) >= 2 || breakAt(t, original, map, j);
}

const WORDY = /[\p{L}\p{N}]/u;
const isWordy = (ch: string | undefined) => ch !== undefined && WORDY.test(ch);

/** Keeps the highest-scored of overlapping candidates of one scanner, so what is pushed is disjoint. */
function pushDisjoint(found: Cand[], out: Cand[]): void {
  found.sort((a, b) => a.start - b.start || b.score - a.score || b.end - a.end);
  let last: Cand | undefined;
  for (const c of found) {
    if (last && c.start < last.end) {
      if (c.score > last.score) {
        out.pop();
        out.push(c);
        last = c;
      }
      continue;
    }
    out.push(c);
    last = c;
  }
}

// ---------------------------------------------------------------- street addresses

// Street-type words of English-speaking countries. Title case or the usual abbreviation.
const US_TYPES =
  'Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Parkway|Pkwy|Highway|Hwy|Square|Sq|Circle|Crescent|Trail|Plaza|Gardens|Mews';
/** A street-name word: Title case, an ordinal (5th), a compass point, or "St." (St. John Street). */
const STREET_WORD = String.raw`(?:\p{Lu}\p{Ll}{1,24}|\d{1,3}(?:st|nd|rd|th)|[NSEW]|NE|NW|SE|SW|St\.)`;
// House number (12, 12A, 12-14), 1–4 name words, the type. The start is checked by hand: a leading
// lookbehind would run at every position of the text.
const US_RE = new RegExp(
  String.raw`\d{1,6}[A-Za-z]?(?:-\d{1,5})? ((?:${STREET_WORD} ){1,4})(${US_TYPES})(\.?)(?![\p{L}\p{N}])`,
  'gu',
);
/** Types that are also ordinary nouns ("Supreme Court justices", "4 Wheel Drive vehicle"). */
const AMBIGUOUS_TYPES = new Set([
  'Court',
  'Ct',
  'Place',
  'Pl',
  'Way',
  'Square',
  'Sq',
  'Drive',
  'Dr',
  'Circle',
  'Plaza',
  'Trail',
  'Gardens',
  'Terrace',
  'Crescent',
]);
/** Words that, right before a street type, make a common noun phrase rather than a street. */
// biome-ignore format: a word list reads better dense
const NOT_STREET_NAMES = new Set([
  'Hard', 'Disk', 'Flash', 'Google', 'Shared', 'Network', 'Cloud', 'Test', 'Wheel', 'Supreme', 'High',
  'Food', 'Milky', 'One', 'Two', 'Fast', 'Memory', 'Market', 'Work', 'Take', 'Public', 'Federal',
  'District', 'Appeals', 'Circuit', 'Bankruptcy', 'Tax', 'Family', 'Claims', 'Small',
]);
/** Capitalised words that may stand right before a house number ("Ship To 12 …"). */
const BEFORE_NUMBER_OK = new Set(['At', 'To', 'On', 'In', 'Is', 'From', 'Near', 'Address', 'Via']);

// European order: a compound street name ending in a street word, then the number (Hauptstraße 12).
// biome-ignore format: a word list reads better dense
const EU_SUFFIXES = [
  'straße', 'strasse', 'str.', 'weg', 'gasse', 'allee', 'platz', 'damm', 'ufer', 'chaussee', 'gatan',
  'vägen', 'vej', 'gade', 'veien', 'vegen', 'laan', 'straat', 'gracht', 'plein', 'kade', 'katu', 'kuja',
  'polku', 'tie', 'gata', 'stræti', 'straeti',
];
const EU_COMPOUND_RE = /\p{Lu}\p{Ll}{2,40}\.?,? \d{1,5}[a-z]?(?![\p{L}\p{N}])/gu;
// Street words written apart, after one to three Title-case words: Hungarian (Rákóczi út 66,
// Piroska u. 97.) and German (Villacher Strasse 89).
const HU_RE =
  /(?:\p{Lu}\p{Ll}{1,24} ){1,3}(?:utca|út|útja|tér|körút|u\.|Straße|Strasse|Str\.|Gasse|Allee|Platz|Weg)\.? \d{1,5}[a-z]?\.?(?![\p{L}\p{N}])/gu;
// Romance and Slavic order: the street word first (Rue de Rivoli 5, Via Roma 131), or after the
// number (29 Rue de Tanger). Particles are lower case; at least one name word is capitalised.
const ROMANCE_TYPES =
  'Rue|Via|Viale|Piazza|Piazzale|Corso|Largo|Vicolo|Calle|Avenida|Rua|Travessa|Praça|Chemin|Strada|Paseo|Carrer|Ulica|Aleja';
const PARTICLE = "(?:de|del|della|delle|dei|degli|di|da|do|dos|das|du|des|la|le|les|l'|d')";
/** Unit words end a street name (Rue Gafsa Apt. 981). */
const ROMANCE_NAME = String.raw`(?: (?:${PARTICLE}|(?!(?:Apt|Suite|Unit|Flat|Ste)(?![\p{L}]))\p{Lu}[\p{Ll}'-]{1,24})){1,5}`;
const ROMANCE_RE = new RegExp(
  String.raw`(?:${ROMANCE_TYPES})${ROMANCE_NAME},? \d{1,5}[a-z]?(?![\p{L}\p{N}])`,
  'gu',
);
// Lower case only for the words English prose does not use ("paid 20 via PayPal" is not a street).
const ROMANCE_NUMBER_FIRST_RE = new RegExp(
  String.raw`\d{1,5},? (?:${ROMANCE_TYPES}|rue|rua|calle|avenida|[Aa]venue|[Bb]oulevard)${ROMANCE_NAME}(?![\p{L}\p{N}])`,
  'gu',
);
// US military mail (PSC 1234, Box 5678 APO AE 12345; USS Name FPO AP 12345) and post-office boxes:
// fixed shapes, so they need no street word. The ZIP is five digits after a two-letter APO region.
const MILITARY_RE =
  /(?:(?:PSC|Unit|CMR) \d{1,5},? Box \d{1,5}|USNS?(?: \p{Lu}\p{Ll}{1,24}){1,2}|USS(?: \p{Lu}\p{Ll}{1,24}){1,2}) (?:APO|FPO|DPO) (?:AA|AE|AP) \d{5}(?![\p{L}\p{N}])/gu;
const PO_BOX_RE = /P\.? ?O\.? Box \d{1,6}(?![\p{L}\p{N}])/giu;
/** What a number after a street-like word may not be followed by: a measure, not a house number. */
const MEASURE_AFTER =
  /^ (?:km|m|mi|min|mins|minutes|h|hrs|hours|uhr|%|x|mal|eur|euro|€|jahre|years)(?![\p{L}])/iu;

// US states, DC and territories: a two-letter code before a ZIP is only taken from this list.
// biome-ignore format: a table reads better dense
const US_STATES = new Set([
  'AL', 'AK', 'AZ', 'AR', 'CA', 'CO', 'CT', 'DE', 'FL', 'GA', 'HI', 'ID', 'IL', 'IN', 'IA', 'KS', 'KY',
  'LA', 'ME', 'MD', 'MA', 'MI', 'MN', 'MS', 'MO', 'MT', 'NE', 'NV', 'NH', 'NJ', 'NM', 'NY', 'NC', 'ND',
  'OH', 'OK', 'OR', 'PA', 'RI', 'SC', 'SD', 'TN', 'TX', 'UT', 'VT', 'VA', 'WA', 'WV', 'WI', 'WY', 'DC',
  'PR', 'GU', 'VI', 'AS', 'MP',
]);
const UNIT_RE =
  /(?:(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Floor|Fl\.|#) ?[A-Za-z0-9-]{1,6}|\d{1,3}(?:st|nd|rd|th) Floor)(?![\p{L}\p{N}])/iuy;
const STATE_ZIP_RE = /([A-Z]{2}),? (\d{5}(?:-\d{4})?)(?![\p{L}\p{N}])/uy;
/** UK postcode shape (outward code, space optional, inward code), e.g. SW1A 1AA, M1 1AE. */
const UK_POSTCODE_RE = /[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}(?![\p{L}\p{N}])/uy;
const POSTAL_RE = /\d{4,5}(?![\p{L}\p{N}])/uy;
const CITY_RE = /\p{Lu}[\p{L}'-]{1,30}(?: \p{Lu}[\p{L}'-]{1,30}){0,2}(?![\p{L}\p{N}])/uy;
/** A compass suffix after the street type (Pennsylvania Avenue NW). */
const DIRECTION_RE = /(?:NE|NW|SE|SW|N|S|E|W)\.?(?![\p{L}\p{N}])/uy;
const TAIL_MAX = 90;

function stickyAt(re: RegExp, t: string, at: number): RegExpExecArray | null {
  re.lastIndex = at;
  return re.exec(t);
}

/**
 * Extends an address past its street part: units (Apt 4, Suite 200), then up to three segments that
 * follow a comma or a line break (a city, a region, a country), a state + ZIP or a UK postcode.
 * Returns the new end and whether a validated code was seen.
 */
function addressTail(
  t: string,
  original: string,
  map: Uint32Array,
  end: number,
): { end: number; validated: boolean } {
  let e = end;
  let validated = false;
  let segments = 0;
  const dir = t.charCodeAt(e) === 32 ? stickyAt(DIRECTION_RE, t, e + 1) : null;
  if (dir && !breakAt(t, original, map, e)) e += 1 + dir[0].length;
  while (e - end < TAIL_MAX && segments < 5) {
    let p = e;
    let separated = false;
    if (t.charCodeAt(p) === 44) {
      p++;
      separated = true;
    }
    if (t.charCodeAt(p) !== 32) break;
    if (fieldGapAt(t, original, map, p)) separated = true;
    p++;
    const unit = stickyAt(UNIT_RE, t, p);
    if (unit) {
      e = p + unit[0].length;
      segments++;
      continue;
    }
    const sz = stickyAt(STATE_ZIP_RE, t, p);
    if (sz && US_STATES.has(sz[1] ?? '')) {
      e = p + sz[0].length;
      validated = true;
      break;
    }
    const uk = stickyAt(UK_POSTCODE_RE, t, p);
    if (uk && (separated || segments > 0)) {
      e = p + uk[0].length;
      validated = true;
      break;
    }
    const postal = stickyAt(POSTAL_RE, t, p);
    if (postal && (separated || segments > 0)) {
      e = p + postal[0].length;
      // European order: the postal code, then the city on the same line (10115 Berlin).
      const city =
        t.charCodeAt(e) === 32 && !breakAt(t, original, map, e) ? stickyAt(CITY_RE, t, e + 1) : null;
      if (city) e += 1 + city[0].length;
      break;
    }
    const city = separated ? stickyAt(CITY_RE, t, p) : null;
    if (!city) break;
    e = p + city[0].length;
    segments++;
  }
  return { end: e, validated };
}

/** The capitalised word right before `start` (one space between), or '' if there is none. */
function wordBefore(t: string, start: number): string {
  if (start < 2 || t.charCodeAt(start - 1) !== 32) return '';
  let k = start - 1;
  while (k > 0 && start - k <= 25 && /\p{L}/u.test(t[k - 1] ?? '')) k--;
  return t.slice(k, start - 1);
}

/** Street addresses in the normalized text `t` (the original text and map locate line breaks). */
export function scanAddresses(t: string, original: string, map: Uint32Array, out: Cand[]): void {
  const found: Cand[] = [];
  const add = (start: number, end: number, base: number) => {
    const tail = addressTail(t, original, map, end);
    const score = tail.validated ? 0.85 : tail.end > end ? (base * 100 + 5) / 100 : base;
    found.push({ type: 'STREET_ADDRESS', start, end: tail.end, score });
  };
  // A house number starts a token: not glued to a word, a decimal, a path, an amount or a time.
  const numberStarts = (i: number) => {
    const b = t[i - 1];
    if (b !== undefined && (isWordy(b) || '.,/#$€£:+_-'.includes(b))) return false;
    const w = wordBefore(t, i);
    // "Chapter 11 Bankruptcy Court", "Section 230 Supreme Court": a title word before the number.
    return !(w !== '' && /^\p{Lu}/u.test(w) && !BEFORE_NUMBER_OK.has(w));
  };
  for (const m of t.matchAll(US_RE)) {
    const start = m.index;
    if (!numberStarts(start)) continue;
    const words = (m[1] ?? '').trim().split(' ');
    const type = m[2] ?? '';
    const last = words[words.length - 1] ?? '';
    if (NOT_STREET_NAMES.has(last)) continue;
    if (!words.some((w) => /^\p{Lu}\p{Ll}/u.test(w) || /^\d/.test(w))) continue;
    let end = start + m[0].length;
    // "St." and "Dr." end sentences too; the period is part of the address only when more follows.
    if (m[3] === '.' && !/^(?:,| [\p{Lu}\p{N}#])/u.test(t.slice(end, end + 2))) end--;
    if (AMBIGUOUS_TYPES.has(type) && /^ \p{Ll}/u.test(t.slice(end, end + 2))) {
      // "… Court justices": an ordinary noun phrase, unless a unit follows ("… Court apt 4").
      if (!stickyAt(UNIT_RE, t, end + 1)) continue;
    }
    add(start, end, 0.7);
  }
  for (const m of t.matchAll(EU_COMPOUND_RE)) {
    const start = m.index;
    if (start > 0 && isWordy(t[start - 1])) continue;
    const name = (/^\S+/.exec(m[0])?.[0] ?? '').replace(/,$/, '').toLowerCase();
    const suffix = EU_SUFFIXES.find((s) => name.endsWith(s));
    // The stem must be a word of its own (4+ letters): "Platz 1" alone says nothing, "Brigade 5" is
    // not a -gade street.
    if (suffix === undefined || name.length - suffix.length < 4) continue;
    const end = start + m[0].length;
    if (MEASURE_AFTER.test(t.slice(end, end + 10))) continue;
    add(start, end, 0.65);
  }
  for (const re of [MILITARY_RE, PO_BOX_RE]) {
    for (const m of t.matchAll(re)) {
      if (m.index > 0 && isWordy(t[m.index - 1])) continue;
      add(m.index, m.index + m[0].length, re === MILITARY_RE ? 0.85 : 0.7);
    }
  }
  for (const re of [HU_RE, ROMANCE_RE, ROMANCE_NUMBER_FIRST_RE]) {
    for (const m of t.matchAll(re)) {
      const start = m.index;
      if (start > 0 && isWordy(t[start - 1])) continue;
      if (re === ROMANCE_NUMBER_FIRST_RE && !numberStarts(start)) continue;
      // Particles alone do not make a street name ("Rue de la 5"): a capitalised word after the type.
      if (re !== HU_RE && !/ \p{Lu}/u.test(m[0].slice(m[0].indexOf(' ')))) continue;
      const end = start + m[0].length;
      if (re !== ROMANCE_NUMBER_FIRST_RE && MEASURE_AFTER.test(t.slice(end, end + 10))) continue;
      add(start, end, 0.65);
    }
  }
  pushDisjoint(found, out);
}

// ---------------------------------------------------------------- person names

/**
 * A name word: Title case, with an inner capital (McDonald, DeAndre), a hyphen or apostrophe
 * (Anne-Marie, O'Brien). Sticky, checked to end the word.
 */
const NAME_WORD_RE =
  /(?:\p{Lu}\p{Ll}{1,24}(?:\p{Lu}\p{Ll}{1,24})?(?:[-'’]\p{Lu}?\p{Ll}{1,24})?|\p{Lu}['’]\p{Lu}\p{Ll}{1,24})(?![\p{L}\p{N}])/uy;
/** A middle initial (D. or D) followed by a space. */
const INITIAL_RE = /\p{Lu}\.? (?=\p{Lu})/uy;

/** Capitalised words that are not names, stopping a name (or refusing it when first). */
// biome-ignore format: a word list reads better dense
const NOT_NAMES = new Set([
  'The', 'A', 'An', 'This', 'That', 'These', 'Our', 'Your', 'My', 'His', 'Her', 'Their', 'All', 'Any',
  'Team', 'Support', 'Customer', 'Customers', 'Client', 'Clients', 'User', 'Users', 'Service', 'Services',
  'Sales', 'Admin', 'Administrator', 'Manager', 'Department', 'Office', 'Desk', 'Inc', 'Ltd', 'Llc', 'Corp',
  'Corporation', 'Company', 'Co', 'Group', 'Bank', 'University', 'College', 'School', 'Hospital',
  'Street', 'Road', 'Avenue', 'Sir', 'Madam', 'Madame', 'Friend', 'Friends', 'Colleague', 'Colleagues',
  'Member', 'Members', 'Valued', 'Hiring', 'Dear', 'Hello', 'Hi', 'Thanks', 'Thank', 'Regards',
  'Sincerely', 'Best', 'Kind', 'Name', 'Unknown', 'None', 'Null', 'Undefined', 'True', 'False', 'Yes',
  'No', 'Not', 'Please', 'Account', 'Order', 'Product', 'Item', 'Project', 'Address', 'Phone', 'Email',
  'Mail', 'Tel', 'Mobile', 'Fax', 'Date', 'Subject', 'Re', 'Fwd', 'Mr', 'Mrs', 'Ms', 'Mx', 'Dr', 'Prof',
  'Everyone', 'Everybody', 'Partner', 'Partners', 'Parent', 'Parents', 'Guest', 'Guests', 'Patient',
  'Applicant', 'Candidate', 'Subscriber', 'Subscribers', 'Reader', 'Readers', 'Owner', 'Owners',
  'Sender', 'Recipient', 'Human', 'Resources', 'Help', 'Info', 'Information', 'Billing', 'Security',
  'Notifications', 'Notification', 'Noreply', 'No-Reply', 'Google', 'Microsoft', 'Apple', 'Amazon',
  // Brands and fictional titles written with an honorific.
  'Pepper', 'Oetker', 'Martens', 'Scholl', 'Scholl’s', "Scholl's", 'Who', 'Strange', 'Robot', 'Freeze',
  'Evil', 'No-One', 'Nobody', 'Know', 'Right', 'Universe', 'World', 'America', 'Congeniality',
]);

/** Reads a name of at most `maxWords` words (initials between them) from `at`; undefined if none. */
function readName(
  t: string,
  original: string,
  map: Uint32Array,
  at: number,
  maxWords: number,
): { end: number; words: number } | undefined {
  let p = at;
  let end = at;
  let words = 0;
  while (words < maxWords) {
    if (words > 0) {
      // One space between words, and never a line break: the next line is another field.
      if (t.charCodeAt(p) !== 32 || breakAt(t, original, map, p)) break;
      p++;
      const ini = stickyAt(INITIAL_RE, t, p);
      if (ini) p += ini[0].length;
    }
    const w = stickyAt(NAME_WORD_RE, t, p);
    if (!w || NOT_NAMES.has(w[0])) break;
    p += w[0].length;
    end = p;
    words++;
  }
  return words === 0 ? undefined : { end, words };
}

/** Whether a name ending at `end` is followed by the end of its line (or of the text), or punctuation. */
function endsField(t: string, original: string, map: Uint32Array, end: number): boolean {
  if (end >= t.length) return true;
  const c = t[end] ?? '';
  if (',.;:!?)<"'.includes(c)) return true;
  return breakAt(t, original, map, end);
}

// The cues. Honorifics and "Dear" are matched case-sensitively ("Mr", never "mr" or "MS"); a label
// must open its line; a salutation and a sign-off must close theirs; a mail header needs
// "<address@…>". Each cue must start a word, checked by hand (a leading lookbehind would run at every
// position of the text); the names after them are read case-sensitively by readName.
const HONORIFIC_RE = /(?:Mr|Mrs|Ms|Mx|Dr|Prof|Mme|Mlle)\.? /gu;
const LABEL_RE =
  /(?:full name|customer name|contact name|patient name|account holder|cardholder|billing name|first name|last name|name|customer|contact|patient|recipient|attn|attention) ?: ?/giu;
const MY_NAME_RE = /(?:my name is|my name's|i am called|people call me) /giu;
const DEAR_RE = /Dear /gu;
const SIGNOFF_RE =
  /(?:signed|sincerely|regards|best regards|kind regards|warm regards|best wishes|yours truly|yours sincerely|many thanks|thank you|thanks),? /giu;
const HEADER_RE = /(?:from|to|cc|reply-to|sender) ?: ?"?/giu;

/** Whether `start` opens a line of the original (only spaces or '>' quote marks before it on the line). */
function opensLine(t: string, original: string, map: Uint32Array, start: number): boolean {
  let k = start;
  while (k > 0 && start - k < 8 && (t[k - 1] === ' ' || t[k - 1] === '>')) {
    if (breakAt(t, original, map, k - 1)) return true;
    k--;
  }
  return k === 0;
}

/** A "Dr." that closes a street ("12 Oak Dr. Springfield") is not an honorific. */
const STREET_BEFORE_DR = /\d{1,6}(?: \p{Lu}\p{Ll}{1,24}){1,4} $/u;

/** Person names, only where a cue says one follows; see the module comment. */
export function scanPersons(t: string, original: string, map: Uint32Array, out: Cand[]): void {
  const found: Cand[] = [];
  const take = (
    cue: RegExpExecArray,
    maxWords: number,
    minWords: number,
    score: number,
    check?: (e: number) => boolean,
  ) => {
    const before = t[cue.index - 1];
    if (isWordy(before) || before === '_') return;
    const at = cue.index + cue[0].length;
    const n = readName(t, original, map, at, maxWords);
    if (!n || n.words < minWords || (check && !check(n.end))) return;
    found.push({ type: 'PERSON', start: at, end: n.end, score });
  };
  for (const m of t.matchAll(HONORIFIC_RE)) {
    if (m[0].startsWith('Dr') && STREET_BEFORE_DR.test(t.slice(Math.max(0, m.index - 60), m.index))) continue;
    take(m, 3, 1, 0.85);
  }
  for (const m of t.matchAll(LABEL_RE)) {
    if (!opensLine(t, original, map, m.index)) continue;
    // Two words at least (first and last name): "Name: Deploy" in a CI log is not a person.
    take(m, 4, 2, 0.75, (e) => endsField(t, original, map, e));
  }
  for (const m of t.matchAll(MY_NAME_RE)) take(m, 3, 1, 0.8);
  // "Dear David," closing its line or followed by a comma; "Dear Valued Customer" stops at NOT_NAMES.
  for (const m of t.matchAll(DEAR_RE))
    take(m, 3, 1, 0.7, (e) => endsField(t, original, map, e) && t[e] !== '.');
  for (const m of t.matchAll(SIGNOFF_RE)) {
    take(m, 3, 1, 0.6, (e) => e >= t.length || breakAt(t, original, map, e) || t[e] === '.');
  }
  for (const m of t.matchAll(HEADER_RE)) {
    take(m, 4, 1, 0.85, (e) => /^"? ?<[^<>@\s]{1,64}@/.test(t.slice(e, e + 70)));
  }
  pushDisjoint(found, out);
}
