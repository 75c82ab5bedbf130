/**
 * Each detector on the worst 100 KB input found for it (issue #7, "Bad input"): long runs of what its
 * patterns key on, random UTF-16, an override verb followed by apostrophes (which once backtracked
 * exponentially: 40 of them took 6.6 s). Every scan is meant to be linear, so these rows should stay
 * within a small factor of the ordinary-text rows; a regex that starts backtracking shows up here as a
 * number, and src/inspect/adversarial.test.ts checks the same inputs for correctness.
 */
import {
  decodeRuns,
  detectInjection,
  detectPii,
  detectSecrets,
  inspectText,
  normalize,
} from '../../src/inspect/index.js';
import { type BenchContext, type MicroResult, median, run, sig, usRow } from './harness.js';

const G = 'inspect';
const SIZE = 100 * 1024;

const fill = (unit: string) => unit.repeat(Math.ceil(SIZE / unit.length)).slice(0, SIZE);

/** Random UTF-16 code units (lone surrogates included), from a fixed xorshift32 seed. */
function randomUnits(): string {
  const units = new Uint16Array(SIZE);
  let x = 7;
  for (let i = 0; i < SIZE; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    units[i] = x & 0xffff;
  }
  let s = '';
  for (let i = 0; i < SIZE; i += 8192) s += String.fromCharCode(...units.subarray(i, i + 8192));
  return s;
}

/** The worst inputs found (measured over ~80 candidates); the label says what each is. */
const INPUTS = {
  randomUnits: { label: 'random UTF-16 units', text: randomUnits() },
  tokens: { label: '30-letter tokens (each a base64 candidate)', text: fill(`${'a'.repeat(30)} `) },
  imageOpeners: { label: "'![' repeated (markdown-image rule)", text: fill('![') },
  apostrophes: { label: "'ignore' then 100 K apostrophes", text: `ignore ${fill("'").slice(7)}` },
  sendgrid: { label: "'SG.a.' + 300 word characters, repeated", text: fill(`SG.a.${'a'.repeat(300)} `) },
  pemBegins: { label: 'BEGIN PRIVATE KEY lines without END', text: fill('-----BEGIN PRIVATE KEY-----\n') },
};

/** The adversarial rows of the inspect group. */
export async function adversarialBench(ctx: BenchContext): Promise<MicroResult[]> {
  const injection = (s: string) => detectInjection(s, { source: 'tool-result' });
  // A detector's first row is its worst input; a second row, named by its input, keeps a fixed
  // regression in view.
  const cases: Array<{
    name: string;
    input: keyof typeof INPUTS;
    op: (s: string) => unknown;
    also?: string;
  }> = [
    { name: 'normalize', input: 'randomUnits', op: (s) => normalize(s) },
    { name: 'decodeRuns', input: 'tokens', op: (s) => decodeRuns(s) },
    { name: 'detectPii', input: 'randomUnits', op: (s) => detectPii(s) },
    { name: 'detectInjection', input: 'imageOpeners', op: injection },
    { name: 'detectInjection', input: 'apostrophes', op: injection, also: 'apostrophes' },
    { name: 'detectSecrets', input: 'sendgrid', op: (s) => detectSecrets(s) },
    { name: 'detectSecrets', input: 'pemBegins', op: (s) => detectSecrets(s), also: 'BEGIN lines' },
    { name: 'inspectText', input: 'imageOpeners', op: (s) => inspectText(s, { source: 'tool-result' }) },
  ];
  const rows: MicroResult[] = [];
  for (const c of cases) {
    const { label, text } = INPUTS[c.input];
    const name = `adversarial ${c.name} 100 KB${c.also ? ` (${c.also})` : ''}`;
    ctx.progress(`inspect: ${name}`);
    const m = await run(() => c.op(text), ctx.timing);
    const mbps = sig(Buffer.byteLength(text) / median(m.usPerOp));
    rows.push(usRow(G, name, m, `${label}; ${mbps} MB/s of UTF-8 input`));
  }
  return rows;
}
