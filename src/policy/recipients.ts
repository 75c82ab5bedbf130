/**
 * Who a call sends to, and whether every one of them is a recipient the
 * operator trusts (`taint.trustedRecipients`). A tool opts in by naming the
 * arguments that hold addresses (`tools.<name>.recipients`); policy then sees
 * `context.recipients: { count, trusted }`, and the untrusted-taint rule lets
 * a tainted session write to trusted recipients — the user's own addresses,
 * the company's domain — without a human, while anything else still waits.
 *
 * Fail closed throughout: a value that is not a string (or a list of strings),
 * an item that is neither an e-mail address nor a phone number, or a call with
 * no recipient at all is not trusted.
 */

/** What policy sees of a call's recipients. */
export interface RecipientFacts {
  /** Recipients named across the declared arguments (after splitting lists). */
  count: number;
  /** Every recipient matched `taint.trustedRecipients`, and there was at least one. */
  trusted: boolean;
}

const EMAIL = /^[^\s@<>,;"]+@[^\s@<>,;"]+\.[^\s@<>,;"]+$/;
// A phone number: an optional +, then digits with the usual separators; at least 5 digits.
const PHONE = /^\+?[\d\s().-]{5,}$/;
const ANGLE = /<([^<>]*)>\s*$/;

/** The canonical form of one recipient, or undefined when it is neither an address nor a number. */
export function canonicalRecipient(raw: string): string | undefined {
  let s = raw.trim();
  const angle = ANGLE.exec(s); // "Jane Doe <jane@example.com>"
  if (angle) {
    // "evil@x.io <me@example.com>": a display name holding an address is ambiguous (which one
    // does the tool write to?), so it is no recipient at all.
    if (/[@<>]/.test(s.slice(0, angle.index))) return undefined;
    s = angle[1]!.trim();
  }
  if (s.toLowerCase().startsWith('mailto:')) s = s.slice(7);
  if (EMAIL.test(s)) return s.toLowerCase();
  if (PHONE.test(s)) {
    const digits = s.replace(/[^\d]/g, '');
    if (digits.length < 5) return undefined;
    return s.trimStart().startsWith('+') ? `+${digits}` : digits;
  }
  return undefined;
}

/**
 * Patterns of `taint.trustedRecipients`: an exact address (`john@example.com`,
 * case-insensitive), every address of a domain (`*@example.com`), of its
 * subdomains (`*@*.example.com`), or a phone number (`+1 555 0100`, compared
 * digit by digit with its leading `+`).
 */
export class RecipientMatcher {
  private readonly exact = new Set<string>();
  private readonly domains = new Set<string>();
  private readonly subdomainsOf: string[] = [];

  constructor(patterns: readonly string[]) {
    for (const p of patterns) {
      const problem = recipientPatternProblem(p);
      if (problem) throw new Error(`taint.trustedRecipients: "${p}": ${problem}`);
      const lower = p.trim().toLowerCase();
      if (lower.startsWith('*@*.')) this.subdomainsOf.push(lower.slice(3));
      else if (lower.startsWith('*@')) this.domains.add(lower.slice(2));
      else this.exact.add(canonicalRecipient(lower)!);
    }
  }

  get empty(): boolean {
    return this.exact.size === 0 && this.domains.size === 0 && this.subdomainsOf.length === 0;
  }

  /** Whether the canonical recipient `r` is trusted. */
  matches(r: string): boolean {
    if (this.exact.has(r)) return true;
    const at = r.lastIndexOf('@');
    if (at < 0) return false;
    const domain = r.slice(at + 1);
    if (this.domains.has(domain)) return true;
    return this.subdomainsOf.some((suffix) => domain.endsWith(suffix));
  }
}

/** Why `p` is not a recipient pattern, or undefined when it is one. */
export function recipientPatternProblem(p: string): string | undefined {
  const lower = p.trim().toLowerCase();
  const domain = lower.startsWith('*@*.')
    ? lower.slice(4)
    : lower.startsWith('*@')
      ? lower.slice(2)
      : undefined;
  if (domain !== undefined) {
    return /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(domain)
      ? undefined
      : 'expected *@domain or *@*.domain with a dotted domain name';
  }
  if (lower.includes('*')) return 'a star is allowed only as *@domain or *@*.domain';
  return canonicalRecipient(lower) === undefined
    ? 'expected an e-mail address, *@domain, *@*.domain or a phone number'
    : undefined;
}

/**
 * The recipients of a call to a tool whose `argumentNames` hold them, or
 * undefined when the tool declares none. A string may list several, separated
 * by commas or semicolons; a list must hold strings.
 */
export function recipientFacts(
  argumentNames: readonly string[] | undefined,
  args: Readonly<Record<string, unknown>>,
  matcher: RecipientMatcher | undefined,
): RecipientFacts | undefined {
  if (!argumentNames || argumentNames.length === 0) return undefined;
  let count = 0;
  let trusted = true;
  const take = (raw: string) => {
    for (const item of raw.split(/[,;]/)) {
      if (item.trim() === '') continue;
      count++;
      const r = canonicalRecipient(item);
      if (r === undefined || !matcher?.matches(r)) trusted = false;
    }
  };
  for (const name of argumentNames) {
    if (!Object.hasOwn(args, name)) continue;
    const v = args[name];
    if (v === undefined || v === null) continue;
    if (typeof v === 'string') take(v);
    else if (Array.isArray(v)) {
      for (const item of v) {
        if (typeof item === 'string') take(item);
        else {
          count++;
          trusted = false;
        }
      }
    } else {
      count++;
      trusted = false;
    }
  }
  return { count, trusted: trusted && count > 0 };
}
