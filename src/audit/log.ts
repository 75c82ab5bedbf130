/**
 * The audit log writer and reader. Appends are hash-chained, gap-free and
 * durable when they resolve; any store failure is AUDIT_UNAVAILABLE so the
 * pipeline fails closed (a tool never runs unrecorded).
 *
 * Concurrency: appends queue in-process and are written in group commits —
 * while one transaction is in flight, later appends gather and go together in
 * the next. One fsync then covers many entries instead of one each. Across
 * processes the head row is the lock: every transaction takes it first.
 */
import { CompiledQuery, sql, type Transaction } from 'kysely';
import { WardenError } from '../errors.js';
import type { AuditLogTable, Database, SqliteStatement, Store } from '../store/index.js';
import { type Clock, type IdGenerator, randomId, systemClock } from '../util/clock.js';
import { canonicalJson, entryHash, fromRow, type JsonTexts, toRow } from './entry.js';
import { cleanText, redactParameters } from './redact.js';
import type { AuditDecision, AuditEntry, AuditEvent, AuditInput, AuditRecord } from './types.js';

/** PostgreSQL: batches that take the head lock after another writer was seen, before trying one-round-trip appends again. */
const LOCKED_AFTER_MISS = 64;
/** The audit_log columns, in insert order. */
const COLUMNS = [
  'seq',
  'id',
  'ts',
  'trace_id',
  'event',
  'actor_type',
  'actor_id',
  'agent_id',
  'agent_type',
  'session_id',
  'trigger_user_id',
  'trigger_source',
  'tool_name',
  'parameters',
  'reasoning',
  'decision',
  'result',
  'latency_ms',
  'data',
  'prev_hash',
  'hash',
] as const satisfies ReadonlyArray<keyof AuditLogTable>;

/** SQLite statements of a batch, one row per insert (each run of a prepared statement is cheap). */
const SQLITE = {
  // Takes the write lock in a plain (deferred) transaction: the store probe's write that changes nothing.
  lock: 'update "audit_head" set "seq" = "seq" where "id" = 1',
  head: 'select "seq", "hash" from "audit_head" where "id" = 1',
  insert: `insert into "audit_log" (${COLUMNS.map((c) => `"${c}"`).join(', ')}) values (${COLUMNS.map(() => '?').join(', ')})`,
  move: 'update "audit_head" set "seq" = ?, "hash" = ? where "id" = 1',
};

/** Most entries written in one group commit. */
const MAX_BATCH = 256;
/** Rows per INSERT statement: 21 columns × 400 stays under SQLite's 32,766 bound parameters. */
const INSERT_CHUNK = 400;
/** Attempts on lock contention (SQLITE_BUSY, PostgreSQL serialization/deadlock) before giving up. */
const MAX_ATTEMPTS = 4;
/** Identifiers (trace, agent, tool names) longer than this are cut. */
const MAX_ID_CHARS = 1_000;
/** The agent's reasoning is kept longer than other strings: it is the forensic story. */
const MAX_REASONING_CHARS = 10_000;
/** latency_ms is a 32-bit INTEGER column. */
const MAX_LATENCY_MS = 2_147_483_647;
/** Upper bound for `read`/`latest` page sizes. */
const MAX_READ = 10_000;
/** Entries kept in memory for a store that is down (about 2 KB each: ~20 MB at worst). */
const MAX_RETAINED = 10_000;
/** Retrying retained entries: first after this, doubling up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;

export interface AuditLogOptions {
  clock?: Clock;
  ids?: IdGenerator;
  /**
   * Keys the values redaction replaces (issue #9): `[REDACTED:<kind>:hmac-sha256:<hex>]`
   * instead of `[REDACTED:<kind>]` (see hmac.ts). Absent = plain markers.
   */
  hmac?: { of(value: unknown): string };
  /** Entries `retain` keeps in memory while the store is down, at most (default 10,000). */
  maxRetained?: number;
}

export interface AppendOptions {
  /** Default true: resolve only once the entry is on disk. */
  durable?: boolean;
  /**
   * When the store cannot take the entry now, keep it in memory and write it once the store is
   * back, in order (bounded by `maxRetained`). The promise still rejects (AUDIT_UNAVAILABLE with
   * `data.retained: true`): for entries whose event already happened (an outcome), not for an
   * entry that gates an action.
   */
  retain?: boolean;
}

/** What the log tells its observers (the health tracker, metrics). */
export interface AuditLogObserver {
  /**
   * A batch of entries committed. `startedAt` (performance.now() when its write began) lets
   * an observer tell a write that began before an outage was noticed from one after it.
   */
  committed?(startedAt: number): void;
  /** A batch failed for a reason other than its own content: the store is down, locked or read-only. */
  unavailable?(error: WardenError, startedAt: number): void;
  /** Retained entries were dropped: `full` (the queue was), `rejected` (the store refused the entry itself). */
  dropped?(count: number, reason: 'full' | 'rejected'): void;
}

export interface AuditReadOptions {
  /** Entries with seq greater than this (keyset pagination). */
  afterSeq?: number;
  /** At most this many (default 100, capped at 10,000). */
  limit?: number;
  traceId?: string;
  agentId?: string;
  sessionId?: string;
  event?: AuditEvent;
  /** Entries at or after this time (epoch ms). */
  sinceTs?: number;
  /** Entries before this time (epoch ms). */
  untilTs?: number;
}

/** An entry ready to chain: everything but seq, ts, prevHash and hash. */
interface Prepared {
  id: string;
  record: AuditRecord;
  /** The canonical text of the record's JSON fields: what is stored and what is hashed. */
  json: JsonTexts;
}

/** One append or appendMany call: its entries commit together or not at all. */
interface Job {
  items: Prepared[];
  /** Must be on disk before the promise resolves (false: durable with the next synchronous commit). */
  durable: boolean;
  resolve(entries: AuditEntry[]): void;
  reject(e: unknown): void;
}

/** The hash-chained, append-only audit log over the store. */
export class AuditLog {
  private readonly clock: Clock;
  private readonly ids: IdGenerator;
  private queue: Job[] = [];
  private draining = false;
  /** PostgreSQL: the head as this process last committed it (undefined: unknown, take the lock). */
  private knownHead: { seq: number; hash: string } | undefined;
  private lockedBatches = 0;
  private readonly hmac: ((value: unknown) => string) | undefined;
  private readonly observers = new Set<AuditLogObserver>();
  /** Entries waiting for the store (`retain`), oldest first. */
  private retainedItems: Prepared[] = [];
  private readonly maxRetained: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    opts: AuditLogOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.ids = opts.ids ?? randomId;
    const hmac = opts.hmac;
    this.hmac = hmac === undefined ? undefined : (v) => hmac.of(v);
    this.maxRetained = opts.maxRetained ?? MAX_RETAINED;
  }

  /** Watch commits and failures (the audit health tracker); returns the unsubscribe. */
  observe(observer: AuditLogObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Entries kept in memory until the store takes them (see `retain`). */
  get retained(): number {
    return this.retainedItems.length;
  }

  /**
   * Whether the store takes writes now: a write transaction that changes nothing (it takes the
   * head lock and lets it go). Throws AUDIT_UNAVAILABLE when it cannot.
   */
  async probe(): Promise<void> {
    await guard(() =>
      this.store.db.transaction().execute(async (trx) => {
        await trx.executeQuery(CompiledQuery.raw(SQLITE.lock, []));
      }),
    );
  }

  /**
   * Try the retained entries now (the store is back); resolves once this attempt is over.
   * What still fails stays retained and is tried again later.
   */
  retryRetained(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.flushing ??= this.flushRetained().finally(() => {
      this.flushing = undefined;
      if (this.retainedItems.length > 0) this.scheduleRetry();
    });
    return this.flushing;
  }

  /**
   * Append one entry; resolves once it is committed, throws AUDIT_UNAVAILABLE when it cannot be.
   * `durable: false` (an outcome entry, written after its durable attempt entry) lets the
   * commit return before the disk flush: a process crash loses nothing, a power cut at most
   * the last such entries, which the next synchronous commit or checkpoint makes durable.
   */
  async append(input: AuditInput, opts: AppendOptions = {}): Promise<AuditEntry> {
    const [entry] = await this.appendMany([input], opts);
    if (entry === undefined) throw new Error('unreachable: appendMany returned no entry');
    return entry;
  }

  /** Append several entries atomically (all committed, consecutive, or none). */
  appendMany(inputs: readonly AuditInput[], opts: AppendOptions = {}): Promise<AuditEntry[]> {
    if (inputs.length === 0) return Promise.resolve([]);
    let items: Prepared[];
    try {
      // Redaction runs here, outside the lock, so a large argument never holds up other appends.
      items = inputs.map((input) => ({ id: this.ids('aud'), ...prepare(input, this.hmac) }));
    } catch (e) {
      return Promise.reject(unavailable(e));
    }
    const durable = opts.durable !== false;
    const written = this.submit([{ items, durable }]);
    if (opts.retain !== true) return written[0]!;
    return written[0]!.catch((e: unknown) => {
      if (isDataError(e)) throw e;
      const kept = this.retain(items);
      throw new WardenError('AUDIT_UNAVAILABLE', 'The audit log is unavailable', {
        detail: `${kept ? 'kept in memory until the store is back' : 'DROPPED: the retry queue is full'}: ${unavailable(e).detail ?? ''}`,
        cause: e,
        data: { retained: kept },
      });
    });
  }

  /** Queue jobs for the writer (at the front: retained entries go before newer ones); one promise each. */
  private submit(jobs: Array<Pick<Job, 'items' | 'durable'>>, front = false): Promise<AuditEntry[]>[] {
    const queued: Job[] = [];
    const promises = jobs.map(
      (j) => new Promise<AuditEntry[]>((resolve, reject) => queued.push({ ...j, resolve, reject })),
    );
    if (front) this.queue.unshift(...queued);
    else this.queue.push(...queued);
    if (!this.draining) void this.drain();
    return promises;
  }

  /** Keep `items` for a later write; false when the queue is full (they are dropped, loudly). */
  private retain(items: Prepared[]): boolean {
    if (this.retainedItems.length + items.length > this.maxRetained) {
      this.emit((o) => o.dropped?.(items.length, 'full'));
      return false;
    }
    this.retainedItems.push(...items);
    this.scheduleRetry();
    return true;
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.flushing) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.retryRetained();
    }, this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
  }

  /** Write retained entries, oldest first, a batch at a time, until one batch fails for the store. */
  private async flushRetained(): Promise<void> {
    while (this.retainedItems.length > 0) {
      const chunk = this.retainedItems.slice(0, MAX_BATCH);
      // One job per entry: an entry the store refuses for its content fails alone (see commit).
      const results = await Promise.allSettled(
        this.submit(
          chunk.map((item) => ({ items: [item], durable: false })),
          true,
        ),
      );
      const kept: Prepared[] = [];
      let rejected = 0;
      for (const [i, r] of results.entries()) {
        if (r.status === 'fulfilled') continue;
        const item = chunk[i]!;
        if (!isDataError(r.reason)) kept.push(item);
        // A duplicate id: an earlier try committed after all (its answer was lost with the connection).
        else if (!(await this.exists(item.id))) rejected++;
      }
      if (rejected > 0) this.emit((o) => o.dropped?.(rejected, 'rejected'));
      this.retainedItems = [...kept, ...this.retainedItems.slice(chunk.length)];
      if (kept.length > 0) return;
      this.retryDelay = RETRY_MIN_MS;
    }
  }

  private async exists(id: string): Promise<boolean> {
    try {
      return (
        (await this.store.db
          .selectFrom('audit_log')
          .select('seq')
          .where('id', '=', id)
          .executeTakeFirst()) !== undefined
      );
    } catch {
      return false;
    }
  }

  private emit(f: (o: AuditLogObserver) => void): void {
    for (const o of this.observers) {
      try {
        f(o);
      } catch {
        // An observer's bug must not fail an append.
      }
    }
  }

  /** Entries in ascending seq, filtered; page with `afterSeq`. */
  async read(opts: AuditReadOptions = {}): Promise<AuditEntry[]> {
    const limit = clampLimit(opts.limit ?? 100);
    let q = this.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '>', opts.afterSeq ?? 0);
    if (opts.traceId !== undefined) q = q.where('trace_id', '=', opts.traceId);
    if (opts.agentId !== undefined) q = q.where('agent_id', '=', opts.agentId);
    if (opts.sessionId !== undefined) q = q.where('session_id', '=', opts.sessionId);
    if (opts.event !== undefined) q = q.where('event', '=', opts.event);
    if (opts.sinceTs !== undefined) q = q.where('ts', '>=', opts.sinceTs);
    if (opts.untilTs !== undefined) q = q.where('ts', '<', opts.untilTs);
    const rows = await guard(() => q.orderBy('seq', 'asc').limit(limit).execute());
    return guard(() => rows.map(fromRow));
  }

  /** The last `limit` entries, in ascending seq. */
  async latest(limit: number): Promise<AuditEntry[]> {
    const rows = await guard(() =>
      this.store.db
        .selectFrom('audit_log')
        .selectAll()
        .orderBy('seq', 'desc')
        .limit(clampLimit(limit))
        .execute(),
    );
    return guard(() => rows.map(fromRow).reverse());
  }

  /** The chain head: the last committed seq and its hash (0 and GENESIS_HASH when empty). */
  async head(): Promise<{ seq: number; hash: string }> {
    const row = await guard(() =>
      this.store.db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst(),
    );
    if (row === undefined) throw unavailable(new Error('audit_head row is missing'));
    return { seq: Number(row.seq), hash: row.hash };
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        // Let the event loop turn once before committing. With SQLite the commit (and its
        // disk flush) runs synchronously, so nothing can join a batch while it runs: without
        // this pause every append would get a commit of its own. One turn lets the requests
        // already received reach their append and share the flush.
        await new Promise<void>((resolve) => setImmediate(resolve));
        await this.commit(this.takeBatch());
      }
    } finally {
      this.draining = false;
    }
  }

  /** The oldest jobs, up to MAX_BATCH entries (always at least one job, however large). */
  private takeBatch(): Job[] {
    let take = 0;
    let size = 0;
    for (const job of this.queue) {
      if (take > 0 && size + job.items.length > MAX_BATCH) break;
      take += 1;
      size += job.items.length;
    }
    return this.queue.splice(0, take);
  }

  private async commit(batch: Job[]): Promise<void> {
    const startedAt = performance.now();
    try {
      const entries = await this.writeWithRetry(
        batch.flatMap((j) => j.items),
        batch.some((j) => j.durable),
      );
      let i = 0;
      for (const job of batch) {
        job.resolve(entries.slice(i, i + job.items.length));
        i += job.items.length;
      }
      this.emit((o) => o.committed?.(startedAt));
      // The store takes writes again: what waited in memory goes next.
      if (this.retainedItems.length > 0 && !this.flushing) queueMicrotask(() => void this.retryRetained());
    } catch (e) {
      if (batch.length > 1 && isDataError(e)) {
        // One bad entry (say, a duplicate id) must not fail the others that happened to share
        // its transaction: write each job on its own. Other failures (store down, lock timeout)
        // would only repeat, so they fail the whole batch at once.
        for (const job of batch) await this.commit([job]);
        return;
      }
      const err = unavailable(e);
      if (!isDataError(e)) this.emit((o) => o.unavailable?.(err, startedAt));
      for (const job of batch) job.reject(err);
    }
  }

  private async writeWithRetry(items: Prepared[], durable: boolean): Promise<AuditEntry[]> {
    const sqlite = this.store.sqlite;
    if (!sqlite) {
      const fast = await this.writeOptimistic(items, durable);
      if (fast) return fast;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        if (sqlite) {
          // One synchronous better-sqlite3 transaction once the connection is held (issue #4).
          return await sqlite.run((prepare) => this.writeSqlite(prepare, items), {
            transaction: true,
            relaxed: !durable,
          });
        }
        const entries = await this.store.db.transaction().execute((trx) => this.write(trx, items, durable));
        // Committed: the batch's last entry is the head now (see writeOptimistic).
        const last = entries.at(-1);
        if (last) this.knownHead = { seq: last.seq, hash: last.hash };
        return entries;
      } catch (e) {
        if (attempt >= MAX_ATTEMPTS || !isContention(e)) throw e;
        await sleep(10 * 2 ** attempt + Math.random() * 10);
      }
    }
  }

  /**
   * SQLite, inside one IMMEDIATE transaction (it holds the write lock from its start, so the head
   * read cannot be stale): chain the entries after the head, insert, move the head. Synchronous,
   * on the store's cached statements.
   */
  private writeSqlite(prepare: (sql: string) => SqliteStatement, items: Prepared[]): AuditEntry[] {
    const head = prepare(SQLITE.head).get() as { seq: number; hash: string } | undefined;
    if (head === undefined) throw new Error('audit_head row is missing');
    const ts = Math.trunc(this.clock.now());
    const { entries, rows } = chain(items, { seq: Number(head.seq), hash: head.hash }, ts);
    const insert = prepare(SQLITE.insert);
    for (const row of rows) insert.run(COLUMNS.map((c) => row[c]));
    const last = entries.at(-1)!;
    if (prepare(SQLITE.move).run(last.seq, last.hash).changes !== 1) {
      throw new Error('audit_head was not updated');
    }
    return entries;
  }

  /** PostgreSQL, one transaction: lock the head, chain the entries after it, insert, move the head. */
  private async write(
    trx: Transaction<Database>,
    items: Prepared[],
    durable: boolean,
  ): Promise<AuditEntry[]> {
    // The head row is the lock (the pool's lock_timeout bounds the wait); a relaxed batch
    // turns off the commit's WAL flush in the same round trip.
    const head = await trx
      .selectFrom('audit_head')
      .select(['seq', 'hash'])
      .$if(!durable, (q) => q.select(sql<string>`set_config('synchronous_commit', 'off', true)`.as('sync')))
      .where('id', '=', 1)
      .forUpdate()
      .executeTakeFirst();
    if (head === undefined) throw new Error('audit_head row is missing');

    const ts = Math.trunc(this.clock.now());
    const { entries, rows } = chain(items, { seq: Number(head.seq), hash: head.hash }, ts);
    const seq = entries.at(-1)!.seq;
    const prevHash = entries.at(-1)!.hash;
    const last = Math.floor((rows.length - 1) / INSERT_CHUNK) * INSERT_CHUNK;
    for (let i = 0; i < last; i += INSERT_CHUNK) {
      await trx
        .insertInto('audit_log')
        .values(rows.slice(i, i + INSERT_CHUNK))
        .execute();
    }
    // One round trip: the rows and the head move in one statement (a data-modifying CTE).
    const moved = await trx
      .with('inserted', (db) => db.insertInto('audit_log').values(rows.slice(last)))
      .updateTable('audit_head')
      .set({ seq, hash: prevHash })
      .where('id', '=', 1)
      .executeTakeFirst();
    if (moved.numUpdatedRows !== 1n) throw new Error('audit_head was not updated');
    return entries;
  }

  /**
   * PostgreSQL, one round trip: chain the batch after the head this process last
   * wrote, and in one statement move the head only if it is still that one and
   * insert the rows only if the head moved. Another writer got there first → nothing
   * is written, and the locked path (which re-reads the head) takes over for a while.
   * Returns undefined when it did not write.
   */
  private async writeOptimistic(items: Prepared[], durable: boolean): Promise<AuditEntry[] | undefined> {
    const head = this.knownHead;
    if (head === undefined || items.length > INSERT_CHUNK) return undefined;
    if (this.lockedBatches > 0) {
      this.lockedBatches--;
      return undefined;
    }
    const { entries, rows } = chain(items, head, Math.trunc(this.clock.now()));
    const last = entries.at(-1)!;
    const col = <K extends keyof AuditLogTable>(k: K) => rows.map((r) => r[k]);
    const result = await sql`
      WITH moved AS (
        UPDATE audit_head SET seq = ${last.seq}, hash = ${last.hash}
        WHERE id = 1 AND seq = ${head.seq} AND hash = ${head.hash}
        RETURNING ${durable ? sql`true` : sql`set_config('synchronous_commit', 'off', true)`} AS moved
      )
      INSERT INTO audit_log (seq, id, ts, trace_id, event, actor_type, actor_id, agent_id, agent_type,
        session_id, trigger_user_id, trigger_source, tool_name, parameters, reasoning, decision, result,
        latency_ms, data, prev_hash, hash)
      SELECT * FROM unnest(
        ${col('seq')}::bigint[], ${col('id')}::text[], ${col('ts')}::bigint[], ${col('trace_id')}::text[],
        ${col('event')}::text[], ${col('actor_type')}::text[], ${col('actor_id')}::text[],
        ${col('agent_id')}::text[], ${col('agent_type')}::text[], ${col('session_id')}::text[],
        ${col('trigger_user_id')}::text[], ${col('trigger_source')}::text[], ${col('tool_name')}::text[],
        ${col('parameters')}::text[], ${col('reasoning')}::text[], ${col('decision')}::text[],
        ${col('result')}::text[], ${col('latency_ms')}::integer[], ${col('data')}::text[],
        ${col('prev_hash')}::text[], ${col('hash')}::text[]
      ) WHERE EXISTS (SELECT 1 FROM moved)`.execute(this.store.db);
    if (Number(result.numAffectedRows ?? 0n) === entries.length) {
      this.knownHead = { seq: last.seq, hash: last.hash };
      return entries;
    }
    // Another process writes too: take the lock for the next batches, then try again.
    this.knownHead = undefined;
    this.lockedBatches = LOCKED_AFTER_MISS;
    return undefined;
  }
}

/** The entries of `items`, numbered and hash-chained after `head`, and their rows. */
function chain(
  items: Prepared[],
  head: { seq: number; hash: string },
  ts: number,
): { entries: AuditEntry[]; rows: AuditLogTable[] } {
  let seq = head.seq;
  let prevHash = head.hash;
  const entries: AuditEntry[] = [];
  const rows: AuditLogTable[] = [];
  for (const { id, record, json } of items) {
    seq += 1;
    // Fields in the order fromRow gives them, so an entry serialises as reading it back does.
    const unhashed = { seq, id, ts, ...record, prevHash };
    const entry: AuditEntry = { ...unhashed, hash: entryHash(unhashed, json) };
    entries.push(entry);
    rows.push(toRow(entry, json));
    prevHash = entry.hash;
  }
  return { entries, rows };
}

/**
 * Normalise an input into exactly what will be stored and hashed. JSON fields are stored as
 * their canonical (JCS) text, the hashed text (so the verifier need not re-encode them), and
 * the record holds that text parsed back: what reading the row returns, key order included.
 */
function prepare(
  input: AuditInput,
  hmac: ((value: unknown) => string) | undefined,
): { record: AuditRecord; json: JsonTexts } {
  const parameters = stored(redactParameters(input.parameters, hmac));
  const decision = stored(decisionOf(input.decision));
  const data = stored(
    input.data === null || input.data === undefined ? null : redactParameters(input.data, hmac),
  );
  const record: AuditRecord = {
    traceId: cleanText(String(input.traceId), MAX_ID_CHARS),
    event: cleanText(String(input.event), MAX_ID_CHARS) as AuditEvent,
    actorType: cleanText(String(input.actorType), MAX_ID_CHARS) as AuditRecord['actorType'],
    actorId: optText(input.actorId, MAX_ID_CHARS),
    agentId: optText(input.agentId, MAX_ID_CHARS),
    agentType: optText(input.agentType, MAX_ID_CHARS),
    sessionId: optText(input.sessionId, MAX_ID_CHARS),
    triggerUserId: optText(input.triggerUserId, MAX_ID_CHARS),
    triggerSource: optText(input.triggerSource, MAX_ID_CHARS) as AuditRecord['triggerSource'],
    toolName: optText(input.toolName, MAX_ID_CHARS),
    parameters: parameters.value,
    reasoning: optText(input.reasoning, MAX_REASONING_CHARS),
    decision: decision.value as AuditDecision | null,
    result: optText(input.result, MAX_ID_CHARS) as AuditRecord['result'],
    latencyMs: latencyOf(input.latencyMs),
    data: data.value as Record<string, unknown> | null,
  };
  return { record, json: { parameters: parameters.text, decision: decision.text, data: data.text } };
}

function optText(v: string | null | undefined, max: number): string | null {
  return v === null || v === undefined ? null : cleanText(String(v), max);
}

/** The canonical text a JSON column stores, and the value reading it back gives. */
function stored(v: unknown): { text: string | null; value: unknown } {
  const text = canonicalJson(v);
  return { text, value: text === null ? null : JSON.parse(text) };
}

function decisionOf(d: AuditDecision | null | undefined): AuditDecision | null {
  if (d === null || d === undefined) return null;
  const out: AuditDecision = {
    allowed: d.allowed === true,
    reasons: Array.isArray(d.reasons) ? d.reasons.map((r) => cleanText(String(r))) : [],
  };
  if (typeof d.code === 'string') out.code = cleanText(d.code, MAX_ID_CHARS);
  if (typeof d.rule === 'string') out.rule = cleanText(d.rule, MAX_ID_CHARS);
  return out;
}

function latencyOf(ms: number | null | undefined): number | null {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return null;
  // The column is INTEGER: PostgreSQL would round 12.5 itself and the stored value would then
  // differ from the hashed one; out-of-range values would fail the insert and close the gate.
  return Math.min(Math.max(Math.round(ms), 0), MAX_LATENCY_MS);
}

function clampLimit(n: number): number {
  return Number.isFinite(n) ? Math.min(Math.max(Math.trunc(n), 0), MAX_READ) : 100;
}

/** Lock contention worth retrying; anything else (store down, constraint violation) fails at once. */
function isContention(e: unknown): boolean {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const code = (c as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return true;
    // serialization_failure, deadlock_detected
    if (code === '40001' || code === '40P01') return true;
  }
  return false;
}

/** A constraint or data error: caused by one entry's content, so worth isolating from its batch. */
function isDataError(e: unknown): boolean {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const code = (c as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG')
      return true;
    // PostgreSQL classes 22 (data exception) and 23 (integrity constraint violation).
    if (/^2[23][0-9A-Z]{3}$/.test(code)) return true;
  }
  return false;
}

function unavailable(e: unknown): WardenError {
  if (e instanceof WardenError && e.code === 'AUDIT_UNAVAILABLE') return e;
  const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new WardenError('AUDIT_UNAVAILABLE', 'The audit log is unavailable', { detail, cause: e });
}

/** Run a read or write of the audit store; any failure becomes AUDIT_UNAVAILABLE (detail kept private). */
export async function guard<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw unavailable(e);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
