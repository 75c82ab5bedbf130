/**
 * `npm run eval:detectors`: the detectors measured on the public labelled
 * corpus (`../shared/corpus`, or $WARDEN_CORPUS / --corpus DIR) — precision,
 * recall and F1 per type for PII, flagged rows per label for secrets, and
 * throughput; injection (as agent input) and indirect injection (in tool
 * results) at the detector's threshold: precision, recall, false-positive rate.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { corpusTexts, fingerprint, generatedTexts } from './eval/fingerprint.js';
import { evaluateInjection } from './eval/injection.js';
import { benignReport, evaluatePii } from './eval/pii.js';
import { evaluateSecrets } from './eval/secrets.js';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`Usage: npm run eval:detectors -- [--corpus DIR] [--json] [--fingerprint]

Measures Warden's detectors on the labelled corpus (default ../shared/corpus from the
repository, or $WARDEN_CORPUS): PII precision / recall / F1 per type (a prediction matches
a gold span of the same type covering >= 50 % of it; STREET_ADDRESS and PERSON, off by default,
also counted on the benign injection rows), secrets flagged per label, throughput.
  --corpus DIR   where injection.jsonl, pii.jsonl, secrets.jsonl … are
  --json         print one JSON document instead of tables
  --fingerprint  print only a SHA-256 over every detector's exact output on every corpus text
                 and 4,000 generated ones: equal on two builds = the same detectors (for speed work)
`);
  process.exit(0);
}
const at = args.indexOf('--corpus');
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const corpus = resolve(
  at >= 0 ? (args[at + 1] ?? '') : (process.env.WARDEN_CORPUS ?? resolve(repo, '../shared/corpus')),
);
if (!existsSync(resolve(corpus, 'pii.jsonl'))) {
  process.stderr.write(`eval:detectors: no corpus at ${corpus} (pii.jsonl missing); pass --corpus DIR\n`);
  process.exit(2);
}

if (args.includes('--fingerprint')) {
  const texts = [...corpusTexts(corpus), ...generatedTexts(4000)];
  const fp = await fingerprint(texts);
  process.stdout.write(
    args.includes('--json')
      ? `${JSON.stringify({ corpus, ...fp })}\n`
      : `${fp.sha256}  (${fp.texts} texts)\n`,
  );
  process.exit(0);
}

const pii = await evaluatePii(corpus);
const secrets = await evaluateSecrets(corpus);
const { injection, indirect } = await evaluateInjection(corpus);
const report = { corpus, pii, secrets, injection, indirect };
if (args.includes('--json')) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} else {
  const f = (x: number) => x.toFixed(3);
  const out: string[] = [];
  out.push(
    `corpus: ${corpus}`,
    '',
    `PII (pii.jsonl, ${pii.rows} rows, ${pii.throughputMBs.toFixed(1)} MB/s; ${pii.throughputAllTypesMBs.toFixed(1)} MB/s with STREET_ADDRESS and PERSON)`,
  );
  out.push('  type            tp    fp    fn  precision  recall     f1');
  for (const [type, s] of Object.entries(pii.perType)) {
    out.push(
      `  ${type.padEnd(14)}${String(s.tp).padStart(4)}  ${String(s.fp).padStart(4)}  ${String(s.fn).padStart(4)}  ${f(s.precision).padStart(9)}  ${f(s.recall).padStart(6)}  ${f(s.f1)}`,
    );
  }
  out.push(...benignReport(pii.benign, '  '));
  out.push(
    '',
    `Secrets (secrets.jsonl, ${secrets.rows} rows, ${secrets.throughputMBs.toFixed(1)} MB/s)`,
    `  label 1 flagged: ${secrets.flaggedPositives} / ${secrets.positives}${secrets.missed.length ? ` (missed: ${secrets.missed.join(', ')})` : ''}`,
    `  label 0 flagged: ${secrets.flaggedNegatives} / ${secrets.negatives}${secrets.falseAlarms.length ? ` (${secrets.falseAlarms.join(', ')}; same token as a label-1 row: ${secrets.contradictory.length})` : ''}`,
  );
  for (const [name, s] of [
    ['Injection (injection.jsonl, as agent input)', injection],
    ['Indirect injection (indirect.jsonl, as tool results)', indirect],
  ] as const) {
    out.push(
      '',
      `${name}: ${s.rows} rows, ${s.throughputMBs.toFixed(1)} MB/s`,
      `  precision ${f(s.precision)}  recall ${f(s.recall)}  f1 ${f(s.f1)}  false-positive rate ${f(s.falsePositiveRate)}  (tp ${s.tp} fp ${s.fp} fn ${s.fn} tn ${s.tn})`,
      `  literal prefilter: ${s.prefilterMismatches === 0 ? 'same result as running every rule on every row' : `CHANGED ${s.prefilterMismatches} rows (a rule's literals are not necessary: fix them)`}`,
    );
    if (s.prefilterMismatches > 0) process.exitCode = 1;
    const variants = Object.entries(s.perVariant).filter(([v]) => v !== '');
    for (const [variant, v] of variants.sort((a, b) => b[1].n - a[1].n)) {
      out.push(`  ${variant.padEnd(44)} ${String(v.detected).padStart(3)} / ${v.n}`);
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}
