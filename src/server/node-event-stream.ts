/**
 * An MCP session's notification stream (the client's `GET /mcp`), written as server-sent events
 * straight to Node's response.
 *
 * The SDK's web-standard transport answers that GET with a `Response` whose body is a web
 * `ReadableStream`; `@hono/node-server` then pumps it into the Node response with a reader, a
 * pending read and their promises, for as long as the stream is open: about 4.5 KB of heap per
 * idle session, a fifth of what one costs (docs/BENCHMARKS.md). Here the transport still does
 * every check (Accept, session, protocol version, one stream per session) and registers the
 * stream; for a stream it accepted, the registered entry is re-pointed at the Node response and
 * the web stream is dropped. What the transport sends later (`send` without a related request)
 * is written to the socket as it was; `close()` and `closeStandaloneSSEStream()` end it; a client
 * that hangs up removes it, as the web stream's cancel did.
 *
 * This reaches into the transport's `_streamMapping` (private in the SDK's types). When that shape
 * is not what this expects (another SDK version), the web `Response` is returned unchanged.
 */
import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';

/** The SDK's id of the standalone (GET) stream in `_streamMapping`. */
const STANDALONE = '_GET_stream';
/** The SDK's default keep-alive (`DEFAULT_SSE_KEEP_ALIVE_MS`), for a transport that does not say its own. */
const KEEP_ALIVE_MS = 15_000;
const KEEP_ALIVE_FRAME = ': keepalive\n\n';

/** What the transport keeps per open stream (its `writeSSEEvent` calls `controller.enqueue(encoder.encode(text))`). */
interface StreamEntry {
  controller?: { enqueue(chunk: unknown): void; close(): void };
  encoder?: { encode(text: string): unknown };
  cleanup: () => void;
}

/** Text passes through: Node's response encodes it as UTF-8 on write, without a `TextEncoder` per stream. */
const PASS_THROUGH = { encode: (text: string) => text };

/** The transport's keep-alive interval: an SSE comment frame so idle proxies keep the connection. */
function keepAliveOf(transport: WebStandardStreamableHTTPServerTransport): number {
  const ms = (transport as unknown as { _keepAliveMs?: unknown })._keepAliveMs;
  return typeof ms === 'number' ? ms : KEEP_ALIVE_MS;
}

function mappingOf(
  transport: WebStandardStreamableHTTPServerTransport,
): Map<string, StreamEntry> | undefined {
  const m = (transport as unknown as { _streamMapping?: unknown })._streamMapping;
  return m instanceof Map ? (m as Map<string, StreamEntry>) : undefined;
}

/**
 * The transport's answer to a GET, served on `outgoing` when it opened the standalone stream:
 * returns `RESPONSE_ALREADY_SENT` then (the headers are written, the socket stays open), and
 * `response` itself otherwise (an error answer, or a transport this does not recognise).
 */
export async function serveEventStream(
  transport: WebStandardStreamableHTTPServerTransport,
  response: Response,
  outgoing: ServerResponse,
  keepAliveMs: number = keepAliveOf(transport),
): Promise<Response> {
  const mapping = mappingOf(transport);
  const entry = mapping?.get(STANDALONE);
  if (
    mapping === undefined ||
    entry === undefined ||
    entry.controller === undefined ||
    response.status !== 200 ||
    !response.headers.get('content-type')?.startsWith('text/event-stream') ||
    response.body === null
  ) {
    return response;
  }
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };
  const open = () => !outgoing.destroyed && !outgoing.writableEnded;
  const controller = {
    enqueue(chunk: unknown) {
      // As a closed web stream does: the transport reports the failed write to its onerror.
      if (!open()) throw new Error('the event stream is closed');
      outgoing.write(chunk as string);
    },
    close() {
      if (open()) outgoing.end();
    },
  };
  const ours: StreamEntry = {
    controller,
    encoder: PASS_THROUGH,
    cleanup: () => {
      stop();
      if (mapping.get(STANDALONE) === ours) mapping.delete(STANDALONE);
      controller.close();
    },
  };
  mapping.set(STANDALONE, ours);
  // The web stream is not read by anyone now: cancelling it clears the SDK's keep-alive timer, and
  // its cancel leaves the mapping alone (it no longer points at that stream's controller).
  await response.body.cancel().catch(() => {});

  outgoing.writeHead(200, Object.fromEntries(response.headers));
  outgoing.flushHeaders();
  // The client hung up (or the socket failed): forget the stream, as the web stream's cancel did.
  outgoing.once('close', () => {
    stop();
    if (mapping.get(STANDALONE) === ours) mapping.delete(STANDALONE);
  });
  // As the SDK arms it: no keep-alive for an interval that is not a positive number.
  if (Number.isFinite(keepAliveMs) && keepAliveMs >= 1) {
    timer = setInterval(
      () => {
        if (open()) outgoing.write(KEEP_ALIVE_FRAME);
        else stop();
      },
      Math.min(keepAliveMs, 2 ** 31 - 1),
    );
    timer.unref();
  }
  return RESPONSE_ALREADY_SENT;
}
