/**
 * Per-user credential brokering (issue #6): an upstream MCP server that only
 * accepts its own authorization server's tokens, reached with each user's own
 * account. The user connects on Warden's account page (Warden is the OAuth
 * client), Warden keeps the tokens sealed, attaches the user's token to the
 * user's calls, refreshes it, and says clearly when the user must connect.
 */
import { randomBytes } from 'node:crypto';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolDefaults } from '../../src/config/constants.js';
import { UserStore } from '../../src/users/index.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { delegatedToken, TestBrowser } from '../helpers/oauth-browser.js';
import { type ProtectedUpstream, startProtectedUpstream } from '../helpers/protected-upstream.js';

const PASSWORD = 'correct horse battery staple';

describe('per-user upstream credentials', () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  let up: ProtectedUpstream;

  beforeAll(async () => {
    up = await startProtectedUpstream({ accessTokenTtlS: 300 });
    process.env.WARDEN_TEST_TRACKER_SECRET = up.clientSecret;
    process.env.WARDEN_TEST_TOKEN_KEY = randomBytes(32).toString('base64');
    t = await startTestGateway(target, (config) => {
      const demo = config.agents.find((a) => a.id === 'demo-support')!;
      config.agents.push({
        ...demo,
        id: 'tracker-assistant',
        type: 'assistant',
        allowedTools: ['whoami', 'echo'],
        deniedTools: [],
        maxConcurrentSessions: 20,
        delegation: { clients: ['dynamic'], users: ['*'] },
      });
      config.upstreams.push({
        name: 'tracker',
        transport: 'http',
        url: up.mcpUrl,
        timeoutMs: 10_000,
        connectTimeoutMs: 5_000,
        credentials: {
          headers: {},
          userOAuth: {
            issuer: up.issuer,
            clientId: up.clientId,
            clientSecret: { env: 'WARDEN_TEST_TRACKER_SECRET' },
            scopes: ['tools:call'],
          },
        },
      });
      config.tools.whoami = toolDefaults('low');
      config.tools.echo = toolDefaults('low');
      config.oauth.tokenKey = { env: 'WARDEN_TEST_TOKEN_KEY' };
    });
    up.allowRedirect(`${t.gw.url}/oauth/connect/callback`);
    const users = new UserStore(t.gw.store);
    await users.create({ id: 'alice', password: PASSWORD });
    await users.create({ id: 'bob', password: PASSWORD });
  });
  afterAll(async () => {
    await t?.close();
    await up?.close();
    await target.cleanup();
    delete process.env.WARDEN_TEST_TRACKER_SECRET;
    delete process.env.WARDEN_TEST_TOKEN_KEY;
  });

  async function call(token: string, name: string, args: Record<string, unknown> = {}) {
    const mcp = await t.mcp(token);
    return (await mcp.callTool({ name, arguments: args })) as CallToolResult & {
      _meta?: { 'warden/error'?: { code: string; message: string } };
    };
  }

  /** Logs `user` in on the account page and connects the tracker account; returns the final page. */
  async function connect(user: string, account: string) {
    up.setAccount(account);
    const browser = new TestBrowser(t.gw.url);
    const page = await browser.follow(`${t.gw.url}/oauth/account`);
    await browser.follow(new URL(TestBrowser.action(page.body, /\/account\/login$/), t.gw.url).href, {
      method: 'POST',
      form: { csrf: TestBrowser.csrf(page.body), username: user, password: PASSWORD },
    });
    let hop = await browser.request(`${t.gw.url}/oauth/account/connect/tracker`);
    for (let i = 0; i < 10 && hop.status >= 300 && hop.status < 400; i++) {
      hop = await browser.request(new URL(hop.headers.get('location')!, hop.url).href);
    }
    return { hop, browser };
  }

  it('asks the user to connect, then calls with their own account, sealed at rest', async () => {
    const alice = await delegatedToken(t.gw.url, {
      user: 'alice',
      password: PASSWORD,
      agent: 'tracker-assistant',
    });
    // Before anyone connected, the upstream's tools are not known yet (they are learned from a user's
    // connection); once one user has connected, others get the clear refusal (next test).
    const before = await call(alice.accessToken, 'whoami');
    expect(before.isError).toBe(true);
    expect(before._meta?.['warden/error']?.code).toBe('TOOL_UNKNOWN');

    const { hop } = await connect('alice', 'alice-upstream');
    expect(hop.status, /class="error"[^>]*>([^<]*)/.exec(hop.body)?.[1] ?? hop.body.slice(0, 300)).toBe(200);
    expect(hop.body).toContain('connected: its tools act as you');

    const after = await call(alice.accessToken, 'whoami');
    expect(after.isError, JSON.stringify(after.content)).toBeFalsy();
    expect(JSON.stringify(after.content)).toContain('alice-upstream');
    expect(up.calls.at(-1)?.sub).toBe('alice-upstream');

    // At rest: a JWE naming its user and issuer, never the token itself.
    const row = await t.gw.store.db
      .selectFrom('upstream_tokens')
      .selectAll()
      .where('user_id', '=', 'alice')
      .executeTakeFirstOrThrow();
    expect(row.sealed.split('.')).toHaveLength(5);
    const header = JSON.parse(Buffer.from(row.sealed.split('.')[0]!, 'base64url').toString()) as Record<
      string,
      string
    >;
    expect(header).toMatchObject({
      alg: 'dir',
      enc: 'A256GCM',
      'warden.user': 'alice',
      'warden.iss': up.issuer,
    });
    expect(row.sealed).not.toContain(up.calls.at(-1)!.jti);
  });

  it("uses each user's own account, never another's, and a moved sealed row does not open", async () => {
    const bob = await delegatedToken(t.gw.url, {
      user: 'bob',
      password: PASSWORD,
      agent: 'tracker-assistant',
    });
    const refused = await call(bob.accessToken, 'whoami');
    expect(refused._meta?.['warden/error']?.code).toBe('UPSTREAM_AUTHORIZATION_REQUIRED');
    expect(refused._meta?.['warden/error']?.message).toContain('/oauth/account');
    // A database admin copies alice's sealed tokens onto bob's row: they do not open for bob.
    const alices = await t.gw.store.db
      .selectFrom('upstream_tokens')
      .selectAll()
      .where('user_id', '=', 'alice')
      .executeTakeFirstOrThrow();
    await t.gw.store.db
      .insertInto('upstream_tokens')
      .values({ ...alices, user_id: 'bob' })
      .execute();
    const still = await call(bob.accessToken, 'whoami');
    expect(still._meta?.['warden/error']?.code).toBe('UPSTREAM_AUTHORIZATION_REQUIRED');
    expect(
      await t.gw.store.db
        .selectFrom('upstream_tokens')
        .select('user_id')
        .where('user_id', '=', 'bob')
        .execute(),
    ).toHaveLength(0);
    await connect('bob', 'bob-upstream');
    const own = await call(bob.accessToken, 'whoami');
    expect(JSON.stringify(own.content)).toContain('bob-upstream');
  });

  it('refreshes the access token before it expires, once', async () => {
    const alice = await delegatedToken(t.gw.url, {
      user: 'alice',
      password: PASSWORD,
      agent: 'tracker-assistant',
    });
    const refreshes = up.issued.refresh_token;
    t.clock.advance(290_000); // within 30 s of the 300 s expiry, on Warden's clock
    const [a, b] = await Promise.all([
      call(alice.accessToken, 'whoami'),
      call(alice.accessToken, 'echo', { text: 'x' }),
    ]);
    expect(a.isError, JSON.stringify(a.content)).toBeFalsy();
    expect(b.isError, JSON.stringify(b.content)).toBeFalsy();
    expect(up.issued.refresh_token).toBe(refreshes + 1);
  });

  it('asks to connect again when the upstream revokes the grant, and after a disconnect', async () => {
    const alice = await delegatedToken(t.gw.url, {
      user: 'alice',
      password: PASSWORD,
      agent: 'tracker-assistant',
    });
    up.revokeAll();
    const revoked = await call(alice.accessToken, 'whoami');
    expect(revoked.isError).toBe(true);
    expect(revoked._meta?.['warden/error']?.code).toBe('UPSTREAM_AUTHORIZATION_REQUIRED');
    const { hop, browser } = await connect('alice', 'alice-upstream');
    expect(hop.body).toContain('connected: its tools act as you');
    expect((await call(alice.accessToken, 'whoami')).isError).toBeFalsy();
    const page = await browser.follow(`${t.gw.url}/oauth/account`);
    const out = await browser.follow(new URL(TestBrowser.action(page.body, /\/disconnect$/), t.gw.url).href, {
      method: 'POST',
      form: { csrf: TestBrowser.csrf(page.body), upstream: 'tracker' },
    });
    expect(out.body).toContain('not connected');
    expect((await call(alice.accessToken, 'whoami'))._meta?.['warden/error']?.code).toBe(
      'UPSTREAM_AUTHORIZATION_REQUIRED',
    );
    const events = await t.gw.store.db
      .selectFrom('audit_log')
      .select('event')
      .where('event', 'in', ['UPSTREAM_CONNECTED', 'UPSTREAM_DISCONNECTED'])
      .execute();
    expect(events.map((e) => e.event)).toContain('UPSTREAM_DISCONNECTED');
  });

  it('refuses the tool to a session acting for nobody', async () => {
    // The agent's own session (no user): per-user tools have no account to act with.
    const own = await t.gw.tokens.issue('tracker-assistant');
    const r = await call(own.token, 'whoami');
    expect(r._meta?.['warden/error']?.code).toBe('UPSTREAM_AUTHORIZATION_REQUIRED');
  });
});
