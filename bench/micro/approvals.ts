/**
 * The human in the loop (issue #5), what it costs the machine (the human's own
 * time is not the gateway's): flagging a medium-risk call for review, the
 * store and audit work of one held high-risk call (request, decision, use),
 * and how fast a decision wakes the caller waiting for it — on SQLite with the
 * store's real pragmas.
 */
import { join } from 'node:path';
import { type ApprovalAsk, ApprovalService } from '../../src/approvals/index.js';
import { AuditLog } from '../../src/audit/index.js';
import { APPROVAL_DEFAULTS } from '../../src/config/schema-approvals.js';
import { openStore } from '../../src/store/index.js';
import { tempDir } from './fixtures.js';
import { type BenchContext, type MicroResult, run, usRow } from './harness.js';

const G = 'approvals';

let n = 0;
function ask(): ApprovalAsk {
  n += 1;
  return {
    traceId: `bench-${n}`,
    agentId: 'demo-support',
    agentType: 'customer-support',
    sessionId: 'ses_bench',
    userId: null,
    toolName: 'issue_refund',
    risk: 'high',
    configuredRisk: 'high',
    // Distinct arguments per call: each asks for a request of its own.
    arguments: { orderId: 'ORD-4F8K2P1Z', amountCents: n, reason: 'damaged on arrival' },
    reasoning: 'The customer sent photos of the damage.',
    rule: 'risk.high-requires-approval',
    policyIds: ['agent.allowedTools'],
  };
}

/** The approvals group. */
export async function approvalsBench(ctx: BenchContext): Promise<MicroResult[]> {
  const tmp = tempDir('warden-bench-approvals-');
  const store = await openStore(`sqlite:${join(tmp.dir, 'bench.db')}`);
  const audit = new AuditLog(store);
  const service = new ApprovalService({
    store,
    audit,
    config: {
      timeoutMs: 60_000,
      mode: 'wait',
      progressIntervalMs: 15_000,
      allowSelfApproval: false,
      operatorTokenTtlMs: APPROVAL_DEFAULTS.operatorTokenTtlMs,
    },
    operators: [{ id: 'lead', roles: ['approver'] }],
    toolConfig: () => undefined,
    pollIntervalMs: 1_000,
  });
  try {
    ctx.progress('approvals: review flag');
    const flag = await run(
      () => service.flag({ ...ask(), risk: 'medium', configuredRisk: 'medium' }),
      ctx.timing,
    );

    ctx.progress('approvals: held call cycle');
    const cycle = await run(async () => {
      const a = ask();
      const { approval } = await service.requestFor(a);
      await service.decide({
        id: approval.id,
        operatorId: 'lead',
        action: 'approve',
        via: 'api',
        traceId: a.traceId,
      });
      await service.consume(approval.id, a.traceId);
    }, ctx.timing);

    ctx.progress('approvals: wake-up');
    const wake = await run(async () => {
      const a = ask();
      const { approval } = await service.requestFor(a);
      const waiting = service.wait(approval.id);
      // Let the waiter park before the decision, as a real caller would be.
      await new Promise((r) => setImmediate(r));
      await service.decide({
        id: approval.id,
        operatorId: 'lead',
        action: 'deny',
        via: 'api',
        traceId: a.traceId,
      });
      await waiting;
    }, ctx.timing);

    return [
      usRow(
        G,
        'review flag (medium risk), serial',
        flag,
        'what a medium-risk call adds: the review row and its REVIEW_FLAGGED audit entry (durable)',
      ),
      usRow(
        G,
        'held call: request + approve + use, serial',
        cycle,
        'the machine side of one high-risk call: lookup, request row, APPROVAL_REQUESTED, decision, APPROVAL_GRANTED, single-use claim',
      ),
      usRow(
        G,
        'held call with a waiting caller: request + wait + deny, serial',
        wake,
        'the caller waits in-process and is woken by the decision, not by its 1 s store poll: near the row above, far below 1 s',
      ),
    ];
  } finally {
    service.close();
    await store.close();
    tmp.remove();
  }
}
