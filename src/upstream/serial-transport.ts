/**
 * A transport wrapper that sends one message at a time. The SDK's stdio client
 * transport waits for 'drain' with one listener per pending write, so many
 * concurrent calls with large arguments printed MaxListenersExceededWarning on
 * the child's stdin (measured: 11 listeners at 200 calls × 4 KB). Writes to a
 * pipe are sequential anyway, so queueing them costs no throughput.
 */
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js';

const noop = (): void => {};

/** Wraps `inner` so that `send` calls never overlap. */
export class SerialSendTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly inner: Transport) {}

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  setProtocolVersion(version: string): void {
    this.inner.setProtocolVersion?.(version);
  }

  async start(): Promise<void> {
    this.inner.onmessage = (message, extra) => this.onmessage?.(message, extra);
    this.inner.onclose = () => this.onclose?.();
    this.inner.onerror = (error) => this.onerror?.(error);
    await this.inner.start();
  }

  /** Queues `message` behind every earlier send; resolves when it is written. */
  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const sent = this.tail.then(() => this.inner.send(message, options));
    this.tail = sent.then(noop, noop);
    return sent;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
