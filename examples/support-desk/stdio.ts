/**
 * Entry point: the support desk over stdio. This is what the gateway spawns.
 * stdout carries the protocol only; every log line goes to stderr.
 *
 * Env: if SUPPORT_DESK_REQUIRE_KEY is set, every tool call fails unless
 * SUPPORT_DESK_API_KEY equals it (proves the gateway injected the credential).
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { apiKeyGuard, createSupportDeskServer } from './server.js';

const required = process.env['SUPPORT_DESK_REQUIRE_KEY'];
const guard = required ? apiKeyGuard(required, process.env['SUPPORT_DESK_API_KEY']) : undefined;
const server = createSupportDeskServer(guard ? { guard } : {});

await server.connect(new StdioServerTransport());
process.stderr.write(`support-desk: ready on stdio (api key ${required ? 'required' : 'not required'})\n`);

// The parent closing our stdin is the normal way to stop; exit promptly instead of lingering.
process.stdin.on('end', () => {
  void server.close().finally(() => process.exit(0));
});
