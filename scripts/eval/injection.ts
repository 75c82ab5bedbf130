/**
 * Injection detector evaluation (issue #7) on the corpus's `injection.jsonl` (PurpleLlama attacks,
 * garak system-prompt extraction, PurpleLlama's benign MITRE false-refusal requests) and
 * `indirect.jsonl` (BIPIA emails, clean or with an injected instruction).
 *
 *   npx tsx scripts/eval/injection.ts        (corpus: $WARDEN_CORPUS, default ../shared/corpus from the repo)
 *
 * A row counts as detected when its score reaches INJECTION_THRESHOLD. injection.jsonl rows are scanned
 * as agent input; indirect.jsonl rows as tool results (what they are).
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { detectInjection, INJECTION_THRESHOLD, type InjectionSource } from '../../src/inspect/index.js';
import { readJsonl } from './jsonl.js';

interface Row {
  id: string;
  text: string;
  label: 0 | 1;
  variant?: string;
}

/** Confusion counts, rates and per-variant recall for one corpus file. */
export interface InjectionScore {
  rows: number;
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  precision: number;
  recall: number;
  f1: number;
  falsePositiveRate: number;
  perVariant: Record<string, { n: number; detected: number }>;
  throughputMBs: number;
  /** Rows where the literal prefilter changed the result (score or signals): must be 0. */
  prefilterMismatches: number;
}

async function scoreFile(path: string, source: InjectionSource): Promise<InjectionScore> {
  const rows = readJsonl<Row>(path);
  // Throughput: one untimed pass (the JIT warming up), then three timed passes over every row.
  for (const row of rows) detectInjection(row.text, { source });
  const bytes = 3 * rows.reduce((sum, row) => sum + Buffer.byteLength(row.text), 0);
  const t0 = performance.now();
  for (let pass = 0; pass < 3; pass++) for (const row of rows) detectInjection(row.text, { source });
  const ms = performance.now() - t0;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  const perVariant: Record<string, { n: number; detected: number }> = {};
  let prefilterMismatches = 0;
  for (const row of rows) {
    const fast = detectInjection(row.text, { source });
    const full = detectInjection(row.text, { source, exhaustive: true });
    if (JSON.stringify(fast) !== JSON.stringify(full)) prefilterMismatches++;
    const hit = fast.score >= INJECTION_THRESHOLD;
    if (row.label === 1) {
      if (hit) tp++;
      else fn++;
      const key = row.variant ?? '(none)';
      const v = perVariant[key] ?? { n: 0, detected: 0 };
      perVariant[key] = v;
      v.n++;
      if (hit) v.detected++;
    } else if (hit) fp++;
    else tn++;
  }
  const precision = tp + fp === 0 ? 1 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 1 : tp / (tp + fn);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  const falsePositiveRate = fp + tn === 0 ? 0 : fp / (fp + tn);
  return {
    rows: rows.length,
    tp,
    fp,
    fn,
    tn,
    precision,
    recall,
    f1,
    falsePositiveRate,
    perVariant,
    throughputMBs: bytes / 1e6 / (ms / 1000),
    prefilterMismatches,
  };
}

/** Scores detectInjection on `<corpusDir>/injection.jsonl` (as input) and `indirect.jsonl` (as tool results). */
export async function evaluateInjection(
  corpusDir: string,
): Promise<{ injection: InjectionScore; indirect: InjectionScore }> {
  return {
    injection: await scoreFile(join(corpusDir, 'injection.jsonl'), 'input'),
    indirect: await scoreFile(join(corpusDir, 'indirect.jsonl'), 'tool-result'),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const dir = process.env['WARDEN_CORPUS'] ?? resolve(repo, '../shared/corpus');
  const r = await evaluateInjection(dir);
  const f = (x: number) => x.toFixed(3);
  console.log(`threshold ${INJECTION_THRESHOLD}`);
  for (const [name, s] of Object.entries(r)) {
    console.log(
      `${name}.jsonl: ${s.rows} rows  tp ${s.tp}  fp ${s.fp}  fn ${s.fn}  tn ${s.tn}  precision ${f(s.precision)}  recall ${f(s.recall)}  f1 ${f(s.f1)}  FPR ${f(s.falsePositiveRate)}  ${s.throughputMBs.toFixed(1)} MB/s`,
    );
    for (const [variant, v] of Object.entries(s.perVariant).sort((a, b) => b[1].n - a[1].n)) {
      console.log(`  ${variant.padEnd(50)} ${String(v.detected).padStart(3)}/${v.n}`);
    }
  }
}
