import { describe, expect, it } from 'vitest';
import { loadYaml } from '../../test/helpers/config-yaml.js';
import type { HttpUpstreamConfig } from './types.js';

/** Load a config with one upstream written as a YAML flow mapping. */
const load = (upstream: string) => loadYaml(`upstreams:\n  - ${upstream}\n`);

describe('upstreams[].credentials.oauth', () => {
  it('resolves the client credentials, with the secret file relative to the config', async () => {
    const r = await load(
      '{ name: crm, transport: http, url: "https://crm.example.com/mcp", credentials: { oauth: { tokenUrl: "https://auth.example.com/token", clientId: gw, clientSecret: { file: crm.secret }, scope: "tools:call" } } }',
    );
    if ('error' in r) throw new Error(r.error);
    const u = r.config.upstreams[0] as HttpUpstreamConfig;
    expect(u.credentials.oauth).toMatchObject({
      tokenUrl: 'https://auth.example.com/token',
      clientId: 'gw',
      scope: 'tools:call',
    });
    expect((u.credentials.oauth!.clientSecret as { file: string }).file).toMatch(/^\/.*\/crm\.secret$/);
  });

  it.each([
    [
      'a literal secret',
      '{ tokenUrl: "https://auth.example.com/token", clientId: gw, clientSecret: "s3cret" }',
      /secret/,
    ],
    [
      'a token URL with credentials',
      '{ tokenUrl: "https://u:p@auth.example.com/t", clientId: gw, clientSecret: { env: X } }',
      /credentials/,
    ],
    ['no client id', '{ tokenUrl: "https://auth.example.com/token", clientSecret: { env: X } }', /clientId/],
  ])('refuses %s', async (_why, oauth, message) => {
    const r = await load(
      `{ name: crm, transport: http, url: "https://crm.example.com/mcp", credentials: { oauth: ${oauth} } }`,
    );
    expect('error' in r ? r.error : 'loaded').toMatch(message);
  });

  it('refuses an Authorization header beside oauth (which sets it)', async () => {
    const r = await load(
      '{ name: crm, transport: http, url: "https://crm.example.com/mcp", credentials: { headers: { authorization: { env: T } }, oauth: { tokenUrl: "https://a.example/t", clientId: gw, clientSecret: { env: S } } } }',
    );
    expect('error' in r ? r.error : 'loaded').toMatch(/Authorization header/);
  });

  it('reads per-user credentials (userOAuth) with oauth.tokenKey, secrets relative to the config', async () => {
    const r = await loadYaml(
      'upstreams:\n  - { name: tracker, transport: http, url: "https://tracker.example.com/mcp", credentials: { userOAuth: { issuer: "https://auth.tracker.example.com", clientId: warden, clientSecret: { file: t.secret }, scopes: [issues:read] } } }\noauth: { tokenKey: { file: token.key } }\n',
    );
    if ('error' in r) throw new Error(r.error);
    const u = r.config.upstreams[0] as HttpUpstreamConfig;
    expect(u.credentials.userOAuth).toMatchObject({
      issuer: 'https://auth.tracker.example.com',
      clientId: 'warden',
      scopes: ['issues:read'],
    });
    expect((u.credentials.userOAuth!.clientSecret as { file: string }).file).toMatch(/^\/.*\/t\.secret$/);
    expect((r.config.oauth.tokenKey as { file: string }).file).toMatch(/^\/.*\/token\.key$/);
  });

  it('refuses userOAuth without oauth.tokenKey, and beside the gateway-wide oauth', async () => {
    const noKey = await load(
      '{ name: tracker, transport: http, url: "https://t.example.com/mcp", credentials: { userOAuth: { issuer: "https://a.example.com", clientId: w } } }',
    );
    expect('error' in noKey ? noKey.error : 'loaded').toMatch(/oauth\.tokenKey/);
    const both = await load(
      '{ name: tracker, transport: http, url: "https://t.example.com/mcp", credentials: { userOAuth: { issuer: "https://a.example.com", clientId: w }, oauth: { tokenUrl: "https://a.example/t", clientId: gw, clientSecret: { env: S } } } }',
    );
    expect('error' in both ? both.error : 'loaded').toMatch(/not both/);
  });
});
