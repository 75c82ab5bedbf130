/**
 * Human in the loop (issue #5), the calls' side, on an in-process gateway: MCP callers that wait
 * (with progress) or not, REST callers, edit before approve, what an approval is good for, medium
 * and critical risk. The gateway's clock is a ManualClock: expiries happen when a test moves it.
 */
import { writeFileSync } from 'node:fs';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import {
  aboutApproval,
  approvalsSuite,
  byEvent,
  dataOf,
  expectCleanError,
  ORDER,
  refund,
  request,
  TIMEOUT_MS,
  wardenError,
} from '../helpers/approvals.js';
import { TIME_SCALE, waitFor } from '../helpers/cli-process.js';

describe('approvals: held calls on a running gateway', { timeout: 60_000 * TIME_SCALE }, () => {
  const s = approvalsSuite();

  describe('MCP callers wait, with progress', () => {
    it('an approved call runs after the approval, and the audit trail tells the story in order', async () => {
      const client = await s.t.mcp(s.agentToken);
      const progress: Array<{ progress: number; message?: string }> = [];
      const args = refund('mcp approve', 250);
      const call = client.callTool({ name: 'issue_refund', arguments: args }, undefined, {
        onprogress: (p) => progress.push(p),
        resetTimeoutOnProgress: true,
        timeout: 30_000,
      }) as Promise<CallToolResult>;

      const request = await s.pendingVia('alice', args.reason);
      const id = request.id as string;
      expect(id).toMatch(/^apr_/);
      expect(request).toMatchObject({
        status: 'pending',
        toolName: 'issue_refund',
        risk: 'high',
        configuredRisk: 'high',
        agentId: 'demo-support',
        rule: 'risk.high-requires-approval',
        arguments: args,
      });
      // The caller hears at once that it waits, and for which request.
      expect(await waitFor(() => progress.length >= 1, 10_000)).toBe(true);
      expect(progress[0]?.message).toContain(id);
      expect(progress[0]?.message).toContain('issue_refund');
      // A second notification once progressInterval (1 s) has passed on the gateway's clock.
      s.t.clock.advance(1_100);
      expect(await waitFor(() => progress.length >= 2, 10_000)).toBe(true);
      expect(progress[1]?.progress).toBeGreaterThan(progress[0]!.progress);
      expect(progress[1]?.message).toContain(id);

      const approved = await s.decide(id, 'alice', 'approve', { comment: 'customer called' });
      expect(approved.status, approved.text).toBe(200);
      expect(approved.body).toMatchObject({
        repeated: false,
        approval: {
          id,
          status: 'approved',
          decidedBy: 'operator:alice',
          decidedVia: 'api',
          comment: 'customer called',
        },
      });

      const result = await call;
      expect(result.isError, JSON.stringify(result)).toBeFalsy();
      expect(result.structuredContent).toMatchObject({ orderId: ORDER, amountCents: 250, status: 'issued' });

      const entries = await s.audit();
      const requested = byEvent(aboutApproval(entries, id), 'APPROVAL_REQUESTED');
      const granted = byEvent(aboutApproval(entries, id), 'APPROVAL_GRANTED');
      expect(requested).toHaveLength(1);
      expect(granted).toHaveLength(1);
      expect(requested[0]).toMatchObject({
        traceId: request.traceId,
        actorType: 'AI_AGENT',
        agentId: 'demo-support',
        toolName: 'issue_refund',
        result: 'pending',
      });
      expect(granted[0]).toMatchObject({ actorType: 'HUMAN', actorId: 'operator:alice', result: 'success' });
      expect(dataOf(granted[0])).toMatchObject({ requestTraceId: request.traceId, via: 'api' });
      const calls = entries.filter((e) => e.traceId === request.traceId && e.event === 'TOOL_CALL');
      expect(calls.map((e) => e.result)).toEqual(['pending', 'success']);
      expect(dataOf(calls[0])).toMatchObject({
        phase: 'attempt',
        approvalId: id,
        approvedBy: 'operator:alice',
      });
      expect(calls[0]?.decision?.reasons).toContain(`approval:${id}:operator:alice`);
      expect(requested[0]!.seq).toBeLessThan(granted[0]!.seq);
      expect(granted[0]!.seq).toBeLessThan(calls[0]!.seq);
      expect(calls[0]!.seq).toBeLessThan(calls[1]!.seq);
      expect((await s.t.gw.approvals.get(id))?.consumedAt).not.toBeNull();
    });

    it('a denied call is refused with APPROVAL_DENIED and the comment; the tool never ran', async () => {
      const client = await s.t.mcp(s.agentToken);
      const args = refund('mcp deny', 260);
      const call = client.callTool({ name: 'issue_refund', arguments: args }, undefined, {
        onprogress: () => {},
        resetTimeoutOnProgress: true,
        timeout: 30_000,
      }) as Promise<CallToolResult>;
      const request = await s.pendingVia('bob', args.reason);
      const id = request.id as string;
      const denied = await s.decide(id, 'bob', 'deny', { comment: 'not this customer' });
      expect(denied.status, denied.text).toBe(200);
      expect(denied.body.approval).toMatchObject({ status: 'denied', decidedBy: 'operator:bob' });

      const result = await call;
      expect(result.isError).toBe(true);
      expect(wardenError(result)).toMatchObject({
        code: 'APPROVAL_DENIED',
        rule: 'approval.denied',
        approvalId: id,
        decidedBy: 'operator:bob',
        comment: 'not this customer',
      });

      const entries = await s.audit();
      const mine = entries.filter((e) => e.traceId === request.traceId);
      expect(mine.filter((e) => e.event === 'TOOL_CALL')).toEqual([]);
      expect(byEvent(mine, 'TOOL_DENIED').map((e) => e.decision?.code)).toEqual(['APPROVAL_DENIED']);
      const deniedEntries = byEvent(aboutApproval(entries, id), 'APPROVAL_DENIED');
      expect(deniedEntries).toHaveLength(1);
      expect(deniedEntries[0]).toMatchObject({ actorType: 'HUMAN', actorId: 'operator:bob' });
      expect(dataOf(deniedEntries[0])).toMatchObject({ reason: 'human', comment: 'not this customer' });
      expect((await s.t.gw.approvals.get(id))?.consumedAt).toBeNull();
    });

    it('nobody deciding in time is a denial: APPROVAL_TIMEOUT, audited once with reason timeout', async () => {
      const client = await s.t.mcp(s.agentToken);
      const args = refund('mcp timeout', 270);
      const call = client.callTool({ name: 'issue_refund', arguments: args }, undefined, {
        onprogress: () => {},
        resetTimeoutOnProgress: true,
        timeout: 30_000,
      }) as Promise<CallToolResult>;
      const request = await s.pendingInStore(args.reason);
      expect(request.expiresAt - request.createdAt).toBe(TIMEOUT_MS);

      s.t.clock.advance(TIMEOUT_MS + 500);
      // The waiting call, the sweeper and these all race to expire it; exactly one may audit it.
      await Promise.all([s.t.gw.approvals.expireDue(), s.t.gw.approvals.expire(request.id)]);
      const result = await call;
      expect(result.isError).toBe(true);
      expect(wardenError(result)).toMatchObject({ code: 'APPROVAL_TIMEOUT', approvalId: request.id });
      await s.t.gw.approvals.expire(request.id);

      const entries = await s.audit();
      const timeouts = byEvent(aboutApproval(entries, request.id), 'APPROVAL_DENIED');
      expect(timeouts).toHaveLength(1);
      expect(timeouts[0]).toMatchObject({
        actorType: 'SYSTEM',
        actorId: 'system:timeout',
        result: 'timeout',
      });
      expect(dataOf(timeouts[0]).reason).toBe('timeout');
      expect(entries.filter((e) => e.traceId === request.traceId && e.event === 'TOOL_CALL')).toEqual([]);
      expect((await s.t.gw.approvals.get(request.id))?.status).toBe('expired');
    });
  });

  describe('MCP callers that do not wait', () => {
    it('_meta warden/approval "pending" answers at once with the id; a retry with warden/approvalId runs once', async () => {
      const client = await s.t.mcp(s.agentToken);
      const args = refund('mcp pending', 270);
      const first = (await client.callTool({
        name: 'issue_refund',
        arguments: args,
        _meta: { 'warden/approval': 'pending' },
      })) as CallToolResult;
      expect(first.isError).toBe(true);
      const pending = wardenError(first);
      expect(pending).toMatchObject({
        code: 'APPROVAL_PENDING',
        rule: 'approval.pending',
        status: 'pending',
      });
      const id = pending?.approvalId as string;
      expect(id).toMatch(/^apr_/);
      // Polling by retrying: still pending, the same request (no second one is asked for).
      const poll = (await client.callTool({
        name: 'issue_refund',
        arguments: args,
        _meta: { 'warden/approval': 'pending', 'warden/approvalId': id },
      })) as CallToolResult;
      expect(wardenError(poll)).toMatchObject({ code: 'APPROVAL_PENDING', approvalId: id });
      expect(
        (await s.t.gw.approvals.list({ agentId: 'demo-support', limit: 500 })).filter(
          (a) => (a.arguments as { reason?: string }).reason === args.reason,
        ),
      ).toHaveLength(1);

      expect((await s.decide(id, 'bob', 'approve')).status).toBe(200);
      const ran = (await client.callTool({
        name: 'issue_refund',
        arguments: args,
        _meta: { 'warden/approvalId': id },
      })) as CallToolResult;
      expect(ran.isError, JSON.stringify(ran)).toBeFalsy();
      expect(ran.structuredContent).toMatchObject({ amountCents: 270, status: 'issued' });
      const again = (await client.callTool({
        name: 'issue_refund',
        arguments: args,
        _meta: { 'warden/approvalId': id },
      })) as CallToolResult;
      expect(wardenError(again)?.code).toBe('APPROVAL_CONSUMED');
      const bad = (await client.callTool({
        name: 'issue_refund',
        arguments: args,
        _meta: { 'warden/approval': 'later' },
      })) as CallToolResult;
      expect(wardenError(bad)).toMatchObject({ code: 'INVALID_REQUEST', rule: 'approval.mode' });
    });
  });

  describe('REST callers that do not wait', () => {
    it('202 with the id; the agent polls its own request; the approval is used once, for this call only', async () => {
      const args = refund('rest pending', 280);
      const first = await s.rest('issue_refund', args, { approval: 'pending' });
      expect([first.status, first.error?.code, first.error?.rule], first.text).toEqual([
        202,
        'APPROVAL_PENDING',
        'approval.pending',
      ]);
      const id = first.error?.approvalId as string;
      expect(id).toMatch(/^apr_/);
      expect(first.headers.get('location')).toBe(`/v1/approvals/${id}`);
      expect(first.error?.status).toBe('pending');

      // `Prefer: respond-async` means the same, and the same call re-attaches to the same request.
      const again = await s.rest('issue_refund', args, {}, { headers: { prefer: 'respond-async' } });
      expect([again.status, again.error?.approvalId]).toEqual([202, id]);

      const mine = await request(`${s.t.gw.url}${first.headers.get('location')}`, { token: s.agentToken });
      expect(mine.status, mine.text).toBe(200);
      expect(mine.body.approval).toMatchObject({ id, status: 'pending', toolName: 'issue_refund' });
      const otherAgent = await s.t.operatorToken('analyst-1');
      expectCleanError(
        await request(`${s.t.gw.url}/v1/approvals/${id}`, { token: otherAgent }),
        404,
        'APPROVAL_NOT_FOUND',
      );
      expectCleanError(await request(`${s.t.gw.url}/v1/approvals/${id}`, {}), 401, 'UNAUTHENTICATED');

      expect((await s.decide(id, 'alice', 'approve')).status).toBe(200);
      const status = await request(`${s.t.gw.url}/v1/approvals/${id}`, { token: s.agentToken });
      expect(status.body.approval).toMatchObject({ status: 'approved' });

      // Another call presenting the id is refused, and does not use the approval up.
      const other = await s.rest('issue_refund', { ...args, amountCents: 9_000 }, { approvalId: id });
      expect([other.status, other.error?.code, other.error?.rule]).toEqual([
        403,
        'APPROVAL_MISMATCH',
        'approval.match',
      ]);

      const traceId = `retry-${id}`;
      const ran = await s.rest('issue_refund', args, { approvalId: id, traceId });
      expect(ran.status, ran.text).toBe(200);
      expect(ran.body.result.structuredContent).toMatchObject({ amountCents: 280, status: 'issued' });
      const attempts = (await s.t.gw.audit.read({ traceId })).filter((e) => e.event === 'TOOL_CALL');
      expect(attempts.map((e) => e.result)).toEqual(['pending', 'success']);
      expect(dataOf(attempts[0]).approvalId).toBe(id);

      const twice = await s.rest('issue_refund', args, { approvalId: id });
      expect([twice.status, twice.error?.code, twice.error?.rule]).toEqual([
        409,
        'APPROVAL_CONSUMED',
        'approval.single-use',
      ]);
      const used = await request(`${s.t.gw.url}/v1/approvals/${id}`, { token: s.agentToken });
      expect(used.body.approval.status).toBe('used');
      // Exactly one refund ran on this approval.
      const ranOnIt = byEvent(await s.audit(), 'TOOL_CALL').filter(
        (e) => dataOf(e).phase === 'attempt' && dataOf(e).approvalId === id,
      );
      expect(ranOnIt).toHaveLength(1);
    });

    it('a malformed or unknown approval id is refused before anything is asked', async () => {
      const args = refund('rest bad id', 290);
      const bad = await s.rest('issue_refund', args, { approvalId: 'not-an-approval' });
      expectCleanError(bad, 400, 'INVALID_REQUEST');
      const unknown = await s.rest('issue_refund', args, { approvalId: 'apr_0000000000000000' });
      expectCleanError(unknown, 404, 'APPROVAL_NOT_FOUND');
      const mode = await s.rest('issue_refund', args, { approval: 'sometimes' });
      expectCleanError(mode, 400, 'INVALID_REQUEST');
      expect(
        (await s.t.gw.approvals.list({ limit: 500 })).filter(
          (a) => a.toolName === 'issue_refund' && (a.arguments as { reason: string }).reason === args.reason,
        ),
      ).toEqual([]);
    });
  });

  describe('edit before approve', () => {
    it('the approver lowers the amount: the call runs with it, and the rewrite is on record', async () => {
      const args = refund('edit', 900);
      const id = await s.held(args);

      const broken = await s.decide(id, 'alice', 'approve', { arguments: { amountCents: 'lots' } });
      expect(expectCleanError(broken, 400, 'APPROVAL_ARGUMENTS_INVALID').message).toMatch(/amountCents/);
      const badOrder = await s.decide(id, 'alice', 'approve', { arguments: { orderId: 'ORD-1' } });
      expectCleanError(badOrder, 400, 'APPROVAL_ARGUMENTS_INVALID');
      expect((await s.admin(`/approvals/${id}`, 'alice')).body.approval).toMatchObject({
        status: 'pending',
        argumentPatch: null,
      });

      const edited = await s.decide(id, 'alice', 'approve', {
        arguments: { amountCents: 300 },
        comment: 'partial',
      });
      expect(edited.status, edited.text).toBe(200);
      expect(edited.body.approval).toMatchObject({ status: 'approved', argumentPatch: { amountCents: 300 } });
      const agentView = await request(`${s.t.gw.url}/v1/approvals/${id}`, { token: s.agentToken });
      expect(agentView.body.approval).toMatchObject({ status: 'approved', argumentsEdited: true });

      // The agent retries its own call; what runs is the approved one.
      const traceId = `edited-${id}`;
      const ran = await s.rest('issue_refund', args, { approvalId: id, traceId });
      expect(ran.status, ran.text).toBe(200);
      expect(ran.body.result.structuredContent).toMatchObject({ amountCents: 300, status: 'issued' });

      const entries = await s.audit();
      const [attempt] = entries.filter((e) => e.traceId === traceId && e.event === 'TOOL_CALL');
      expect(attempt?.parameters).toEqual({ ...args, amountCents: 300 });
      expect(dataOf(attempt)).toMatchObject({
        approvalId: id,
        rewrite: { originalParameters: args, argumentPatch: { amountCents: 300 } },
      });
      const granted = byEvent(aboutApproval(entries, id), 'APPROVAL_GRANTED');
      expect(granted).toHaveLength(1);
      expect(granted[0]?.decision?.rule).toBe('approval.human.edited');
      expect(dataOf(granted[0]).rewrite).toMatchObject({ argumentPatch: { amountCents: 300 } });
      // The refused edits were audited as refusals, not decisions.
      const refused = byEvent(aboutApproval(entries, id), 'REQUEST_REJECTED');
      expect(refused.map((e) => e.decision?.code)).toEqual([
        'APPROVAL_ARGUMENTS_INVALID',
        'APPROVAL_ARGUMENTS_INVALID',
      ]);
    });
  });

  describe('an approval is for one call, by this agent for this user, for a while', () => {
    it('an edit may not add an argument the agent did not send, and a changed edit is not a repeat', async () => {
      const args = refund('no new keys', 640);
      const id = await s.held(args);
      const added = await s.decide(id, 'alice', 'approve', { arguments: { refundTo: 'IBAN DE00 0000' } });
      expect(expectCleanError(added, 400, 'APPROVAL_ARGUMENTS_INVALID').rule).toBe(
        'approval.edit-adds-argument',
      );
      expect((await s.t.gw.approvals.get(id))?.status).toBe('pending');
      expect((await s.decide(id, 'alice', 'approve', { arguments: { amountCents: 600 } })).status).toBe(200);
      const same = await s.decide(id, 'alice', 'approve', { arguments: { amountCents: 600 } });
      expect([same.status, same.body.repeated]).toEqual([200, true]);
      // Another edit after the fact is not the same decision: the first one stands.
      expectCleanError(
        await s.decide(id, 'alice', 'approve', { arguments: { amountCents: 10 } }),
        409,
        'APPROVAL_ALREADY_DECIDED',
      );
      expect((await s.t.gw.approvals.get(id))?.argumentPatch).toEqual({ amountCents: 600 });
    });

    it("an approval given for alice's session cannot be used from a session acting for bob", async () => {
      const args = refund('user bound', 660);
      const forAlice = (await s.t.gw.tokens.issue('demo-support', { userId: 'alice' })).token;
      const forBob = (await s.t.gw.tokens.issue('demo-support', { userId: 'bob' })).token;
      const id = await s.held(args, forAlice);
      expect((await s.decide(id, 'root', 'approve')).status).toBe(200);
      const stolen = await s.rest('issue_refund', args, { approvalId: id }, { token: forBob });
      expect(expectCleanError(stolen, 403, 'APPROVAL_MISMATCH').rule).toBe('approval.match');
      // Without the id, bob's identical call does not re-attach to alice's approval: it asks anew.
      const fresh = await s.rest('issue_refund', args, { approval: 'pending' }, { token: forBob });
      expect([fresh.status, fresh.error?.code]).toEqual([202, 'APPROVAL_PENDING']);
      expect(fresh.error?.approvalId).not.toBe(id);
      expect((await s.t.gw.approvals.get(fresh.error?.approvalId as string))?.userId).toBe('bob');
      expect((await s.rest('issue_refund', args, { approvalId: id }, { token: forAlice })).status).toBe(200);
    });

    it('an approval not used within the timeout of its decision expires; a request past its time reads expired at once', async () => {
      const args = refund('use window', 670);
      const id = await s.held(args);
      expect((await s.decide(id, 'alice', 'approve')).status).toBe(200);
      s.t.clock.advance(TIMEOUT_MS + 1);
      const late = await s.rest('issue_refund', args, { approvalId: id });
      expect(expectCleanError(late, 409, 'APPROVAL_EXPIRED').rule).toBe('approval.use-window');
      expect((await s.t.gw.approvals.get(id))?.consumedAt).toBeNull();

      // A pending request whose time is up is denied when anyone looks, not only by the sweeper.
      const other = refund('read expired', 680);
      const pendingId = await s.held(other);
      s.t.clock.advance(TIMEOUT_MS + 1);
      const status = await request(`${s.t.gw.url}/v1/approvals/${pendingId}`, { token: s.agentToken });
      expect(status.body.approval?.status).toBe('expired');
      const again = await s.rest('issue_refund', other, { approvalId: pendingId, approval: 'pending' });
      expectCleanError(again, 403, 'APPROVAL_TIMEOUT');
    });
  });

  describe('medium risk: runs at once, flagged for review', () => {
    it('create_support_ticket runs; a reviewer records one verdict; a different second verdict is refused', async () => {
      const traceId = 'ticket-review-0001';
      const ran = await s.rest(
        'create_support_ticket',
        { orderId: ORDER, subject: 'Late parcel', body: 'The customer is waiting.' },
        { traceId },
      );
      expect(ran.status, ran.text).toBe(200);
      expect(ran.body.result.structuredContent).toMatchObject({ status: 'open' });

      const list = await s.admin('/approvals?kind=review&status=flagged', 'carol');
      expect(list.status, list.text).toBe(200);
      const review = (list.body.approvals as Array<Record<string, unknown>>).find(
        (a) => a.traceId === traceId,
      );
      expect(review).toMatchObject({
        kind: 'review',
        status: 'flagged',
        risk: 'medium',
        toolName: 'create_support_ticket',
        rule: 'risk.medium-review',
        expiresAt: null,
      });
      const id = review?.id as string;
      expect(id).toMatch(/^rev_/);

      let entries = await s.audit();
      const flagged = byEvent(aboutApproval(entries, id), 'REVIEW_FLAGGED');
      expect(flagged).toHaveLength(1);
      expect(flagged[0]).toMatchObject({ traceId, result: 'success' });
      const [attempt] = entries.filter((e) => e.traceId === traceId && e.event === 'TOOL_CALL');
      expect(dataOf(attempt)).toMatchObject({ reviewId: id, risk: 'medium' });

      // Auditors look, approvers judge; a review is not an approval.
      expectCleanError(
        await s.admin(`/approvals/${id}/review`, 'carol', { json: { verdict: 'ok' } }),
        403,
        'APPROVER_FORBIDDEN',
      );
      expectCleanError(await s.decide(id, 'alice', 'approve'), 404, 'APPROVAL_NOT_FOUND');

      const ok = await s.admin(`/approvals/${id}/review`, 'alice', {
        json: { verdict: 'ok', comment: 'fine' },
      });
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body).toMatchObject({
        repeated: false,
        approval: { id, status: 'reviewed', verdict: 'ok', decidedBy: 'operator:alice' },
      });
      const same = await s.admin(`/approvals/${id}/review`, 'alice', { json: { verdict: 'ok' } });
      expect([same.status, same.body.repeated]).toEqual([200, true]);
      const other = await s.admin(`/approvals/${id}/review`, 'alice', { json: { verdict: 'concern' } });
      expectCleanError(other, 409, 'APPROVAL_ALREADY_DECIDED');
      const bobToo = await s.admin(`/approvals/${id}/review`, 'bob', { json: { verdict: 'ok' } });
      expectCleanError(bobToo, 409, 'APPROVAL_ALREADY_DECIDED');

      entries = await s.audit();
      const recorded = byEvent(aboutApproval(entries, id), 'REVIEW_RECORDED');
      expect(recorded).toHaveLength(1);
      expect(recorded[0]).toMatchObject({ actorType: 'HUMAN', actorId: 'operator:alice' });
      expect(dataOf(recorded[0])).toMatchObject({ verdict: 'ok', requestTraceId: traceId, comment: 'fine' });
      expect((await s.admin(`/approvals/${id}`, 'carol')).body.approval).toMatchObject({
        status: 'reviewed',
        verdict: 'ok',
      });
    });

    it('a low-risk call is neither held nor flagged', async () => {
      const traceId = 'lookup-no-review-01';
      expect((await s.rest('lookup_order', { orderId: ORDER }, { traceId })).status).toBe(200);
      expect((await s.t.gw.approvals.list({ limit: 500 })).filter((a) => a.traceId === traceId)).toEqual([]);
    });
  });

  describe('critical risk never runs automatically', () => {
    it('bulk_message is refused with APPROVAL_REQUIRED and no request is created', async () => {
      const traceId = 'bulk-critical-0001';
      const r = await s.rest('bulk_message', { audience: 'all_customers', message: 'Hello' }, { traceId });
      const error = expectCleanError(r, 403, 'APPROVAL_REQUIRED');
      expect(error.rule).toBe('risk.critical-never-automatic');
      expect(error.risk).toBe('critical');
      // Asking to wait changes nothing.
      const waiting = await s.rest(
        'bulk_message',
        { audience: 'all_customers', message: 'Hello' },
        { approval: 'wait' },
      );
      expect(waiting.error?.code).toBe('APPROVAL_REQUIRED');
      expect(
        (await s.t.gw.approvals.list({ limit: 500 })).filter((a) => a.toolName === 'bulk_message'),
      ).toEqual([]);
      const [denied] = (await s.t.gw.audit.read({ traceId })).filter((e) => e.event === 'TOOL_DENIED');
      expect(denied?.decision).toMatchObject({
        code: 'APPROVAL_REQUIRED',
        rule: 'risk.critical-never-automatic',
      });
    });

    it('an approval given while the tool was high does not let it run once policy makes it critical', async () => {
      const args = refund('raised to critical', 310);
      const id = await s.held(args);
      expect((await s.decide(id, 'alice', 'approve')).status).toBe(200);

      writeFileSync(
        s.policyFile,
        [
          '@id("refunds-now-critical")',
          '@obligation',
          '@risk("critical")',
          'permit (principal, action == Warden::Action::"call", resource == Warden::Tool::"issue_refund");',
          '',
        ].join('\n'),
      );
      try {
        expect((await s.t.gw.policy.reload('sighup')).ok).toBe(true);
        const refused = await s.rest('issue_refund', args, { approvalId: id });
        const error = expectCleanError(refused, 403, 'APPROVAL_REQUIRED');
        expect(error).toMatchObject({
          rule: 'risk.critical-never-automatic',
          risk: 'critical',
          raisedFrom: 'high',
        });
        // Refused before the approval was touched: it is still there, unused.
        expect((await s.t.gw.approvals.get(id))?.consumedAt).toBeNull();
      } finally {
        writeFileSync(s.policyFile, '// nothing extra again\n');
        expect((await s.t.gw.policy.reload('sighup')).ok).toBe(true);
      }
      // With the class back to high the same approval still works, once.
      const ran = await s.rest('issue_refund', args, { approvalId: id });
      expect(ran.status, ran.text).toBe(200);
    });
  });
});
