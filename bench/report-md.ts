/**
 * Render a results file (default bench/results/latest.json) as the Markdown
 * tables docs/BENCHMARKS.md carries, so the document is regenerated, not retyped.
 * Run: `npx tsx bench/report-md.ts [FILE]`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MacroCell as Cell, Spread } from './results.js';

interface Micro {
  group: string;
  name: string;
  unit: string;
  value: number;
  spread: [number, number];
  p50Us?: number;
  p99Us?: number;
  note?: string;
}

if (process.argv[2] === '--help' || process.argv[2] === '-h') {
  process.stdout.write(
    'Usage: npx tsx bench/report-md.ts [RESULTS.json]  (default bench/results/latest.json)\n',
  );
  process.exit(0);
}
const file = process.argv[2] ?? join(import.meta.dirname, 'results', 'latest.json');
const r = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const out: string[] = [];
const m = r['machine'] as { cpus: number; model: string; node: string; platform: string };
const s = r['settings'] as { rounds: number; durationMs: number; warmupMs: number; warmMs?: number };
out.push(
  `Run ${String(r['startedAt']).slice(0, 16).replace('T', ' ')} UTC on ${m.cpus} × ${m.model} (${m.platform}), Node ${m.node}; ${s.warmMs ? `each server loaded for ${s.warmMs / 1000} s first, then ` : ''}${s.rounds} rounds of ${s.durationMs / 1000} s after ${s.warmupMs / 1000} s warm-up.`,
  '',
);
const cells = (r['macro'] as Cell[] | undefined) ?? [];
if (cells.length > 0) {
  out.push(
    '| cfg | sessions | result | calls/s (median) | spread | p50 ms | p99 ms | p99.9 ms | server CPU ms / 1,000 calls |',
    '| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
  );
  for (const c of cells) {
    out.push(
      `| ${c.config} | ${c.sessions} | ${c.size >= 1024 ? `${c.size / 1024} KB` : `${c.size} B`} | ${c.callsPerSec.median} | ${c.callsPerSec.min}–${c.callsPerSec.max} | ${c.p50} | ${c.p99} | ${c.p999} | ${c.cpuMsPer1000.median}${c.errors ? ` (errors: ${c.errors})` : ''} |`,
    );
  }
  out.push('');
  out.push(
    '| sessions | result | C / B | C CPU per call / B | C / B′ | D / B | C added p50 ms | C added p99 ms | D added p50 ms | D added p99 ms |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const x of r['comparisons'] as Array<Record<string, number | null>>) {
    out.push(
      `| ${x['sessions']} | ${(x['size'] ?? 0) / 1024} KB | ${x['cOverB']} | ${x['cCpuOverB'] ?? '–'} | ${x['cOverBStateful']} | ${x['dOverB']} | ${x['addedP50C']} | ${x['addedP99C']} | ${x['addedP50D']} | ${x['addedP99D']} |`,
    );
  }
  out.push('');
  const steps = r['steps'] as Record<string, Array<{ step: string; calls: number; meanUs: number }>>;
  out.push('| step | C mean µs | D mean µs |', '| --- | ---: | ---: |');
  for (const row of steps['C'] ?? []) {
    const d = steps['D']?.find((x) => x.step === row.step);
    out.push(`| ${row.step} | ${row.meanUs} | ${d?.meanUs ?? ''} |`);
  }
  out.push('');
}
const cap = r['capacity'] as Array<Record<string, unknown>> | undefined;
if (cap) {
  out.push(
    '| capacity target | connections | calls/s (median) | spread | p50 ms | server CPU ms / 1,000 calls |',
  );
  out.push('| --- | ---: | ---: | --- | ---: | ---: |');
  for (const c of cap) {
    const cps = c['callsPerSec'] as Spread;
    const cpu = c['cpuMsPer1000'] as Spread;
    out.push(
      `| ${c['target']} | ${c['connections']} | ${cps.median} | ${cps.min}–${cps.max} | ${c['p50']} | ${cpu.median} |`,
    );
  }
  out.push('');
}
const mem = r['memory'] as Record<string, number> | undefined;
if (mem) {
  out.push(
    `Memory: ${mem['sessions']} idle sessions on C — RSS ${mem['rssBeforeMb']} → ${mem['rssAfterMb']} MB, **${mem['perSessionKb']} KB per session**; JS heap in use ${mem['heapUsedBeforeMb']} → ${mem['heapUsedAfterMb']} MB (${mem['heapPerSessionKb']} KB per session); ${mem['openedPerSec']} sessions opened per second. The same idle sessions on the stateful bare proxy B′ (an SDK server and transport each, no checks): ${mem['bareProxyPerSessionKb'] ?? 'not measured'} KB per session.`,
    '',
  );
}
const micro = r['micro'] as Micro[] | undefined;
if (micro) {
  out.push('| group | benchmark | median | spread | notes |', '| --- | --- | ---: | --- | --- |');
  for (const x of micro) {
    const pcts =
      x.p50Us === undefined
        ? ''
        : ` (p50 ${x.p50Us} µs${x.p99Us === undefined ? '' : `, p99 ${x.p99Us} µs`})`;
    out.push(
      `| ${x.group} | ${x.name} | ${x.value} ${x.unit.replace('us', 'µs')} | ${x.spread[0]}–${x.spread[1]} | ${(x.note ?? '').replace(/\|/g, '/')}${pcts} |`,
    );
  }
  out.push('');
}
process.stdout.write(`${out.join('\n')}\n`);
