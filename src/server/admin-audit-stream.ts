/**
 * `GET /admin/v1/audit/stream` (issue #9): the audit log as Server-Sent Events
 * for SIEMs and dashboards, for admins and auditors. Each entry is one event —
 * `id: <seq>`, `event: entry`, `data: <the entry as stored>` — so a client that
 * reconnects with `Last-Event-ID` resumes after the last entry it got, with no
 * gap and no repeat. Without it (or `?after=`), the stream starts at the head
 * (only new entries) unless `?from=start`.
 *
 * New entries are found by one shared poll of the head (every 250 ms, and at
 * once after a commit in this process); each stream then reads its filtered
 * page by keyset on seq. A stream writes one event at a time and waits for the
 * connection to take it, so a slow client costs a socket buffer, not memory.
 * Streams are bounded (32 by default: then 503 AUDIT_STREAM_LIMIT) and end
 * cleanly when the gateway closes.
 */
import type { Hono } from 'hono';
import { type SSEStreamingApi, streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { type AuditFilter, EVENT_NAME, headSeq, readPage } from '../audit/index.js';
import { toWardenError, WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { AdminHelpers } from './admin-tools.js';
import type { NodeBindings } from './request.js';

const MAX_STREAMS = 32;
const HEARTBEAT_MS = 15_000;
const POLL_MS = 250;
const PAGE_SIZE = 500;
/** After close, how long streams get to end on their own before their connections are cut. */
const CLOSE_GRACE_MS = 1_000;

export interface AuditStreamsOptions {
  store: Store;
  /** In-process wake-up after appends commit (`AuditLog.observe`); the poll covers other processes. */
  subscribe?: (listener: () => void) => () => void;
  /** Open streams at most (default 32). */
  maxStreams?: number;
  /** A comment line this often when nothing else was sent (default 15 s): proxies keep the connection. */
  heartbeatMs?: number;
  /** How often the head is read while streams are open (default 250 ms). */
  pollMs?: number;
  /** Entries read per query (default 500). */
  pageSize?: number;
}

/** One stream's place. */
export interface Slot {
  abort: AbortController;
  /** Cuts the connection (a client that stopped reading). */
  kill(): void;
  done: Promise<void>;
  finish(): void;
}

const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;
const StreamQuery = z.strictObject({
  agent: z.string().regex(AGENT_ID, { error: 'expected an agent id' }).optional(),
  session: z.string().regex(SESSION_ID, { error: 'expected a session id' }).optional(),
  event: z
    .string()
    .transform((s) => s.split(',').map((e) => e.trim()))
    .pipe(
      z
        .array(z.string().regex(EVENT_NAME, { error: 'expected event names such as TOOL_CALL,TOOL_DENIED' }))
        .max(64),
    )
    .optional(),
  after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  from: z.literal('start', { error: 'expected from=start' }).optional(),
});

/** The open audit streams of one gateway: the bound, the shared head poll, and closing them all. */
export class AuditStreams {
  private readonly slots = new Set<Slot>();
  private readonly waiters = new Set<() => void>();
  private readonly max: number;
  readonly heartbeatMs: number;
  private readonly pollMs: number;
  readonly pageSize: number;
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  constructor(private readonly opts: AuditStreamsOptions) {
    this.max = opts.maxStreams ?? MAX_STREAMS;
    this.heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS;
    this.pollMs = opts.pollMs ?? POLL_MS;
    this.pageSize = opts.pageSize ?? PAGE_SIZE;
  }

  /** Streams open now. */
  get open(): number {
    return this.slots.size;
  }

  /** End every stream (each finishes the event it is writing) and stop polling. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.slots) s.abort.abort();
    const all = Promise.all([...this.slots].map((s) => s.done));
    const grace = new Promise<'late'>((r) => setTimeout(() => r('late'), CLOSE_GRACE_MS).unref());
    if ((await Promise.race([all, grace])) === 'late') for (const s of this.slots) s.kill();
    await all;
    this.stopPolling();
  }

  /**
   * Take a place for one more stream, or undefined when all are taken. Taken before the
   * response starts (so a refusal is a plain 503); `release` gives it back if it is never served.
   */
  reserve(): Slot | undefined {
    if (this.closed || this.slots.size >= this.max) return undefined;
    let finish = () => {};
    const slot: Slot = {
      abort: new AbortController(),
      kill: () => {},
      done: new Promise<void>((r) => {
        finish = r;
      }),
      finish: () => finish(),
    };
    this.slots.add(slot);
    if (this.slots.size === 1) this.startPolling();
    return slot;
  }

  /** Give a place back. */
  release(slot: Slot): void {
    if (!this.slots.delete(slot)) return;
    if (this.slots.size === 0) this.stopPolling();
    slot.finish();
  }

  /** The head seq now (where a stream without a starting point begins). */
  headNow(): Promise<number> {
    return headSeq(this.opts.store);
  }

  /** Serve one stream in `slot` on `stream`, from after `start`; resolves when it ends. */
  async serve(slot: Slot, stream: SSEStreamingApi, filter: AuditFilter, start: number): Promise<void> {
    slot.kill = () => stream.abort();
    stream.onAbort(() => slot.abort.abort());
    try {
      await this.pump(stream, filter, start, slot.abort.signal);
    } finally {
      this.release(slot);
    }
  }

  private async pump(stream: SSEStreamingApi, filter: AuditFilter, start: number, signal: AbortSignal) {
    // Sent at once: the client has the response (headers included) before the first entry.
    await stream.write(': warden audit stream\n\n');
    await this.readHead();
    let pos = start;
    let lastWrite = performance.now();
    while (!signal.aborted && !stream.aborted) {
      if (this.head > pos) {
        const head = this.head;
        let page: Awaited<ReturnType<typeof readPage>>;
        try {
          page = await readPage(this.opts.store, filter, {
            afterSeq: pos,
            throughSeq: head,
            limit: this.pageSize,
          });
        } catch (e) {
          // The client reconnects with Last-Event-ID once the store is back.
          const err = toWardenError(e);
          await stream.writeSSE({
            event: 'error',
            data: JSON.stringify({ code: err.code, message: err.message }),
          });
          return;
        }
        for (const entry of page) {
          if (signal.aborted || stream.aborted) return;
          // Awaited: the next event is written only once the connection took this one (backpressure).
          await stream.writeSSE({ id: String(entry.seq), event: 'entry', data: JSON.stringify(entry) });
        }
        // A short page: nothing else up to the head matches the filter.
        pos = page.length < this.pageSize ? head : page.at(-1)!.seq;
        if (page.length > 0) lastWrite = performance.now();
        continue;
      }
      const left = this.heartbeatMs - (performance.now() - lastWrite);
      if (left <= 0) {
        await stream.write(': heartbeat\n\n');
        lastWrite = performance.now();
        continue;
      }
      await this.waitBeyond(pos, left, signal);
    }
  }

  /** Resolves once the head passes `pos`, after `ms`, or on abort. */
  private waitBeyond(pos: number, ms: number, signal: AbortSignal): Promise<void> {
    if (this.head > pos || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const check = () => {
        if (this.head > pos) done();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(check);
    });
  }

  private startPolling(): void {
    this.unsubscribe = this.opts.subscribe?.(() => void this.readHead());
    this.timer = setInterval(() => void this.readHead(), this.pollMs);
    this.timer.unref();
  }

  private stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** Read the head once (a read already running is followed by one more, never by a pile). */
  private readHead(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        try {
          const head = await headSeq(this.opts.store);
          if (head > this.head) {
            this.head = head;
            for (const w of [...this.waiters]) w();
          }
        } catch {
          // The store is down: streams wait; the next poll tries again.
        }
      } while (this.again);
    })().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }
}

/** Mount the stream route on `app`. */
export function mountAuditStream(
  app: Hono<{ Bindings: NodeBindings }>,
  streams: AuditStreams,
  h: AdminHelpers,
) {
  app.get(
    '/admin/v1/audit/stream',
    h.asOperator(['admin', 'auditor'], async (c) => {
      const parsed = StreamQuery.safeParse(c.req.query());
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new WardenError('INVALID_REQUEST', `${issue?.path.join('.') || 'query'}: ${issue?.message}`, {
          rule: 'request.shape',
        });
      }
      const q = parsed.data;
      const lastEventId = c.req.header('last-event-id');
      if (lastEventId !== undefined && !/^\d{1,15}$/.test(lastEventId.trim())) {
        throw new WardenError(
          'INVALID_REQUEST',
          'Last-Event-ID: expected the seq of the last entry received',
          {
            rule: 'request.shape',
          },
        );
      }
      const slot = streams.reserve();
      if (slot === undefined) {
        throw new WardenError('AUDIT_STREAM_LIMIT', 'Too many audit streams are open; try again later', {
          data: { retryAfterSeconds: 5 },
        });
      }
      let start: number;
      try {
        // Resuming (Last-Event-ID, which an EventSource sends by itself) wins over the query.
        start =
          lastEventId !== undefined
            ? Number(lastEventId.trim())
            : (q.after ?? (q.from === 'start' ? 0 : await streams.headNow()));
      } catch (e) {
        streams.release(slot);
        throw e;
      }
      const filter: AuditFilter = {
        ...(q.agent ? { agentId: q.agent } : {}),
        ...(q.session ? { sessionId: q.session } : {}),
        ...(q.event ? { events: q.event } : {}),
      };
      c.header('X-Accel-Buffering', 'no');
      return streamSSE(c, (stream) => streams.serve(slot, stream, filter, start));
    }),
  );
}
