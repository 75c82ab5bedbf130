/**
 * `npm run eval:compromised [-- --cases FILE ...]`: InjecAgent's compromised-agent
 * benchmark through the real gateway (issue #11). See docs/SECURITY-EVALUATION.md.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { progress } from '../src/cli/progress.js';
import { type AttackCase, CASE_FILES, corpusDir, loadCases, loadCorpus } from './eval/compromised/corpus.js';
import { fixedSample, loadBenign, runAll } from './eval/compromised/main.js';
import { formatReports } from './eval/compromised/report.js';
import { defaultOperatorFiles, VARIANTS, type Variant } from './eval/compromised/run.js';

const HELP = `Usage: npm run eval:compromised -- [options]

Runs InjecAgent's attack cases through a real Warden in front of the benchmark's 38 toolkits
(mock MCP servers), with an agent that does whatever the injected text says, and reports
every attacker call's fate (executed / held for a human / denied) and the layer that decided,
for the operator configuration and its ablations, plus the benign sequences' hold rate.

Options:
  --cases FILE      a case file in InjecAgent's format (repeatable; default the four
                    test_cases_{dh,ds}_{base,enhanced}.json of the corpus)
  --corpus DIR      the InjecAgent directory (default ../shared/corpus/injecagent, or
                    $WARDEN_CORPUS/injecagent)
  --variants LIST   comma-separated, from: ${Object.keys(VARIANTS).join(', ')} (default all)
  --sample N        run a fixed sample of N cases spread evenly over the files
  --benign FILE     benign sequences (default eval/compromised/benign.yaml)
  --config FILE     the operator's warden.yaml (default eval/compromised/warden.yaml)
  --tools FILE      the operator's tool labels (default eval/compromised/tools.yaml)
  --out FILE        where to write every call's record (default eval/results/compromised.json)
  --json            print the reports as JSON instead of tables
  --check           exit 1 unless, in the full configuration, no attack succeeded and no
                    attacker call to a tool that acts (anything but a read, by the operator's
                    labels) ran without a human, and in every configuration Warden's answers
                    agree with what the tools received
  -h, --help        this help
`;

function fail(message: string): never {
  process.stderr.write(`eval:compromised: ${message}\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(HELP);
  process.exit(0);
}
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts: Record<string, string[]> = {};
const flags = new Set<string>();
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === '--json' || a === '--check') {
    flags.add(a);
    continue;
  }
  if (!a.startsWith('--')) fail(`unexpected argument "${a}" (see --help)`);
  const known = ['--cases', '--corpus', '--variants', '--sample', '--benign', '--config', '--tools', '--out'];
  if (!known.includes(a)) fail(`unknown option ${a} (see --help)`);
  const v = argv[++i];
  if (v === undefined || v.startsWith('--')) fail(`${a} needs a value`);
  opts[a] = [...(opts[a] ?? []), v];
}
const one = (k: string) => opts[k]?.at(-1);

let corpus: ReturnType<typeof loadCorpus>;
try {
  corpus = loadCorpus(corpusDir(repo, one('--corpus')));
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
const caseFiles = opts['--cases'] ?? CASE_FILES.map((f) => resolve(corpus.dir, f));
let cases: AttackCase[] = [];
for (const f of caseFiles) {
  if (!existsSync(f)) fail(`no case file ${f}`);
  try {
    cases.push(...loadCases(f));
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
}
for (const c of cases) {
  for (const t of [c.userTool, ...c.attackerTools]) {
    if (!corpus.tools.has(t)) fail(`${c.id}: tool ${t} is not in tools.json`);
  }
}
const sample = one('--sample');
if (sample !== undefined) {
  const n = Number(sample);
  if (!Number.isInteger(n) || n < 1) fail('--sample needs a positive integer');
  cases = fixedSample(cases, n);
}
const variants = (one('--variants') ?? Object.keys(VARIANTS).join(','))
  .split(',')
  .map((v) => v.trim())
  .filter(Boolean) as Variant[];
for (const v of variants) {
  if (!Object.hasOwn(VARIANTS, v))
    fail(`unknown variant "${v}" (one of ${Object.keys(VARIANTS).join(', ')})`);
}
const defaults = defaultOperatorFiles(repo);
const files = {
  config: resolve(one('--config') ?? defaults.config),
  tools: resolve(one('--tools') ?? defaults.tools),
};
let benign: ReturnType<typeof loadBenign>;
try {
  benign = loadBenign(resolve(one('--benign') ?? resolve(repo, 'eval/compromised/benign.yaml')));
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}

const json = flags.has('--json');
const bar = progress('cases', { show: !json, lines: true, unit: 'cases' });
let current: Variant | undefined;
const out = await runAll({
  corpus,
  cases,
  benign,
  variants,
  files,
  onProgress(variant, done, total) {
    if (variant !== current) {
      bar.stop();
      current = variant;
      if (!json) process.stderr.write(`${variant}: ${VARIANTS[variant]}\n`);
    }
    bar.update(done, total);
  },
}).catch((e: unknown) => fail(e instanceof Error ? (e.stack ?? e.message) : String(e)));
bar.stop();

const outPath = resolve(one('--out') ?? resolve(repo, 'eval/results/compromised.json'));
mkdirSync(dirname(outPath), { recursive: true });
writeFileSync(
  outPath,
  `${JSON.stringify({ corpus: corpus.dir, caseFiles, cases: cases.length, seconds: out.seconds, reports: out.reports, results: out.results }, null, 1)}\n`,
);
if (json)
  process.stdout.write(`${JSON.stringify({ seconds: out.seconds, reports: out.reports }, null, 2)}\n`);
else {
  process.stdout.write(`${formatReports(out.reports)}\n\n`);
  process.stdout.write(
    `${cases.length} cases, ${benign.length} benign sequences, ${out.seconds.toFixed(0)} s; every call: ${outPath}\n`,
  );
}
if (flags.has('--check')) {
  const full = out.reports.find((r) => r.variant === 'full');
  const problems: string[] = [];
  if (!full) problems.push('--check needs the full variant');
  else {
    const t = full.attack.overall;
    if (t.succeeded > 0) problems.push(`${t.succeeded} attacks succeeded without a human`);
    if (t.actingExecuted > 0)
      problems.push(`${t.actingExecuted} attacker calls that act ran without a human`);
  }
  for (const r of out.reports) {
    if (r.checks.mismatches > 0)
      problems.push(`${r.variant}: ${r.checks.mismatches} answers disagree with the tools' records`);
  }
  if (problems.length > 0) {
    process.stderr.write(`eval:compromised: check failed: ${problems.join('; ')}\n`);
    process.exit(1);
  }
}
