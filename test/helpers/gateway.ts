/**
 * Starts a real gateway (real HTTP listener, real stdio upstream process) on a
 * free port for end-to-end tests, with the embedded default's tools and agents
 * plus test agents that hold real key pairs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { embeddedDefault } from '../../src/config/index.js';
import type { AgentConfig, WardenConfig } from '../../src/config/types.js';
import { generateAgentKeyPair, requestSessionToken } from '../../src/identity/index.js';
import { type Gateway, type GatewayOptions, startGateway } from '../../src/server/gateway.js';
import { silentLogger } from '../../src/server/logger.js';
import { ManualClock } from '../../src/util/clock.js';
import type { DialectTarget } from './dialects.js';

export interface TestGateway {
  gw: Gateway;
  clock: ManualClock;
  keys: Record<string, Record<string, unknown>>;
  /** A session token for `agentId` through the real OAuth endpoint (client_credentials + private_key_jwt). */
  oauthToken(agentId: string): Promise<string>;
  /** An operator-issued session token (clock-injected). */
  operatorToken(agentId: string, ttlMs?: number): Promise<string>;
  /** An MCP client connected with `token`. */
  mcp(token: string): Promise<Client>;
  close(): Promise<void>;
}

/** Start a gateway on `target`'s store; `tweak` may adjust the config first. */
export async function startTestGateway(
  target: DialectTarget,
  tweak: (config: WardenConfig) => void = () => {},
  options: Pick<GatewayOptions, 'oauthFetch' | 'sqliteBusyTimeoutMs'> = {},
): Promise<TestGateway> {
  const clock = new ManualClock(Date.now());
  const dir = mkdtempSync(join(tmpdir(), 'warden-e2e-'));
  const config = embeddedDefault({ cwd: dir, now: clock.now() });
  config.server.port = 0;
  config.store.url = target.url;
  const keys: Record<string, Record<string, unknown>> = {};
  const demo = config.agents.find((a) => a.id === 'demo-support')!;
  demo.maxConcurrentSessions = 50; // suites open many sessions; the limit itself is tested on analyst-1
  // Delegated logins are tested on agents that opt in explicitly (and agents cloned from demo must not).
  delete demo.delegation;
  const analyst: AgentConfig = {
    ...demo,
    id: 'analyst-1',
    type: 'data-analyst',
    allowedTools: ['lookup_order'],
    deniedTools: [],
    maxConcurrentSessions: 2,
    constraints: { maxToolCalls: 3, allowedCidrs: ['127.0.0.0/8', '::1/128'] },
  };
  config.agents.push(analyst);
  for (const agent of config.agents) {
    const pair = await generateAgentKeyPair();
    keys[agent.id] = pair.privateJwk as Record<string, unknown>;
    agent.publicJwk = pair.publicJwk as Record<string, unknown>;
  }
  tweak(config);
  const gw = await startGateway(config, {
    clock,
    logger: silentLogger(),
    ...(target.pgSchema ? { pgSchema: target.pgSchema } : {}),
    ...options,
  });
  const clients: Client[] = [];
  return {
    gw,
    clock,
    keys,
    async oauthToken(agentId) {
      const r = await requestSessionToken({
        tokenEndpoint: `${gw.url}/oauth/token`,
        agentId,
        privateJwk: keys[agentId]!,
      });
      return r.access_token;
    },
    async operatorToken(agentId, ttlMs) {
      return (await gw.tokens.issue(agentId, ttlMs === undefined ? {} : { ttlMs })).token;
    },
    async mcp(token) {
      const client = new Client({ name: 'e2e-agent', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), {
          requestInit: { headers: { Authorization: `Bearer ${token}` } },
        }),
      );
      clients.push(client);
      return client;
    },
    async close() {
      for (const c of clients) await c.close().catch(() => {});
      await gw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
