/**
 * Cedar policy in a running gateway: YAML rules and a .cedar file decide real
 * calls over HTTP, denials name their policy, obligations reach the risk gate,
 * and reloads swap the set (or keep it, when the new one is invalid) with an
 * audit entry each. Then a real `warden start` process reloads on SIGHUP.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllWardens, startWardenProcess, TIME_SCALE, waitFor } from '../helpers/cli-process.js';
import { createWorkspace, type Workspace } from '../helpers/cli-workspace.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ORDER = 'ORD-4F8K2P1Z';
const NO_SHIPPING =
  '@id("no-shipping-checks")\nforbid (principal, action, resource == Warden::Tool::"check_shipping_status");\n';

describe('policy in a running gateway', () => {
  const target = makeTarget('sqlite');
  const dir = mkdtempSync(join(tmpdir(), 'warden-policy-e2e-'));
  const file = join(dir, 'support.cedar');
  let t: TestGateway;
  let token: string;

  beforeAll(async () => {
    writeFileSync(file, NO_SHIPPING);
    t = await startTestGateway(target, (config) => {
      config.policy = {
        files: [file],
        rules: [
          {
            id: 'order-9-needs-approval',
            effect: 'obligation',
            tools: ['lookup_order'],
            when: { arguments: { orderId: { like: 'ORD-9*' } } },
            obligations: { approval: 'required' },
          },
        ],
        arguments: {},
        timezone: 'UTC',
        watch: false,
      };
    });
    token = await t.operatorToken('demo-support');
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = async (toolName: string, parameters: Record<string, unknown>, extra: object = {}) => {
    const res = await fetch(`${t.gw.url}/v1/tool-calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ toolName, parameters, ...extra }),
    });
    const body = (await res.json()) as {
      error?: { code: string; rule?: string; traceId: string; approvalId?: string };
    };
    return { status: res.status, error: body.error };
  };

  it('audits the policy set it started with', async () => {
    const [loaded] = await t.gw.audit.read({ event: 'POLICY_RELOADED', limit: 10 });
    expect(loaded).toMatchObject({ actorType: 'SYSTEM', result: 'success' });
    expect(loaded?.data).toMatchObject({ ok: true, trigger: 'start', digest: t.gw.policy.current.digest });
  });

  it('a .cedar forbid refuses with 403 POLICY_DENIED naming the policy, and the audit log says so', async () => {
    const r = await call('check_shipping_status', { orderId: ORDER });
    expect([r.status, r.error?.code, r.error?.rule]).toEqual([
      403,
      'POLICY_DENIED',
      'policy:no-shipping-checks',
    ]);
    const [denied] = await t.gw.audit.read({ traceId: r.error!.traceId, limit: 5 });
    expect(denied?.event).toBe('TOOL_DENIED');
    expect(denied?.decision).toMatchObject({
      allowed: false,
      code: 'POLICY_DENIED',
      rule: 'policy:no-shipping-checks',
    });
  });

  it('allowed calls name their determining policies in the audit log', async () => {
    const r = await call('lookup_order', { orderId: ORDER });
    expect(r.status).toBe(200);
    const calls = await t.gw.audit.read({ event: 'TOOL_CALL', limit: 10 });
    expect(calls.at(-1)?.decision?.reasons).toContain('agent.allowedTools:lookup_order');
  });

  it('an approval obligation makes a low-risk call wait for a human', async () => {
    const r = await call('lookup_order', { orderId: 'ORD-9TQ3LM7A' }, { approval: 'pending' });
    expect([r.status, r.error?.code, r.error?.rule]).toEqual([202, 'APPROVAL_PENDING', 'approval.pending']);
    const id = r.error?.approvalId as string;
    const request = await t.gw.approvals.get(id);
    expect(request).toMatchObject({
      status: 'pending',
      risk: 'high',
      configuredRisk: 'low',
      rule: 'policy.obligation',
    });
  });

  it('a reload swaps the set; an invalid one keeps it, audited both ways', async () => {
    writeFileSync(file, '// nothing forbidden now\n');
    expect((await t.gw.policy.reload('sighup')).ok).toBe(true);
    expect((await call('check_shipping_status', { orderId: ORDER })).status).toBe(200);

    writeFileSync(file, NO_SHIPPING);
    expect((await t.gw.policy.reload('sighup')).ok).toBe(true);
    const digest = t.gw.policy.current.digest;
    writeFileSync(file, 'forbid (principal, action, resource) when { resource.riks == "high" };');
    const bad = await t.gw.policy.reload('sighup');
    expect(bad.ok).toBe(false);
    expect(bad.errors[0]).toMatch(/support\.cedar:1:\d+: .*`riks`/);
    expect(t.gw.policy.current.digest).toBe(digest);
    expect((await call('check_shipping_status', { orderId: ORDER })).error?.code).toBe('POLICY_DENIED');
    const reloads = await t.gw.audit.read({ event: 'POLICY_RELOADED', limit: 10 });
    expect(reloads.map((e) => [e.result, (e.data as { trigger: string }).trigger])).toEqual([
      ['success', 'start'],
      ['success', 'sighup'],
      ['success', 'sighup'],
      ['failure', 'sighup'],
    ]);
  });
});

describe('warden start reloads policy on SIGHUP', { timeout: 60_000 * TIME_SCALE }, () => {
  let ws: Workspace;
  afterAll(async () => {
    await killAllWardens();
    ws?.cleanup();
  });

  it('logs the new set, or why it kept the old one', async () => {
    ws = await createWorkspace([{ id: 'desk-agent', allowedTools: ['lookup_order'] }]);
    const policyFile = ws.writeFile('desk.cedar', NO_SHIPPING);
    writeFileSync(ws.configFile, `${ws.yaml}policy:\n  files: [${JSON.stringify(policyFile)}]\n`);
    const gw = await startWardenProcess(['--config', ws.configFile, '--port', '0'], { cwd: ws.dir });
    const logged = (text: RegExp) => waitFor(() => text.test(gw.stderr()), 15_000 * TIME_SCALE);

    writeFileSync(policyFile, '');
    process.kill(gw.pid, 'SIGHUP');
    expect(
      await logged(/"trigger":"sighup".*"policy set loaded"|"policy set loaded".*"trigger":"sighup"/),
      gw.stderr(),
    ).toBe(true);

    writeFileSync(policyFile, 'permit (principal, action, resource) when {');
    process.kill(gw.pid, 'SIGHUP');
    expect(await logged(/previous set stays in force/), gw.stderr()).toBe(true);
    expect(gw.stderr()).toMatch(/desk\.cedar:1:\d+/);
  });
});
