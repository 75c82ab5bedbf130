/**
 * Behind an https public URL (a TLS-terminating proxy in front of Warden), the
 * login pages' cookies are host-only and Secure: `__Host-` for the ones that
 * live at `/`, `__Secure-` for the path-bound interaction cookies.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { pkce } from '../helpers/oauth-browser.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('login cookies behind an https public URL', () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  let base: string;
  let publicUrl: string;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    publicUrl = `https://127.0.0.1:${port}`;
    t = await startTestGateway(target, (config) => {
      config.server.port = port;
      config.server.publicUrl = publicUrl;
      config.server.trustProxy = true;
      config.agents.find((a) => a.id === 'demo-support')!.delegation = { clients: ['dynamic'], users: ['*'] };
    });
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  it('sets __Host- / __Secure- cookies, Secure and HttpOnly, without a Domain', async () => {
    const redirect = 'https://app.example.com/cb';
    const client = await fetch(`${base}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
      body: JSON.stringify({
        redirect_uris: [redirect],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }),
    });
    expect(client.status).toBe(201);
    const { client_id } = (await client.json()) as { client_id: string };
    const authorize = await fetch(
      `${base}/oauth/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id,
        redirect_uri: redirect,
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
      })}`,
      { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } },
    );
    expect(authorize.status).toBe(303);
    const location = authorize.headers.get('location')!;
    expect(
      location.startsWith(`${publicUrl}/oauth/interaction/`) || location.startsWith('/oauth/interaction/'),
    ).toBe(true);
    const set = authorize.headers.getSetCookie();
    const names = set.map((c) => c.split('=')[0]);
    expect(names).toContain('__Secure-warden-interaction');
    expect(names).toContain('__Secure-warden-interaction-resume');
    for (const c of set) {
      expect(c).toMatch(/;\s*secure/i);
      expect(c).toMatch(/;\s*httponly/i);
      expect(c).not.toMatch(/;\s*domain=/i);
    }
    const page = await fetch(new URL(new URL(location, publicUrl).pathname, base), {
      headers: {
        'x-forwarded-proto': 'https',
        cookie: set.map((c) => c.split(';')[0]).join('; '),
      },
    });
    expect(page.status).toBe(200);
    const csrf = page.headers.getSetCookie().find((c) => c.startsWith('__Host-warden-csrf='));
    expect(csrf).toBeDefined();
    expect(csrf).toMatch(/;\s*Path=\/(;|$)/);
    expect(csrf).toMatch(/;\s*Secure/);
    expect(csrf).toMatch(/;\s*SameSite=Strict/);
    expect(csrf).not.toMatch(/;\s*domain=/i);
  });
});
