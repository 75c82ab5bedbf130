/**
 * The whole in-process pipeline, wired as src/server/gateway.ts wires it
 * (same pipelineDeps, same construction of the limiter and the policy
 * engine), over a real SQLite store, with only the upstream pool replaced by a
 * stub that answers at once with a 1 KB text result.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { WardenConfig } from '../../src/config/types.js';
import { openLimiter } from '../../src/limits/index.js';
import { Metrics } from '../../src/metrics/index.js';
import {
  auditedVerify,
  createPipeline,
  pipelineDepsFor,
  type ToolCallRequest,
} from '../../src/pipeline/index.js';
import { createPolicyEngine } from '../../src/policy/index.js';
import { baseRules } from './authz.js';
import { openWorld, supportDeskTools, type World } from './fixtures.js';
import {
  against,
  type BenchContext,
  cpuNote,
  type Measured,
  type MicroResult,
  median,
  rateRow,
  run,
  runAlternating,
  sig,
  usRow,
} from './harness.js';
import { benchCostOf, benchLimits } from './ratelimit.js';

const G = 'pipeline';
const TOOL = 'lookup_order';
const CONCURRENCY = 16;

/** What a deployment adds to the embedded default: tags, a cost, an argument rule, the article's policies, limits. */
export function deploymentConfig(config: WardenConfig): void {
  for (const [name, tool] of Object.entries(config.tools)) {
    tool.tags = name === 'lookup_order' || name === 'check_shipping_status' ? ['read'] : ['write'];
  }
  const lookup = config.tools[TOOL]!;
  lookup.cost = benchCostOf(TOOL);
  lookup.arguments = { orderId: { type: 'string', pattern: 'ORD-[A-Z0-9]{8}' } };
  config.tools['issue_refund']!.arguments = { amountCents: { type: 'integer' } };
  config.policy.rules = baseRules;
  config.limits = {
    store: 'memory',
    onStoreDown: 'deny',
    ...benchLimits(`warden-bench-pipeline-${process.pid}`),
  };
}

/** A pipeline over `world`, built exactly as startGateway builds it, a `call` that must succeed, and `close`. */
export async function gatewayPipeline(world: World) {
  const { config, services } = world;
  const { audit, sessions, tokens, clock } = services;
  const [tool] = (await supportDeskTools()).filter((t) => t.name === TOOL);
  const result: CallToolResult = {
    content: [{ type: 'text', text: JSON.stringify({ orderId: 'ORD-4F8K2P1Z', notes: 'x'.repeat(990) }) }],
  };
  // The one replaced part: the upstream pool (listTools copies its array, as the pool does).
  const pool = {
    listTools: () => [tool!],
    callTool: async (): Promise<CallToolResult> => result,
  };

  const limiter = await openLimiter(config.limits, {
    costOf: (t) => (Object.hasOwn(config.tools, t) ? (config.tools[t]?.cost ?? 0) : 0),
    clock,
  });
  const policy = await createPolicyEngine({
    policy: config.policy,
    tools: config.tools,
    knownTools: () => ({
      names: new Set([...Object.keys(config.tools), ...pool.listTools().map((t) => t.name)]),
      complete: true,
    }),
    audit: (input) => audit.append(input),
    clock,
  });

  // Wired by the gateway's own function, so what is measured is what runs.
  const pipelineDeps = pipelineDepsFor(config, {
    tokens,
    sessions,
    tools: pool,
    audit,
    clock,
    limiter,
    policy,
    metrics: new Metrics(),
  });
  const pipeline = createPipeline(pipelineDeps);
  // What the MCP face hands in: the principal it verified for this HTTP request.
  const { agent, session, claims } = await auditedVerify(pipelineDeps)(world.token, 'bench-verify');
  const principal = { agent, session, scopes: new Set(claims.scope.split(' ').filter(Boolean)) };

  let calls = 0;
  const call = async (verified: boolean) => {
    calls += 1;
    const request: ToolCallRequest = {
      token: world.token,
      toolName: TOOL,
      parameters: { orderId: 'ORD-4F8K2P1Z' },
      reasoning: 'The customer asked where their order is.',
      traceId: `bench-${calls}`,
      clientIp: '127.0.0.1',
      face: 'mcp',
      ...(verified ? { verified: principal } : {}),
    };
    const r = await pipeline.run(request);
    // A benchmark of a refusal would flatter the pipeline: every call must go through.
    if (!r.ok)
      throw new Error(
        `pipeline refused the call: ${r.error.code} ${r.error.message} (${r.error.detail ?? ''})`,
      );
  };
  return {
    pipeline,
    call,
    close: async () => {
      policy.close();
      await limiter.close();
    },
  };
}

function serialNote(m: Measured, extra: string): string {
  return `${extra}; ${cpuNote(m)}; ${against(median(m.usPerOp), 150, 'lower', '≤ 150 µs')}`;
}

function parallelNote(m: Measured, extra: string): string {
  return `${extra}; = ${sig(1e6 / median(m.opsPerSec))} µs of capacity per call; ${cpuNote(m)}`;
}

/** The pipeline group. */
export async function pipelineBench(ctx: BenchContext): Promise<MicroResult[]> {
  const out: MicroResult[] = [];
  const world = await openWorld({ tweak: deploymentConfig });
  try {
    const p = await gatewayPipeline(world);
    try {
      // The four cases take turns within each round, so verified and unverified see the same disk.
      ctx.progress('pipeline: verified / unverified × serial / 16 in flight (alternating rounds)');
      const cases = [true, false].flatMap((verified) =>
        [1, CONCURRENCY].map((concurrency) => ({ verified, concurrency, op: () => p.call(verified) })),
      );
      const measured = await runAlternating(cases, ctx.timing);
      for (const [i, c] of cases.entries()) {
        const m = measured[i]!;
        const how = c.verified ? 'verified by the face (MCP)' : 'token verified in the pipeline';
        const what = c.verified
          ? 'request.verified set; the MCP face pays one token verify per HTTP request on top'
          : 'authenticate runs TokenService.verify on the same token each call (a client reusing its token)';
        out.push(
          c.concurrency === 1
            ? usRow(G, `tool call, ${how}, serial`, m, serialNote(m, what))
            : rateRow(G, `tool call, ${how}, ${CONCURRENCY} in flight`, m, 'ops/s', parallelNote(m, what)),
        );
      }
    } finally {
      await p.close();
    }
  } finally {
    await world.close();
  }

  // Diagnostic: the same pipeline with the store in memory — no file, no fsync — so the table
  // shows how much of a call is the steps' CPU and how much is durable writes.
  const memory = await openWorld({ tweak: deploymentConfig, inMemory: true });
  try {
    const p = await gatewayPipeline(memory);
    try {
      ctx.progress('pipeline: verified, store in memory (diagnostic)');
      const m = await run(() => p.call(true), ctx.timing);
      out.push(
        usRow(
          G,
          'tool call, verified, store in memory (diagnostic)',
          m,
          `as the first row but SQLite :memory: (no fsync): the steps' own cost; ${cpuNote(m)}`,
        ),
      );
    } finally {
      await p.close();
    }
  } finally {
    await memory.close();
  }
  return out;
}
