/**
 * PII detector evaluation (issue #7) on the corpus's `pii.jsonl` (presidio-research synthetic sentences).
 *
 *   npx tsx scripts/eval/pii.ts        (corpus: $WARDEN_CORPUS, default ../shared/corpus from the repo)
 *
 * Matching rule: a predicted span matches a gold span of the same type when their overlap covers at
 * least 50 % of the gold span. Each gold span is matched at most once; a true positive is a matched gold
 * span, a false negative an unmatched one, a false positive a predicted span that matches no gold span
 * of its type. Only the types the detector claims are scored: the six default ones from a call without
 * `types` (what existing callers get), STREET_ADDRESS and PERSON from a call that asks for every type
 * (what an operator who enables them gets). Those two have no gold labels on the benign rows of
 * `injection.jsonl` and `indirect.jsonl`, so every finding there is counted and a few are shown.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { detectPii, type PiiType } from '../../src/inspect/index.js';
import { readJsonl } from './jsonl.js';

const TYPES: readonly PiiType[] = [
  'CREDIT_CARD',
  'EMAIL_ADDRESS',
  'PHONE_NUMBER',
  'IBAN_CODE',
  'US_SSN',
  'IP_ADDRESS',
];
/** Off by default in detectPii; scored from a call that asks for them. */
const EXTRA_TYPES: readonly PiiType[] = ['STREET_ADDRESS', 'PERSON'];
const ALL_TYPES: readonly PiiType[] = [...TYPES, ...EXTRA_TYPES];
/** How many benign findings of each extra type the report shows. */
const EXAMPLES = 8;

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

/** Findings of the extra types on texts with no PII labels (benign rows of the injection corpora). */
export interface BenignHits {
  rows: number;
  perType: Record<string, number>;
  examples: Array<{ file: string; id: string; type: string; text: string }>;
}

const overlap = (a: { start: number; end: number }, b: { start: number; end: number }) =>
  Math.max(0, Math.min(a.end, b.end) - Math.max(a.start, b.start));

/** Counts the extra types' findings on the label-0 rows of injection.jsonl and indirect.jsonl. */
async function benignHits(corpusDir: string): Promise<BenignHits> {
  const out: BenignHits = {
    rows: 0,
    perType: Object.fromEntries(EXTRA_TYPES.map((t) => [t, 0])),
    examples: [],
  };
  for (const file of ['injection.jsonl', 'indirect.jsonl']) {
    const rows = readJsonl<{ id: string; text: string; label: number }>(join(corpusDir, file));
    for (const row of rows) {
      if (row.label !== 0) continue;
      out.rows++;
      for (const f of detectPii(row.text, { types: EXTRA_TYPES })) {
        out.perType[f.type] = (out.perType[f.type] ?? 0) + 1;
        if (out.examples.filter((e) => e.type === f.type).length < EXAMPLES) {
          out.examples.push({ file, id: row.id, type: f.type, text: row.text.slice(f.start, f.end) });
        }
      }
    }
  }
  return out;
}

/** Scores detectPii on `<corpusDir>/pii.jsonl`; throughput is MB of UTF-8 text per second of detection. */
export async function evaluatePii(corpusDir: string): Promise<{
  rows: number;
  perType: Record<string, TypeScore>;
  throughputMBs: number;
  throughputAllTypesMBs: number;
  benign: BenignHits;
}> {
  const rows = readJsonl<Row>(join(corpusDir, 'pii.jsonl'));
  const counts = Object.fromEntries(ALL_TYPES.map((t) => [t, { tp: 0, fp: 0, fn: 0 }]));
  // Throughput: one untimed pass (the JIT warming up), then three timed passes over every row.
  const timed = (types?: readonly PiiType[]) => {
    for (const row of rows) detectPii(row.text, types ? { types } : {});
    const t0 = performance.now();
    for (let pass = 0; pass < 3; pass++) for (const row of rows) detectPii(row.text, types ? { types } : {});
    return performance.now() - t0;
  };
  const bytes = 3 * rows.reduce((sum, row) => sum + Buffer.byteLength(row.text), 0);
  const ms = timed();
  const msAll = timed(ALL_TYPES);
  for (const row of rows) {
    const byDefault = detectPii(row.text);
    const withExtra = detectPii(row.text, { types: ALL_TYPES });
    for (const type of ALL_TYPES) {
      const c = counts[type]!;
      const gold = row.spans.filter((s) => s.type === type);
      const mine = (EXTRA_TYPES.includes(type) ? withExtra : byDefault).filter((p) => p.type === type);
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
  for (const type of ALL_TYPES) {
    const { tp, fp, fn } = counts[type]!;
    const precision = tp + fp === 0 ? 1 : tp / (tp + fp);
    const recall = tp + fn === 0 ? 1 : tp / (tp + fn);
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    perType[type] = { tp, fp, fn, precision, recall, f1 };
  }
  return {
    rows: rows.length,
    perType,
    throughputMBs: bytes / 1e6 / (ms / 1000),
    throughputAllTypesMBs: bytes / 1e6 / (msAll / 1000),
    benign: await benignHits(corpusDir),
  };
}

/** The benign-text lines of the report, shared with scripts/eval-detectors.ts. */
export function benignReport(b: BenignHits, indent = ''): string[] {
  const counts = EXTRA_TYPES.map((t) => `${t} ${b.perType[t] ?? 0}`).join(', ');
  return [
    `${indent}off-by-default types on ${b.rows} benign rows (injection.jsonl + indirect.jsonl, label 0): ${counts}`,
    ...b.examples.map((e) => `${indent}  ${e.type.padEnd(14)} ${e.id}: ${JSON.stringify(e.text)}`),
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const dir = process.env['WARDEN_CORPUS'] ?? resolve(repo, '../shared/corpus');
  const r = await evaluatePii(dir);
  const f = (x: number) => x.toFixed(3);
  console.log(
    `pii.jsonl: ${r.rows} rows, ${r.throughputMBs.toFixed(1)} MB/s (${r.throughputAllTypesMBs.toFixed(1)} MB/s with every type)`,
  );
  console.log('type            tp   fp   fn  precision  recall  f1');
  for (const [type, s] of Object.entries(r.perType)) {
    console.log(
      `${type.padEnd(14)} ${String(s.tp).padStart(4)} ${String(s.fp).padStart(4)} ${String(s.fn).padStart(4)}  ${f(s.precision).padStart(9)}  ${f(s.recall).padStart(6)}  ${f(s.f1)}`,
    );
  }
  for (const line of benignReport(r.benign)) console.log(line);
}
