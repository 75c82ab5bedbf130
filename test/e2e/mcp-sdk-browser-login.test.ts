/**
 * Delegated logins with a stock MCP client (issue #6's proof): the official
 * MCP SDK's own OAuth support — RFC 9728 discovery from the 401, RFC 8414
 * metadata, dynamic registration, PKCE — sends a real browser (Debian's
 * Chromium driven by playwright-core) to Warden's login and consent pages;
 * the user logs in and allows, the browser lands on the client's loopback
 * redirect URI, and the SDK trades the code for a token that calls a tool as
 * the agent for that user. Unlike delegated-login.test.ts, the browser here
 * enforces what a fetch loop cannot: cookies' SameSite, the pages' CSP
 * (form-action across the final redirect) and real form submission.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type OAuthClientProvider, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt } from 'jose';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserStore } from '../../src/users/index.js';
import { type DialectTarget, makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const CHROMIUM = '/usr/bin/chromium';
const PASSWORD = 'correct horse battery staple';
const CLIENT_NAME = 'SDK Browser Test Client';
// Outside CI a machine without Debian's chromium skips; in CI a missing browser must fail, not skip.
const skip = !existsSync(CHROMIUM) && !process.env.CI;
const SKIP_REASON = `${CHROMIUM} is not installed (apt-get install chromium; the test is required when CI is set)`;
if (skip) console.warn(`mcp-sdk-browser-login: skipped, ${SKIP_REASON}`);

/** What the browser brought back to the client's redirect URI. */
interface Callback {
  code: string | null;
  iss: string | null;
  state: string | null;
  error: string | null;
}

/** The client's redirect URI: a loopback listener that takes one authorization response. */
async function startCallbackServer(): Promise<{ url: string; received: Promise<Callback>; server: Server }> {
  let deliver: (cb: Callback) => void = () => {};
  const received = new Promise<Callback>((resolve) => {
    deliver = resolve;
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const p = url.searchParams;
    deliver({ code: p.get('code'), iss: p.get('iss'), state: p.get('state'), error: p.get('error') });
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Signed in</title><h1>You can close this window.</h1>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/callback`, received, server };
}

/** An in-memory OAuthClientProvider, as a stock MCP client keeps one, that opens the browser when asked. */
class BrowserOAuthProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier: string | undefined;
  lastState: string | undefined;
  /** The URLs the SDK asked the user agent to open. */
  readonly authorizationUrls: URL[] = [];
  /** The browser's run through the login and consent pages, started by redirectToAuthorization. */
  browsing: Promise<void> | undefined;

  constructor(
    private readonly redirect: string,
    private readonly openInBrowser: (url: URL) => Promise<void>,
  ) {}

  get redirectUrl(): string {
    return this.redirect;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: CLIENT_NAME,
      redirect_uris: [this.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state(): string {
    this.lastState = randomBytes(16).toString('base64url');
    return this.lastState;
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.client;
  }

  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.client = info;
  }

  tokens(): OAuthTokens | undefined {
    return this.saved;
  }

  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }

  redirectToAuthorization(url: URL): void {
    this.authorizationUrls.push(url);
    // A real client hands the URL to the system browser and returns; the user finishes later.
    this.browsing = this.openInBrowser(url);
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    if (!this.verifier) throw new Error('no PKCE code verifier saved');
    return this.verifier;
  }
}

describe.skipIf(skip)(
  skip
    ? `MCP SDK login through a real browser — SKIPPED: ${SKIP_REASON}`
    : 'MCP SDK login through a real browser (playwright-core + Debian chromium)',
  () => {
    // Made in beforeAll, so a skipped run leaves no temporary directories behind.
    let target: DialectTarget;
    let shots: string;
    let t: TestGateway;
    let browser: Browser;
    let callback: Awaited<ReturnType<typeof startCallbackServer>>;
    const clients: Client[] = [];

    beforeAll(async () => {
      target = makeTarget('sqlite');
      shots = mkdtempSync(join(tmpdir(), 'warden-consent-'));
      t = await startTestGateway(target, (config) => {
        const demo = config.agents.find((a) => a.id === 'demo-support')!;
        config.agents.push({
          ...demo,
          id: 'desk-assistant',
          type: 'assistant',
          allowedTools: ['lookup_order'],
          deniedTools: [],
          maxConcurrentSessions: 20,
          delegation: { clients: ['dynamic'], users: ['*'] },
        });
      });
      await new UserStore(t.gw.store).create({ id: 'alice', displayName: 'Alice', password: PASSWORD });
      callback = await startCallbackServer();
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
        ],
      });
    });
    afterAll(async () => {
      for (const c of clients) await c.close().catch(() => {});
      await browser?.close();
      await new Promise((resolve) => (callback ? callback.server.close(resolve) : resolve(undefined)));
      await t?.close();
      await target?.cleanup();
      if (!shots) return;
      // WARDEN_KEEP_SCREENSHOTS=1 keeps the consent page's screenshot for a person to look at.
      if (process.env.WARDEN_KEEP_SCREENSHOTS)
        console.log(`consent page screenshot: ${join(shots, 'consent.png')}`);
      else rmSync(shots, { recursive: true, force: true });
    });

    /** The person at the browser: logs in as alice, reads the consent page, allows. */
    async function logInAndAllow(url: URL): Promise<void> {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(url.href);
        expect(new URL(page.url()).pathname).toMatch(/^\/oauth\/interaction\/[A-Za-z0-9_-]+$/);
        await expect.poll(() => page.locator('h1').textContent()).toBe('Log in to Warden');
        await page.getByLabel('User name').fill('alice');
        await page.getByLabel('Password').fill(PASSWORD);
        // The click waits for the form's navigation (POST, then Warden's redirects) to commit.
        await page.getByRole('button', { name: 'Log in' }).click();
        await page.waitForLoadState();
        const consent = (await page.locator('main').textContent()) ?? '';
        expect(await page.locator('h1').textContent(), consent).toBe(
          `Allow “${CLIENT_NAME}” to act for you?`,
        );
        expect(consent).toContain('desk-assistant');
        expect(consent).toContain(new URL(callback.url).host);
        expect(consent).toContain('Run the tool “lookup_order”');
        expect(consent).toContain('alice');
        await page.screenshot({ path: join(shots, 'consent.png'), fullPage: true });
        await Promise.all([
          page.waitForURL((u) => u.href.startsWith(callback.url)),
          page.getByRole('button', { name: 'Allow' }).click(),
        ]);
        await expect.poll(() => page.locator('h1').textContent()).toBe('You can close this window.');
      } finally {
        await context.close();
      }
    }

    it('logs alice in with the SDK’s own auth(), then calls a tool as desk-assistant for her', async () => {
      const provider = new BrowserOAuthProvider(callback.url, logInAndAllow);
      const transport = new StreamableHTTPClientTransport(new URL(`${t.gw.url}/mcp`), {
        authProvider: provider,
      });
      const first = new Client({ name: 'sdk-browser-test', version: '1.0.0' });
      // No token yet: the 401 sends the SDK through discovery, registration and the browser.
      await expect(first.connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
      expect(provider.authorizationUrls).toHaveLength(1);
      const authorize = provider.authorizationUrls[0]!;
      expect(authorize.origin + authorize.pathname).toBe(`${t.gw.url}/oauth/authorize`);
      expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
      expect(provider.client?.client_id).toBeTruthy();

      await provider.browsing;
      const cb = await callback.received;
      expect(cb.error).toBeNull();
      expect(cb.code).toBeTruthy();
      expect(cb.state).toBe(provider.lastState);
      expect(cb.iss).toBe(`${t.gw.url}/oauth`); // RFC 9207

      await transport.finishAuth(cb.code!);
      const accessToken = provider.saved?.access_token;
      expect(accessToken).toBeTruthy();
      expect(provider.saved?.refresh_token).toBeTruthy();

      const client = new Client({ name: 'sdk-browser-test', version: '1.0.0' });
      clients.push(client);
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${t.gw.url}/mcp`), { authProvider: provider }),
      );
      const out = (await client.callTool({
        name: 'lookup_order',
        arguments: { orderId: 'ORD-4F8K2P1Z' },
      })) as CallToolResult;
      expect(out.isError, JSON.stringify(out.content)).toBeFalsy();
      expect(JSON.stringify(out.content)).toContain('ORD-4F8K2P1Z');

      const claims = decodeJwt(accessToken!);
      expect(claims.sub).toBe('alice');
      expect(claims.act).toEqual({ sub: 'desk-assistant' });
      const session = await t.gw.sessions.get(claims.sid as string);
      expect(session?.userId).toBe('alice');
      expect(session?.agentId).toBe('desk-assistant');
      expect(session?.issuedVia).toBe('authorization_code');
    }, 60_000);
  },
);
