/**
 * Issue #8, the kill switch across processes: two real `warden start`
 * processes share one PostgreSQL database and one Redis, as replicas behind a
 * load balancer do. An agent's slow call runs on process B; an operator kills
 * the agent through process A's admin API. B must abort the call (Redis
 * pub/sub), refuse the old token, and neither process may open a new session
 * for it. The time from the kill's answer to B's aborted call is printed.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAgentKeyPair } from '../../src/identity/index.js';
import { expectCleanError, request } from '../helpers/approvals.js';
import { killAllWardens, runWarden, startWardenProcess, TIME_SCALE } from '../helpers/cli-process.js';
import { type ContentUpstream, startContentUpstream, stringTool } from '../helpers/content-upstream.js';
import { PG_URL, pgAvailable } from '../helpers/dialects.js';
import { describeRedis, REDIS_URL, uniqueNamespace } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';

const SLOW_MS = 60_000;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** PostgreSQL and Redis both (dialects.ts and redis.ts fail loudly in CI when either is missing). */
const describeShared = pgAvailable ? describeRedis : describe.skip;

describeShared('kill switch across two gateway processes (PostgreSQL + Redis)', () => {
  let up: ContentUpstream;
  let dir: string;
  let config: string;
  let database: string;
  let urlA: string;
  let urlB: string;
  const timers = new Set<NodeJS.Timeout>();

  beforeAll(async () => {
    up = await startContentUpstream({
      slow_op: {
        tool: stringTool('slow_op', ['tag']),
        respond: () =>
          new Promise<CallToolResult>((resolve) => {
            timers.add(setTimeout(() => resolve({ content: [{ type: 'text', text: 'done' }] }), SLOW_MS));
          }),
      },
      quick: {
        tool: stringTool('quick', ['tag']),
        respond: () => ({ content: [{ type: 'text', text: 'ok' }] }),
      },
    });
    database = `warden_kill_${process.pid}_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const [portA, portB] = [await freePort(), await freePort()];
    urlA = `http://127.0.0.1:${portA}`;
    urlB = `http://127.0.0.1:${portB}`;
    const key = await generateAgentKeyPair();
    const j = (v: unknown) => JSON.stringify(v);
    dir = mkdtempSync(join(tmpdir(), 'warden-kill-'));
    config = join(dir, 'warden.yaml');
    const namespace = uniqueNamespace();
    const text = (port: number) =>
      [
        'dataDir: data',
        // Replicas share one public URL (the load balancer's): tokens are valid on both.
        `server: { host: 127.0.0.1, port: ${port}, publicUrl: ${j(urlA)} }`,
        `store: { url: ${j(PG_URL.replace(/\/[^/]*$/, `/${database}`))} }`,
        `limits: { store: redis, redis: { url: ${j(REDIS_URL)} }, namespace: ${namespace} }`,
        'operators: [{ id: root, roles: [admin] }]',
        'upstreams:',
        `  - { name: ops, transport: http, url: ${j(up.url)}, timeout: 90s }`,
        'tools: { slow_op: { risk: low }, quick: { risk: low } }',
        'agents:',
        '  - id: runner',
        '    type: ops-bot',
        '    version: 1.0.0',
        '    environment: test',
        '    owner: qa',
        '    expiresAt: 2099-01-01T00:00:00.000Z',
        '    maxConcurrentSessions: 10',
        '    allowedTools: [slow_op, quick]',
        `    publicKey: ${j(key.publicJwk)}`,
        '',
      ].join('\n');
    writeFileSync(config, text(portA));
    writeFileSync(join(dir, 'warden-b.yaml'), text(portB));
    // One after the other: the first migrates the shared database.
    // (No --port: it would make each its own public URL.)
    await startWardenProcess(['--config', config], { cwd: dir });
    await startWardenProcess(['--config', join(dir, 'warden-b.yaml')], { cwd: dir });
  }, 120_000 * TIME_SCALE);

  afterAll(async () => {
    for (const t of timers) clearTimeout(t);
    await killAllWardens();
    await up?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (database) {
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
      await admin.end();
    }
  });

  const cli = async (args: string[]) => {
    const r = await runWarden([...args, '--config', config], { cwd: dir });
    return r;
  };

  it(
    'a kill at A aborts the call running at B, voids the token on both, and refuses new sessions',
    async () => {
      const issued = await cli(['token', 'issue', '-a', 'runner', '--json']);
      expect(issued.code, issued.stderr).toBe(0);
      const token = (JSON.parse(issued.stdout) as { token: string }).token;
      // The token works on both replicas.
      for (const url of [urlA, urlB]) {
        const ok = await request(`${url}/v1/tool-calls`, {
          token,
          json: { toolName: 'quick', parameters: {} },
        });
        expect(ok.status, ok.text).toBe(200);
      }
      const before = up.calls.length;
      const running = request(`${urlB}/v1/tool-calls`, {
        token,
        json: { toolName: 'slow_op', parameters: { tag: 'at-b' } },
      });
      await until(() => (up.calls.length > before ? true : undefined));

      const op = await cli(['operator', 'token', '-o', 'root', '--json']);
      expect(op.code, op.stderr).toBe(0);
      const opToken = (JSON.parse(op.stdout) as { token: string }).token;
      const sent = performance.now();
      const killed = await request(`${urlA}/admin/v1/agents/runner/kill`, {
        token: opToken,
        json: { reason: 'cross-process drill' },
      });
      const answered = performance.now();
      expect(killed.status, killed.text).toBe(200);
      // A had nothing running; B's call was reached through Redis.
      expect(killed.body.kill).toMatchObject({ callsAborted: 0, broadcast: true, repeated: false });

      const atB = await running;
      const abortedAt = performance.now();
      expectCleanError(atB, 401, 'AGENT_KILLED');
      const propagation = abortedAt - answered;
      console.log(
        `[kill switch] kill request → answer at A: ${(answered - sent).toFixed(1)} ms; ` +
          `answer at A → B's in-flight call aborted: ${propagation.toFixed(1)} ms (Redis pub/sub; store poll fallback 1 s)`,
      );
      // Far below the store poll's interval: the message, not the poll, did it.
      expect(propagation).toBeLessThan(900);

      for (const url of [urlA, urlB]) {
        const after = await request(`${url}/v1/tool-calls`, {
          token,
          json: { toolName: 'quick', parameters: {} },
        });
        expectCleanError(after, 401, 'AGENT_KILLED');
      }
      const again = await cli(['token', 'issue', '-a', 'runner', '--json']);
      expect(again.code).not.toBe(0);
      expect(again.stdout + again.stderr).toContain('AGENT_KILLED');

      // B's own audit of the aborted call, read through A (one shared log).
      const q = await request(`${urlA}/admin/v1/audit?agent=runner&event=TOOL_CALL`, { token: opToken });
      const outcome = (q.body.entries as Array<{ toolName: string; data: Record<string, unknown> }>).find(
        (e) => e.toolName === 'slow_op' && e.data.phase === 'outcome',
      );
      expect(outcome?.data).toMatchObject({ errorCode: 'AGENT_KILLED' });
      // The command line, as an operator would use it in an emergency: revive, then kill again.
      const revived = await cli(['revive', 'runner', '-r', 'drill over', '--as', 'root']);
      expect(revived.code, revived.stderr).toBe(0);
      expect(revived.stdout).toContain('Revived agent runner');
      const fresh = await cli(['token', 'issue', '-a', 'runner', '--json']);
      expect(fresh.code, fresh.stderr).toBe(0);
      const byCli = await cli(['kill', 'runner', '-r', 'second drill', '--as', 'root', '--json']);
      expect(byCli.code, byCli.stderr).toBe(0);
      expect(JSON.parse(byCli.stdout)).toMatchObject({ scope: 'agent', repeated: false, sessionsRevoked: 1 });
      const human = await cli(['kill', 'runner', '-r', 'third', '--as', 'root']);
      expect(human.stdout).toContain('was already stopped');
      const breakers = await cli(['breakers', 'list', '--as', 'root', '--json']);
      expect([breakers.code, JSON.parse(breakers.stdout)], breakers.stderr).toEqual([0, []]);
      const reset = await cli(['breakers', 'reset', '--agent', 'runner', '--as', 'root']);
      expect(reset.stdout, reset.stderr).toContain('was not open');
      const both = await cli(['kill', 'runner', '--session', 'ses_x', '-r', 'x', '--as', 'root']);
      expect(both.code).not.toBe(0);
      expect(both.stderr + both.stdout).toContain('not both');

      const metrics = await fetch(`${urlB}/metrics`).then((r) => r.text());
      // B measured the message's lag; A counted its kills.
      expect(metrics).toMatch(/warden_kill_propagation_seconds_count [1-9]/);
      const metricsA = await fetch(`${urlA}/metrics`).then((r) => r.text());
      expect(metricsA).toMatch(/warden_kills_total\{scope="agent"\} [1-9]/);
    },
    60_000 * TIME_SCALE,
  );
});
