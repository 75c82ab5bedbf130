/**
 * Authorization latency per decision for 10, 1,000 and 10,000 agents and
 * policies, through the real engine (request building, Cedar, reading the
 * decision back). Run: `npx tsx bench/authz.ts [--json] [--quick]`.
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
import type { PolicyRuleConfig } from '../src/config/policy-types.js';
import type { ToolConfig } from '../src/config/types.js';
import { preparsePolicySet, statefulIsAuthorized } from '../src/policy/cedar.js';
import { type AuthzInput, PolicyEngine } from '../src/policy/index.js';

const argValue = (name: string) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
};
const SIZES = argValue('--n') ? [Number(argValue('--n'))] : [10, 1_000, 10_000];
const TOOLS = [
  'lookup_order',
  'check_shipping_status',
  'create_support_ticket',
  'issue_refund',
  'bulk_message',
];
const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const budgetMs = quick ? 300 : 1500;

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
const baseRules: PolicyRuleConfig[] = [
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

type Shape = 'agents' | 'agent-rules' | 'shared-rules' | 'compiled-lists';

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

interface Row {
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

async function measure(shape: Shape, n: number): Promise<Row> {
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
  if (process.env['BENCH_TRACE']) process.stderr.write(`deciding ${shape} × ${n}\n`);
  for (let k = 0; k < 1000; k++) engine.authorize(inputs[k % inputs.length]!); // warm up the JIT and wasm

  const samples: number[] = [];
  let denied = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  while (performance.now() - start < budgetMs || samples.length < 200) {
    const input = inputs[samples.length % inputs.length]!;
    const t = performance.now();
    const d = engine.authorize(input);
    samples.push(performance.now() - t);
    if (!d.allowed) denied++;
  }
  const wall = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  const policies = engine.current.policyCount;
  engine.close();
  samples.sort((a, b) => a - b);
  const pct = (p: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * p))]! * 1000;
  return {
    shape,
    n,
    policies,
    loadMs: Math.round(loadMs),
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
function calibrate(): number {
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
  const n = quick ? 2000 : 10000;
  const start = performance.now();
  for (let i = 0; i < n; i++) statefulIsAuthorized(call);
  return round(((performance.now() - start) * 1000) / n);
}

const baseline = calibrate();
const rows: Row[] = [];
const shapes: Shape[] = ['agents', 'agent-rules', 'shared-rules', 'compiled-lists'];
for (const shape of shapes.filter((s) => (argValue('--shape') ?? s) === s)) {
  for (const n of SIZES) {
    rows.push(await measure(shape, n));
    if (!asJson) process.stderr.write(`measured ${shape} × ${n}\n`);
  }
}

if (asJson) {
  process.stdout.write(`${JSON.stringify({ node: process.version, baselineUs: baseline, rows }, null, 2)}\n`);
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
