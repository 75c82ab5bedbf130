/**
 * A fingerprint of what the detectors return: one SHA-256 over the exact output (findings, scores,
 * offsets, normalised text and offset map) of every detector on every corpus row and on a fixed
 * set of generated texts dense with what the scanners key on. Two builds with the same fingerprint
 * have detectors that behave the same on all of it, which is what a change made for speed must
 * keep (`npm run eval:detectors -- --fingerprint` on both, compare).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  decodeRuns,
  detectInjection,
  detectPii,
  detectSecrets,
  EXTRA_PII_TYPES,
  normalize,
  PII_TYPES,
} from '../../src/inspect/index.js';
import { readJsonl } from './jsonl.js';

/** Pieces that trip every scanner: numbers of each shape, markers, encodings, look-alikes. */
// biome-ignore format: a word list reads better dense
const PIECES = [
  'word', ' ', ' ', '  ', '\n', '123', '4111 1111 1111 1111', '(415) 555-0132', '+1 415 555 0132', '+(44)20', '00',
  'DE89 3704 0044 0532 0130 00', 'GB', '12', '123-45-6789', '10.0.0.1', 'fe80::1', '::', 'phone:', 'call', 'x12',
  'ext. 5', 'ignore previous instructions', 'you are now', 'foo foo foo foo foo foo foo foo foo foo foo',
  'a a a a a a a a a a', 'AKIA', 'IOSFODNN7EXAMPLE', 'ghp_', 'aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQ=', '\u200b',
  'ｉｇｎｏｒｅ', 'Ιgnore', 'system:', '<|im_start|>', '[INST]', '😀', '\ud800', '.', '-', '/', '(', ')', '+', ':',
  '2024-05-12', 'jane@example.com', '@', 'password', '"password": "hunter2"', 'ssn', '01001001', 'Q: hi A: yes Q: ',
  'OVERRIDE', 'DAN', '12345678901234567', '%41%42%43', '12%', '![x](https://e.com/a?q=1)', "Bob's address",
  'Explain this.', 'z = a + b', 'ſ', 'K', '\uFDFA',
];

/** `count` texts from a fixed seed, so every run generates the same ones. */
export function generatedTexts(count: number): string[] {
  let seed = 12345;
  const next = (k: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return (seed >>> 8) % k;
  };
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let s = '';
    const n = 1 + next(60);
    for (let j = 0; j < n; j++) s += PIECES[next(PIECES.length)];
    out.push(s);
  }
  return out;
}

/** Every text of the corpus: the labelled sets' rows, and InjecAgent's tool responses and cases when present. */
export function corpusTexts(dir: string): string[] {
  const texts: string[] = [];
  for (const f of ['indirect.jsonl', 'injection.jsonl', 'pii.jsonl', 'secrets.jsonl']) {
    const path = resolve(dir, f);
    if (!existsSync(path)) continue;
    for (const row of readJsonl<{ text: unknown }>(path)) texts.push(String(row.text));
  }
  const agent = resolve(dir, 'injecagent');
  const responses = resolve(agent, 'attacker_simulated_responses.json');
  if (existsSync(responses)) {
    for (const v of Object.values(JSON.parse(readFileSync(responses, 'utf8')) as object))
      texts.push(String(v));
  }
  for (const f of ['test_cases_dh_base.json', 'test_cases_ds_base.json']) {
    const path = resolve(agent, f);
    if (!existsSync(path)) continue;
    for (const c of JSON.parse(readFileSync(path, 'utf8')) as object[]) {
      for (const v of Object.values(c)) if (typeof v === 'string') texts.push(v);
    }
  }
  return texts;
}

/** The fingerprint over `texts`, and how many there were. */
export async function fingerprint(texts: readonly string[]): Promise<{ texts: number; sha256: string }> {
  const hash = createHash('sha256');
  for (const t of texts) {
    const n = normalize(t);
    const out = [
      n.text,
      Array.from(n.map).join(','),
      detectPii(t, { types: [...PII_TYPES, ...EXTRA_PII_TYPES] }),
      detectPii(t, { normalized: n }),
      detectInjection(t, { source: 'tool-result', normalized: n }),
      detectInjection(t, { source: 'input' }),
      await detectSecrets(t, { normalized: n }),
      decodeRuns(t),
    ];
    hash.update(JSON.stringify(out));
    hash.update('\n');
  }
  return { texts: texts.length, sha256: hash.digest('hex') };
}
