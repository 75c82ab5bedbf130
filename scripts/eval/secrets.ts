/**
 * Measures `detectSecrets` on the labelled secrets corpus (issue #7): a row counts as flagged when at
 * least one finding comes back; the target is every label-1 row flagged and no label-0 row.
 * Run: `npx tsx scripts/eval/secrets.ts` (corpus from $WARDEN_CORPUS, else ../shared/corpus).
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { detectSecrets } from '../../src/inspect/secrets.js';
import { readJsonl } from './jsonl.js';

interface Row {
  id: string;
  text: string;
  label: 0 | 1;
  rule: string;
}

/** The result of one evaluation run. */
export interface SecretsEvaluation {
  rows: number;
  flaggedPositives: number;
  positives: number;
  flaggedNegatives: number;
  negatives: number;
  /** Label-1 rows with no finding. */
  missed: string[];
  /** Label-0 rows with a finding. */
  falseAlarms: string[];
  /**
   * Label-0 rows whose every long token (≥ 20 characters) also appears in a label-1 row: upstream
   * fixtures that differ only in rule
   * options (`allows`, `enableIDScanRule: false`), which no single configuration can satisfy both ways.
   */
  contradictory: string[];
  /** Corpus megabytes (UTF-8) per second of detectSecrets, after one warm-up pass. */
  throughputMBs: number;
}

/** Loads the corpus rows. */
function load(corpusDir: string): Row[] {
  return readJsonl<Row>(join(corpusDir, 'secrets.jsonl'));
}

/** Runs detectSecrets over `<corpusDir>/secrets.jsonl` and counts hits per label. */
export async function evaluateSecrets(corpusDir: string): Promise<SecretsEvaluation> {
  const rows = load(corpusDir);
  const positiveTexts = rows.filter((r) => r.label === 1).map((r) => r.text);
  const result: SecretsEvaluation = {
    rows: rows.length,
    flaggedPositives: 0,
    positives: 0,
    flaggedNegatives: 0,
    negatives: 0,
    missed: [],
    falseAlarms: [],
    contradictory: rows
      .filter((r) => {
        const tokens = r.text.split(/[\s='"]+/).filter((t) => t.length >= 20);
        return (
          r.label === 0 && tokens.length > 0 && tokens.every((t) => positiveTexts.some((p) => p.includes(t)))
        );
      })
      .map((r) => r.id),
    throughputMBs: 0,
  };
  for (const row of rows) await detectSecrets(row.text); // warm-up: JIT and the lazily built rules
  const bytes = rows.reduce((n, r) => n + Buffer.byteLength(r.text), 0);
  const passes = 20;
  const t0 = performance.now();
  for (let i = 0; i < passes; i++) for (const row of rows) await detectSecrets(row.text);
  const seconds = (performance.now() - t0) / 1000;
  result.throughputMBs = Math.round(((bytes * passes) / 1e6 / seconds) * 100) / 100;
  for (const row of rows) {
    const flagged = (await detectSecrets(row.text)).length > 0;
    if (row.label === 1) {
      result.positives++;
      if (flagged) result.flaggedPositives++;
      else result.missed.push(row.id);
    } else {
      result.negatives++;
      if (flagged) {
        result.flaggedNegatives++;
        result.falseAlarms.push(row.id);
      }
    }
  }
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const corpusDir = process.env['WARDEN_CORPUS'] ?? resolve(repoRoot, '../shared/corpus');
  const r = await evaluateSecrets(corpusDir);
  console.log(JSON.stringify(r, null, 2));
  console.log(
    `recall ${r.flaggedPositives}/${r.positives}, false alarms ${r.flaggedNegatives}/${r.negatives}` +
      ` (${r.contradictory.length} contradictory), ${r.throughputMBs} MB/s`,
  );
}
