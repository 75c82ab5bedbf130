/**
 * Human in the loop (issue #5), end to end on an in-process gateway: a real MCP
 * SDK client and REST callers hit high-, medium- and critical-risk tools while
 * operators decide through the admin API (and the `warden approvals` CLI).
 * The gateway's clock is a ManualClock, so every expiry happens exactly when a
 * test moves the clock, never because a machine was slow.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorTokens } from '../../src/approvals/index.js';
import type { Approval } from '../../src/approvals/types.js';
import type { AuditEntry } from '../../src/audit/index.js';
import type { WardenConfig } from '../../src/config/types.js';
import { ManualClock } from '../../src/util/clock.js';
import {
  describeResult,
  killAllWardens,
  runWarden,
  STACK_FRAME,
  TIME_SCALE,
  waitFor,
} from '../helpers/cli-process.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ORDER = 'ORD-4F8K2P1Z';
/** Every request of the suite expires this long after it is made (on the gateway's manual clock). */
const TIMEOUT_MS = 2_000;
const OPERATORS: WardenConfig['operators'] = [
  { id: 'alice', roles: ['approver'] },
  { id: 'bob', roles: ['approver'] },
  { id: 'root', roles: ['admin'] },
  { id: 'carol', roles: ['auditor'] },
];

/** The public error shape (plus whatever data the code carries). */
interface ErrorJson {
  code: string;
  message: string;
  traceId: string;
  rule?: string;
  [key: string]: unknown;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: assertions read arbitrary JSON fields
  body: any;
  error: ErrorJson | undefined;
}

/** Distinct arguments per test: a retried call re-attaches to an open request with the same ones. */
const refund = (tag: string, amountCents = 100) => ({ orderId: ORDER, amountCents, reason: `e2e ${tag}` });

const wardenError = (r: CallToolResult) =>
  (r._meta as Record<string, ErrorJson> | undefined)?.['warden/error'];

/** The config shared by the suites: operators, short approvals, progress every second. */
function withApprovals(config: WardenConfig): void {
  config.operators = OPERATORS.map((o) => ({ ...o, roles: [...o.roles] }));
  config.approvals.timeoutMs = TIMEOUT_MS;
  config.approvals.progressIntervalMs = 1_000;
}

async function request(
  url: string,
  init: {
    method?: string;
    token?: string | undefined;
    json?: unknown;
    raw?: string;
    headers?: Record<string, string>;
  },
): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const hasBody = init.json !== undefined || init.raw !== undefined;
  if (hasBody) headers['content-type'] ??= 'application/json';
  const res = await fetch(url, {
    method: init.method ?? (hasBody ? 'POST' : 'GET'),
    headers,
    ...(hasBody ? { body: init.raw ?? JSON.stringify(init.json) } : {}),
  });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const error = (body as { error?: ErrorJson } | null)?.error;
  return { status: res.status, headers: res.headers, text, body, error };
}

/** What every refusal must look like: the code, a trace id (also in the header), and no stack. */
function expectCleanError(a: Answer, status: number, code: string): ErrorJson {
  expect([a.status, a.error?.code], a.text).toEqual([status, code]);
  expect(a.headers.get('content-type')).toContain('application/json');
  expect(a.error?.traceId).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
  expect(a.headers.get('x-trace-id')).toBe(a.error?.traceId);
  expect(a.text).not.toMatch(STACK_FRAME);
  expect(a.text).not.toMatch(/"stack"|node_modules|\.ts:\d+/);
  return a.error!;
}

const byEvent = (entries: AuditEntry[], event: AuditEntry['event']) =>
  entries.filter((e) => e.event === event);
const dataOf = (e: AuditEntry | undefined) => (e?.data ?? {}) as Record<string, unknown>;
const aboutApproval = (entries: AuditEntry[], id: string) =>
  entries.filter((e) => dataOf(e).approvalId === id || dataOf(e).reviewId === id);

describe('approvals: human in the loop on a running gateway', { timeout: 60_000 * TIME_SCALE }, () => {
  const target = makeTarget('sqlite');
  const dir = mkdtempSync(join(tmpdir(), 'warden-approvals-e2e-'));
  const policyFile = join(dir, 'extra.cedar');
  let t: TestGateway;
  let agentToken: string;
  const operatorToken: Record<string, string> = {};

  beforeAll(async () => {
    writeFileSync(policyFile, '// nothing extra yet\n');
    t = await startTestGateway(target, (config) => {
      withApprovals(config);
      config.policy = { files: [policyFile], rules: [], arguments: {}, timezone: 'UTC', watch: false };
      // bulk_message (critical) must get past the agent's lists to meet the risk gate.
      const demo = config.agents.find((a) => a.id === 'demo-support')!;
      demo.allowedTools = [...demo.allowedTools, 'bulk_message'];
      demo.deniedTools = ['delete_account'];
    });
    agentToken = await t.operatorToken('demo-support');
    for (const op of OPERATORS)
      operatorToken[op.id] = (await t.gw.operatorTokens.issue(op.id, 3_600_000)).token;
  });
  afterAll(async () => {
    await killAllWardens();
    await t?.close();
    await target.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const admin = (
    path: string,
    as: string | undefined,
    init: { method?: string; json?: unknown; raw?: string; headers?: Record<string, string> } = {},
  ) =>
    request(`${t.gw.url}/admin/v1${path}`, {
      ...init,
      token: as === undefined ? undefined : (operatorToken[as] ?? as),
    });
  const decide = (id: string, as: string, action: 'approve' | 'deny', json: object = {}) =>
    admin(`/approvals/${id}/${action}`, as, { json });

  const rest = (
    toolName: string,
    parameters: Record<string, unknown>,
    extra: Record<string, unknown> = {},
    opts: { token?: string; headers?: Record<string, string> } = {},
  ) =>
    request(`${t.gw.url}/v1/tool-calls`, {
      token: opts.token ?? agentToken,
      json: { toolName, parameters, ...extra },
      ...(opts.headers ? { headers: opts.headers } : {}),
    });

  /** A REST call that answers at once: 202 with the id of its (new or re-attached) request. */
  async function held(parameters: Record<string, unknown>, token?: string): Promise<string> {
    const r = await rest('issue_refund', parameters, { approval: 'pending' }, token ? { token } : {});
    expect([r.status, r.error?.code], r.text).toEqual([202, 'APPROVAL_PENDING']);
    return r.error?.approvalId as string;
  }

  /** The pending request for `reason`, as operators see it through the admin API (polled). */
  async function pendingVia(as: string, reason: string): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined;
    const ok = await waitFor(async () => {
      const list = await admin('/approvals?status=pending&kind=approval&agent=demo-support', as);
      expect(list.status, list.text).toBe(200);
      found = (list.body.approvals as Array<Record<string, unknown>>).find(
        (a) => (a.arguments as { reason?: string }).reason === reason,
      );
      return found !== undefined;
    }, 10_000);
    expect(ok, `no pending request for "${reason}"`).toBe(true);
    return found!;
  }

  /** The store's view of a request that a waiting caller made (polled until it exists). */
  async function pendingInStore(reason: string): Promise<Approval> {
    let found: Approval | undefined;
    const ok = await waitFor(async () => {
      found = (await t.gw.approvals.list({ status: 'pending', limit: 500 })).find(
        (a) => (a.arguments as { reason?: string }).reason === reason,
      );
      return found !== undefined;
    }, 10_000);
    expect(ok, `no pending request for "${reason}"`).toBe(true);
    return found!;
  }

  const audit = () => t.gw.audit.read({ limit: 10_000 });

  describe('MCP callers wait, with progress', () => {
    it('an approved call runs after the approval, and the audit trail tells the story in order', async () => {
      const client = await t.mcp(agentToken);
      const progress: Array<{ progress: number; message?: string }> = [];
      const args = refund('mcp approve', 250);
      const call = client.callTool({ name: 'issue_refund', arguments: args }, undefined, {
        onprogress: (p) => progress.push(p),
        resetTimeoutOnProgress: true,
        timeout: 30_000,
      }) as Promise<CallToolResult>;

      const request = await pendingVia('alice', args.reason);
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
      t.clock.advance(1_100);
      expect(await waitFor(() => progress.length >= 2, 10_000)).toBe(true);
      expect(progress[1]?.progress).toBeGreaterThan(progress[0]!.progress);
      expect(progress[1]?.message).toContain(id);

      const approved = await decide(id, 'alice', 'approve', { comment: 'customer called' });
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

      const entries = await audit();
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
      expect((await t.gw.approvals.get(id))?.consumedAt).not.toBeNull();
    });

    it('a denied call is refused with APPROVAL_DENIED and the comment; the tool never ran', async () => {
      const client = await t.mcp(agentToken);
      const args = refund('mcp deny', 260);
      const call = client.callTool({ name: 'issue_refund', arguments: args }, undefined, {
        onprogress: () => {},
        resetTimeoutOnProgress: true,
        timeout: 30_000,
      }) as Promise<CallToolResult>;
      const request = await pendingVia('bob', args.reason);
      const id = request.id as string;
      const denied = await decide(id, 'bob', 'deny', { comment: 'not this customer' });
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

      const entries = await audit();
      const mine = entries.filter((e) => e.traceId === request.traceId);
      expect(mine.filter((e) => e.event === 'TOOL_CALL')).toEqual([]);
      expect(byEvent(mine, 'TOOL_DENIED').map((e) => e.decision?.code)).toEqual(['APPROVAL_DENIED']);
      const deniedEntries = byEvent(aboutApproval(entries, id), 'APPROVAL_DENIED');
      expect(deniedEntries).toHaveLength(1);
      expect(deniedEntries[0]).toMatchObject({ actorType: 'HUMAN', actorId: 'operator:bob' });
      expect(dataOf(deniedEntries[0])).toMatchObject({ reason: 'human', comment: 'not this customer' });
      expect((await t.gw.approvals.get(id))?.consumedAt).toBeNull();
    });

    it('nobody deciding in time is a denial: APPROVAL_TIMEOUT, audited once with reason timeout', async () => {
      const client = await t.mcp(agentToken);
      const args = refund('mcp timeout', 270);
      const call = client.callTool({ name: 'issue_refund', arguments: args }, undefined, {
        onprogress: () => {},
        resetTimeoutOnProgress: true,
        timeout: 30_000,
      }) as Promise<CallToolResult>;
      const request = await pendingInStore(args.reason);
      expect(request.expiresAt - request.createdAt).toBe(TIMEOUT_MS);

      t.clock.advance(TIMEOUT_MS + 500);
      // The waiting call, the sweeper and these all race to expire it; exactly one may audit it.
      await Promise.all([t.gw.approvals.expireDue(), t.gw.approvals.expire(request.id)]);
      const result = await call;
      expect(result.isError).toBe(true);
      expect(wardenError(result)).toMatchObject({ code: 'APPROVAL_TIMEOUT', approvalId: request.id });
      await t.gw.approvals.expire(request.id);

      const entries = await audit();
      const timeouts = byEvent(aboutApproval(entries, request.id), 'APPROVAL_DENIED');
      expect(timeouts).toHaveLength(1);
      expect(timeouts[0]).toMatchObject({
        actorType: 'SYSTEM',
        actorId: 'system:timeout',
        result: 'timeout',
      });
      expect(dataOf(timeouts[0]).reason).toBe('timeout');
      expect(entries.filter((e) => e.traceId === request.traceId && e.event === 'TOOL_CALL')).toEqual([]);
      expect((await t.gw.approvals.get(request.id))?.status).toBe('expired');
    });
  });

  describe('MCP callers that do not wait', () => {
    it('_meta warden/approval "pending" answers at once with the id; a retry with warden/approvalId runs once', async () => {
      const client = await t.mcp(agentToken);
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
        (await t.gw.approvals.list({ agentId: 'demo-support', limit: 500 })).filter(
          (a) => (a.arguments as { reason?: string }).reason === args.reason,
        ),
      ).toHaveLength(1);

      expect((await decide(id, 'bob', 'approve')).status).toBe(200);
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
      const first = await rest('issue_refund', args, { approval: 'pending' });
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
      const again = await rest('issue_refund', args, {}, { headers: { prefer: 'respond-async' } });
      expect([again.status, again.error?.approvalId]).toEqual([202, id]);

      const mine = await request(`${t.gw.url}${first.headers.get('location')}`, { token: agentToken });
      expect(mine.status, mine.text).toBe(200);
      expect(mine.body.approval).toMatchObject({ id, status: 'pending', toolName: 'issue_refund' });
      const otherAgent = await t.operatorToken('analyst-1');
      expectCleanError(
        await request(`${t.gw.url}/v1/approvals/${id}`, { token: otherAgent }),
        404,
        'APPROVAL_NOT_FOUND',
      );
      expectCleanError(await request(`${t.gw.url}/v1/approvals/${id}`, {}), 401, 'UNAUTHENTICATED');

      expect((await decide(id, 'alice', 'approve')).status).toBe(200);
      const status = await request(`${t.gw.url}/v1/approvals/${id}`, { token: agentToken });
      expect(status.body.approval).toMatchObject({ status: 'approved' });

      // Another call presenting the id is refused, and does not use the approval up.
      const other = await rest('issue_refund', { ...args, amountCents: 9_000 }, { approvalId: id });
      expect([other.status, other.error?.code, other.error?.rule]).toEqual([
        403,
        'APPROVAL_MISMATCH',
        'approval.match',
      ]);

      const traceId = `retry-${id}`;
      const ran = await rest('issue_refund', args, { approvalId: id, traceId });
      expect(ran.status, ran.text).toBe(200);
      expect(ran.body.result.structuredContent).toMatchObject({ amountCents: 280, status: 'issued' });
      const attempts = (await t.gw.audit.read({ traceId })).filter((e) => e.event === 'TOOL_CALL');
      expect(attempts.map((e) => e.result)).toEqual(['pending', 'success']);
      expect(dataOf(attempts[0]).approvalId).toBe(id);

      const twice = await rest('issue_refund', args, { approvalId: id });
      expect([twice.status, twice.error?.code, twice.error?.rule]).toEqual([
        409,
        'APPROVAL_CONSUMED',
        'approval.single-use',
      ]);
      const used = await request(`${t.gw.url}/v1/approvals/${id}`, { token: agentToken });
      expect(used.body.approval.status).toBe('used');
      // Exactly one refund ran on this approval.
      const ranOnIt = byEvent(await audit(), 'TOOL_CALL').filter(
        (e) => dataOf(e).phase === 'attempt' && dataOf(e).approvalId === id,
      );
      expect(ranOnIt).toHaveLength(1);
    });

    it('a malformed or unknown approval id is refused before anything is asked', async () => {
      const args = refund('rest bad id', 290);
      const bad = await rest('issue_refund', args, { approvalId: 'not-an-approval' });
      expectCleanError(bad, 400, 'INVALID_REQUEST');
      const unknown = await rest('issue_refund', args, { approvalId: 'apr_0000000000000000' });
      expectCleanError(unknown, 404, 'APPROVAL_NOT_FOUND');
      const mode = await rest('issue_refund', args, { approval: 'sometimes' });
      expectCleanError(mode, 400, 'INVALID_REQUEST');
      expect(
        (await t.gw.approvals.list({ limit: 500 })).filter(
          (a) => a.toolName === 'issue_refund' && (a.arguments as { reason: string }).reason === args.reason,
        ),
      ).toEqual([]);
    });
  });

  describe('edit before approve', () => {
    it('the approver lowers the amount: the call runs with it, and the rewrite is on record', async () => {
      const args = refund('edit', 900);
      const id = await held(args);

      const broken = await decide(id, 'alice', 'approve', { arguments: { amountCents: 'lots' } });
      expect(expectCleanError(broken, 400, 'APPROVAL_ARGUMENTS_INVALID').message).toMatch(/amountCents/);
      const badOrder = await decide(id, 'alice', 'approve', { arguments: { orderId: 'ORD-1' } });
      expectCleanError(badOrder, 400, 'APPROVAL_ARGUMENTS_INVALID');
      expect((await admin(`/approvals/${id}`, 'alice')).body.approval).toMatchObject({
        status: 'pending',
        argumentPatch: null,
      });

      const edited = await decide(id, 'alice', 'approve', {
        arguments: { amountCents: 300 },
        comment: 'partial',
      });
      expect(edited.status, edited.text).toBe(200);
      expect(edited.body.approval).toMatchObject({ status: 'approved', argumentPatch: { amountCents: 300 } });
      const agentView = await request(`${t.gw.url}/v1/approvals/${id}`, { token: agentToken });
      expect(agentView.body.approval).toMatchObject({ status: 'approved', argumentsEdited: true });

      // The agent retries its own call; what runs is the approved one.
      const traceId = `edited-${id}`;
      const ran = await rest('issue_refund', args, { approvalId: id, traceId });
      expect(ran.status, ran.text).toBe(200);
      expect(ran.body.result.structuredContent).toMatchObject({ amountCents: 300, status: 'issued' });

      const entries = await audit();
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
      const id = await held(args);
      const added = await decide(id, 'alice', 'approve', { arguments: { refundTo: 'IBAN DE00 0000' } });
      expect(expectCleanError(added, 400, 'APPROVAL_ARGUMENTS_INVALID').rule).toBe(
        'approval.edit-adds-argument',
      );
      expect((await t.gw.approvals.get(id))?.status).toBe('pending');
      expect((await decide(id, 'alice', 'approve', { arguments: { amountCents: 600 } })).status).toBe(200);
      const same = await decide(id, 'alice', 'approve', { arguments: { amountCents: 600 } });
      expect([same.status, same.body.repeated]).toEqual([200, true]);
      // Another edit after the fact is not the same decision: the first one stands.
      expectCleanError(
        await decide(id, 'alice', 'approve', { arguments: { amountCents: 10 } }),
        409,
        'APPROVAL_ALREADY_DECIDED',
      );
      expect((await t.gw.approvals.get(id))?.argumentPatch).toEqual({ amountCents: 600 });
    });

    it("an approval given for alice's session cannot be used from a session acting for bob", async () => {
      const args = refund('user bound', 660);
      const forAlice = (await t.gw.tokens.issue('demo-support', { userId: 'alice' })).token;
      const forBob = (await t.gw.tokens.issue('demo-support', { userId: 'bob' })).token;
      const id = await held(args, forAlice);
      expect((await decide(id, 'root', 'approve')).status).toBe(200);
      const stolen = await rest('issue_refund', args, { approvalId: id }, { token: forBob });
      expect(expectCleanError(stolen, 403, 'APPROVAL_MISMATCH').rule).toBe('approval.match');
      // Without the id, bob's identical call does not re-attach to alice's approval: it asks anew.
      const fresh = await rest('issue_refund', args, { approval: 'pending' }, { token: forBob });
      expect([fresh.status, fresh.error?.code]).toEqual([202, 'APPROVAL_PENDING']);
      expect(fresh.error?.approvalId).not.toBe(id);
      expect((await t.gw.approvals.get(fresh.error?.approvalId as string))?.userId).toBe('bob');
      expect((await rest('issue_refund', args, { approvalId: id }, { token: forAlice })).status).toBe(200);
    });

    it('an approval not used within the timeout of its decision expires; a request past its time reads expired at once', async () => {
      const args = refund('use window', 670);
      const id = await held(args);
      expect((await decide(id, 'alice', 'approve')).status).toBe(200);
      t.clock.advance(TIMEOUT_MS + 1);
      const late = await rest('issue_refund', args, { approvalId: id });
      expect(expectCleanError(late, 409, 'APPROVAL_EXPIRED').rule).toBe('approval.use-window');
      expect((await t.gw.approvals.get(id))?.consumedAt).toBeNull();

      // A pending request whose time is up is denied when anyone looks, not only by the sweeper.
      const other = refund('read expired', 680);
      const pendingId = await held(other);
      t.clock.advance(TIMEOUT_MS + 1);
      const status = await request(`${t.gw.url}/v1/approvals/${pendingId}`, { token: agentToken });
      expect(status.body.approval?.status).toBe('expired');
      const again = await rest('issue_refund', other, { approvalId: pendingId, approval: 'pending' });
      expectCleanError(again, 403, 'APPROVAL_TIMEOUT');
    });
  });

  describe('medium risk: runs at once, flagged for review', () => {
    it('create_support_ticket runs; a reviewer records one verdict; a different second verdict is refused', async () => {
      const traceId = 'ticket-review-0001';
      const ran = await rest(
        'create_support_ticket',
        { orderId: ORDER, subject: 'Late parcel', body: 'The customer is waiting.' },
        { traceId },
      );
      expect(ran.status, ran.text).toBe(200);
      expect(ran.body.result.structuredContent).toMatchObject({ status: 'open' });

      const list = await admin('/approvals?kind=review&status=flagged', 'carol');
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

      let entries = await audit();
      const flagged = byEvent(aboutApproval(entries, id), 'REVIEW_FLAGGED');
      expect(flagged).toHaveLength(1);
      expect(flagged[0]).toMatchObject({ traceId, result: 'success' });
      const [attempt] = entries.filter((e) => e.traceId === traceId && e.event === 'TOOL_CALL');
      expect(dataOf(attempt)).toMatchObject({ reviewId: id, risk: 'medium' });

      // Auditors look, approvers judge; a review is not an approval.
      expectCleanError(
        await admin(`/approvals/${id}/review`, 'carol', { json: { verdict: 'ok' } }),
        403,
        'APPROVER_FORBIDDEN',
      );
      expectCleanError(await decide(id, 'alice', 'approve'), 404, 'APPROVAL_NOT_FOUND');

      const ok = await admin(`/approvals/${id}/review`, 'alice', {
        json: { verdict: 'ok', comment: 'fine' },
      });
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body).toMatchObject({
        repeated: false,
        approval: { id, status: 'reviewed', verdict: 'ok', decidedBy: 'operator:alice' },
      });
      const same = await admin(`/approvals/${id}/review`, 'alice', { json: { verdict: 'ok' } });
      expect([same.status, same.body.repeated]).toEqual([200, true]);
      const other = await admin(`/approvals/${id}/review`, 'alice', { json: { verdict: 'concern' } });
      expectCleanError(other, 409, 'APPROVAL_ALREADY_DECIDED');
      const bobToo = await admin(`/approvals/${id}/review`, 'bob', { json: { verdict: 'ok' } });
      expectCleanError(bobToo, 409, 'APPROVAL_ALREADY_DECIDED');

      entries = await audit();
      const recorded = byEvent(aboutApproval(entries, id), 'REVIEW_RECORDED');
      expect(recorded).toHaveLength(1);
      expect(recorded[0]).toMatchObject({ actorType: 'HUMAN', actorId: 'operator:alice' });
      expect(dataOf(recorded[0])).toMatchObject({ verdict: 'ok', requestTraceId: traceId, comment: 'fine' });
      expect((await admin(`/approvals/${id}`, 'carol')).body.approval).toMatchObject({
        status: 'reviewed',
        verdict: 'ok',
      });
    });

    it('a low-risk call is neither held nor flagged', async () => {
      const traceId = 'lookup-no-review-01';
      expect((await rest('lookup_order', { orderId: ORDER }, { traceId })).status).toBe(200);
      expect((await t.gw.approvals.list({ limit: 500 })).filter((a) => a.traceId === traceId)).toEqual([]);
    });
  });

  describe('critical risk never runs automatically', () => {
    it('bulk_message is refused with APPROVAL_REQUIRED and no request is created', async () => {
      const traceId = 'bulk-critical-0001';
      const r = await rest('bulk_message', { audience: 'all_customers', message: 'Hello' }, { traceId });
      const error = expectCleanError(r, 403, 'APPROVAL_REQUIRED');
      expect(error.rule).toBe('risk.critical-never-automatic');
      expect(error.risk).toBe('critical');
      // Asking to wait changes nothing.
      const waiting = await rest(
        'bulk_message',
        { audience: 'all_customers', message: 'Hello' },
        { approval: 'wait' },
      );
      expect(waiting.error?.code).toBe('APPROVAL_REQUIRED');
      expect(
        (await t.gw.approvals.list({ limit: 500 })).filter((a) => a.toolName === 'bulk_message'),
      ).toEqual([]);
      const [denied] = (await t.gw.audit.read({ traceId })).filter((e) => e.event === 'TOOL_DENIED');
      expect(denied?.decision).toMatchObject({
        code: 'APPROVAL_REQUIRED',
        rule: 'risk.critical-never-automatic',
      });
    });

    it('an approval given while the tool was high does not let it run once policy makes it critical', async () => {
      const args = refund('raised to critical', 310);
      const id = await held(args);
      expect((await decide(id, 'alice', 'approve')).status).toBe(200);

      writeFileSync(
        policyFile,
        [
          '@id("refunds-now-critical")',
          '@obligation',
          '@risk("critical")',
          'permit (principal, action == Warden::Action::"call", resource == Warden::Tool::"issue_refund");',
          '',
        ].join('\n'),
      );
      try {
        expect((await t.gw.policy.reload('sighup')).ok).toBe(true);
        const refused = await rest('issue_refund', args, { approvalId: id });
        const error = expectCleanError(refused, 403, 'APPROVAL_REQUIRED');
        expect(error).toMatchObject({
          rule: 'risk.critical-never-automatic',
          risk: 'critical',
          raisedFrom: 'high',
        });
        // Refused before the approval was touched: it is still there, unused.
        expect((await t.gw.approvals.get(id))?.consumedAt).toBeNull();
      } finally {
        writeFileSync(policyFile, '// nothing extra again\n');
        expect((await t.gw.policy.reload('sighup')).ok).toBe(true);
      }
      // With the class back to high the same approval still works, once.
      const ran = await rest('issue_refund', args, { approvalId: id });
      expect(ran.status, ran.text).toBe(200);
    });
  });

  describe('who may decide', () => {
    const routes = (id: string): Array<[string, string, unknown]> => [
      ['GET', '/whoami', undefined],
      ['GET', '/approvals', undefined],
      ['GET', `/approvals/${id}`, undefined],
      ['POST', `/approvals/${id}/approve`, {}],
      ['POST', `/approvals/${id}/deny`, {}],
      ['POST', `/approvals/${id}/review`, { verdict: 'ok' }],
    ];

    it('an agent token is refused by name on every admin route, and each refusal is audited', async () => {
      const id = await held(refund('agent tries', 320));
      for (const [method, path, json] of routes(id)) {
        const r = await admin(path, agentToken, { method, ...(json === undefined ? {} : { json }) });
        const error = expectCleanError(r, 403, 'AGENT_TOKEN_REFUSED');
        expect(error.rule).toBe('admin.no-agents');
        const [entry] = await t.gw.audit.read({ traceId: error.traceId });
        expect(entry, `${method} ${path}`).toMatchObject({
          event: 'REQUEST_REJECTED',
          actorType: 'AI_AGENT',
          result: 'denied',
          decision: { allowed: false, code: 'AGENT_TOKEN_REFUSED' },
        });
        expect(dataOf(entry)).toMatchObject({ face: 'admin', route: `${method} /admin/v1${path}` });
      }
      expect((await t.gw.approvals.get(id))?.status).toBe('pending');
    });

    it('no token, a garbage token, an unknown or an expired operator: 401 OPERATOR_UNAUTHENTICATED', async () => {
      const id = await held(refund('strangers', 330));
      for (const [method, path, json] of routes(id)) {
        const r = await admin(path, undefined, { method, ...(json === undefined ? {} : { json }) });
        expectCleanError(r, 401, 'OPERATOR_UNAUTHENTICATED');
      }
      expectCleanError(await decide(id, 'not.a.token', 'approve'), 401, 'OPERATOR_UNAUTHENTICATED');

      // Signed with the gateway's own keys, but for someone not (or no longer) in operators:.
      const base = {
        keys: t.gw.keys,
        issuer: `${t.gw.url}/oauth`,
        audience: `${t.gw.url}/admin`,
        operators: [{ id: 'mallory', roles: ['admin' as const] }, ...OPERATORS],
      };
      const ghost = await new OperatorTokens({ ...base, clock: t.clock }).issue('mallory', 600_000);
      expectCleanError(await decide(id, ghost.token, 'approve'), 401, 'OPERATOR_UNAUTHENTICATED');
      // A real operator's token that expired an hour ago (well past the allowed skew).
      const past = new ManualClock(t.clock.now() - 2 * 3_600_000);
      const expired = await new OperatorTokens({ ...base, clock: past }).issue('alice', 3_600_000);
      expectCleanError(await decide(id, expired.token, 'approve'), 401, 'OPERATOR_UNAUTHENTICATED');
      // A token for another gateway (audience) is no better.
      const elsewhere = await new OperatorTokens({
        ...base,
        audience: 'http://127.0.0.1:1/admin',
        clock: t.clock,
      }).issue('alice', 600_000);
      expectCleanError(await decide(id, elsewhere.token, 'approve'), 401, 'OPERATOR_UNAUTHENTICATED');
      expect((await t.gw.approvals.get(id))?.status).toBe('pending');
    });

    it('an auditor may look but not decide (APPROVER_FORBIDDEN, audited)', async () => {
      const id = await held(refund('auditor', 340));
      const who = await admin('/whoami', 'carol');
      expect([who.status, who.body.operator]).toEqual([200, { id: 'carol', roles: ['auditor'] }]);
      expect((await admin('/approvals?status=pending', 'carol')).status).toBe(200);
      expect((await admin(`/approvals/${id}`, 'carol')).body.approval.id).toBe(id);
      for (const action of ['approve', 'deny'] as const) {
        const error = expectCleanError(await decide(id, 'carol', action), 403, 'APPROVER_FORBIDDEN');
        const [entry] = await t.gw.audit.read({ traceId: error.traceId });
        expect(entry).toMatchObject({ event: 'REQUEST_REJECTED', actorType: 'HUMAN' });
      }
      expect((await t.gw.approvals.get(id))?.status).toBe('pending');
      // An admin may decide.
      expect((await decide(id, 'root', 'deny')).body.approval).toMatchObject({ decidedBy: 'operator:root' });
    });

    it('separation of duties: the user an agent acts for may not approve its request; someone else may', async () => {
      const forAlice = (await t.gw.tokens.issue('demo-support', { userId: 'alice' })).token;
      const id = await held(refund('on behalf of alice', 350), forAlice);
      expect((await t.gw.approvals.get(id))?.userId).toBe('alice');

      for (const action of ['approve', 'deny'] as const) {
        const error = expectCleanError(await decide(id, 'alice', action), 403, 'SELF_APPROVAL_FORBIDDEN');
        expect(error.rule).toBe('approval.separation-of-duties');
        const [entry] = await t.gw.audit.read({ traceId: error.traceId });
        expect(entry).toMatchObject({
          event: 'REQUEST_REJECTED',
          actorType: 'HUMAN',
          actorId: 'operator:alice',
          decision: { code: 'SELF_APPROVAL_FORBIDDEN' },
        });
      }
      const bob = await decide(id, 'bob', 'approve');
      expect([bob.status, bob.body.approval?.decidedBy]).toEqual([200, 'operator:bob']);
      const ran = await rest(
        'issue_refund',
        refund('on behalf of alice', 350),
        { approvalId: id },
        { token: forAlice },
      );
      expect(ran.status, ran.text).toBe(200);
    });
  });

  describe('the first decision wins', () => {
    it('concurrent decisions by different operators: exactly one 200, the others 409', async () => {
      const id = await held(refund('race', 360));
      const answers = await Promise.all([
        decide(id, 'alice', 'approve'),
        decide(id, 'bob', 'deny'),
        decide(id, 'root', 'approve'),
      ]);
      const won = answers.filter((a) => a.status === 200);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409]);
      for (const lost of answers.filter((a) => a.status !== 200))
        expectCleanError(lost, 409, 'APPROVAL_ALREADY_DECIDED');
      const winner = won[0]!.body.approval as { status: string; decidedBy: string };
      expect((await t.gw.approvals.get(id))?.status).toBe(winner.status);
      const decisions = aboutApproval(await audit(), id).filter(
        (e) => e.event === 'APPROVAL_GRANTED' || e.event === 'APPROVAL_DENIED',
      );
      expect(decisions.map((e) => e.actorId)).toEqual([winner.decidedBy]);

      // The winner repeating itself is told so; changing its mind is not allowed.
      const who = winner.decidedBy.slice('operator:'.length);
      const action = winner.status === 'approved' ? 'approve' : 'deny';
      const repeat = await decide(id, who, action);
      expect([repeat.status, repeat.body.repeated, repeat.body.approval?.status]).toEqual([
        200,
        true,
        winner.status,
      ]);
      expectCleanError(
        await decide(id, who, action === 'approve' ? 'deny' : 'approve'),
        409,
        'APPROVAL_ALREADY_DECIDED',
      );
    });

    it('an unknown or malformed id is 404; a request past its time is 409 APPROVAL_EXPIRED', async () => {
      expectCleanError(
        await decide('apr_0123456789abcdefXYZ', 'alice', 'approve'),
        404,
        'APPROVAL_NOT_FOUND',
      );
      expectCleanError(await decide('not-an-id', 'alice', 'approve'), 404, 'APPROVAL_NOT_FOUND');
      expectCleanError(await admin('/approvals/apr_nope', 'alice'), 404, 'APPROVAL_NOT_FOUND');

      const id = await held(refund('too late', 370));
      t.clock.advance(TIMEOUT_MS + 1);
      expectCleanError(await decide(id, 'alice', 'approve'), 409, 'APPROVAL_EXPIRED');
      expectCleanError(await decide(id, 'bob', 'deny'), 409, 'APPROVAL_EXPIRED');
      const timeouts = byEvent(aboutApproval(await audit(), id), 'APPROVAL_DENIED');
      expect(timeouts.map((e) => dataOf(e).reason)).toEqual(['timeout']);
      // And the agent that comes back with the id hears that it timed out.
      const late = await rest('issue_refund', refund('too late', 370), { approvalId: id });
      expect([late.status, late.error?.code]).toEqual([403, 'APPROVAL_TIMEOUT']);
    });
  });

  describe('bad input on the admin API', () => {
    it('answers every malformed request with a clean coded error and leaves the request pending', async () => {
      const id = await held(refund('bad input', 380));
      const approve = `/approvals/${id}/approve`;
      const cases: Array<[string, Promise<Answer>, number, string]> = [
        ['malformed JSON', admin(approve, 'alice', { raw: '{"comment": ' }), 400, 'INVALID_JSON'],
        [
          'unknown key',
          admin(approve, 'alice', { json: { comment: 'ok', approve: true } }),
          400,
          'INVALID_REQUEST',
        ],
        [
          'oversize comment',
          admin(approve, 'alice', { json: { comment: 'x'.repeat(2_001) } }),
          400,
          'INVALID_REQUEST',
        ],
        ['comment not a string', admin(approve, 'alice', { json: { comment: 42 } }), 400, 'INVALID_REQUEST'],
        [
          'arguments not an object',
          admin(approve, 'alice', { json: { arguments: [1] } }),
          400,
          'INVALID_REQUEST',
        ],
        ['body not an object', admin(approve, 'alice', { json: ['approve'] }), 400, 'INVALID_REQUEST'],
        [
          'arguments on deny',
          admin(`/approvals/${id}/deny`, 'alice', { json: { arguments: { amountCents: 1 } } }),
          400,
          'INVALID_REQUEST',
        ],
        [
          'nested too deep',
          admin(approve, 'alice', {
            raw: `{"comment":"x","arguments":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}`,
          }),
          400,
          'NESTING_TOO_DEEP',
        ],
        [
          'too large',
          admin(approve, 'alice', { raw: JSON.stringify({ comment: 'y'.repeat(1_100_000) }) }),
          413,
          'PAYLOAD_TOO_LARGE',
        ],
        [
          'bad verdict',
          admin(`/approvals/${id}/review`, 'alice', { json: { verdict: 'maybe' } }),
          400,
          'INVALID_REQUEST',
        ],
        [
          'bad id',
          admin('/approvals/..%2F..%2Fetc/approve', 'alice', { json: {} }),
          404,
          'APPROVAL_NOT_FOUND',
        ],
        [
          'overlong id',
          admin(`/approvals/apr_${'a'.repeat(100)}/approve`, 'alice', { json: {} }),
          404,
          'APPROVAL_NOT_FOUND',
        ],
        ['bad status filter', admin('/approvals?status=maybe', 'alice'), 400, 'INVALID_REQUEST'],
        ['bad limit', admin('/approvals?limit=100000', 'alice'), 400, 'INVALID_REQUEST'],
        ['unknown filter', admin('/approvals?sort=asc', 'alice'), 400, 'INVALID_REQUEST'],
        ['unknown route', admin('/operators', 'alice'), 404, 'NOT_FOUND'],
      ];
      for (const [name, answer, status, code] of cases) {
        const a = await answer;
        expect([name, a.status, a.error?.code], a.text.slice(0, 300)).toEqual([name, status, code]);
        expectCleanError(a, status, code);
      }
      expect((await t.gw.approvals.get(id))?.status).toBe('pending');
      // The 2,000-character comment the schema allows is accepted.
      const fine = await decide(id, 'alice', 'approve', { comment: 'z'.repeat(2_000) });
      expect(fine.status, fine.text.slice(0, 300)).toBe(200);
      expect(fine.body.approval.comment).toHaveLength(2_000);
    });
  });

  describe('warden approvals (CLI) against this gateway', () => {
    let configFile: string;
    const cli = (args: string[]) =>
      runWarden(['approvals', ...args, '--url', t.gw.url, '--config', configFile], { cwd: dir });

    beforeAll(() => {
      const j = JSON.stringify;
      configFile = join(dir, 'warden.yaml');
      writeFileSync(
        configFile,
        [
          'store:',
          `  url: ${j(target.url)}`,
          'operators:',
          ...OPERATORS.flatMap((o) => [`  - id: ${o.id}`, `    roles: ${j(o.roles)}`]),
          '',
        ].join('\n'),
      );
    });

    it('list and show the held call; approve from the CLI wakes the waiting REST caller', async () => {
      const args = refund('cli approve', 390);
      const waiting = rest('issue_refund', args, { approval: 'wait' });
      const request = await pendingInStore(args.reason);

      const [list, show] = await Promise.all([
        cli(['list', '--status', 'pending', '--as', 'carol', '--json']),
        cli(['show', request.id, '--as', 'carol']),
      ]);
      expect(list.code, describeResult(list)).toBe(0);
      const listed = JSON.parse(list.stdout) as { approvals: Array<{ id: string; status: string }> };
      expect(listed.approvals.find((a) => a.id === request.id)).toMatchObject({ status: 'pending' });
      expect(show.code, describeResult(show)).toBe(0);
      expect(show.stdout).toMatch(new RegExp(`^id\\s+${request.id}$`, 'm'));
      expect(show.stdout).toMatch(/^tool\s+issue_refund$/m);
      expect(show.stdout).toContain(args.reason);

      const approved = await cli(['approve', request.id, '--as', 'bob', '--comment', 'checked by phone']);
      expect(approved.code, describeResult(approved)).toBe(0);
      expect(approved.stdout).toContain(`approved: ${request.id}`);
      const answer = await waiting;
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.result.structuredContent).toMatchObject({ amountCents: 390 });

      const [granted] = byEvent(aboutApproval(await audit(), request.id), 'APPROVAL_GRANTED');
      expect(granted).toMatchObject({ actorId: 'operator:bob' });
      expect(dataOf(granted)).toMatchObject({ via: 'cli', comment: 'checked by phone' });

      // Deciding again from the CLI: the first decision stands, said plainly with exit 2.
      const again = await cli(['deny', request.id, '--as', 'alice']);
      expect(again.code, describeResult(again)).toBe(2);
      expect(again.stderr).toContain('warden: APPROVAL_ALREADY_DECIDED: ');
      expect(again.stderr).not.toMatch(STACK_FRAME);
    });

    it('deny from the CLI answers the waiting caller with APPROVAL_DENIED', async () => {
      const args = refund('cli deny', 395);
      const waiting = rest('issue_refund', args);
      const request = await pendingInStore(args.reason);
      const denied = await cli(['deny', request.id, '--as', 'alice', '--comment', 'duplicate', '--json']);
      expect(denied.code, describeResult(denied)).toBe(0);
      expect(JSON.parse(denied.stdout)).toMatchObject({
        repeated: false,
        approval: { id: request.id, status: 'denied', decidedVia: 'cli' },
      });
      const answer = await waiting;
      expect([answer.status, answer.error?.code, answer.error?.comment]).toEqual([
        403,
        'APPROVAL_DENIED',
        'duplicate',
      ]);
      // An auditor cannot decide from the CLI either.
      const auditor = await cli(['approve', request.id, '--as', 'carol']);
      expect(auditor.code).toBe(2);
      expect(auditor.stderr).toContain('warden: APPROVER_FORBIDDEN: ');
    });
  });
});

describe('approvals.allowSelfApproval: true', { timeout: 60_000 * TIME_SCALE }, () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway(target, (config) => {
      withApprovals(config);
      config.approvals.allowSelfApproval = true;
    });
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  it('lets the user the agent acts for approve its request, and the call runs', async () => {
    const forAlice = (await t.gw.tokens.issue('demo-support', { userId: 'alice' })).token;
    const args = refund('self approved', 400);
    const call = (extra: object) =>
      request(`${t.gw.url}/v1/tool-calls`, {
        token: forAlice,
        json: { toolName: 'issue_refund', parameters: args, ...extra },
      });
    const held = await call({ approval: 'pending' });
    expect(held.status, held.text).toBe(202);
    const id = held.error?.approvalId as string;
    const alice = (await t.gw.operatorTokens.issue('alice', 600_000)).token;
    const approved = await request(`${t.gw.url}/admin/v1/approvals/${id}/approve`, {
      token: alice,
      json: {},
    });
    expect(approved.status, approved.text).toBe(200);
    expect(approved.body.approval).toMatchObject({
      status: 'approved',
      decidedBy: 'operator:alice',
      userId: 'alice',
    });
    const ran = await call({ approvalId: id });
    expect(ran.status, ran.text).toBe(200);
  });
});
