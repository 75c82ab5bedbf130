/**
 * An MCP session's notification stream (the client's `GET /mcp`), written as server-sent events
 * straight to Node's response.
 *
 * The SDK's web-standard transport answers that GET with a `Response` whose body is a web
 * `ReadableStream`; `@hono/node-server` then pumps it into the Node response with a reader, a
 * pending read and their promises, for as long as the stream is open: about 9 KB of heap per idle
 * session, a quarter of what one cost (docs/BENCHMARKS.md). Here the transport still does
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

/** A Node response that carries a stream (for the shared 'close' listener). */
type StreamOwner = ServerResponse & { [STREAM]?: NodeEventStream };
const STREAM = Symbol('warden.eventStream');

/**
 * One open stream, as the transport's mapping holds it: its own `controller` (the transport writes
 * through `enqueue`) and `cleanup`. Methods on the prototype and shared listeners rather than
 * closures where the transport allows it, since every idle session holds one.
 */
class NodeEventStream implements StreamEntry {
  readonly encoder = PASS_THROUGH;
  timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly mapping: Map<string, StreamEntry>,
    private readonly outgoing: ServerResponse,
  ) {}

  get controller(): this {
    return this;
  }

  open(): boolean {
    return !this.outgoing.destroyed && !this.outgoing.writableEnded;
  }

  enqueue(chunk: unknown): void {
    // As a closed web stream does: the transport reports the failed write to its onerror.
    if (!this.open()) throw new Error('the event stream is closed');
    this.outgoing.write(chunk as string);
  }

  close(): void {
    if (this.open()) this.outgoing.end();
  }

  /** Stops the keep-alive and leaves the transport's mapping (if it still names this stream). */
  forget(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mapping.get(STANDALONE) === this) this.mapping.delete(STANDALONE);
  }

  /**
   * The transport closes the stream (session closed, or `closeStandaloneSSEStream`). A property,
   * not a method: the transport's close() calls it detached (`forEach(({ cleanup }) => cleanup())`).
   */
  readonly cleanup = (): void => {
    this.forget();
    this.close();
  };
}

function onClientClose(this: StreamOwner): void {
  this[STREAM]?.forget();
}

function keepAlive(stream: NodeEventStream): void {
  if (stream.open()) stream.enqueue(KEEP_ALIVE_FRAME);
  else stream.forget();
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
  const web = entry.controller as { desiredSize?: number | null };
  const reader = response.body.getReader();
  outgoing.writeHead(200, Object.fromEntries(response.headers));
  outgoing.flushHeaders();
  // What the transport sent since it opened the stream (a notification while this awaited) waits
  // in the web stream: write it first, in order; re-pointing the mapping below happens in the same
  // turn as the check that nothing more is queued, so nothing is lost or reordered.
  while ((web.desiredSize ?? 1) < 1) {
    const { value, done } = await reader.read();
    if (done) break;
    outgoing.write(value);
  }
  if (mapping.get(STANDALONE) !== entry) {
    // Closed meanwhile (the session ended): end the response as the web stream ended.
    outgoing.end();
    await reader.cancel().catch(() => {});
    return RESPONSE_ALREADY_SENT;
  }
  const stream = new NodeEventStream(mapping, outgoing);
  mapping.set(STANDALONE, stream);
  // The client hung up (or the socket failed): forget the stream, as the web stream's cancel did.
  (outgoing as StreamOwner)[STREAM] = stream;
  outgoing.once('close', onClientClose);
  // As the SDK arms it: no keep-alive for an interval that is not a positive number.
  if (Number.isFinite(keepAliveMs) && keepAliveMs >= 1) {
    stream.timer = setInterval(keepAlive, Math.min(keepAliveMs, 2 ** 31 - 1), stream);
    stream.timer.unref();
  }
  // No one reads the web stream now: cancelling it clears the SDK's keep-alive timer, and its
  // cancel leaves the mapping alone (the mapping no longer names that stream's controller).
  await reader.cancel().catch(() => {});
  return RESPONSE_ALREADY_SENT;
}
