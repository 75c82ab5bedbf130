import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolDefaults } from '../config/constants.js';
import { policySchema } from '../config/schema-policy.js';
import { WardenError } from '../errors.js';
import type { Agent, Session } from '../identity/index.js';
import { type AuthzDecision, PolicyEngine } from '../policy/index.js';
import { ManualClock } from '../util/clock.js';
import { authorize, checkToolScope, toolScope } from './authorize.js';
import { riskGate } from './risk-gate.js';
import type { CallState, PipelineDeps } from './types.js';

const now = Date.UTC(2026, 0, 12, 12);
const agent: Agent = {
  id: 'a1',
  type: 'customer-support',
  version: '1',
  environment: 'test',
  owner: 'team',
  createdAt: now,
  updatedAt: now,
  expiresAt: now + 86_400_000,
  maxConcurrentSessions: 2,
  allowedTools: ['lookup_order', 'issue_refund', 'bulk_message', 'create_support_ticket'],
  deniedTools: ['bulk_message'],
  scopes: [],
  publicJwk: null,
  constraints: {},
  delegation: null,
  status: 'active',
  disabledReason: null,
  source: 'test',
};
const session = { id: 's1', callCount: 4 } as Session;
const tools = {
  lookup_order: toolDefaults('low'),
  issue_refund: toolDefaults('medium'),
  bulk_message: toolDefaults('critical'),
  create_support_ticket: { ...toolDefaults('low'), tags: ['write'] },
};

let engine: PolicyEngine;
beforeAll(async () => {
  const policy = policySchema.parse({
    rules: [
      {
        id: 'no-tickets-at-noon',
        effect: 'forbid',
        toolTags: ['write'],
        when: { time: { within: '12:00-13:00' } },
      },
      {
        id: 'big-refunds',
        effect: 'obligation',
        tools: ['issue_refund'],
        when: { arguments: { amountCents: { gt: 10000 } } },
        obligations: { approval: 'required' },
      },
      {
        id: 'small-refunds-low',
        effect: 'obligation',
        tools: ['issue_refund'],
        when: { arguments: { amountCents: { lt: 100 } } },
        obligations: { risk: 'low' },
      },
    ],
  });
  engine = await PolicyEngine.create({ policy: { ...policy, files: [] }, tools });
});
afterAll(() => engine?.close());

function state(tool: string, parameters: Record<string, unknown> = {}, scopes = [tool]): CallState {
  return {
    request: { token: 't', toolName: tool, parameters, traceId: 'tr', clientIp: '127.0.0.1', face: 'rest' },
    startedAt: now,
    agent,
    session,
    scopes: new Set(scopes.map(toolScope)),
    toolName: tool,
    tool: { name: tool, upstream: 'support-desk', upstreamName: tool, inputSchema: {} },
    parameters,
    allowedBy: [],
  };
}

const deps = (policy: PipelineDeps['policy'] = engine) => ({ policy, clock: new ManualClock(now) });
const refusal = async (s: CallState, d = deps()) => {
  const e = await authorize(d)
    .run(s)
    .then(() => null)
    .catch((x: unknown) => x);
  if (!(e instanceof WardenError)) throw new Error(`expected a WardenError, got ${String(e)}`);
  return e;
};

describe('authorize step', () => {
  it('allows with the determining policies and the token scope named', async () => {
    const s = state('lookup_order');
    await authorize(deps()).run(s);
    expect(s.allowedBy).toEqual(['agent.allowedTools:lookup_order', 'token.scope:tool:lookup_order:execute']);
    expect(s.policyIds).toEqual(['agent.allowedTools']);
    expect(s.obligations).toBeUndefined();
  });

  it("names the agent's deny list as TOOL_DENIED with the spine's rule id", async () => {
    const e = await refusal(state('bulk_message'));
    expect([e.code, e.rule]).toEqual(['TOOL_DENIED', 'agent.deniedTools:bulk_message']);
  });

  it('default deny outside the allowed tools is TOOL_NOT_ALLOWED', async () => {
    const s = state('lookup_order');
    s.agent = { ...agent, allowedTools: [] };
    const e = await refusal(s);
    expect([e.code, e.rule]).toEqual(['TOOL_NOT_ALLOWED', 'agent.allowedTools:default-deny']);
  });

  it('any other forbid is POLICY_DENIED naming the policy', async () => {
    const e = await refusal(state('create_support_ticket'));
    expect([e.code, e.rule, e.status]).toEqual(['POLICY_DENIED', 'policy:no-tickets-at-noon', 403]);
    expect(e.data).toBeUndefined();
  });

  it('keeps the token scope as the upper bound after policy allows', async () => {
    const e = await refusal(state('lookup_order', {}, []));
    expect([e.code, e.rule]).toEqual(['INSUFFICIENT_SCOPE', 'token.scope']);
    expect(e.data).toEqual({ requiredScopes: ['tool:lookup_order:execute'] });
    expect(() => checkToolScope(state('issue_refund', {}, ['lookup_order']))).toThrow(/lacks the scope/);
    // Missing the tool scope: the resource scopes the arguments name come in the same challenge.
    const both = (() => {
      try {
        checkToolScope(state('lookup_order', { userId: 'usr_abc' }, []), ['orders:read:user:{userId}']);
      } catch (x) {
        return x as WardenError;
      }
    })();
    expect(both?.data).toEqual({ requiredScopes: ['tool:lookup_order:execute', 'orders:read:user:usr_abc'] });
  });

  it('carries obligations to the risk gate, which refuses a call that now needs approval', async () => {
    const s = state('issue_refund', { amountCents: 10001 });
    await authorize(deps()).run(s);
    expect(s.policyIds).toEqual(['agent.allowedTools', 'big-refunds']);
    expect(s.obligations).toEqual({ approval: 'required' });
    const gate = riskGate(
      { riskOf: (t) => tools[t as keyof typeof tools].risk, clock: new ManualClock(now) },
      async () => {},
    );
    const e = await gate.run(s).catch((x: WardenError) => x);
    expect(e).toMatchObject({
      code: 'APPROVAL_REQUIRED',
      rule: 'risk.high-requires-approval',
      data: { risk: 'high', raisedFrom: 'medium' },
    });
    expect((e as WardenError).detail).toMatch(
      /raised from medium by policies agent\.allowedTools, big-refunds$/,
    );
    const small = state('issue_refund', { amountCents: 10000 });
    await authorize(deps()).run(small);
    await gate.run(small);
    expect(small.allowedBy.at(-1)).toBe('risk.medium');
  });

  it('an obligation never lowers the configured risk', async () => {
    const s = state('issue_refund', { amountCents: 50 });
    await authorize(deps()).run(s);
    expect(s.obligations).toEqual({ risk: 'low' });
    await riskGate({ riskOf: () => 'medium', clock: new ManualClock(now) }, async () => {}).run(s);
    expect(s.allowedBy.at(-1)).toBe('risk.medium');
  });

  it('fails closed when the engine cannot decide', async () => {
    const broken = {
      authorize(): AuthzDecision {
        throw new Error('wasm trap');
      },
      noteUse() {},
    };
    const e = await refusal(state('lookup_order'), deps(broken));
    expect([e.code, e.status, e.rule]).toEqual(['POLICY_UNAVAILABLE', 503, 'policy.fail-closed']);
    expect(e.detail).toBe('wasm trap');
  });

  it('a forbid that failed to evaluate is a denial, not a pass', async () => {
    const erroring = {
      authorize: (): AuthzDecision => ({
        allowed: false,
        reason: 'forbid-error',
        policyIds: ['overflow'],
        errors: ['overflow: integer overflow'],
      }),
      noteUse() {},
    };
    const e = await refusal(state('lookup_order'), deps(erroring));
    expect([e.code, e.rule]).toEqual(['POLICY_DENIED', 'policy:overflow']);
    expect(e.detail).toMatch(/integer overflow/);
  });

  it('passes a type-confused argument on as INVALID_ARGUMENTS', async () => {
    const e = await refusal(state('issue_refund', { amountCents: '20000' }));
    expect([e.code, e.rule]).toEqual(['INVALID_ARGUMENTS', 'policy.argument-type:amountCents']);
  });

  it('without an engine, applies the agent lists alone', async () => {
    const s = state('lookup_order');
    await authorize({ clock: new ManualClock(now) }).run(s);
    expect(s.policyIds).toEqual(['agent.allowedTools']);
    const e = await refusal(state('bulk_message'), { clock: new ManualClock(now) } as ReturnType<
      typeof deps
    >);
    expect(e.code).toBe('TOOL_DENIED');
  });
});
