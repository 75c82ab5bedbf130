/**
 * Delegated logins (issue #6): an OAuth client registers itself, a user logs
 * in at Warden's page and consents, and the client gets a session token that
 * acts as the agent for that user (`sub` the user, `act.sub` the agent);
 * refresh tokens rotate, and a replayed one revokes the whole grant.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserStore } from '../../src/users/index.js';
import { runWarden } from '../helpers/cli-process.js';
import { makeTarget, pgAvailable } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { pkce, registerClient, TestBrowser, tokenRequest } from '../helpers/oauth-browser.js';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PASSWORD = 'correct horse battery staple';

describe.each([
  ['sqlite', true],
  ['postgres', pgAvailable],
] as const)('delegated login: authorization code + PKCE with consent [%s]', (dialect, available) => {
  if (!available) {
    it.skip('PostgreSQL is unreachable', () => {});
    return;
  }
  const target = makeTarget(dialect);
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway(target, (config) => {
      const demo = config.agents.find((a) => a.id === 'demo-support')!;
      config.agents.push({
        ...demo,
        id: 'desk-assistant',
        type: 'assistant',
        allowedTools: ['lookup_order', 'check_shipping_status'],
        deniedTools: [],
        maxConcurrentSessions: 20,
        scopes: ['orders:read:user:{user}'],
        delegation: { clients: ['dynamic'], users: ['*'] },
      });
      config.operators = [
        { id: 'ops', roles: ['admin'] },
        { id: 'approver-1', roles: ['approver'] },
      ];
    });
    await new UserStore(t.gw.store).create({ id: 'alice', displayName: 'Alice', password: PASSWORD });
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  async function register(extra: Record<string, unknown> = {}) {
    return registerClient(t.gw.url, REDIRECT, extra);
  }

  async function token(form: Record<string, string>) {
    return tokenRequest(t.gw.url, form);
  }

  /** Registers a client, logs alice in, consents; returns the code and what was needed to get it. */
  /** `scope` null: the request names no scope. */
  async function loginAndConsent(scope: string | null = 'tool:lookup_order:execute') {
    const client = (await register()).body;
    const browser = new TestBrowser(t.gw.url);
    const { verifier, challenge } = pkce();
    const authorize = new URL(`${t.gw.url}/oauth/authorize`);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id!,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'st-123',
      resource: t.gw.url,
      ...(scope === null ? {} : { scope }),
    }).toString();
    const login = await browser.follow(authorize.href);
    expect(login.status).toBe(200);
    expect(login.body).toContain('Log in to Warden');
    expect(login.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(login.headers.get('x-frame-options')).toBe('DENY');
    expect(login.headers.get('referrer-policy')).toBe('same-origin');
    const consent = await browser.follow(new URL(TestBrowser.action(login.body, /\/login$/), t.gw.url).href, {
      method: 'POST',
      form: { csrf: TestBrowser.csrf(login.body), username: 'alice', password: PASSWORD },
    });
    expect(consent.status).toBe(200);
    expect(consent.body).toContain('Allow “Test MCP Client” to act for you?');
    expect(consent.body).toContain('desk-assistant');
    expect(consent.body).toContain('127.0.0.1:9');
    if (scope?.includes('lookup_order') !== false)
      expect(consent.body).toContain('Run the tool “lookup_order”');
    const done = await browser.follow(
      new URL(TestBrowser.action(consent.body, /\/consent$/), t.gw.url).href,
      {
        method: 'POST',
        form: { csrf: TestBrowser.csrf(consent.body), agent: 'desk-assistant', decision: 'allow' },
      },
    );
    expect(done.status).toBe(303);
    const back = new URL(done.url);
    expect(back.origin + back.pathname).toBe(REDIRECT);
    return { client, verifier, back, browser };
  }

  it('issues a token acting as the agent for the user, and the MCP call runs for them', async () => {
    const { client, verifier, back } = await loginAndConsent();
    expect(back.searchParams.get('state')).toBe('st-123');
    expect(back.searchParams.get('iss')).toBe(`${t.gw.url}/oauth`); // RFC 9207
    const res = await token({
      grant_type: 'authorization_code',
      code: back.searchParams.get('code')!,
      redirect_uri: REDIRECT,
      client_id: client.client_id!,
      code_verifier: verifier,
      resource: t.gw.url,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.refresh_token).toBeTruthy();
    const claims = decodeJwt(res.body.access_token!);
    expect(claims.sub).toBe('alice');
    expect(claims.act).toEqual({ sub: 'desk-assistant' });
    expect(claims.client_id).toBe('desk-assistant');
    expect(claims.aud).toBe(t.gw.url);
    expect(claims.scope).toBe('tool:lookup_order:execute');
    const mcp = await t.mcp(res.body.access_token!);
    const out = (await mcp.callTool({
      name: 'lookup_order',
      arguments: { orderId: 'ORD-4F8K2P1Z' },
    })) as CallToolResult;
    expect(out.isError, JSON.stringify(out.content)).toBeFalsy();
    const session = await t.gw.sessions.get(claims.sid as string);
    expect(session?.userId).toBe('alice');
    expect(session?.issuedVia).toBe('authorization_code');
    expect(session?.grantId).toBeTruthy();
  });

  it('rotates refresh tokens, and a replayed one revokes the grant and its sessions', async () => {
    const { client, verifier, back } = await loginAndConsent();
    const first = await token({
      grant_type: 'authorization_code',
      code: back.searchParams.get('code')!,
      redirect_uri: REDIRECT,
      client_id: client.client_id!,
      code_verifier: verifier,
    });
    expect(first.status).toBe(200);
    const second = await token({
      grant_type: 'refresh_token',
      refresh_token: first.body.refresh_token!,
      client_id: client.client_id!,
    });
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
    const sid = decodeJwt(second.body.access_token!).sid as string;
    // The old refresh token again: a thief or a bug — either way the grant ends.
    const replay = await token({
      grant_type: 'refresh_token',
      refresh_token: first.body.refresh_token!,
      client_id: client.client_id!,
    });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    const after = await token({
      grant_type: 'refresh_token',
      refresh_token: second.body.refresh_token!,
      client_id: client.client_id!,
    });
    expect(after.body.error).toBe('invalid_grant');
    expect((await t.gw.sessions.get(sid))?.revokedAt).not.toBeNull();
  });

  async function codeToToken(flow: Awaited<ReturnType<typeof loginAndConsent>>) {
    return token({
      grant_type: 'authorization_code',
      code: flow.back.searchParams.get('code')!,
      redirect_uri: REDIRECT,
      client_id: flow.client.client_id!,
      code_verifier: flow.verifier,
    });
  }

  it('without a scope request grants what the agent may hold for this user, {user} filled in', async () => {
    const res = await codeToToken(await loginAndConsent(null));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(decodeJwt(res.body.access_token!).scope).toBe(
      'tool:check_shipping_status:execute tool:lookup_order:execute orders:read:user:alice',
    );
  });

  it("never grants one user's resource scope to another", async () => {
    const flow = await loginAndConsent('tool:lookup_order:execute orders:read:user:alice');
    const res = await codeToToken(flow);
    expect(decodeJwt(res.body.access_token!).scope).toBe('tool:lookup_order:execute orders:read:user:alice');
    // bob's orders: the agent's pattern is filled with the consenting user only.
    const client = (await register()).body;
    const browser = new TestBrowser(t.gw.url);
    const { challenge } = pkce();
    const url = new URL(`${t.gw.url}/oauth/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id!,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      scope: 'tool:lookup_order:execute orders:read:user:bob',
    }).toString();
    const login = await browser.follow(url.href);
    const consent = await browser.follow(new URL(TestBrowser.action(login.body, /\/login$/), t.gw.url).href, {
      method: 'POST',
      form: { csrf: TestBrowser.csrf(login.body), username: 'alice', password: PASSWORD },
    });
    expect(consent.body).not.toContain('orders:read:user:bob');
    expect(consent.body).toContain('tool:lookup_order:execute');
  });

  it('lets an admin list and revoke grants; the refresh token and the session stop at once', async () => {
    const flow = await loginAndConsent();
    const res = await codeToToken(flow);
    const sid = decodeJwt(res.body.access_token!).sid as string;
    const admin = (await t.gw.operatorTokens.issue('ops', 600_000)).token;
    const approver = (await t.gw.operatorTokens.issue('approver-1', 600_000)).token;
    const list = async (token: string) =>
      fetch(`${t.gw.url}/admin/v1/grants?user=alice`, { headers: { authorization: `Bearer ${token}` } });
    // Approvers decide calls; they do not see who granted what.
    expect((await list(approver)).status).toBe(403);
    const listed = (await (await list(admin)).json()) as { grants: Array<{ id: string; clientId: string }> };
    const grant = listed.grants.find((g) => g.clientId === flow.client.client_id);
    expect(grant).toBeDefined();
    const revoke = await fetch(`${t.gw.url}/admin/v1/grants/${grant!.id}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'laptop lost' }),
    });
    expect(revoke.status).toBe(200);
    expect(((await revoke.json()) as { sessionsRevoked: number }).sessionsRevoked).toBe(1);
    expect((await t.gw.sessions.get(sid))?.revokedAt).not.toBeNull();
    const refresh = await token({
      grant_type: 'refresh_token',
      refresh_token: res.body.refresh_token!,
      client_id: flow.client.client_id!,
    });
    expect(refresh.body.error).toBe('invalid_grant');
    const rows = await t.gw.store.db
      .selectFrom('audit_log')
      .select(['event', 'actor_id'])
      .where('event', 'in', ['GRANT_REVOKED', 'CONSENT_GRANTED', 'USER_LOGIN'])
      .execute();
    expect(rows.some((r) => r.event === 'GRANT_REVOKED' && r.actor_id === 'ops')).toBe(true);
    expect(rows.some((r) => r.event === 'CONSENT_GRANTED' && r.actor_id === 'alice')).toBe(true);
    expect(rows.some((r) => r.event === 'USER_LOGIN' && r.actor_id === 'alice')).toBe(true);
  });

  it('treats two refreshes racing with one refresh token as a replay: at most one wins, and the grant ends', async () => {
    const first = await codeToToken(await loginAndConsent());
    const clientId = (decodeJwt(first.body.access_token!) as { client_id: string }).client_id;
    expect(clientId).toBe('desk-assistant');
    const flowClient = first.body.refresh_token!;
    const grantRow = await t.gw.store.db
      .selectFrom('oidc_models')
      .select(['payload'])
      .where('model', '=', 'RefreshToken')
      .execute();
    const rt = grantRow
      .map((r) => JSON.parse(r.payload) as { jti: string; clientId: string })
      .find((p) => p.jti === flowClient);
    expect(rt).toBeDefined();
    const both = await Promise.all(
      [0, 1].map(() =>
        token({ grant_type: 'refresh_token', refresh_token: flowClient, client_id: rt!.clientId }),
      ),
    );
    // The loser always sees the replay; the winner may be cut off mid-way by it (then both fail).
    expect(both.filter((r) => r.status === 200).length).toBeLessThanOrEqual(1);
    expect(both.some((r) => r.body.error === 'invalid_grant')).toBe(true);
    const grantId = (await t.gw.sessions.get(decodeJwt(first.body.access_token!).sid as string))?.grantId;
    expect(
      (
        await t.gw.store.db
          .selectFrom('user_grants')
          .select('revoked_by')
          .where('id', '=', grantId!)
          .executeTakeFirst()
      )?.revoked_by,
    ).toBe('replay-detection');
    for (const winner of both.filter((r) => r.status === 200)) {
      const after = await token({
        grant_type: 'refresh_token',
        refresh_token: winner.body.refresh_token!,
        client_id: rt!.clientId,
      });
      expect(after.body.error).toBe('invalid_grant');
      const sid = decodeJwt(winner.body.access_token!).sid as string;
      expect((await t.gw.sessions.get(sid))?.revokedAt).not.toBeNull();
    }
  });

  it.runIf(dialect === 'sqlite')('lists and revokes grants from the CLI (warden grants)', async () => {
    const flow = await loginAndConsent();
    const res = await codeToToken(flow);
    const sid = decodeJwt(res.body.access_token!).sid as string;
    const dir = mkdtempSync(join(tmpdir(), 'warden-grants-cli-'));
    try {
      const configFile = join(dir, 'warden.yaml');
      writeFileSync(
        configFile,
        [
          'store:',
          `  url: ${JSON.stringify(target.url)}`,
          'operators:',
          '  - id: ops',
          '    roles: [admin]',
          '',
        ].join('\n'),
      );
      // The common options first: after "--" (below) everything is an argument.
      const cli = (command: string, ...args: string[]) =>
        runWarden(['grants', command, '--as', 'ops', '--url', t.gw.url, '--config', configFile, ...args], {
          cwd: dir,
        });
      const listed = await cli('list', '--user', 'alice', '--json');
      expect(listed.code, listed.stderr).toBe(0);
      const grants = (JSON.parse(listed.stdout) as { grants: Array<{ id: string; clientId: string }> })
        .grants;
      const grant = grants.find((g) => g.clientId === flow.client.client_id)!;
      expect(grant).toBeDefined();
      // After "--": a grant id (oidc-provider's) may start with a dash.
      const revoked = await cli('revoke', '--reason', 'test', '--', grant.id);
      expect(revoked.code, revoked.stderr).toBe(0);
      expect(revoked.stdout).toContain('revoked (1 session ended)');
      expect((await t.gw.sessions.get(sid))?.revokedAt).not.toBeNull();
      const again = await cli('revoke', '--', grant.id);
      expect(again.stdout).toContain('already revoked');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
