/**
 * Authorization latency per decision for 10, 1,000 and 10,000 agents and
 * policies, through the real engine (request building, Cedar, reading the
 * decision back). Run: `npx tsx bench/micro/authz.ts [--json] [--quick] [--n N] [--shape S] [--warm]`;
 * bench/micro/index.ts runs it in rounds as the `authz` group.
 *
 * Policy-set shapes:
 * - agents          the shipped design: agents' allow/deny lists are entity attributes read by two
 *                   fixed policies, so N agents add nothing to the set (per-request entities only).
 * - agent-rules     plus N YAML rules each naming one agent: they land in that agent's slice, so a
 *                   decision evaluates the shared slice and one small slice.
 * - shared-rules    plus N YAML rules naming two agents each: they stay in the shared slice that
 *                   every decision evaluates — the linear case, shown for honesty.
 * - compiled-lists  the rejected alternative for allow/deny lists: one permit and one forbid
 *                   compiled per agent (2N policies, sliced per agent), entity attributes empty.
 * Wall time is what a call waits; CPU time is steadier on a busy machine.
 */
import type { PolicyRuleConfig } from '../../src/config/policy-types.js';
import type { ToolConfig } from '../../src/config/types.js';
import { preparsePolicySet, statefulIsAuthorized } from '../../src/policy/cedar.js';
import { type AuthzInput, PolicyEngine } from '../../src/policy/index.js';
import { against, type BenchContext, type MicroResult, median, quantile, sig } from './harness.js';
import { isMain } from './main.js';

const TOOLS = [
  'lookup_order',
  'check_shipping_status',
  'create_support_ticket',
  'issue_refund',
  'bulk_message',
];

const tools: Record<string, ToolConfig> = Object.fromEntries(
  TOOLS.map((t, i) => [
    t,
    {
      risk: i === 3 ? 'high' : 'low',
      tags: i >= 2 ? ['write'] : ['read'],
      cost: 0,
      arguments: {},
      forbiddenKeys: [],
      resourceScopes: [],
    },
  ]),
) as Record<string, ToolConfig>;
tools['issue_refund']!.arguments = { amountCents: { type: 'integer' } };

/** The article's rules, always present: after hours, refunds over $100, a type rule. */
export const baseRules: PolicyRuleConfig[] = [
  {
    id: 'after-hours-read-only',
    effect: 'forbid',
    toolTags: ['write'],
    when: { time: { outside: '06:00-22:00' } },
  },
  {
    id: 'refund-over-100',
    effect: 'obligation',
    tools: ['issue_refund'],
    when: { arguments: { amountCents: { gt: 10000 } } },
    obligations: { approval: 'required' },
  },
  { id: 'support-may-read', effect: 'permit', agentTypes: ['customer-support'], tools: ['lookup_order'] },
];

function agent(i: number, lists: boolean): AuthzInput['agent'] {
  return {
    id: `agent-${i}`,
    type: i % 2 === 0 ? 'customer-support' : 'data-analyst',
    version: '1.0.0',
    environment: 'production',
    owner: 'team',
    allowedTools: lists ? TOOLS.slice(0, 4) : [],
    deniedTools: lists ? ['bulk_message'] : [],
  };
}

/** The policy-set shapes (see the module comment). */
export type Shape = 'agents' | 'agent-rules' | 'shared-rules' | 'compiled-lists';
export const SHAPES: readonly Shape[] = ['agents', 'agent-rules', 'shared-rules', 'compiled-lists'];

function extraRules(shape: Shape, n: number): PolicyRuleConfig[] {
  const out: PolicyRuleConfig[] = [];
  for (let i = 0; i < n; i++) {
    const me = `agent-${i}`;
    if (shape === 'agent-rules') {
      out.push({ id: `${me}-no-tickets`, effect: 'forbid', agents: [me], tools: ['create_support_ticket'] });
    } else if (shape === 'shared-rules') {
      const other = `agent-${(i + 1) % n}`;
      out.push({
        id: `${me}-no-tickets`,
        effect: 'forbid',
        agents: [me, other],
        tools: ['create_support_ticket'],
      });
    } else if (shape === 'compiled-lists') {
      out.push({ id: `agent.${me}.allow`, effect: 'permit', agents: [me], tools: TOOLS.slice(0, 4) });
      out.push({
        id: `agent.${me}.deny.bulk_message`,
        effect: 'forbid',
        agents: [me],
        tools: ['bulk_message'],
      });
    }
  }
  return out;
}

/** One measured configuration. */
export interface Row {
  shape: string;
  n: number;
  policies: number;
  loadMs: number;
  decisions: number;
  wallUs: number;
  p50Us: number;
  p99Us: number;
  cpuUs: number;
  denied: number;
}

/** A loaded engine and the decisions to ask of it. */
export interface AuthzSetup {
  shape: Shape;
  n: number;
  engine: PolicyEngine;
  inputs: AuthzInput[];
  loadMs: number;
}

/** Build the policy set of `shape` for `n` agents and 512 varied decision inputs. */
export async function loadAuthz(shape: Shape, n: number): Promise<AuthzSetup> {
  const rules = [...baseRules, ...extraRules(shape, n)];
  if (process.env['BENCH_TRACE']) process.stderr.write(`loading ${shape} × ${n}\n`);
  const t0 = performance.now();
  const engine = await PolicyEngine.create({
    policy: { files: [], rules, arguments: {}, timezone: 'Europe/Paris', watch: false },
    tools,
  });
  const loadMs = performance.now() - t0;

  const noon = Date.UTC(2026, 0, 12, 11);
  const inputs: AuthzInput[] = [];
  for (let k = 0; k < 512; k++) {
    const i = (k * 7919) % n;
    const tool = TOOLS[k % TOOLS.length]!;
    inputs.push({
      agent: agent(i, shape !== 'compiled-lists'),
      tool: { name: tool, upstream: 'support-desk' },
      arguments: tool === 'issue_refund' ? { amountCents: 5000 + k * 37 } : { orderId: 'ORD-4F8K2P1Z' },
      session: { id: `s-${k % 64}`, calls: k % 50 },
      clientIp: '10.1.2.3',
      now: noon,
    });
  }
  return { shape, n, engine, inputs, loadMs };
}

/** Makes every request of a `fresh` round distinct (a typed argument policies read). */
let freshArgument = 0;

/** The k-th decision input; `fresh`: one no earlier decision made (see {@link measure}). */
function inputAt(setup: AuthzSetup, k: number, fresh: boolean): AuthzInput {
  const base = setup.inputs[k % setup.inputs.length]!;
  if (!fresh) return base;
  return { ...base, arguments: { ...base.arguments, amountCents: 5000 + (freshArgument++ % 1_000_000) } };
}

/** Warm up the JIT and wasm: 1,000 decisions, or 2 s where each decision is slow (shared rules). */
export function warmUp(setup: AuthzSetup, fresh = false): void {
  const end = performance.now() + 2000;
  for (let k = 0; k < 1000 && performance.now() < end; k++) setup.engine.authorize(inputAt(setup, k, fresh));
}

/**
 * One measured round: decide for `budgetMs` (at least 200 decisions);
 * `samplesUs` receives every decision's latency when given. The engine
 * remembers Cedar's answer per distinct request, and the 512 inputs repeat:
 * `fresh` gives each decision a never-seen `amountCents` (a typed argument the
 * refund rule reads, so it is part of the request) to measure Cedar itself.
 */
export function measure(setup: AuthzSetup, budgetMs: number, samplesUs?: number[], fresh = false): Row {
  const { shape, n, engine } = setup;
  if (process.env['BENCH_TRACE']) process.stderr.write(`deciding ${shape} × ${n}\n`);
  const samples: number[] = [];
  let denied = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  while (performance.now() - start < budgetMs || samples.length < 200) {
    const input = inputAt(setup, samples.length, fresh);
    const t = performance.now();
    const d = engine.authorize(input);
    samples.push(performance.now() - t);
    if (!d.allowed) denied++;
  }
  const wall = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  if (samplesUs) for (const ms of samples) samplesUs.push(ms * 1000);
  samples.sort((a, b) => a - b);
  const pct = (p: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * p))]! * 1000;
  return {
    shape,
    n,
    policies: engine.current.policyCount,
    loadMs: Math.round(setup.loadMs),
    decisions: samples.length,
    wallUs: round((wall * 1000) / samples.length),
    p50Us: round(pct(0.5)),
    p99Us: round(pct(0.99)),
    cpuUs: round((cpu.user + cpu.system) / samples.length),
    denied,
  };
}

const round = (x: number) => Math.round(x * 10) / 10;

/**
 * Calibration: the bare Cedar call DESIGN.md quotes (~57 µs) — one permit, no
 * entities, empty context — measured in the same run, so the table can be read
 * against how fast this machine is right now.
 */
export function calibrate(calls = 10_000): number {
  preparsePolicySet('bench-calibration', { staticPolicies: 'permit (principal, action, resource);' });
  const call = {
    principal: { type: 'Warden::Agent', id: 'a' },
    action: { type: 'Warden::Action', id: 'call' },
    resource: { type: 'Warden::Tool', id: 't' },
    context: {},
    entities: [],
    preparsedPolicySetId: 'bench-calibration',
  };
  for (let i = 0; i < 5000; i++) statefulIsAuthorized(call); // until wasm tiers up from its baseline compiler
  const start = performance.now();
  for (let i = 0; i < calls; i++) statefulIsAuthorized(call);
  return round(((performance.now() - start) * 1000) / calls);
}

/** Shapes the micro suite runs: the shipped design and per-agent rules (the others: this file's CLI). */
const MICRO_SHAPES: readonly Shape[] = ['agents', 'agent-rules'];

/** `rounds` measured rounds on one engine, as a µs/decision row (name and note left to the caller). */
function roundsOf(setup: AuthzSetup, rounds: number, roundMs: number, fresh: boolean) {
  const samples: number[] = [];
  const rows = Array.from({ length: rounds }, () => measure(setup, roundMs, samples, fresh));
  samples.sort((a, b) => a - b);
  const wall = rows.map((r) => r.wallUs);
  const denied = rows.reduce((a, r) => a + r.denied, 0);
  const decisions = rows.reduce((a, r) => a + r.decisions, 0);
  const result: MicroResult = {
    group: 'authz',
    name: '',
    unit: 'us/op',
    value: sig(median(wall)),
    spread: [sig(Math.min(...wall)), sig(Math.max(...wall))],
    p50Us: sig(quantile(samples, 0.5)),
    p99Us: sig(quantile(samples, 0.99)),
    rounds,
    ops: decisions,
  };
  const notes = [`CPU ${sig(median(rows.map((r) => r.cpuUs)))} µs/decision`, `${denied}/${decisions} denied`];
  return { result, notes, policies: rows[0]!.policies, loadMs: rows[0]!.loadMs };
}

/** The `authz` group of bench/micro: each shape × size in rounds, plus the bare-Cedar calibration. */
export async function authzBench(ctx: BenchContext): Promise<MicroResult[]> {
  const { rounds, roundMs } = ctx.timing;
  const out: MicroResult[] = [];
  ctx.progress('authz: bare Cedar calibration');
  const cal = Array.from({ length: rounds }, () => calibrate(ctx.quick ? 2000 : 10_000));
  out.push({
    group: 'authz',
    name: 'bare Cedar call (calibration)',
    unit: 'us/op',
    value: sig(median(cal)),
    spread: [sig(Math.min(...cal)), sig(Math.max(...cal))],
    rounds,
    ops: rounds * (ctx.quick ? 2000 : 10_000),
    note: 'one permit, no entities, empty context: how fast Cedar wasm is on this machine now',
  });
  for (const shape of MICRO_SHAPES) {
    let atTen = Number.NaN;
    for (const n of [10, 1_000, 10_000]) {
      ctx.progress(`authz: ${shape} × ${n}`);
      const setup = await loadAuthz(shape, n);
      try {
        warmUp(setup, true);
        const cold = roundsOf(setup, rounds, roundMs, true);
        const notes = [`${cold.policies} policies, load ${cold.loadMs} ms`, ...cold.notes];
        if (n === 10) atTen = cold.result.value;
        if (n === 10_000) {
          const ratio = sig(cold.result.value / atTen);
          notes.push(`10,000 vs 10: ${ratio}× (${against(ratio, 1.5, 'lower', '≤ 1.5×')})`);
        }
        const size = n.toLocaleString('en-US');
        out.push({
          ...cold.result,
          name: `decision, ${shape}, N=${size} (cache cold)`,
          note: notes.join('; '),
        });
        if (n === 10_000) {
          // Repeated requests: what the engine's per-request answer cache saves.
          warmUp(setup, false);
          const warm = roundsOf(setup, rounds, roundMs, false);
          const note = [
            'the same 512 requests over and over: answers come from the engine’s cache',
            ...warm.notes,
          ];
          out.push({
            ...warm.result,
            name: `decision, ${shape}, N=${size} (cache warm)`,
            note: note.join('; '),
          });
        }
      } finally {
        setup.engine.close();
      }
    }
  }
  return out;
}

async function main(): Promise<void> {
  const argValue = (name: string) => {
    const i = process.argv.indexOf(name);
    return i === -1 ? undefined : process.argv[i + 1];
  };
  const sizes = argValue('--n') ? [Number(argValue('--n'))] : [10, 1_000, 10_000];
  const quick = process.argv.includes('--quick');
  const asJson = process.argv.includes('--json');
  const budgetMs = quick ? 300 : 1500;
  // Cedar's own cost unless --warm: repeated requests would be answered from the engine's cache.
  const fresh = !process.argv.includes('--warm');

  const baseline = calibrate(quick ? 2000 : 10_000);
  const rows: Row[] = [];
  for (const shape of SHAPES.filter((s) => (argValue('--shape') ?? s) === s)) {
    for (const n of sizes) {
      const setup = await loadAuthz(shape, n);
      warmUp(setup, fresh);
      rows.push(measure(setup, budgetMs, undefined, fresh));
      setup.engine.close();
      if (!asJson) process.stderr.write(`measured ${shape} × ${n}\n`);
    }
  }

  if (asJson) {
    process.stdout.write(
      `${JSON.stringify({ node: process.version, baselineUs: baseline, rows }, null, 2)}\n`,
    );
  } else {
    const header =
      '| shape | N | policies | load ms | µs/decision (wall) | p50 µs | p99 µs | CPU µs/decision | denied |';
    const lines = [header, '|---|---:|---:|---:|---:|---:|---:|---:|---:|'];
    for (const r of rows) {
      lines.push(
        `| ${r.shape} | ${r.n} | ${r.policies} | ${r.loadMs} | ${r.wallUs} | ${r.p50Us} | ${r.p99Us} | ${r.cpuUs} | ${r.denied}/${r.decisions} |`,
      );
    }
    lines.push('', `Bare Cedar call (one permit, no entities, empty context): ${baseline} µs.`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}

if (isMain(import.meta.url)) await main();
