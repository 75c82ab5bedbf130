/**
 * A minimal JSON-RPC responder that speaks just enough Streamable HTTP MCP
 * (initialize, tools/list, tools/call, ping; JSON responses, no sessions) to be
 * an upstream that costs next to nothing: the capacity test measures Warden,
 * not the upstream. Run: `npx tsx bench/macro/raw-upstream.ts --port 0`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { announce, arg, ECHO_TOOL, payload } from './payload.js';

const results = new Map<number, string>();
function echoResult(size: number): string {
  let r = results.get(size);
  if (r === undefined) {
    r = JSON.stringify({ content: [{ type: 'text', text: payload(size) }] });
    results.set(size, r);
  }
  return r;
}
const toolsList = JSON.stringify({ tools: [ECHO_TOOL] });

const http = createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(req.method === 'DELETE' ? 200 : 405).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let msg: { id?: number | string; method?: string; params?: Record<string, unknown> };
    try {
      msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (msg.id === undefined) {
      res.writeHead(202).end(); // a notification
      return;
    }
    let result: string;
    switch (msg.method) {
      case 'initialize':
        result = JSON.stringify({
          protocolVersion: (msg.params?.['protocolVersion'] as string | undefined) ?? '2025-06-18',
          capabilities: { tools: {} },
          serverInfo: { name: 'bench-raw', version: '1.0.0' },
        });
        break;
      case 'tools/list':
        result = toolsList;
        break;
      case 'tools/call': {
        const size = Number((msg.params?.['arguments'] as { size?: unknown } | undefined)?.size ?? 1024);
        result = echoResult(size);
        break;
      }
      case 'ping':
        result = '{}';
        break;
      default: {
        const body = `{"jsonrpc":"2.0","id":${JSON.stringify(msg.id)},"error":{"code":-32601,"message":"Method not found"}}`;
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
        return;
      }
    }
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(`{"jsonrpc":"2.0","id":${JSON.stringify(msg.id)},"result":${result}}`);
  });
});
http.keepAliveTimeout = 60_000;
http.listen(Number(arg('--port', '0')), '127.0.0.1', () => announce((http.address() as AddressInfo).port));
