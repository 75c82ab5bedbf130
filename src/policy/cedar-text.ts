/**
 * Writing Cedar source safely: every name that comes from config (agent ids,
 * tool names, argument names) reaches policy text only through these, so a
 * quote in a name can never change a policy's meaning.
 */

/** Cedar's reserved words cannot be attribute names after a dot. */
const RESERVED = new Set([
  'true',
  'false',
  'if',
  'then',
  'else',
  'in',
  'is',
  'like',
  'has',
  'principal',
  'action',
  'resource',
  'context',
]);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A Cedar string literal for `s` (Cedar escapes: \\ \" \n \r \t \0 and \u{…} for other control characters). */
export function cedarString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (cp === 0) out += '\\0';
    else if (cp < 0x20 || cp === 0x7f || (cp >= 0x2028 && cp <= 0x2029)) out += `\\u{${cp.toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}

/**
 * A Cedar `like` pattern literal for `pattern`: `*` matches any run of
 * characters and `\*` is a literal star (as in Cedar); every other character,
 * a backslash included, stands for itself.
 */
export function cedarPattern(pattern: string): string {
  return `"${pattern
    .split('\\*')
    .map((piece) => cedarString(piece).slice(1, -1))
    .join('\\*')}"`;
}

/** A Cedar entity reference `Warden::<type>::"<id>"`. */
export function entityRef(type: string, id: string): string {
  return `Warden::${type}::${cedarString(id)}`;
}

/** `base.name`, or `base["name"]` when `name` is not a plain identifier. */
export function attr(base: string, name: string): string {
  return IDENT.test(name) && !RESERVED.has(name) ? `${base}.${name}` : `${base}[${cedarString(name)}]`;
}

/** `base has name`, quoting `name` when it is not a plain identifier. */
export function hasAttr(base: string, name: string): string {
  return IDENT.test(name) && !RESERVED.has(name) ? `${base} has ${name}` : `${base} has ${cedarString(name)}`;
}

/** A Cedar literal for a config scalar. */
export function cedarScalar(v: string | number | boolean): string {
  return typeof v === 'string' ? cedarString(v) : String(v);
}
