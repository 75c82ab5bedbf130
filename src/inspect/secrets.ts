/**
 * Secret detection for tool arguments and outputs (issue #7): secretlint's
 * recommended preset for provider formats, plus Warden's own rules for what
 * it lacks or gets wrong for a gateway (JWTs, PEM private keys, credentials in
 * URLs, key-like assignments with high-entropy values, and a few providers the
 * pinned preset predates). Every regex is linear: bounded or single character
 * classes, no nested quantifiers, starts anchored by look-behinds.
 */
import { lintSource } from '@secretlint/core';
import { secretLintProfiler } from '@secretlint/profiler';
import { rules as presetRules } from '@secretlint/secretlint-rule-preset-recommend';
import { type Normalized, normalize, toOriginal } from './normalize.js';
import { hasTokenRun } from './runs.js';

// secretlint 12 profiles every lintSource call whether or not anyone reads the profile: ~90 marks and ~45
// measures per call go into the process-wide performance timeline, never cleared, and its observer scans
// every earlier mark for each new one. In a long-running gateway that is a leak and a quadratic slow-down
// (measured: 500 calls took 8 s, the next 500 took 28 s, the fifth 500 took 76 s). Upstream made profiling
// opt-in after 12.0.0 (secretlint PR #1673), in versions that need a newer Node; until then, marks are no-ops.
secretLintProfiler.mark = () => undefined;

/** One secret found in a text; offsets index the original text, [start, end). */
export interface SecretFinding {
  kind: 'secret';
  /** What it is: 'AWS_ACCESS_KEY_ID', 'JWT', 'PRIVATE_KEY', 'DATABASE_URL', 'HIGH_ENTROPY', … */
  type: string;
  start: number;
  end: number;
  /** Confidence in [0, 1]: provider formats ~0.95, context-only heuristics lower. */
  score: number;
  /** The rule that fired: a secretlint rule id, or `warden/<name>`. */
  rule: string;
}

type LintConfig = Parameters<typeof lintSource>[0]['options']['config'];

/** Rules of the preset Warden does not run (see {@link CONFIG}). */
const DROPPED = new Set([
  '@secretlint/secretlint-rule-basicauth',
  '@secretlint/secretlint-rule-database-connection-string',
  '@secretlint/secretlint-rule-filter-comments',
]);
const OPTIONS: Readonly<Record<string, object>> = {
  '@secretlint/secretlint-rule-aws': { enableIDScanRule: true },
};

/**
 * The recommended preset's rules, registered one by one (core 12.0.0 ignores `disabled` on a preset's
 * child rules, so dropping a rule means not registering it). Built once at module load; secretlint still
 * sets up each rule's per-file state on every call, which is why a short text costs ~0.2 ms.
 * - aws: `enableIDScanRule`, so access key ids and account ids count (an id is half of a key pair).
 * - basicauth, database-connection-string: replaced by `warden/url-credentials`, one rule for every
 *   scheme with one placeholder policy (12.0.0 flags `postgres:postgres@localhost` and misses ftps).
 * - filter-comments: it honours `secretlint-disable` comments *inside the scanned text*, which would let
 *   whoever writes a tool output switch the detector off.
 */
const CONFIG: LintConfig = {
  rules: presetRules
    .filter((rule) => !DROPPED.has(rule.meta.id))
    .map(
      (rule): LintConfig['rules'][number] =>
        ({ id: rule.meta.id, rule, options: OPTIONS[rule.meta.id] ?? {} }) as LintConfig['rules'][number],
    ),
};

/** 'AWSAccessKeyID' → 'AWS_ACCESS_KEY_ID'. */
function screaming(id: string): string {
  return id
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toUpperCase();
}

async function secretlintFindings(text: string): Promise<SecretFinding[]> {
  const result = await lintSource({
    source: { filePath: '/warden/inspected.txt', content: text, contentType: 'text' },
    options: { config: CONFIG, maskSecrets: true, noPhysicFilePath: true },
  });
  // secretlint drops one leading byte-order mark before scanning, so its offsets count from after it.
  const bom = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  return result.messages.map((m) => {
    let start = m.range[0] + bom;
    let end = m.range[1] + bom;
    // secretlint 12.0.0's AWS secret rule reports the captured key's length from the start of the whole
    // `NAME = key` match, so the range is shifted left; re-find the key after the separator.
    if (m.messageId === 'AWSSecretAccessKey') {
      const key = AWS_SECRET_VALUE.exec(text.slice(start, start + 200));
      if (key?.[1]) {
        start += key.index + key[0].length - key[1].length;
        end = start + key[1].length;
      }
    }
    return { kind: 'secret' as const, type: screaming(m.messageId), start, end, score: 0.95, rule: m.ruleId };
  });
}

const AWS_SECRET_VALUE = /(?::|=>|=)[ \t]{0,8}["']?([A-Za-z0-9/+=]{40})/;

/** Shannon entropy in bits per character. */
export function shannonEntropy(s: string): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

type Raw = Omit<SecretFinding, 'kind'>;

// --- JWT ------------------------------------------------------------------------------------------
// `_` may precede: GitHub app installation tokens are `ghs_<id>_<jwt>`.
const JWT = /(?<![A-Za-z0-9-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;

function jwts(text: string, out: Raw[]): void {
  for (const m of text.matchAll(JWT)) {
    const header = Buffer.from(m[0].slice(0, m[0].indexOf('.')), 'base64url').toString('utf8');
    // `eyJ` decodes to `{"`: without the closing brace the parse can only throw, and the exception made
    // 100 KB of eyJ-segments cost 30 ms.
    if (!header.trimEnd().endsWith('}')) continue;
    let alg: unknown;
    try {
      alg = (JSON.parse(header) as { alg?: unknown }).alg;
    } catch {
      continue;
    }
    if (typeof alg !== 'string') continue;
    out.push({ type: 'JWT', start: m.index, end: m.index + m[0].length, score: 0.9, rule: 'warden/jwt' });
  }
}

// --- PEM private keys -----------------------------------------------------------------------------
const PEM_BEGIN = /-----BEGIN ((?:[A-Z0-9]+ ){0,3})PRIVATE KEY( BLOCK)?-----/g;
// Dashes are counted loosely: some service-account files carry a four-dash END line.
const PEM_END = /-{2,5}END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-{2,5}/;
// A block without END (truncated output) still runs to the end of its base64 body.
const PEM_BODY = /(?:[A-Za-z0-9+/=:, \t\r\n]|\\[nr])*/y;
/** Longest private key block looked for (an RSA-16384 PEM is ~12.5 KB). */
const PEM_MAX = 16_384;
/** Fewest base64 characters that count as key material (a truncated key still leaks its first lines). */
const PEM_MIN_MATERIAL = 32;

function privateKeys(text: string, out: Raw[]): void {
  const begins = [...text.matchAll(PEM_BEGIN)];
  for (const [i, m] of begins.entries()) {
    const after = m.index + m[0].length;
    // A block ends before the next one begins: searching past it made a text of BEGIN lines cost
    // PEM_MAX per line (100 KB of them: 176 ms).
    const limit = Math.min(after + PEM_MAX, begins[i + 1]?.index ?? text.length);
    const e = PEM_END.exec(text.slice(after, limit));
    let end: number;
    let material: string;
    if (e) {
      end = after + e.index + e[0].length;
      material = text.slice(after, after + e.index);
    } else {
      PEM_BODY.lastIndex = after;
      PEM_BODY.exec(text);
      end = PEM_BODY.lastIndex;
      while (end > after && /[\s\\]/.test(text[end - 1]!)) end--;
      if (text[end - 1] === 'n' && text[end - 2] === '\\') end -= 2;
      material = text.slice(after, end);
    }
    // A BEGIN line with no key material after it (code that looks for one, a template, `...`) is a
    // mention; even the smallest key (Ed25519 PKCS#8) has 64 base64 characters.
    if (material.replace(/\\[nr]|[^A-Za-z0-9+/]/g, '').length < PEM_MIN_MATERIAL) continue;
    const type = m[2] ? 'PGP_PRIVATE_KEY' : 'PRIVATE_KEY';
    out.push({ type, start: m.index, end, score: 1, rule: 'warden/private-key' });
  }
}

// --- Credentials in URLs --------------------------------------------------------------------------
// scheme://user:password@host. The password may contain '@' (seen in real connection strings), so it
// runs to the last '@' before the host; the classes exclude '/', whitespace and quotes, so the
// backtracking is bounded by one URL's authority.
const URL_CREDS =
  /(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{1,30}):\/\/([^\s:@/?#'"`<>]{1,256}):([^\s/?#'"`<>]{1,256})@([^\s/?#'"`<>@]{1,256})/g;
const DB_SCHEMES =
  /^(?:jdbc:)?(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|redis|rediss|amqps?|mssql|sqlserver|oracle|cockroachdb|clickhouse)$/i;
const TEMPLATE = /\$\{|\$\(|\{\{|\{[^}]{0,50}\}|<[^>]{0,50}>|%[A-Za-z_]{1,30}%|^\$[A-Za-z_]|^\*+$/;
// Words documentation uses for the password slot, alone or after the words docs put before them
// (`somepassword`, `your_password`, `authpassword`). Alone they are weak evidence (`admin:password@ftp.host`
// is a real, bad password); with a placeholder user (`someuser`, `username`) or a local / example host they
// mark an example. Bare `pass` is not one: `user:pass@host` is what secretlint's basic-auth fixtures expect
// flagged. `app`/`db`/`admin` prefixes are left out: `appuser:dbpassword@prod-db` is a real, weak login.
const SLOT_WORDS =
  /^(?:(?:my|your|some|the|auth|example|sample|dummy|fake)[_-]?)?(?:password|passwd|secret)$|^(?:changeme|pass123|placeholder)$/i;
const SLOT_USERS =
  /^(?:(?:my|your|some|the|example|sample|dummy|fake)[_-]?)?user(?:name)?$|^(?:dbuser|login|test|example)$/i;
const EXAMPLE_HOST =
  /^(?:localhost|127\.0\.0\.1|\[?::1\]?|0\.0\.0\.0|(?:[a-z0-9-]+\.)*(?:example|test)\.(?:com|org|net)|(?:[a-z0-9-]+\.)*(?:example|test|invalid|localhost))(?::\d+)?$/i;
// On a loopback host a default-style password is a developer's local setup, not a leaked credential.
const LOOPBACK = /^(?:localhost|127\.0\.0\.1|\[::1\]|0\.0\.0\.0)(?::\d+)?$/i;
const DEV_PASSWORDS = /^(?:pass|admin|root|test|dev|guest|default|1234\d{0,4}|qwerty|letmein)$/i;
const DOC_PLACEHOLDER = /^(?:YOUR|REPLACE|ENTER|INSERT|CHANGE)[_-]|^x{3,}$|^\.{3}$/i;

function urlCredentials(text: string, out: Raw[]): void {
  for (const m of text.matchAll(URL_CREDS)) {
    const [, scheme = '', user = '', pass = '', host = ''] = m;
    if (TEMPLATE.test(user) || TEMPLATE.test(pass) || TEMPLATE.test(host)) continue;
    // `mongodb://[username:password@]host`: the brackets of a syntax summary's optional part.
    if (user.startsWith('[') && host.startsWith(']')) continue;
    if (DOC_PLACEHOLDER.test(pass) || DOC_PLACEHOLDER.test(user)) continue;
    if (pass.length < 4 || /^(.)\1*$/.test(pass) || pass.toLowerCase() === user.toLowerCase()) continue;
    if (SLOT_WORDS.test(pass) && (SLOT_USERS.test(user) || EXAMPLE_HOST.test(host))) continue;
    if (LOOPBACK.test(host) && DEV_PASSWORDS.test(pass)) continue;
    const start = m.index + scheme.length + 3;
    const type = DB_SCHEMES.test(scheme) ? 'DATABASE_URL' : 'URL_CREDENTIALS';
    // The whole authority (user too): a user name next to its password is half the credential.
    out.push({
      type,
      start,
      end: start + user.length + 1 + pass.length,
      score: 0.9,
      rule: 'warden/url-credentials',
    });
  }
}

// --- Key-like assignments with high-entropy values ------------------------------------------------
// An identifier, a separator (`=`, `:`, `:=`, `=>`, optionally quoted), a token-shaped value. The
// identifier must name a secret; the value must look random (entropy, mixed classes), so prose,
// identifiers and placeholders in the same place pass.
const ASSIGNMENT =
  /(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]{1,64})["']?[ \t]{0,8}(?::=|=>|:|=)[ \t]{0,8}["']?([A-Za-z0-9+/=_.~-]{20,512})/g;
const BEARER = /\b(?:Bearer|Basic|Token)[ \t]{1,8}([A-Za-z0-9+/=_.~-]{20,512})/g;
const KEY_WORDS =
  /api[_.-]?key|apikey|secret|token|passw(?:or)?d|pwd|credential|auth[_.-]?key|access[_.-]?key|private[_.-]?key|signing[_.-]?key|session[_.-]?key|client[_.-]?secret/i;
// The AWS rule owns these names and validates the exact 40-character format; a different-shaped value
// under the name (an encrypted blob, a vault reference) is not an AWS key, so the generic rule defers.
const OWNED_KEYS = /aws[_.-]?secret[_.-]?access[_.-]?key/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]+$/i;

/**
 * Whether `v` is built, not drawn: mostly alphabet or digit sequences (`1234567890abcdef`, `aBcDeFgH…`,
 * `zyx987…`) or one short unit repeated (`Ab1Cd2Ab1Cd2…`). Such values reach the entropy bar by using many
 * distinct characters, but in a random base62 or hex string 6–14 % of neighbour pairs are sequential (the
 * bar is half) and no unit repeats, so a real key does not trip this.
 */
export function looksConstructed(v: string): boolean {
  const lower = v.toLowerCase();
  let steps = 0;
  for (let i = 1; i < lower.length; i++) {
    const d = lower.charCodeAt(i) - lower.charCodeAt(i - 1);
    // '9' → '0' continues "1234567890"; '9' → 'a' continues hex digits "…789abc".
    const pair = lower[i - 1]! + lower[i]!;
    if (d === 1 || d === -1 || pair === '90' || pair === '9a' || pair === 'a9') steps++;
  }
  if (steps * 2 >= lower.length - 1) return true;
  // Smallest period (prefix function): a value that is its first p characters over and over.
  const pi = new Uint32Array(v.length);
  for (let i = 1, k = 0; i < v.length; i++) {
    while (k > 0 && v[i] !== v[k]) k = pi[k - 1]!;
    if (v[i] === v[k]) k++;
    pi[i] = k;
  }
  const period = v.length - (pi[v.length - 1] ?? 0);
  return period <= v.length / 2;
}

/** Whether a value in a secret-naming context looks like a random token rather than a word or id. */
export function looksRandom(value: string): boolean {
  const v = value.replace(/=+$/, '');
  if (v.length < 20 || UUID.test(v) || looksConstructed(v)) return false;
  const h = shannonEntropy(v);
  if (HEX.test(v)) return v.length >= 32 && h >= 3.0;
  const classes = Number(/[a-z]/.test(v)) + Number(/[A-Z]/.test(v)) + Number(/[0-9]/.test(v));
  if (classes < 2) return false;
  // Long runs of one class ('averyverylongidentifier_name') are words, not randomness.
  if (/[a-z]{12}|[A-Z]{12}/.test(v) && classes < 3) return false;
  // CamelCase prose ('ThisIsNotARealKey'): random base62 has letter runs of ~2, words of 4 or more.
  const words = v.match(/[A-Z]?[a-z]+|[A-Z]+(?![a-z])/g) ?? [];
  const letters = words.reduce((n, w) => n + w.length, 0);
  if (words.length > 0 && letters / words.length >= 3.5) return false;
  return h >= 3.5;
}

function assignments(text: string, out: Raw[]): void {
  for (const m of text.matchAll(ASSIGNMENT)) {
    const [whole, key = '', value = ''] = m;
    if (!KEY_WORDS.test(key) || OWNED_KEYS.test(key) || !looksRandom(value)) continue;
    const start = m.index + whole.length - value.length;
    const score = Math.min(0.85, 0.5 + (shannonEntropy(value) - 3.5) / 4);
    out.push({
      type: 'HIGH_ENTROPY',
      start,
      end: start + value.length,
      score,
      rule: 'warden/key-assignment',
    });
  }
  for (const m of text.matchAll(BEARER)) {
    const [whole, value = ''] = m;
    if (!looksRandom(value)) continue;
    const start = m.index + whole.length - value.length;
    out.push({ type: 'BEARER_TOKEN', start, end: start + value.length, score: 0.8, rule: 'warden/bearer' });
  }
}

// --- Providers the pinned preset (12.0.0) predates ------------------------------------------------
const PROVIDERS: ReadonlyArray<{ type: string; re: RegExp; score: number }> = [
  // https://docs.stripe.com/keys — secret and restricted keys; publishable (pk_) keys are public.
  {
    type: 'STRIPE_KEY',
    re: /(?<![A-Za-z0-9])[rs]k_(?:live|test)_[A-Za-z0-9]{24,247}(?![A-Za-z0-9])/g,
    score: 0.95,
  },
  // Tailscale: tskey-<kind>-<id>-<secret>; a letter before the prefix makes it part of another word.
  {
    type: 'TAILSCALE_KEY',
    re: /(?<![A-Za-z])tskey-[a-z]{2,16}-[A-Za-z0-9]{6,32}-[A-Za-z0-9]{16,64}(?![A-Za-z0-9])/g,
    score: 0.95,
  },
  // Cloudflare scannable tokens: cfat_/cfut_/cfk_ + 40 characters + 8-hex checksum.
  {
    type: 'CLOUDFLARE_TOKEN',
    re: /(?<![A-Za-z0-9])cf(?:at|ut|k)_[A-Za-z0-9]{40}[0-9a-f]{8}(?![A-Za-z0-9])/g,
    score: 0.95,
  },
  // Azure AD tenant / client / subscription ids are identifiers, not credentials; reported low so
  // policy can choose, since with a client secret they complete a service principal login.
  {
    type: 'AZURE_ID',
    re: /(?<![A-Za-z0-9])(?:azure|a?ad|arm)[_.-]?(?:tenant|client|subscription)[_.-]?id["']?[ \t]{0,8}[:=][ \t]{0,8}["']?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi,
    score: 0.5,
  },
];
const SECP256K1_N = BigInt('0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141');
const HEX_KEY = /(?<![A-Za-z0-9])0x([0-9a-fA-F]{64})(?![0-9a-fA-F])/g;

function providers(text: string, out: Raw[]): void {
  for (const { type, re, score } of PROVIDERS) {
    for (const m of text.matchAll(re)) {
      const start = type === 'AZURE_ID' ? m.index + m[0].length - 36 : m.index;
      out.push({ type, start, end: m.index + m[0].length, score, rule: `warden/${type.toLowerCase()}` });
    }
  }
  // A 0x-prefixed 256-bit number in the valid key range: an Ethereum/secp256k1 private key, or a
  // transaction hash (same shape), hence the lower score.
  for (const m of text.matchAll(HEX_KEY)) {
    const k = BigInt(`0x${m[1]}`);
    if (k === 0n || k >= SECP256K1_N) continue;
    const end = m.index + m[0].length;
    out.push({ type: 'SECP256K1_PRIVATE_KEY', start: m.index, end, score: 0.6, rule: 'warden/secp256k1' });
  }
}

// --- Kubernetes Secret manifests (line-based, so run on the original text) ------------------------
const K8S_KIND = /^kind:[ \t]*["']?Secret["']?[ \t]*\r?$/m;

function k8sSecrets(text: string, out: Raw[]): void {
  if (!K8S_KIND.test(text)) return;
  let offset = 0;
  for (const doc of text.split(/(?<=\n)---[ \t]*\r?\n/)) {
    if (K8S_KIND.test(doc)) {
      let inData = false;
      let lineStart = 0;
      for (const line of doc.split('\n')) {
        if (/^(?:data|stringData):[ \t]*\r?$/.test(line)) inData = true;
        else if (/^\S/.test(line)) inData = false;
        else if (inData) {
          const v = /^[ \t]+[A-Za-z0-9_.-]+:[ \t]*["']?([^"'\r\n]+)/.exec(line);
          if (v?.[1]) {
            const start = offset + lineStart + line.indexOf(v[1], v[0].length - v[1].length);
            out.push({
              type: 'K8S_SECRET',
              start,
              end: start + v[1].trimEnd().length,
              score: 0.8,
              rule: 'warden/k8s-secret',
            });
          }
        }
        lineStart += line.length + 1;
      }
    }
    offset += doc.length + (text.slice(offset + doc.length).match(/^---[ \t]*\r?\n/)?.[0].length ?? 0);
  }
}

// --- Assembly -------------------------------------------------------------------------------------
function mapBack(n: Normalized, found: Raw[]): Raw[] {
  return found.map((f) => ({ ...f, ...toOriginal(n, f.start, f.end) }));
}

/** Overlapping findings become one span (the union, so redaction misses nothing) named by the stronger. */
function merge(found: Raw[]): SecretFinding[] {
  const sorted = found.filter((f) => f.end > f.start).sort((a, b) => a.start - b.start || b.end - a.end);
  const out: SecretFinding[] = [];
  for (const f of sorted) {
    const last = out[out.length - 1];
    if (last && f.start < last.end) {
      if (f.score > last.score) Object.assign(last, { type: f.type, score: f.score, rule: f.rule });
      last.end = Math.max(last.end, f.end);
      continue;
    }
    out.push({ kind: 'secret', ...f });
  }
  return out;
}

// --- Password fields ------------------------------------------------------------------------------
// A JSON field whose name ends in a password word, holding a non-empty string: `"password": "hunter2"`.
// Passwords people choose are not random, so the key-assignment rule (which wants entropy) lets them
// through; in a JSON field of that name the value is the password, whatever it looks like. Names that
// only start with the word (`password_policy`, `passwordHint`) are not passwords. Placeholders pass.
const PASSWORD_HINT = /pass(?:w(?:or)?d|phrase)|pwd/i;
const PASSWORD_FIELD =
  /"([A-Za-z0-9_.-]{0,48}?(?:[Pp]ass(?:w(?:or)?d|phrase)|PASS(?:W(?:OR)?D|PHRASE)|[Pp]wd|PWD))"[ \t]{0,8}:[ \t]{0,8}"((?:[^"\\\r\n]|\\[^\r\n]){1,1024})"/g;
const PLACEHOLDER =
  /^(?:\$\{|\{\{|<[^>]*>$|%\(|\[REDACTED|\*+$|x+$|null$|none$|n\/a$|redacted$|hidden$|changeme$)/i;

function passwordFields(text: string, out: Raw[]): void {
  for (const m of text.matchAll(PASSWORD_FIELD)) {
    const [whole, , value = ''] = m;
    const v = value.trim();
    if (!/[A-Za-z0-9]/.test(v) || PLACEHOLDER.test(v)) continue;
    const start = m.index + whole.length - 1 - value.length;
    out.push({
      type: 'PASSWORD',
      start,
      end: start + value.length,
      score: 0.7,
      rule: 'warden/password-field',
    });
  }
}

const NON_ASCII = /[^\t\n\r\x20-\x7e]/;
/** The gates of {@link detectSecrets}: necessary conditions for any finding of the rules behind them. */
const PEM_HINT = /BEGIN|PRIVATE KEY/i;
const ACCOUNT_HINT = /account/i;
// Documentation's fill-in-the-blank values (`xoxb-your-token-here`) match loose provider patterns. Only a
// value that is also not random-looking is let go, so appending `-here` to a real token does not hide it.
const FILL_IN = /(?:^|[^A-Za-z0-9])your[_-]|[_-]here(?![A-Za-z0-9])/i;
const isFillIn = (s: string) => s.length <= 512 && FILL_IN.test(s) && !looksRandom(s);

/** Finds secrets in `text`; offsets index the original text, sorted and non-overlapping. */
export async function detectSecrets(
  text: string,
  opts: { normalized?: Normalized } = {},
): Promise<SecretFinding[]> {
  if (text.length === 0) return [];
  const n = opts.normalized?.original === text ? opts.normalized : normalize(text);
  // Every token format here (secretlint's preset and ours) is a run of at least 16 token characters,
  // a PEM block, a URL with credentials, or an AWS account id after its key word: text with none of
  // those cannot hold one, and skipping secretlint there is most of inspecting ordinary prose.
  const long = hasTokenRun(text, 16) || (n.text !== text && hasTokenRun(n.text, 16));
  const pem = PEM_HINT.test(n.text);
  const url = n.text.includes('://');
  const found: Raw[] = [];
  if (long || pem || url || ACCOUNT_HINT.test(text)) {
    found.push(...(await secretlintFindings(text)));
    // Invisible or look-alike characters inside a token would hide it from secretlint's patterns.
    if (NON_ASCII.test(text)) found.push(...mapBack(n, await secretlintFindings(n.text)));
  }
  const own: Raw[] = [];
  if (long) jwts(n.text, own);
  if (pem) privateKeys(n.text, own);
  if (url) urlCredentials(n.text, own);
  if (long) {
    assignments(n.text, own);
    providers(n.text, own);
  }
  if (PASSWORD_HINT.test(n.text)) passwordFields(n.text, own);
  found.push(...mapBack(n, own));
  k8sSecrets(text, found);
  return merge(found.filter((f) => !isFillIn(text.slice(f.start, f.end))));
}
