/** Runs the evaluation over cases and variants; shared by the CLI and the CI test. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { type AttackCase, type Corpus, userContacts } from './corpus.js';
import { report, type VariantReport } from './report.js';
import {
  type BenignResult,
  type BenignSequence,
  type CaseResult,
  type OperatorFiles,
  startEvaluation,
  startMockUpstreams,
  VARIANTS,
  type Variant,
} from './run.js';

/** `n` cases spread evenly over each file (a fixed sample: the same cases every run). */
export function fixedSample(cases: readonly AttackCase[], n: number): AttackCase[] {
  const byFile = new Map<string, AttackCase[]>();
  for (const c of cases) {
    const list = byFile.get(c.file) ?? [];
    list.push(c);
    byFile.set(c.file, list);
  }
  const files = [...byFile.values()];
  const out: AttackCase[] = [];
  files.forEach((list, i) => {
    // Spread the remainder over the first files.
    const want = Math.min(list.length, Math.floor(n / files.length) + (i < n % files.length ? 1 : 0));
    for (let k = 0; k < want; k++) out.push(list[Math.floor((k * list.length) / want)]!);
  });
  return out;
}

export function loadBenign(path: string): BenignSequence[] {
  const raw = parseYaml(readFileSync(path, 'utf8')) as unknown;
  if (!Array.isArray(raw)) throw new Error(`${path}: expected a list of sequences`);
  return raw.map((s, i) => {
    const at = `${path}[${i}]`;
    const o = s as Record<string, unknown>;
    if (typeof o['userTool'] !== 'string' || typeof o['response'] !== 'string') {
      throw new Error(`${at}: userTool and response must be strings`);
    }
    const args = o['arguments'];
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw new Error(`${at}: arguments must be a mapping`);
    }
    const followUps = (o['followUps'] ?? []) as unknown[];
    if (!Array.isArray(followUps)) throw new Error(`${at}: followUps must be a list`);
    return {
      userTool: o['userTool'],
      instruction: typeof o['instruction'] === 'string' ? o['instruction'] : '',
      arguments: args as Record<string, unknown>,
      response: o['response'].trim(),
      followUps: followUps.map((f, j) => {
        const g = f as Record<string, unknown>;
        const fa = g['arguments'];
        if (typeof g['tool'] !== 'string' || fa === null || typeof fa !== 'object' || Array.isArray(fa)) {
          throw new Error(`${at}.followUps[${j}]: tool (a string) and arguments (a mapping) are required`);
        }
        return {
          tool: g['tool'],
          arguments: fa as Record<string, unknown>,
          ...(typeof g['response'] === 'string' ? { response: g['response'].trim() } : {}),
        };
      }),
    };
  });
}

export interface RunOptions {
  corpus: Corpus;
  cases: readonly AttackCase[];
  benign: readonly BenignSequence[];
  variants: readonly Variant[];
  files: OperatorFiles;
  onProgress?: (variant: Variant, done: number, total: number) => void;
}

export interface RunOutput {
  reports: VariantReport[];
  results: Record<string, { cases: CaseResult[]; benign: BenignResult[] }>;
  seconds: number;
}

export async function runAll(opts: RunOptions): Promise<RunOutput> {
  const started = Date.now();
  const mock = await startMockUpstreams(opts.corpus);
  const reports: VariantReport[] = [];
  const results: RunOutput['results'] = {};
  try {
    for (const variant of opts.variants) {
      const ev = await startEvaluation({
        corpus: opts.corpus,
        mock,
        variant,
        files: opts.files,
        contacts: userContacts(opts.corpus.dir),
      });
      const cases: CaseResult[] = [];
      const benign: BenignResult[] = [];
      const total = opts.cases.length + opts.benign.length;
      try {
        for (const c of opts.cases) {
          cases.push(await ev.runCase(c));
          opts.onProgress?.(variant, cases.length, total);
        }
        for (const s of opts.benign) {
          benign.push(await ev.runBenign(s));
          opts.onProgress?.(variant, cases.length + benign.length, total);
        }
      } finally {
        await ev.close();
      }
      results[variant] = { cases, benign };
      reports.push(report(variant, VARIANTS[variant], cases, benign));
    }
  } finally {
    await mock.close();
  }
  return { reports, results, seconds: (Date.now() - started) / 1000 };
}
