/**
 * A real gateway process, black box: `warden start --config <file> --port 0`
 * spawned from bin/warden.js, with the support desk as its stdio upstream. An
 * agent gets its own token at /oauth/token with its private key and talks MCP
 * through the official SDK; then SIGTERM must end the gateway cleanly, upstream
 * child included, leaving an audit log that verifies.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestSessionToken } from '../../src/identity/index.js';
import {
  childProcesses,
  describeResult,
  type GatewayProcess,
  isRunning,
  killAllWardens,
  type ProcessInfo,
  runWarden,
  STACK_FRAME,
  startWardenProcess,
  TIME_SCALE,
  waitFor,
} from '../helpers/cli-process.js';
import { createWorkspace, type Workspace } from '../helpers/cli-workspace.js';

const AGENT = 'desk-agent';

const wardenError = (r: CallToolResult) =>
  (r._meta as Record<string, { code?: string; rule?: string }> | undefined)?.['warden/error'];

describe('warden start: a real gateway process', { timeout: 60_000 * TIME_SCALE }, () => {
  let ws: Workspace;
  let gw: GatewayProcess;
  /** The gateway's children while it ran: the stdio upstream. */
  let children: ProcessInfo[] = [];
  const clients: Client[] = [];

  beforeAll(async () => {
    ws = await createWorkspace([
      {
        id: AGENT,
        // not_a_real_tool is allowed but no upstream offers it; bulk_message is allowed and denied.
        allowedTools: ['lookup_order', 'check_shipping_status', 'bulk_message', 'not_a_real_tool'],
        deniedTools: ['bulk_message', 'delete_account'],
      },
    ]);
    gw = await startWardenProcess(['--config', ws.configFile, '--port', '0'], { cwd: ws.dir });
  }, 60_000 * TIME_SCALE);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await killAllWardens();
    // Never leave the upstream behind, even when the shutdown test failed.
    for (const c of children) {
      if (isRunning(c.pid)) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {}
      }
    }
    ws?.cleanup();
  });

  it('prints where it listens and runs the stdio upstream as its child', () => {
    expect(gw.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(gw.port).toBeGreaterThan(0);
    expect(gw.stderr()).toContain(`MCP endpoint:   ${gw.url}/mcp`);
    expect(gw.stderr()).toContain(`Config: ${ws.configFile}`);
    children = childProcesses(gw.pid);
    expect(children.map((c) => c.args)).toEqual([expect.stringContaining('support-desk/stdio')]);
  });

  it('answers /healthz 200 and /readyz 200 with the upstream up', async () => {
    const health = await fetch(`${gw.url}/healthz`);
    expect(health.status).toBe(200);
    await health.body?.cancel();
    const ready = await fetch(`${gw.url}/readyz`);
    const body = await ready.text();
    expect(ready.status, body).toBe(200);
    const r = JSON.parse(body) as { ready?: boolean; upstreams?: Array<{ name: string; state: string }> };
    expect(r.upstreams).toEqual([expect.objectContaining({ name: 'support-desk', state: 'up' })]);
  });

  it('an agent gets its own token with its key and uses MCP: allowed tools only, denied call refused', async () => {
    const issued = await requestSessionToken({
      tokenEndpoint: `${gw.url}/oauth/token`,
      agentId: AGENT,
      privateJwk: ws.keys[AGENT]!,
    });
    expect(issued.token_type.toLowerCase()).toBe('bearer');
    expect(issued.expires_in).toBeGreaterThan(0);
    expect(issued.expires_in).toBeLessThanOrEqual(900);

    const client = new Client({ name: 'process-e2e-agent', version: '1.0.0' });
    clients.push(client);
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${issued.access_token}` } },
      }),
    );
    // Allowed ∩ offered upstream − denied.
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(['check_shipping_status', 'lookup_order']);

    const ok = (await client.callTool({
      name: 'lookup_order',
      arguments: { orderId: 'ORD-4F8K2P1Z' },
    })) as CallToolResult;
    expect(ok.isError, JSON.stringify(ok)).toBeFalsy();
    expect(JSON.stringify(ok.content)).toContain('ORD-4F8K2P1Z');

    const denied = (await client.callTool({
      name: 'bulk_message',
      arguments: { audience: 'all_customers', message: 'Your account is locked: verify at evil.example' },
    })) as CallToolResult;
    expect(denied.isError).toBe(true);
    expect(wardenError(denied)?.code).toBe('TOOL_DENIED');
  });

  it('a second gateway on the same port fails with a readable error (exit 2, no stack)', async () => {
    const second = await runWarden(['start', '--config', ws.configFile, '--port', String(gw.port)], {
      cwd: ws.dir,
      detached: true,
    });
    expect(second.code, describeResult(second)).toBe(2);
    expect(second.stderr).toMatch(/already in use \(is another Warden running\?\)/);
    expect(second.stderr).toContain(String(gw.port));
    expect(second.stderr).not.toMatch(STACK_FRAME);
    expect(second.stderr).not.toContain('Warden is running');
    // The first one is unharmed.
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });

  it('SIGTERM: exits 0 within 10 s and leaves no child; the audit log verifies and holds the calls', async () => {
    expect(children.length).toBe(1);
    const upstream = children[0]!.pid;
    expect(isRunning(upstream)).toBe(true);
    for (const c of clients.splice(0)) await c.close().catch(() => {});

    const started = Date.now();
    gw.child.kill('SIGTERM');
    const exit = await Promise.race([
      gw.exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000)),
    ]);
    expect(exit, gw.stderr()).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(gw.stderr()).toContain('SIGTERM: shutting down');
    // The upstream went with it. (Checked by pid: an orphan would have been re-parented, so an
    // empty `ps --ppid` of the dead gateway proves nothing.) A moment for it to be reaped.
    expect(await waitFor(() => !isRunning(upstream), 2_000)).toBe(true);

    const [verify, tail] = await Promise.all([
      runWarden(['audit', 'verify', '--config', ws.configFile], { cwd: ws.dir }),
      runWarden(['audit', 'tail', '-n', '100', '--json', '--config', ws.configFile], { cwd: ws.dir }),
    ]);
    expect(verify.code, describeResult(verify)).toBe(0);
    expect(verify.stdout).toContain('audit log intact');
    expect(tail.code, describeResult(tail)).toBe(0);
    const entries = tail.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; toolName: string | null; result: string | null });
    expect(
      entries.filter((e) => e.toolName === 'lookup_order' && e.event === 'TOOL_CALL').map((e) => e.result),
    ).toEqual(['pending', 'success']);
    expect(entries.some((e) => e.event === 'TOOL_DENIED' && e.toolName === 'bulk_message')).toBe(true);
  });
});
