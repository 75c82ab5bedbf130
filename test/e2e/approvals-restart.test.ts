/**
 * Approval requests live in the store, not in a gateway's memory: real
 * `warden start` processes, one after another on the same store (SQLite file,
 * and a PostgreSQL database), hold, lose and pick up a call waiting for a
 * human. A graceful stop answers the waiting caller "still pending, here is the
 * id"; a kill -9 cuts it off; either way the next gateway lists the request,
 * takes the decision and runs the retried call once. A request that expires
 * while no gateway runs is denied by the next gateway's sweeper.
 */
import { createServer } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestSessionToken } from '../../src/identity/index.js';
import {
  describeResult,
  type GatewayProcess,
  killAllWardens,
  runWarden,
  startWardenProcess,
  TIME_SCALE,
  waitFor,
} from '../helpers/cli-process.js';
import { createWorkspace, type Workspace } from '../helpers/cli-workspace.js';
import { PG_URL, pgAvailable } from '../helpers/dialects.js';

const AGENT = 'desk-agent';
/** check_shipping_status is made high risk with a 2 s timeout: the request that expires while no gateway runs. */
const SHORT_TIMEOUT_MS = 2_000;

/** A port nobody listens on right now, so every gateway of a suite gets the same public URL. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: assertions read arbitrary JSON fields
  body: any;
}

async function json(res: Response): Promise<Answer> {
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: { unparsed: text } };
  }
}

/** A store for one suite: a fresh SQLite file in the workspace, or a fresh PostgreSQL database. */
interface StoreChoice {
  name: string;
  available: boolean;
  /** The `store.url` for the config file, created if need be. */
  create(): Promise<string>;
  drop(): Promise<void>;
}

const sqliteStore: StoreChoice = {
  name: 'SQLite',
  available: true,
  create: async () => 'sqlite:warden.db',
  drop: async () => {},
};

function postgresStore(): StoreChoice {
  const database = `warden_apr_${process.pid}_${Date.now().toString(36)}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5_000 });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  return {
    name: 'PostgreSQL',
    available: pgAvailable,
    async create() {
      await admin(`CREATE DATABASE ${database}`);
      const url = new URL(PG_URL);
      url.pathname = `/${database}`;
      return url.toString();
    },
    async drop() {
      await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() =>
        admin(`DROP DATABASE IF EXISTS ${database}`),
      );
    },
  };
}

for (const choice of [sqliteStore, postgresStore()]) {
  const suite = choice.available ? describe : describe.skip;
  suite(`approvals survive gateway restarts [${choice.name}]`, { timeout: 90_000 * TIME_SCALE }, () => {
    let ws: Workspace;
    let port: number;
    let url: string;
    let gw: GatewayProcess | undefined;
    let operatorToken: string;
    let agentToken: string;

    beforeAll(async () => {
      ws = await createWorkspace([
        { id: AGENT, allowedTools: ['issue_refund', 'check_shipping_status', 'lookup_order'] },
      ]);
      const storeUrl = await choice.create();
      const yaml = ws.yaml.replace('  url: sqlite:warden.db', `  url: ${JSON.stringify(storeUrl)}`);
      ws.writeFile(
        'warden.yaml',
        [
          yaml.trimEnd(),
          'operators:',
          '  - id: alice',
          '    roles: ["approver"]',
          'approvals:',
          '  timeout: 60s',
          'tools:',
          '  issue_refund: { risk: high }',
          `  check_shipping_status: { risk: high, approval: { timeout: ${SHORT_TIMEOUT_MS / 1000}s } }`,
          '  lookup_order: { risk: low }',
          '',
        ].join('\n'),
      );
      port = await freePort();
      url = `http://127.0.0.1:${port}`;
    }, 60_000 * TIME_SCALE);

    afterAll(async () => {
      await killAllWardens();
      await choice.drop();
      ws?.cleanup();
    });

    const start = () =>
      startWardenProcess(['--config', ws.configFile, '--port', String(port)], { cwd: ws.dir });
    const admin = async (path: string, body?: unknown) =>
      json(
        await fetch(`${url}/admin/v1${path}`, {
          method: body === undefined ? 'GET' : 'POST',
          headers: {
            authorization: `Bearer ${operatorToken}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        }),
      );
    const call = (
      toolName: string,
      parameters: Record<string, unknown>,
      extra: Record<string, unknown> = {},
    ) =>
      fetch(`${url}/v1/tool-calls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ toolName, parameters, ...extra }),
      });
    const refund = (tag: string, amountCents: number) => ({
      orderId: 'ORD-2B6N8R5D',
      amountCents,
      reason: `restart ${tag}`,
    });

    /** The pending request for `reason` as the running gateway lists it (polled). */
    async function pendingFor(reason: string): Promise<Record<string, unknown>> {
      let found: Record<string, unknown> | undefined;
      const ok = await waitFor(async () => {
        const list = await admin('/approvals?status=pending');
        if (list.status !== 200) return false;
        found = (list.body.approvals as Array<Record<string, unknown>>).find(
          (a) => (a.arguments as { reason?: string }).reason === reason,
        );
        return found !== undefined;
      }, 15_000 * TIME_SCALE);
      expect(ok, `no pending request for "${reason}"`).toBe(true);
      return found!;
    }

    async function stop(signal: 'SIGTERM' | 'SIGKILL') {
      const g = gw!;
      gw = undefined;
      // The gateway leads its process group (the stdio upstream is in it): SIGKILL takes both.
      if (signal === 'SIGKILL') process.kill(-g.pid, 'SIGKILL');
      else g.child.kill('SIGTERM');
      return { exit: await g.exited, stderr: g.stderr() };
    }

    it('SIGTERM: the waiting caller is told "pending" with the id; the next gateway lists it and runs the retry', async () => {
      gw = await start();
      expect(gw.url).toBe(url);
      const minted = await runWarden(
        ['operator', 'token', '--operator', 'alice', '--url', url, '--ttl', '1h', '--config', ws.configFile],
        { cwd: ws.dir },
      );
      expect(minted.code, describeResult(minted)).toBe(0);
      operatorToken = minted.stdout.trim();
      agentToken = (
        await requestSessionToken({
          tokenEndpoint: `${url}/oauth/token`,
          agentId: AGENT,
          privateJwk: ws.keys[AGENT]!,
        })
      ).access_token;

      const args = refund('sigterm', 120);
      const waiting = call('issue_refund', args).then(json);
      const request = await pendingFor(args.reason);
      const id = request.id as string;

      const { exit, stderr } = await stop('SIGTERM');
      expect(exit, stderr).toEqual({ code: 0, signal: null });
      const answer = await waiting;
      expect([answer.status, answer.body.error?.code], JSON.stringify(answer.body)).toEqual([
        202,
        'APPROVAL_PENDING',
      ]);
      expect(answer.body.error).toMatchObject({ approvalId: id, status: 'pending' });
      expect(answer.body.error.message).toContain('shutting down');

      gw = await start();
      // The same public URL and the same store: the tokens minted before still hold.
      expect((await pendingFor(args.reason)).id).toBe(id);
      const approved = await admin(`/approvals/${id}/approve`, { comment: 'after the restart' });
      expect(approved.status, JSON.stringify(approved.body)).toBe(200);
      const ran = await json(await call('issue_refund', args, { approvalId: id }));
      expect(ran.status, JSON.stringify(ran.body)).toBe(200);
      expect(ran.body.result.structuredContent).toMatchObject({ amountCents: 120, status: 'issued' });
      const again = await json(await call('issue_refund', args, { approvalId: id }));
      expect(again.body.error?.code).toBe('APPROVAL_CONSUMED');
    });

    it('kill -9: the caller is cut off, the request survives and is used after the restart; an expiry while down is denied by the sweeper', async () => {
      expect(gw, 'the previous test left a gateway running').toBeDefined();
      // A request that will expire while no gateway runs.
      const short = await json(
        await call('check_shipping_status', { orderId: 'ORD-2B6N8R5D' }, { approval: 'pending' }),
      );
      expect([short.status, short.body.error?.code], JSON.stringify(short.body)).toEqual([
        202,
        'APPROVAL_PENDING',
      ]);
      const shortId = short.body.error.approvalId as string;
      const shortExpiresAt = Date.parse(short.body.error.expiresAt as string);

      const args = refund('kill -9', 130);
      const waiting = call('issue_refund', args).then(
        (res) => ({ status: res.status }),
        (e: unknown) => ({ error: e as Error }),
      );
      const id = (await pendingFor(args.reason)).id as string;

      const { exit } = await stop('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      const cut = await waiting;
      expect(cut, JSON.stringify(cut)).toHaveProperty('error');
      expect(String((cut as { error: Error }).error)).toMatch(/fetch failed|terminated|socket|ECONNRESET/i);

      // No gateway runs until the short request's time is up.
      expect(await waitFor(() => Date.now() > shortExpiresAt + 100, SHORT_TIMEOUT_MS + 5_000)).toBe(true);
      gw = await start();

      expect((await pendingFor(args.reason)).id).toBe(id);
      const approved = await admin(`/approvals/${id}/approve`, {});
      expect(approved.status, JSON.stringify(approved.body)).toBe(200);
      const ran = await json(await call('issue_refund', args, { approvalId: id }));
      expect(ran.status, JSON.stringify(ran.body)).toBe(200);
      expect(ran.body.result.structuredContent).toMatchObject({ amountCents: 130 });

      // The sweeper (every 5 s) denies the request that expired while nobody was running.
      let shortNow: Record<string, unknown> | undefined;
      const swept = await waitFor(
        async () => {
          shortNow = (await admin(`/approvals/${shortId}`)).body.approval;
          return shortNow?.status === 'expired';
        },
        15_000 * TIME_SCALE,
        200,
      );
      expect(swept, JSON.stringify(shortNow)).toBe(true);
      expect(shortNow).toMatchObject({ decidedBy: 'system:timeout', decidedVia: 'timeout' });
      const late = await json(
        await call('check_shipping_status', { orderId: 'ORD-2B6N8R5D' }, { approvalId: shortId }),
      );
      expect([late.status, late.body.error?.code]).toEqual([403, 'APPROVAL_TIMEOUT']);

      const { exit: stopped } = await stop('SIGTERM');
      expect(stopped.code).toBe(0);
      const [tail, verify] = await Promise.all([
        runWarden(['audit', 'tail', '-n', '500', '--json', '--config', ws.configFile], { cwd: ws.dir }),
        runWarden(['audit', 'verify', '--config', ws.configFile], { cwd: ws.dir }),
      ]);
      expect(verify.code, describeResult(verify)).toBe(0);
      expect(verify.stdout).toContain('audit log intact');
      expect(tail.code, describeResult(tail)).toBe(0);
      const entries = tail.stdout
        .trimEnd()
        .split('\n')
        .map(
          (l) =>
            JSON.parse(l) as { event: string; actorId: string | null; data: Record<string, unknown> | null },
        );
      const aboutShort = entries.filter((e) => e.data?.approvalId === shortId);
      expect(aboutShort.map((e) => e.event)).toEqual(['APPROVAL_REQUESTED', 'APPROVAL_DENIED']);
      expect(aboutShort[1]).toMatchObject({ actorId: 'system:timeout', data: { reason: 'timeout' } });
      // Each held refund ran exactly once, on its approval.
      const attempts = entries.filter((e) => e.event === 'TOOL_CALL' && e.data?.phase === 'attempt');
      for (const tag of ['sigterm', 'kill -9']) {
        const requested = entries.find(
          (e) => e.event === 'APPROVAL_REQUESTED' && JSON.stringify(e).includes(`restart ${tag}`),
        );
        const approvalId = requested?.data?.approvalId;
        expect(approvalId, tag).toBeTruthy();
        expect(
          attempts.filter((e) => e.data?.approvalId === approvalId),
          tag,
        ).toHaveLength(1);
      }
    });
  });
}
