import { describe, expect, it } from 'vitest';
import type { Approval } from '../approvals/index.js';
import { argumentsHash } from '../approvals/index.js';
import { WardenError } from '../errors.js';
import type { Agent, Session } from '../identity/index.js';
import { ManualClock } from '../util/clock.js';
import { riskGate } from './risk-gate.js';
import type { CallState, PipelineDeps } from './types.js';

const now = Date.UTC(2026, 10, 26, 12);
const args = { orderId: 'ORD-4F8K2P1Z', amountCents: 900, reason: 'damaged' };

function approved(patch: Record<string, unknown>): Approval {
  return {
    id: 'apr_0123456789abcdef',
    kind: 'approval',
    status: 'approved',
    createdAt: now - 1000,
    expiresAt: now + 60_000,
    traceId: 't0',
    agentId: 'a1',
    agentType: 'support',
    sessionId: 's1',
    userId: null,
    toolName: 'issue_refund',
    risk: 'high',
    configuredRisk: 'high',
    // What the approver saw: a redacted copy that may not show every key the agent sent.
    arguments: { orderId: 'ORD-4F8K2P1Z', amountCents: 900, reason: 'damaged', refundTo: '[REDACTED]' },
    argumentsHash: argumentsHash(args),
    reasoning: null,
    rule: 'risk.high-requires-approval',
    policyIds: [],
    auditSeq: 1,
    decidedAt: now - 500,
    decidedBy: 'operator:lead',
    decidedVia: 'api',
    comment: null,
    argumentPatch: patch,
    verdict: null,
    consumedAt: null,
  };
}

describe("risk gate: an approver's edit", () => {
  it('may only replace arguments the agent sent, checked against the original when the call runs', async () => {
    let consumed = 0;
    let rechecked = 0;
    const approval = approved({ refundTo: 'IBAN DE00 0000' });
    const approvals: NonNullable<PipelineDeps['approvals']> = {
      requestFor: async () => ({ approval, created: false }),
      flag: async () => approval,
      get: async () => approval,
      wait: async () => approval,
      consume: async () => {
        consumed++;
        return true;
      },
      unconsume: async () => {},
      usableUntil: () => now + 60_000,
    };
    const state: CallState = {
      request: {
        token: 't',
        toolName: 'issue_refund',
        parameters: args,
        traceId: 't1',
        clientIp: '127.0.0.1',
        face: 'rest',
        approvalId: approval.id,
      },
      startedAt: now,
      agent: { id: 'a1', type: 'support' } as Agent,
      session: { id: 's1', userId: null } as Session,
      toolName: 'issue_refund',
      tool: { name: 'issue_refund', upstream: 'desk', upstreamName: 'issue_refund', inputSchema: {} },
      parameters: { ...args },
      allowedBy: [],
    };
    const gate = riskGate({ riskOf: () => 'high', approvals, clock: new ManualClock(now) }, async () => {
      rechecked++;
    });
    const e = await gate.run(state).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WardenError);
    expect(e).toMatchObject({ code: 'APPROVAL_ARGUMENTS_INVALID', rule: 'approval.edit-adds-argument' });
    expect([consumed, rechecked]).toEqual([0, 0]);
    expect(state.parameters).toEqual(args);

    // A patch that only replaces what was sent goes on to the recheck and the single-use claim.
    approval.argumentPatch = { amountCents: 300 };
    await gate.run(state);
    expect(state.parameters).toEqual({ ...args, amountCents: 300 });
    expect([consumed, rechecked]).toEqual([1, 1]);
  });
});

describe('risk gate: what the approver is shown', () => {
  const held = () => {
    const asks: Array<Record<string, unknown>> = [];
    const pending = { ...approved({}), status: 'pending' as const, argumentPatch: null, decidedAt: null };
    const approvals: NonNullable<PipelineDeps['approvals']> = {
      requestFor: async (ask) => {
        asks.push(ask as unknown as Record<string, unknown>);
        return { approval: pending, created: true };
      },
      flag: async () => pending,
      get: async () => pending,
      wait: async () => pending,
      consume: async () => false,
      unconsume: async () => {},
      usableUntil: () => now + 60_000,
    };
    const state = (extra: Partial<CallState>): CallState => ({
      request: {
        token: 't',
        toolName: 'issue_refund',
        parameters: args,
        traceId: 't2',
        clientIp: '',
        face: 'rest',
        approvalMode: 'pending',
      },
      startedAt: now,
      agent: { id: 'a1', type: 'support' } as Agent,
      session: { id: 's1', userId: null } as Session,
      toolName: 'issue_refund',
      tool: { name: 'issue_refund', upstream: 'desk', upstreamName: 'issue_refund', inputSchema: {} },
      parameters: { ...args },
      allowedBy: [],
      ...extra,
    });
    const gate = riskGate({ riskOf: () => 'high', approvals, clock: new ManualClock(now) }, async () => {});
    return { asks, state, gate };
  };

  it('asks with the arguments as sent (for the hash) and shows the copy with secrets redacted', async () => {
    const { asks, state, gate } = held();
    const redacted = { ...args, reason: 'key [REDACTED:AWS_ACCESS_KEY]' };
    const keyed = { ...args, reason: `key [REDACTED:AWS_ACCESS_KEY:hmac-sha256:${'a'.repeat(64)}]` };
    await expect(
      gate.run(state({ shownParameters: redacted, auditParameters: keyed })),
    ).rejects.toMatchObject({
      code: 'APPROVAL_PENDING',
    });
    // Approvers see plain markers; the audit log's copy keeps the HMACs (issue #9).
    expect(asks[0]).toMatchObject({ arguments: args, shownArguments: redacted, auditArguments: keyed });
  });

  it('holds a low-risk call of a session monitoring put on hold, under rule anomaly.hold', async () => {
    const { asks, state } = held();
    const lowGate = riskGate(
      {
        riskOf: () => 'low',
        approvals: {
          requestFor: async (ask) => {
            asks.push(ask as unknown as Record<string, unknown>);
            return { approval: { ...approved({}), status: 'pending', decidedAt: null }, created: true };
          },
          flag: async () => approved({}),
          get: async () => undefined,
          wait: async () => approved({}),
          consume: async () => false,
          unconsume: async () => {},
          usableUntil: () => now,
        },
        clock: new ManualClock(now),
      },
      async () => {},
    );
    // Not held: a low-risk call runs.
    const free = state({});
    await lowGate.run(free);
    expect(free.allowedBy).toContain('risk.low');
    // Held (taint bit 4): the same call waits for a human.
    await expect(lowGate.run(state({ taint: 4 }))).rejects.toMatchObject({ code: 'APPROVAL_PENDING' });
    expect(asks.at(-1)).toMatchObject({ rule: 'anomaly.hold', risk: 'high', configuredRisk: 'low' });
  });
});
