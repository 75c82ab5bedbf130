/**
 * Reading an HTTP request body with a size limit, for every route that takes
 * one (the faces, the admin API, notifier callbacks): the excess is never
 * buffered, and an oversized body is PAYLOAD_TOO_LARGE (413).
 */
import type { IncomingMessage } from 'node:http';
import { WardenError } from '../errors.js';

/** Read the body as text, refusing more than `limit` bytes without buffering the excess. */
export async function readBodyText(req: Request, limit: number, incoming?: IncomingMessage): Promise<string> {
  const declared = Number(req.headers.get('content-length') ?? 'NaN');
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  // A body of declared size (what MCP clients send) is read from the Node request itself:
  // wrapping it in a web stream first cost more than the read. A chunked one goes the web way.
  // Whether anyone read it yet is asked of the Node request: asking the web one (`bodyUsed`) made
  // @hono/node-server build the full web Request, body stream and all, on every POST.
  if (incoming && Number.isFinite(declared) && !incoming.readableDidRead && incoming.readable) {
    return readNodeBody(incoming, limit);
  }
  if (!req.body) return '';
  const text = await readStreamText(req.body, limit);
  if (text === undefined) throw tooLarge(limit);
  return text;
}

/** A web stream's bytes as UTF-8 text, or undefined (the stream cancelled) once it passes `limit` bytes. */
export async function readStreamText(
  stream: ReadableStream<Uint8Array>,
  limit: number,
): Promise<string | undefined> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(
    chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
  );
}

/** Read a Node request body up to `limit` bytes; past it, refuse (413) and discard the rest. */
function readNodeBody(incoming: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (e?: unknown) => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      if (e !== undefined) reject(e);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        done(tooLarge(limit));
        // Discard the rest, as Node does for a body nobody reads, so the 413 reaches a
        // client still sending (the server's requestTimeout bounds a slow one).
        incoming.resume();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(new TextDecoder('utf-8', { fatal: false }).decode(Buffer.concat(chunks)));
    };
    const onError = (e: unknown) => done(e);
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}

function tooLarge(limit: number): WardenError {
  return new WardenError('PAYLOAD_TOO_LARGE', `The request body exceeds ${limit} bytes`, {
    rule: 'request.body-limit',
  });
}
