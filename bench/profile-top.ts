/**
 * Summarise a V8 CPU profile (`.cpuprofile`, from `node --cpu-prof` or
 * WARDEN_BENCH_PROFILE=DIR npm run bench): self time by function and by
 * module (a package under node_modules, a file of ours, or node internals).
 * Run: `npx tsx bench/profile-top.ts FILE.cpuprofile [--top 25]`.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file || file === '--help' || file === '-h') {
  process.stderr.write('usage: npx tsx bench/profile-top.ts FILE.cpuprofile [--top N]\n');
  process.exit(file ? 0 : 2);
}
const topIndex = process.argv.indexOf('--top');
const top = topIndex === -1 ? 25 : Number(process.argv[topIndex + 1]);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => {
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});

function moduleOf(url: string): string {
  if (!url) return '(native / idle / gc)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return url;
  const i = url.search(/\/(src|dist\/src)\//);
  return i === -1 ? url : url.slice(i + 1);
}

const fn = new Map<string, number>();
const mod = new Map<string, number>();
let total = 0;
let idle = 0;
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const name = n.callFrame.functionName || '(anonymous)';
  if (name === '(idle)') {
    idle += us;
    continue;
  }
  total += us;
  const where = n.callFrame.url ? `${moduleOf(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : '';
  const key = `${name} ${where}`.trim();
  fn.set(key, (fn.get(key) ?? 0) + us);
  const m = name === '(garbage collector)' ? '(gc)' : moduleOf(n.callFrame.url);
  mod.set(m, (mod.get(m) ?? 0) + us);
}
const show = (title: string, map: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  process.stdout.on('error', () => process.exit(0));
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(
      `${((100 * us) / total).toFixed(1).padStart(6)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}\n`,
    );
  }
};
// Inclusive time by function (a function's own time plus its callees'), counted once per stack.
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const keyOf = (n: Node) => {
  const name = n.callFrame.functionName || '(anonymous)';
  return `${name} ${n.callFrame.url ? `${moduleOf(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
};
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = keyOf(byId.get(cur)!);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
}
const ours = new Map([...inclusive].filter(([k]) => /(^| )(src|dist\/src)\//.test(k)));

process.stdout.write(`busy ${(total / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms\n`);
show('Self time by module', mod);
show('Self time by function', fn);
show('Inclusive time, our code', ours);
