/**
 * An agent talking to Warden, start to finish: prove its identity with its
 * private key, get a short-lived session token, and use the MCP tools it is
 * allowed. Run against a running gateway:
 *
 *   npx tsx examples/agent-client.ts http://127.0.0.1:8787 demo-support .warden/demo-support.private.jwk
 */
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { requestSessionToken } from '../src/identity/index.js';

/** Log in as `agentId`, list the tools, look up one order; returns what it saw. */
export async function runAgent(gatewayUrl: string, agentId: string, privateJwk: Record<string, unknown>) {
  // 1. client_credentials + private_key_jwt (RFC 7523): no shared secret ever leaves the agent.
  const token = await requestSessionToken({
    tokenEndpoint: `${gatewayUrl}/oauth/token`,
    agentId,
    privateJwk,
  });

  // 2. MCP over Streamable HTTP with the session token as a bearer token.
  const client = new Client({ name: agentId, version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${gatewayUrl}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${token.access_token}` } },
    }),
  );
  try {
    const tools = (await client.listTools()).tools.map((t) => t.name);
    // 3. A tool call. `_meta["warden/reasoning"]` records why the agent made it (audited, never trusted).
    const result = (await client.callTool({
      name: 'lookup_order',
      arguments: { orderId: 'ORD-4F8K2P1Z' },
      _meta: { 'warden/reasoning': 'the customer asked where their keyboard is' },
    })) as CallToolResult;
    return { expiresIn: token.expires_in, scopes: token.scope, tools, result };
  } finally {
    await client.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [
    url = 'http://127.0.0.1:8787',
    agentId = 'demo-support',
    keyFile = '.warden/demo-support.private.jwk',
  ] = process.argv.slice(2);
  const jwk = JSON.parse(readFileSync(keyFile, 'utf8')) as Record<string, unknown>;
  const out = await runAgent(url, agentId, jwk);
  console.log(`token valid for ${out.expiresIn}s, scopes: ${out.scopes}`);
  console.log(`tools: ${out.tools.join(', ')}`);
  console.log(JSON.stringify(out.result.structuredContent ?? out.result.content, null, 2));
}
