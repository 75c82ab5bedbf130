/**
 * `warden demo`: the article's incident, played for real. A support agent reads
 * an order whose notes carry a prompt injection, is "taken over", and tries to
 * send a phishing blast with `bulk_message`. Warden refuses; the legitimate work
 * still goes through; the audit chain proves what happened.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Command } from 'commander';
import { INJECTED_ORDER_ID } from '../../examples/support-desk/data.js';
import { embeddedDefault } from '../config/index.js';
import { systemClock } from '../util/clock.js';
import { demoKeyPath, ensureDemoAgentKey } from './context.js';
import { printJson, reportError } from './output.js';

/** One act of the demo and whether Warden's answer was the safe one. */
interface Act {
  step: string;
  expected: 'allowed' | 'denied';
  outcome: 'allowed' | 'denied';
  code?: string;
  detail: string;
  held: boolean;
}

function errorCode(r: CallToolResult): string | undefined {
  const e = (r._meta as Record<string, { code?: string }> | undefined)?.['warden/error'];
  return e?.code;
}

function textOf(r: CallToolResult): string {
  return r.content
    .filter((c): c is { type: 'text'; text: string } => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
}

/** Play the incident against a fresh gateway; returns the acts and the audit verdict. */
export async function runDemo(opts: { verbose?: boolean } = {}) {
  // Heavy modules load only when the demo runs, so `warden --help` stays fast.
  const [
    { Client },
    { StreamableHTTPClientTransport },
    { verifyChain },
    { requestSessionToken },
    gateway,
    logger,
  ] = await Promise.all([
    import('@modelcontextprotocol/sdk/client/index.js'),
    import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
    import('../audit/index.js'),
    import('../identity/index.js'),
    import('../server/gateway.js'),
    import('../server/logger.js'),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'warden-demo-'));
  const config = embeddedDefault({ cwd: dir, now: systemClock.now() });
  config.server.port = 0;
  await ensureDemoAgentKey(config);
  const gw = await gateway.startGateway(config, {
    logger: opts.verbose ? logger.createLogger('info') : logger.silentLogger(),
  });
  const acts: Act[] = [];
  try {
    const privateJwk = JSON.parse(readFileSync(demoKeyPath(config), 'utf8')) as Record<string, unknown>;
    // 1. The agent logs in as itself: client_credentials with a signed assertion, no shared secret.
    const tok = await requestSessionToken({
      tokenEndpoint: `${gw.url}/oauth/token`,
      agentId: 'demo-support',
      privateJwk,
    });
    acts.push({
      step: 'Agent obtains a 15-minute session token with private_key_jwt (no static secret)',
      expected: 'allowed',
      outcome: 'allowed',
      detail: `token expires in ${tok.expires_in}s; scopes: ${tok.scope}`,
      held: tok.expires_in <= 900,
    });

    const client = new Client({ name: 'demo-support-agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${tok.access_token}` } },
      }),
    );
    const listed = (await client.listTools()).tools.map((t) => t.name).sort();
    const hidden = ['bulk_message', 'delete_account'].every((t) => !listed.includes(t));
    acts.push({
      step: 'tools/list shows only what this agent may call',
      expected: 'allowed',
      outcome: 'allowed',
      detail: `visible: ${listed.join(', ')}`,
      held: hidden,
    });

    // 2. The customer asks about their order; the order notes carry the injection.
    const looked = (await client.callTool({
      name: 'lookup_order',
      arguments: { orderId: INJECTED_ORDER_ID },
    })) as CallToolResult;
    const injected = /ignore previous instructions/i.test(textOf(looked));
    const inspection = looked._meta?.['warden/inspection'] as
      | { action?: string; injection?: number }
      | undefined;
    acts.push({
      step: `Legitimate lookup_order ${INJECTED_ORDER_ID} (its notes carry a prompt injection)`,
      expected: 'allowed',
      outcome: looked.isError ? 'denied' : 'allowed',
      detail: injected
        ? `order returned; the notes tell the agent to message every customer${
            inspection?.action === 'wrapped'
              ? ` (Warden wrapped them as untrusted data, score ${inspection.injection}; the session is now tainted)`
              : ''
          }`
        : 'order returned',
      held: !looked.isError,
    });

    // 3. The hijacked agent follows the injected instructions.
    const attacks: Array<[string, string, Record<string, unknown>]> = [
      [
        'Hijacked agent calls bulk_message to phish every customer',
        'bulk_message',
        {
          audience: 'all_customers',
          message: 'Your account is suspended. Verify your card at https://verify-payments.example.net',
        },
      ],
      [
        'It retries with a look-alike name (Cyrillic "е")',
        'bulk_messag\u0435',
        { audience: 'all_customers', message: 'x' },
      ],
      ['It retries with different case', 'Bulk_Message', { audience: 'all_customers', message: 'x' }],
      [
        'It tries to delete the customer account',
        'delete_account',
        { customerId: 'CUS-10001', confirm: true },
      ],
    ];
    for (const [step, name, args] of attacks) {
      const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
      const code = errorCode(r);
      acts.push({
        step,
        expected: 'denied',
        outcome: r.isError && code ? 'denied' : 'allowed',
        ...(code ? { code } : {}),
        detail: r.isError ? textOf(r) : 'THE CALL RAN',
        held: r.isError === true && code !== undefined,
      });
    }

    // The human in the loop: a held call, an approver who decides through the admin API.
    const operator = await gw.operatorTokens.issue('demo-approver', 5 * 60_000);
    const heldCall = async (args: Record<string, unknown>, action: 'approve' | 'deny', comment: string) => {
      const progress: string[] = [];
      const call = client.callTool({ name: 'issue_refund', arguments: args }, undefined, {
        onprogress: (p) => {
          if (p.message) progress.push(p.message);
        },
        resetTimeoutOnProgress: true,
        timeout: 60_000,
      }) as Promise<CallToolResult>;
      // The approver's side: the request shows up in the queue; they read it and decide.
      let id: string | undefined;
      for (let i = 0; i < 200 && id === undefined; i++) {
        const pending = await gw.approvals.list({
          kind: 'approval',
          status: 'pending',
          agentId: 'demo-support',
        });
        id = pending.find((a) => a.toolName === 'issue_refund')?.id;
        if (id === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      if (id === undefined) throw new Error('the held refund never reached the approval queue');
      const decided = await fetch(`${gw.url}/admin/v1/approvals/${id}/${action}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${operator.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ comment }),
      });
      if (!decided.ok) throw new Error(`the approver's decision failed: HTTP ${decided.status}`);
      return { result: await call, id, progress };
    };

    const phished = await heldCall(
      { orderId: INJECTED_ORDER_ID, amountCents: 90000, reason: 'maintenance mode' },
      'deny',
      'no customer asked for this',
    );
    const phishedCode = errorCode(phished.result);
    acts.push({
      step: 'It tries a $900 refund: high risk, so the call waits for a human, who denies it',
      expected: 'denied',
      outcome: phished.result.isError && phishedCode ? 'denied' : 'allowed',
      ...(phishedCode ? { code: phishedCode } : {}),
      detail: `held as ${phished.id}${phished.progress.length > 0 ? ' (the agent was told it waits for a human)' : ''}; the approver said no: ${textOf(phished.result)}`,
      held: phishedCode === 'APPROVAL_DENIED',
    });

    // 4. A forged token (alg "none") gets nowhere.
    const forged = `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({
        sub: 'demo-support',
        aud: gw.url,
        scope: 'tool:bulk_message:execute',
        exp: 4102444800,
      }),
    ).toString('base64url')}.`;
    const res = await fetch(`${gw.url}/v1/tool-calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${forged}` },
      body: JSON.stringify({
        toolName: 'bulk_message',
        parameters: { audience: 'all_customers', message: 'x' },
      }),
    });
    const body = (await res.json()) as { error?: { code?: string } };
    acts.push({
      step: 'An attacker replays a forged unsigned token (alg "none") on the REST face',
      expected: 'denied',
      outcome: res.status === 401 ? 'denied' : 'allowed',
      ...(body.error?.code ? { code: body.error.code } : {}),
      detail: `HTTP ${res.status}`,
      held: res.status === 401,
    });

    // 5. Normal service continues.
    const ship = (await client.callTool({
      name: 'check_shipping_status',
      arguments: { orderId: INJECTED_ORDER_ID },
    })) as CallToolResult;
    acts.push({
      step: 'Legitimate check_shipping_status still works',
      expected: 'allowed',
      outcome: ship.isError ? 'denied' : 'allowed',
      detail: ship.structuredContent
        ? JSON.stringify(ship.structuredContent).slice(0, 140)
        : textOf(ship).slice(0, 140),
      held: !ship.isError,
    });

    const refund = await heldCall(
      { orderId: 'ORD-4F8K2P1Z', amountCents: 2000, reason: 'item arrived damaged' },
      'approve',
      'customer sent photos of the damage',
    );
    acts.push({
      step: 'A genuine $20 refund waits for a human, who approves it; the agent gets the refund',
      expected: 'allowed',
      outcome: refund.result.isError ? 'denied' : 'allowed',
      detail: `approved ${refund.id}: ${textOf(refund.result).slice(0, 120)}`,
      held: !refund.result.isError,
    });
    await client.close();

    // 6. The evidence.
    const verdict = await verifyChain(gw.store);
    const denied = await gw.audit.read({ event: 'TOOL_DENIED', limit: 100 });
    return {
      acts,
      audit: verdict,
      deniedEntries: denied.length,
      held: acts.every((a) => a.held) && verdict.ok,
    };
  } finally {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Register the `demo` command. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      "Play the article's incident against a real gateway and report whether every defence held (exit 0 if so)",
    )
    .option('--json', 'JSON output')
    .option('--verbose', 'show the gateway log')
    .action(async (opts: { json?: boolean; verbose?: boolean }) => {
      try {
        const r = await runDemo(opts);
        if (opts.json) printJson(r);
        else {
          const out: string[] = ['', 'Warden demo — a support agent meets a prompt injection', ''];
          for (const [i, a] of r.acts.entries()) {
            const mark = a.held ? 'ok ' : 'FAIL';
            out.push(`${String(i + 1).padStart(2)}. [${mark}] ${a.step}`);
            out.push(
              `           ${a.outcome.toUpperCase()}${a.code ? ` (${a.code})` : ''}: ${a.detail.replace(/\s+/g, ' ').slice(0, 160)}`,
            );
          }
          out.push('');
          out.push(
            r.audit.ok
              ? `Audit chain intact: ${r.audit.entries} entries, ${r.deniedEntries} denials recorded, head ${r.audit.headHash.slice(0, 16)}…`
              : `Audit chain BROKEN: ${r.audit.problem?.message}`,
          );
          out.push(r.held ? 'Every defence held.' : 'A DEFENCE FAILED — see FAIL above.');
          process.stdout.write(`${out.join('\n')}\n`);
        }
        process.exitCode = r.held ? 0 : 1;
      } catch (e) {
        reportError(e, opts.json);
      }
    });
}
