/**
 * The limit steps: what each asks the limiter, where the pipeline places them,
 * and how a refusal is audited. The limiter itself is tested in src/limits/;
 * the whole path through a real gateway in test/e2e/rate-limits.test.ts.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditInput } from '../audit/index.js';
import type { LimitsConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { Agent, Session } from '../identity/index.js';
import { openLimiter } from '../limits/index.js';
import type { AggregatedTool } from '../upstream/index.js';
import { ManualClock } from '../util/clock.js';
import { budget } from './budget.js';
import { createPipeline } from './pipeline.js';
import { rateLimit, toolRateLimit } from './rate-limit.js';
import type { CallState, PipelineDeps } from './types.js';

const now = Date.UTC(2026, 10, 25, 12);
const agent = {
  id: 'a1',
  type: 'customer-support',
  version: '1',
  environment: 'test',
  owner: 'team',
  createdAt: now,
  updatedAt: now,
  expiresAt: now + 86_400_000,
  maxConcurrentSessions: 2,
  allowedTools: ['lookup_order'],
  deniedTools: [],
  scopes: [],
  publicJwk: null,
  constraints: {},
  delegation: null,
  status: 'active',
  disabledReason: null,
  source: 'test',
} as Agent;
const session: Session = {
  id: 's1',
  agentId: 'a1',
  createdAt: now,
  expiresAt: now + 900_000,
  revokedAt: null,
  revokedReason: null,
  callCount: 0,
  maxToolCalls: 100,
  allowedCidrs: [],
  scopes: [],
  issuedVia: 'operator',
  clientIp: null,
  userId: null,
  grantId: null,
  expiryLogged: false,
};
const lookup: AggregatedTool = {
  name: 'lookup_order',
  upstream: 'u',
  upstreamName: 'lookup_order',
  inputSchema: { type: 'object' },
};

function state(over: Partial<CallState> = {}): CallState {
  return {
    request: {
      token: 't',
      toolName: 'lookup_order',
      parameters: {},
      traceId: 'tr',
      clientIp: '',
      face: 'rest',
    },
    startedAt: now,
    allowedBy: [],
    agent,
    session,
    tool: lookup,
    ...over,
  };
}

/** A limiter stub recording what each step asked. */
function recordingLimiter() {
  const asked: Array<[string, unknown]> = [];
  const answer = (kind: string, rule: string) => async (s: unknown) => {
    asked.push([kind, s]);
    return { rules: [rule] };
  };
  const limiter: NonNullable<PipelineDeps['limiter']> = {
    checkCaller: answer('caller', 'limits.rate:agent'),
    checkTool: answer('tool', 'limits.rate:agent-tool'),
    chargeBudgets: answer('budget', 'limits.budget:agent'),
  };
  return { limiter, asked };
}

describe('limit steps', () => {
  it('ask the limiter with the authenticated agent, session and resolved tool, and record the rules', async () => {
    const { limiter, asked } = recordingLimiter();
    const s = state();
    await rateLimit({ limiter }).run(s);
    await toolRateLimit({ limiter }).run(s);
    await budget({ limiter }).run(s);
    expect(asked).toEqual([
      ['caller', { agentId: 'a1', sessionId: 's1' }],
      ['tool', { agentId: 'a1', sessionId: 's1', tool: 'lookup_order' }],
      ['budget', { agentId: 'a1', sessionId: 's1', tool: 'lookup_order' }],
    ]);
    expect(s.allowedBy).toEqual(['limits.rate:agent', 'limits.rate:agent-tool', 'limits.budget:agent']);
  });

  it('refuse to run out of order (no agent, no resolved tool) instead of counting nothing', async () => {
    const { limiter } = recordingLimiter();
    const { agent: _a, ...noAgent } = state();
    await expect(rateLimit({ limiter }).run(noAgent)).rejects.toMatchObject({ code: 'INTERNAL' });
    const { tool: _t, ...noTool } = state();
    await expect(toolRateLimit({ limiter }).run(noTool)).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(budget({ limiter }).run(noTool)).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('pass a refusal through unchanged', async () => {
    const refusal = new WardenError('RATE_LIMITED', 'slow down', {
      rule: 'limits.rate:agent',
      data: { retryAfterSeconds: 7 },
    });
    const limiter = {
      ...recordingLimiter().limiter,
      checkCaller: async () => {
        throw refusal;
      },
    };
    await expect(rateLimit({ limiter }).run(state())).rejects.toBe(refusal);
  });
});

/** A pipeline over in-memory ports and a real memory limiter. */
async function harness(limits: Partial<LimitsConfig>, tools: AggregatedTool[] = [lookup]) {
  const entries: AuditInput[] = [];
  const executed: string[] = [];
  const limiter = await openLimiter(
    { store: 'memory', onStoreDown: 'deny', rates: [], budgets: [], ...limits },
    { costOf: () => 1 },
  );
  const deps: PipelineDeps = {
    tokens: {
      verify: async () => ({ agent, session, claims: { scope: 'tool:lookup_order:execute' } }),
    },
    sessions: { claimCall: async () => ({ calls: 1, taint: 0 }), markExpiryLogged: async () => true },
    tools: {
      listTools: () => tools,
      callTool: async (name): Promise<CallToolResult> => {
        executed.push(name);
        return { content: [{ type: 'text', text: 'ok' }] };
      },
    },
    audit: {
      append: async (input) => {
        entries.push(input);
        return { ...input, seq: entries.length } as unknown as AuditEntry;
      },
    },
    riskOf: () => 'low',
    clock: new ManualClock(now),
    limits: { maxJsonDepth: 8 },
    limiter,
  };
  const pipeline = createPipeline(deps);
  const run = (toolName = 'lookup_order') =>
    pipeline.run({ token: 'good', toolName, parameters: {}, traceId: 'trace-1', clientIp: '', face: 'rest' });
  return { pipeline, run, entries, executed };
}

describe('limits in the pipeline', () => {
  it('places caller rates after the session guard, tool rates after resolve-tool, budgets last before the attempt', async () => {
    const { pipeline } = await harness({});
    const names = pipeline.steps.map((s) => s.name);
    const at = (n: string) => names.indexOf(n);
    // Between the session guard and the caller rate only steps that spend nothing: kill-switch tracking, breakers.
    expect(names.slice(at('session-guard') + 1, at('rate-limit'))).toEqual(['track-call', 'circuit-breaker']);
    expect(at('resolve-tool')).toBeGreaterThan(at('rate-limit'));
    expect(at('tool-rate-limit')).toBe(at('resolve-tool') + 1);
    // Only the review flag (medium risk, once the call is sure to run) sits between the charge and the attempt.
    expect(at('budget')).toBe(at('record-attempt') - 2);
    expect(at('review-flag')).toBe(at('record-attempt') - 1);
  });

  it('audits a rate-limit refusal as RATE_LIMITED with its rule; the tool does not run', async () => {
    const h = await harness({ rates: [{ per: 'agent', points: 1, durationMs: 60_000 }] });
    expect((await h.run()).ok).toBe(true);
    const r = await h.run();
    expect(r.ok).toBe(false);
    expect(h.executed).toEqual(['lookup_order']);
    const last = h.entries.at(-1)!;
    expect(last.event).toBe('RATE_LIMITED');
    expect(last.result).toBe('denied');
    expect(last.decision).toMatchObject({ allowed: false, code: 'RATE_LIMITED', rule: 'limits.rate:agent' });
    expect(last.data).toMatchObject({ step: 'rate-limit' });
  });

  it('audits a budget refusal as RATE_LIMITED too, and records passed limits in the allowed decision', async () => {
    const h = await harness({ budgets: [{ per: 'agent-tool', amount: 1, periodMs: 60_000 }] });
    expect((await h.run()).ok).toBe(true);
    expect(h.entries[0]?.decision?.reasons).toContain('limits.budget:agent-tool');
    const r = await h.run();
    expect(r.ok || r.error.code).toBe('BUDGET_EXCEEDED');
    expect(h.entries.at(-1)).toMatchObject({
      event: 'RATE_LIMITED',
      decision: { code: 'BUDGET_EXCEEDED', rule: 'limits.budget:agent-tool' },
      data: { step: 'budget' },
    });
  });

  it('counts an unknown tool name against the caller rate, never as an agent × tool key', async () => {
    const h = await harness({
      rates: [
        { per: 'agent', points: 2, durationMs: 60_000 },
        { per: 'agent-tool', points: 1, durationMs: 60_000 },
      ],
    });
    const unknown = await h.run('no_such_tool');
    expect(unknown.ok || unknown.error.code).toBe('TOOL_UNKNOWN');
    // The made-up name used the agent's rate; lookup_order's own counter is untouched.
    expect((await h.run()).ok).toBe(true);
    const third = await h.run();
    expect(third.ok || third.error.rule).toBe('limits.rate:agent');
  });
});
