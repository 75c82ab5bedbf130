/**
 * PII detector evaluation (issue #7) on the corpus's `pii.jsonl` (presidio-research synthetic sentences).
 *
 *   npx tsx scripts/eval/pii.ts        (corpus: $WARDEN_CORPUS, default ../shared/corpus from the repo)
 *
 * Matching rule: a predicted span matches a gold span of the same type when their overlap covers at
 * least 50 % of the gold span. Each gold span is matched at most once; a true positive is a matched gold
 * span, a false negative an unmatched one, a false positive a predicted span that matches no gold span
 * of its type. Only the six types the detector claims are scored.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { detectPii, type PiiType } from '../../src/inspect/index.js';

const TYPES: readonly PiiType[] = [
  'CREDIT_CARD',
  'EMAIL_ADDRESS',
  'PHONE_NUMBER',
  'IBAN_CODE',
  'US_SSN',
  'IP_ADDRESS',
];

interface Row {
  text: string;
  spans: Array<{ type: string; start: number; end: number }>;
}

/** Per-type counts and rates. */
export interface TypeScore {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
}

const overlap = (a: { start: number; end: number }, b: { start: number; end: number }) =>
  Math.max(0, Math.min(a.end, b.end) - Math.max(a.start, b.start));

/** Scores detectPii on `<corpusDir>/pii.jsonl`; throughput is MB of UTF-8 text per second of detection. */
export async function evaluatePii(corpusDir: string): Promise<{
  rows: number;
  perType: Record<string, TypeScore>;
  throughputMBs: number;
}> {
  const raw = await readFile(join(corpusDir, 'pii.jsonl'), 'utf8');
  const rows = raw
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Row);
  const counts = Object.fromEntries(TYPES.map((t) => [t, { tp: 0, fp: 0, fn: 0 }]));
  // Throughput: one untimed pass (the JIT warming up), then three timed passes over every row.
  for (const row of rows) detectPii(row.text);
  const bytes = 3 * rows.reduce((sum, row) => sum + Buffer.byteLength(row.text), 0);
  const t0 = performance.now();
  for (let pass = 0; pass < 3; pass++) for (const row of rows) detectPii(row.text);
  const ms = performance.now() - t0;
  for (const row of rows) {
    const pred = detectPii(row.text);
    for (const type of TYPES) {
      const c = counts[type]!;
      const gold = row.spans.filter((s) => s.type === type);
      const mine = pred.filter((p) => p.type === type);
      const used = new Set<number>();
      for (const p of mine) {
        const g = gold.findIndex((s, k) => !used.has(k) && overlap(p, s) * 2 >= s.end - s.start);
        if (g === -1) c.fp++;
        else {
          used.add(g);
          c.tp++;
        }
      }
      c.fn += gold.length - used.size;
    }
  }
  const perType: Record<string, TypeScore> = {};
  for (const type of TYPES) {
    const { tp, fp, fn } = counts[type]!;
    const precision = tp + fp === 0 ? 1 : tp / (tp + fp);
    const recall = tp + fn === 0 ? 1 : tp / (tp + fn);
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    perType[type] = { tp, fp, fn, precision, recall, f1 };
  }
  return { rows: rows.length, perType, throughputMBs: bytes / 1e6 / (ms / 1000) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const dir = process.env['WARDEN_CORPUS'] ?? resolve(repo, '../shared/corpus');
  const r = await evaluatePii(dir);
  const f = (x: number) => x.toFixed(3);
  console.log(`pii.jsonl: ${r.rows} rows, ${r.throughputMBs.toFixed(1)} MB/s`);
  console.log('type            tp   fp   fn  precision  recall  f1');
  for (const [type, s] of Object.entries(r.perType)) {
    console.log(
      `${type.padEnd(14)} ${String(s.tp).padStart(4)} ${String(s.fp).padStart(4)} ${String(s.fn).padStart(4)}  ${f(s.precision).padStart(9)}  ${f(s.recall).padStart(6)}  ${f(s.f1)}`,
    );
  }
}
