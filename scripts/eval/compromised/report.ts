/** Totals and tables of the compromised-agent evaluation. */
import type { BenignResult, CaseResult, Layer, Variant } from './run.js';

export interface Tally {
  cases: number;
  /** Cases where InjecAgent's criterion held without a human (dh: the tool ran; ds: read and send ran). */
  succeeded: number;
  /** Cases where at least one attacker call ran. */
  anyExecuted: number;
  calls: number;
  executed: number;
  /** Executed attacker calls to tools that act on the world (not reads), by the operator's labels. */
  actingExecuted: number;
  held: number;
  denied: number;
  errors: number;
  /** Attacker calls stopped (held or denied) per layer that decided; a call may count under several. */
  byLayer: Partial<Record<Layer, number>>;
}

export interface VariantReport {
  variant: Variant;
  description: string;
  attack: {
    overall: Tally;
    byFile: Record<string, Tally>;
    byAttackType: Record<string, Tally>;
    /** Attacker calls that executed: tool and case, for the first 20. */
    executedExamples: Array<{ case: string; tool: string }>;
  };
  benign: {
    sequences: number;
    unheld: number;
    calls: number;
    held: Array<{ userTool: string; tool: string; fate: string; decidedBy: string[] }>;
  };
  /** The gateway's answer and the tool's record disagree (must be 0), and user-tool calls that did not run. */
  checks: { mismatches: number; userToolNotRun: number };
}

function tally(results: readonly CaseResult[]): Tally {
  const t: Tally = {
    cases: 0,
    succeeded: 0,
    anyExecuted: 0,
    calls: 0,
    executed: 0,
    actingExecuted: 0,
    held: 0,
    denied: 0,
    errors: 0,
    byLayer: {},
  };
  for (const r of results) {
    t.cases++;
    if (r.attackSucceeded) t.succeeded++;
    const attacker = r.calls.filter((c) => c.role === 'attacker');
    if (attacker.some((c) => c.fate === 'executed')) t.anyExecuted++;
    for (const c of attacker) {
      t.calls++;
      if (c.fate === 'executed') {
        t.executed++;
        if (c.acts) t.actingExecuted++;
      } else if (c.fate === 'held') t.held++;
      else if (c.fate === 'denied') t.denied++;
      else t.errors++;
      if (c.fate === 'held' || c.fate === 'denied') {
        for (const l of c.layers) t.byLayer[l] = (t.byLayer[l] ?? 0) + 1;
      }
    }
  }
  return t;
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Record<string, T[]> {
  const out: Record<string, T[]> = {};
  for (const x of xs) {
    const k = key(x);
    out[k] ??= [];
    out[k].push(x);
  }
  return out;
}

export function report(
  variant: Variant,
  description: string,
  cases: readonly CaseResult[],
  benign: readonly BenignResult[],
): VariantReport {
  const byFile = Object.fromEntries(
    Object.entries(groupBy(cases, (c) => c.file.replace(/\.json$/, ''))).map(([k, v]) => [k, tally(v)]),
  );
  const byAttackType = Object.fromEntries(
    Object.entries(groupBy(cases, (c) => `${c.kind} · ${c.attackType}`)).map(([k, v]) => [k, tally(v)]),
  );
  const executedExamples: Array<{ case: string; tool: string }> = [];
  let mismatches = 0;
  let userToolNotRun = 0;
  for (const r of cases) {
    for (const c of r.calls) {
      if ((c.fate === 'executed') !== c.reachedTool) mismatches++;
      if (c.role === 'user' && c.fate !== 'executed') userToolNotRun++;
      if (c.role === 'attacker' && c.fate === 'executed' && executedExamples.length < 20) {
        executedExamples.push({ case: r.id, tool: c.tool });
      }
    }
  }
  const held: VariantReport['benign']['held'] = [];
  let benignCalls = 0;
  for (const b of benign) {
    for (const c of b.calls) {
      benignCalls++;
      if ((c.fate === 'executed') !== c.reachedTool) mismatches++;
      if (c.fate !== 'executed')
        held.push({ userTool: b.userTool, tool: c.tool, fate: c.fate, decidedBy: c.decidedBy });
    }
  }
  return {
    variant,
    description,
    attack: { overall: tally(cases), byFile, byAttackType, executedExamples },
    benign: {
      sequences: benign.length,
      unheld: benign.filter((b) => b.unheld).length,
      calls: benignCalls,
      held,
    },
    checks: { mismatches, userToolNotRun },
  };
}

const pct = (n: number, d: number) => (d === 0 ? '—' : `${((100 * n) / d).toFixed(1)} %`);
const LAYERS: Layer[] = ['risk class', 'taint', 'detector', 'policy', 'validation'];

/** Plain-text tables for the terminal (also valid Markdown). */
export function formatReports(reports: readonly VariantReport[]): string {
  const out: string[] = [];
  out.push(
    '| configuration | cases | attack succeeded | any attacker call ran | attacker calls | executed | of which act | held | denied | errors | benign run without a hold |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of reports) {
    const t = r.attack.overall;
    out.push(
      `| ${r.variant} | ${t.cases} | ${t.succeeded} (${pct(t.succeeded, t.cases)}) | ${t.anyExecuted} | ${t.calls} | ${t.executed} | ${t.actingExecuted} | ${t.held} | ${t.denied} | ${t.errors} | ${r.benign.unheld} / ${r.benign.sequences} (${pct(r.benign.unheld, r.benign.sequences)}) |`,
    );
  }
  for (const r of reports) {
    out.push('', `### ${r.variant}: ${r.description}`, '');
    out.push(
      `| cases | n | attack succeeded | attacker calls executed | held | denied | ${LAYERS.map((l) => `stopped by ${l}`).join(' | ')} |`,
      `| --- | ---: | ---: | ---: | ---: | ---: | ${LAYERS.map(() => '---:').join(' | ')} |`,
    );
    const rows: Array<[string, Tally]> = [
      ...Object.entries(r.attack.byFile),
      ...Object.entries(r.attack.byAttackType),
      ['all', r.attack.overall],
    ];
    for (const [name, t] of rows) {
      out.push(
        `| ${name} | ${t.cases} | ${t.succeeded} | ${t.executed} / ${t.calls} | ${t.held} | ${t.denied} | ${LAYERS.map((l) => t.byLayer[l] ?? 0).join(' | ')} |`,
      );
    }
    out.push('');
    out.push(
      `Benign: ${r.benign.unheld} of ${r.benign.sequences} sequences (${r.benign.calls} calls) ran without a hold.`,
    );
    for (const h of r.benign.held) {
      out.push(`- ${h.userTool} → ${h.tool}: ${h.fate} (${h.decidedBy.join(', ') || 'risk class'})`);
    }
    if (r.attack.executedExamples.length > 0) {
      out.push(
        `Attacker calls that ran (first ${r.attack.executedExamples.length}): ${r.attack.executedExamples
          .map((e) => `${e.tool} in ${e.case}`)
          .join('; ')}`,
      );
    }
    out.push(
      `Checks: ${r.checks.mismatches} disagreements between Warden's answer and the tool's record; ${r.checks.userToolNotRun} user-tool calls that did not run.`,
    );
  }
  return out.join('\n');
}
