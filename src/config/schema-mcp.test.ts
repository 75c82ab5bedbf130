/** Config of MCP relaying and DNS-rebinding protection (issue #10). */
import { describe, expect, it } from 'vitest';
import { loadYaml } from '../../test/helpers/config-yaml.js';
import type { HttpUpstreamConfig } from './types.js';

const upstream = (extra: string) => `
upstreams:
  - name: research
    transport: http
    url: http://127.0.0.1:9100/mcp
${extra}
`;

describe('upstreams[].relay', () => {
  it('is off unless turned on, per feature', async () => {
    const off = await loadYaml(upstream(''));
    if ('error' in off) throw new Error(off.error);
    expect((off.config.upstreams[0] as HttpUpstreamConfig).relay).toBeUndefined();
    const on = await loadYaml(upstream('    relay: { sampling: true, roots: true }'));
    if ('error' in on) throw new Error(on.error);
    expect((on.config.upstreams[0] as HttpUpstreamConfig).relay).toEqual({
      sampling: true,
      elicitation: false,
      roots: true,
    });
  });

  it('is refused on stdio upstreams, with unknown features, and with per-user credentials', async () => {
    const stdio = await loadYaml(`
upstreams:
  - name: local
    transport: stdio
    command: node
    relay: { sampling: true }
`);
    expect('error' in stdio && stdio.error).toMatch(/relay/);
    const unknown = await loadYaml(upstream('    relay: { smapling: true }'));
    expect('error' in unknown && unknown.error).toMatch(/smapling/);
    const perUser = await loadYaml(
      upstream(`    relay: { elicitation: true }
    credentials:
      userOAuth: { issuer: https://auth.example.com, clientId: warden }`),
    );
    expect('error' in perUser && perUser.error).toMatch(/relay is not available with credentials.userOAuth/);
  });
});

describe('server.allowedHosts / allowedOrigins', () => {
  it('normalises what it accepts and refuses what is not a host or an origin', async () => {
    const ok = await loadYaml(`
server:
  allowedHosts: [MCP.Example.com]
  allowedOrigins: [https://Console.example.com/]
`);
    if ('error' in ok) throw new Error(ok.error);
    expect(ok.config.server.allowedHosts).toEqual(['mcp.example.com']);
    expect(ok.config.server.allowedOrigins).toEqual(['https://console.example.com']);
    const bad = await loadYaml(`
server:
  allowedHosts: ['https://mcp.example.com']
  allowedOrigins: ['https://console.example.com/path']
`);
    expect('error' in bad && bad.error).toMatch(/allowedHosts[\s\S]*allowedOrigins/);
  });
});
