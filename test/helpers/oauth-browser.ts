/**
 * A minimal browser for OAuth tests: fetch with a cookie jar, redirects
 * followed by hand (so each hop can be inspected), and forms filled in from
 * the HTML Warden serves. Real HTTP against a real gateway; no mocks.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface Hop {
  url: string;
  status: number;
  headers: Headers;
  body: string;
}

/** PKCE pair (RFC 7636, S256). */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export class TestBrowser {
  readonly jar = new Map<string, string>();

  constructor(
    /** Requests to other origins (the client's redirect URI) are not followed. */
    private readonly origin: string,
  ) {}

  private cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private store(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      const expired = attrs.some((a) => /max-age=0\b/i.test(a.trim()) || /expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  /** One request; cookies sent and stored. */
  async request(url: string, init: RequestInit & { form?: Record<string, string> } = {}): Promise<Hop> {
    const headers = new Headers(init.headers);
    if (this.jar.size > 0) headers.set('cookie', this.cookieHeader());
    let body = init.body;
    if (init.form) {
      headers.set('content-type', 'application/x-www-form-urlencoded');
      headers.set('origin', this.origin);
      headers.set('sec-fetch-site', 'same-origin');
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(url, { ...init, headers, body: body ?? null, redirect: 'manual' });
    this.store(res.headers);
    return { url, status: res.status, headers: res.headers, body: await res.text() };
  }

  /** Follows redirects within Warden's origin; stops at the first page or a redirect elsewhere. */
  async follow(url: string, init: RequestInit & { form?: Record<string, string> } = {}): Promise<Hop> {
    let hop = await this.request(url, init);
    for (let i = 0; i < 10 && hop.status >= 300 && hop.status < 400; i++) {
      const next = new URL(hop.headers.get('location')!, hop.url).href;
      if (!next.startsWith(this.origin)) return { ...hop, url: next };
      hop = await this.request(next);
    }
    return hop;
  }

  /** The hidden CSRF value of the page's forms. */
  static csrf(html: string): string {
    const m = /name="csrf" value="([^"]+)"/.exec(html);
    if (!m) throw new Error(`no CSRF field in page: ${html.slice(0, 300)}`);
    return m[1]!;
  }

  /** The action of the first form whose action matches `re`. */
  static action(html: string, re: RegExp): string {
    const all = [...html.matchAll(/<form method="post" action="([^"]+)"/g)].map((m) =>
      m[1]!.replaceAll('&amp;', '&'),
    );
    const found = all.find((a) => re.test(a));
    if (!found) throw new Error(`no form matching ${re} in ${all.join(', ')}`);
    return found;
  }
}

/** RFC 7591 registration of a public code-flow client at `gateway` (fields in `extra` override). */
export async function registerClient(
  gateway: string,
  redirectUri: string,
  extra: Record<string, unknown> = {},
): Promise<{ status: number; body: Record<string, unknown> & { client_id: string } }> {
  const res = await fetch(`${gateway}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'Test MCP Client',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...extra,
    }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { client_id: string } };
}

/** A form POST to `gateway`'s token endpoint. */
export async function tokenRequest(
  gateway: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(`${gateway}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

/**
 * The whole delegated login for tests that need a user's token and not the pages themselves:
 * register a client, log `user` in with a password, allow `agent`, redeem the code.
 */
export async function delegatedToken(
  gateway: string,
  opts: { user: string; password: string; agent: string; redirectUri?: string; scope?: string },
): Promise<{ accessToken: string; refreshToken?: string; clientId: string; browser: TestBrowser }> {
  const redirectUri = opts.redirectUri ?? 'http://127.0.0.1:9/callback';
  const client = (await registerClient(gateway, redirectUri)).body;
  const browser = new TestBrowser(gateway);
  const { verifier, challenge } = pkce();
  const login = await browser.follow(
    `${gateway}/oauth/authorize?${new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: redirectUri,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...(opts.scope ? { scope: opts.scope } : {}),
    })}`,
  );
  const consent = await browser.follow(new URL(TestBrowser.action(login.body, /\/login$/), gateway).href, {
    method: 'POST',
    form: { csrf: TestBrowser.csrf(login.body), username: opts.user, password: opts.password },
  });
  const done = await browser.follow(new URL(TestBrowser.action(consent.body, /\/consent$/), gateway).href, {
    method: 'POST',
    form: { csrf: TestBrowser.csrf(consent.body), agent: opts.agent, decision: 'allow' },
  });
  const code = new URL(done.url).searchParams.get('code');
  if (!code) throw new Error(`no code: ${done.status} ${done.url} ${done.body.slice(0, 300)}`);
  const res = await tokenRequest(gateway, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    client_id: client.client_id,
    code_verifier: verifier,
  });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${JSON.stringify(res.body)}`);
  return {
    accessToken: res.body.access_token!,
    ...(res.body.refresh_token ? { refreshToken: res.body.refresh_token } : {}),
    clientId: client.client_id,
    browser,
  };
}
