/**
 * Shared set-up of the approvals end-to-end suites: a gateway with operators and short
 * approval timeouts on a ManualClock, and the requests the suites make as agents and operators.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Approval } from '../../src/approvals/types.js';
import type { AuditEntry } from '../../src/audit/index.js';
import type { WardenConfig } from '../../src/config/types.js';
import { killAllWardens, STACK_FRAME, waitFor } from './cli-process.js';
import { makeTarget } from './dialects.js';
import { startTestGateway, type TestGateway } from './gateway.js';

export const ORDER = 'ORD-4F8K2P1Z';
/** Every request of the suite expires this long after it is made (on the gateway's manual clock). */
export const TIMEOUT_MS = 2_000;
export const OPERATORS: WardenConfig['operators'] = [
  { id: 'alice', roles: ['approver'] },
  { id: 'bob', roles: ['approver'] },
  { id: 'root', roles: ['admin'] },
  { id: 'carol', roles: ['auditor'] },
];

/** The public error shape (plus whatever data the code carries). */
export interface ErrorJson {
  code: string;
  message: string;
  traceId: string;
  rule?: string;
  [key: string]: unknown;
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: assertions read arbitrary JSON fields
  body: any;
  error: ErrorJson | undefined;
}

/** Distinct arguments per test: a retried call re-attaches to an open request with the same ones. */
export const refund = (tag: string, amountCents = 100) => ({
  orderId: ORDER,
  amountCents,
  reason: `e2e ${tag}`,
});

export const wardenError = (r: CallToolResult) =>
  (r._meta as Record<string, ErrorJson> | undefined)?.['warden/error'];

/** The config shared by the suites: operators, short approvals, progress every second. */
export function withApprovals(config: WardenConfig): void {
  config.operators = OPERATORS.map((o) => ({ ...o, roles: [...o.roles] }));
  config.approvals.timeoutMs = TIMEOUT_MS;
  config.approvals.progressIntervalMs = 1_000;
}

export async function request(
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
export function expectCleanError(a: Answer, status: number, code: string): ErrorJson {
  expect([a.status, a.error?.code], a.text).toEqual([status, code]);
  expect(a.headers.get('content-type')).toContain('application/json');
  expect(a.error?.traceId).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
  expect(a.headers.get('x-trace-id')).toBe(a.error?.traceId);
  expect(a.text).not.toMatch(STACK_FRAME);
  expect(a.text).not.toMatch(/"stack"|node_modules|\.ts:\d+/);
  return a.error!;
}

export const byEvent = (entries: AuditEntry[], event: AuditEntry['event']) =>
  entries.filter((e) => e.event === event);
export const dataOf = (e: AuditEntry | undefined) => (e?.data ?? {}) as Record<string, unknown>;
export const aboutApproval = (entries: AuditEntry[], id: string) =>
  entries.filter((e) => dataOf(e).approvalId === id || dataOf(e).reviewId === id);

/** Start the approvals gateway for the enclosing describe; the returned object is filled in beforeAll. */
export function approvalsSuite() {
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

  return {
    target,
    dir,
    policyFile,
    get t() {
      return t;
    },
    get agentToken() {
      return agentToken;
    },
    operatorToken,
    admin,
    decide,
    rest,
    held,
    pendingVia,
    pendingInStore,
    audit,
  };
}
