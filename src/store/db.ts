/**
 * Opens the store: Kysely over SQLite (better-sqlite3, WAL) or PostgreSQL (pg),
 * chosen by the URL, with migrations run before anything else touches it.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  type Compilable,
  CompiledQuery,
  Kysely,
  PostgresDialect,
  type QueryResult,
  SqliteDialect,
} from 'kysely';
import pg from 'pg';
import { WardenError } from '../errors.js';
import { migrate } from './migrations.js';
import type { Database } from './schema.js';

/** The two supported SQL dialects. */
export type StoreDialect = 'sqlite' | 'postgres';

/** An open store: the Kysely handle plus what callers must know about the dialect. */
export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: StoreDialect;
  /** A redacted description for logs (`sqlite:/path` or `postgres://host/db`). */
  readonly description: string;
  /**
   * Runs `fn` with commits that need not reach the disk before they return:
   * SQLite `synchronous = NORMAL` (WAL: durable at the next FULL commit or
   * checkpoint, and never torn), PostgreSQL `synchronous_commit = off` for the
   * transaction `fn` opens. For writes whose durability a later synchronous
   * commit provides anyway (a call counter claimed before the attempt entry,
   * an outcome entry after it). A process crash loses nothing; a power loss
   * can lose the last moments of such writes, never a synchronous one.
   * SQLite: `fn` holds the one connection and may open a transaction on it.
   * PostgreSQL: `fn` runs as is — relaxing one statement's commit would cost a
   * transaction's extra round trips, more than the flush it saves; batched
   * writes relax their own transaction (`synchronous_commit = off`).
   */
  relaxed<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T>;
  /**
   * Present exactly when `dialect` is 'sqlite': synchronous work on the raw connection, for the
   * writes every tool call makes, where Kysely's per-statement promises cost more than the
   * statements (issue #4).
   */
  readonly sqlite?: SqliteAccess;
  close(): Promise<void>;
}

/**
 * A cached prepared statement of the SQLite connection. Shared with Kysely: never switch its
 * mode (raw, pluck, expand, safeIntegers).
 */
export type SqliteStatement = SqliteDatabase.Statement<unknown[], unknown>;

/** How `SqliteAccess.run` commits. */
export interface SqliteRunOptions {
  /** Run `fn` in one IMMEDIATE transaction (write lock first): a throw rolls all of it back. */
  transaction?: boolean;
  /** Commit at `synchronous = NORMAL` (see `Store.relaxed`); FULL is restored afterwards, whatever happens. */
  relaxed?: boolean;
}

/** The raw better-sqlite3 connection of a SQLite store, reached in turn with every Kysely query. */
export interface SqliteAccess {
  /**
   * Waits for the one connection as every Kysely query and transaction does (Kysely's
   * single-connection mutex), then runs `fn` on it synchronously; `prepare` hands out the
   * store's cached statements (bound parameters only). Rejects, running nothing, when a
   * transaction is already open on the connection. Never call it from inside `relaxed` or a
   * Kysely transaction of the same store and await it there: they hold the connection it waits for.
   */
  run<T>(fn: (prepare: (sql: string) => SqliteStatement) => T, options?: SqliteRunOptions): Promise<T>;
}

/** Prepared statements kept per SQLite connection (hot queries are few; DDL and reports come and go). */
const STATEMENT_CACHE = 512;

/**
 * better-sqlite3 behind Kysely, with its prepared statements reused: Kysely
 * prepares every query anew, which cost more than running it. A statement still
 * being iterated (a streamed query) is never handed out twice.
 */
export function cachingDatabase(
  sqlite: SqliteDatabase.Database,
  max = STATEMENT_CACHE,
): { close(): void; prepare(text: string): SqliteStatement } {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      const hit = cache.get(text);
      if (hit && !hit.busy) {
        cache.delete(text); // most recently used last
        cache.set(text, hit);
        return hit;
      }
      const statement = sqlite.prepare<unknown[]>(text);
      if (!hit) {
        cache.set(text, statement);
        if (cache.size > max) cache.delete(cache.keys().next().value as string);
      }
      return statement;
    },
  };
}

export interface OpenStoreOptions {
  /** PostgreSQL only: the schema to use (created when absent). Tests give each suite its own. */
  pgSchema?: string;
  /** PostgreSQL pool size. */
  poolSize?: number;
  /** Skip migrations (read-only tools that must not change the schema). */
  migrate?: boolean;
  /**
   * SQLite only: how long a statement waits for another process's lock (default 5 s). The wait
   * blocks the event loop (better-sqlite3 is synchronous); tests of lock outages shorten it.
   */
  sqliteBusyTimeoutMs?: number;
}

// BIGINT (int8, OID 20) comes back from pg as a string; our BIGINTs are epoch ms and
// sequence numbers, far below 2^53, so parse them as numbers once, globally.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10));

/** Which dialect a store URL names. */
export function dialectOf(url: string): StoreDialect {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return 'postgres';
  throw new WardenError(
    'CONFIG_INVALID',
    `store.url must start with sqlite: or postgres:// (got "${redactUrl(url)}")`,
  );
}

/** A URL safe to log: the password is replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

/** Open (and migrate) the store named by `url`. */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  const dialect = dialectOf(url);
  let db: Kysely<Database>;
  let sqliteAccess: SqliteAccess | undefined;
  const sync: SyncState = { full: true };
  if (dialect === 'sqlite') {
    const file = url.slice('sqlite:'.length);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const sqlite = new SqliteDatabase(file);
    sqlite.pragma('journal_mode = WAL');
    // FULL: a committed audit entry survives power loss (fail-closed audit needs durability).
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.sqliteBusyTimeoutMs ?? 5000))}`);
    sqlite.pragma('foreign_keys = ON');
    const statements = cachingDatabase(sqlite);
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: statements }) });
    sqliteAccess = rawSqlite(db, sqlite, statements.prepare, sync);
  } else {
    const schema = options.pgSchema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new WardenError('CONFIG_INVALID', `invalid PostgreSQL schema name "${schema}"`);
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
      // A lock held by a stuck writer fails the waiting statement after 5 s (the caller
      // fails closed) instead of hanging it; the audit head lock relies on this.
      options: `-c lock_timeout=5s${schema ? ` -c search_path=${schema}` : ''}`,
    });
    // An idle client's error (server restart) must not crash the process; the next query reports it.
    pool.on('error', () => {});
    // Nor a checked-out one's: a connection cut between two statements of a transaction makes its
    // client emit 'error' with nobody listening (the pool listens only to idle clients). The
    // transaction's next statement fails instead, and the pool drops the client (issue #9).
    pool.on('connect', (client) => client.on('error', () => {}));
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    if (schema) {
      const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      try {
        await admin.connect();
        await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } catch (e) {
        await db.destroy();
        throw new WardenError('STORE_UNAVAILABLE', 'PostgreSQL is unreachable', {
          detail: `${redactUrl(url)}: ${(e as Error).message}`,
          cause: e,
        });
      } finally {
        await admin.end().catch(() => {});
      }
    }
  }
  if (options.migrate !== false) {
    try {
      await migrate(db as unknown as Kysely<unknown>, dialect);
    } catch (e) {
      await db.destroy();
      throw new WardenError('STORE_UNAVAILABLE', 'The store could not be opened', {
        detail: `${redactUrl(url)}: ${(e as Error).message}`,
        cause: e,
      });
    }
  }
  return {
    db,
    dialect,
    description: redactUrl(url),
    relaxed: dialect === 'sqlite' ? (fn) => relaxedSqlite(db, fn, sync) : (fn) => fn(db),
    ...(sqliteAccess ? { sqlite: sqliteAccess } : {}),
    close: () => db.destroy(),
  };
}

const SYNC_NORMAL = 'PRAGMA synchronous = NORMAL';
const SYNC_FULL = 'PRAGMA synchronous = FULL';
const PRAGMA_NORMAL = CompiledQuery.raw(SYNC_NORMAL, []);
const PRAGMA_FULL = CompiledQuery.raw(SYNC_FULL, []);

/**
 * Whether the SQLite connection is known to be at `synchronous = FULL`: false from the moment a
 * relaxed run lowers it until its restore succeeded. A restore that failed leaves it false, and the
 * next raw run sets FULL again before it writes (or fails, writing nothing): a durable audit batch
 * never commits at NORMAL because an earlier relaxed one could not put FULL back.
 */
interface SyncState {
  full: boolean;
}

/** SQLite has one connection: hold it, lower `synchronous` for `fn`, and restore FULL whatever happens. */
function relaxedSqlite<T>(
  db: Kysely<Database>,
  fn: (db: Kysely<Database>) => Promise<T>,
  sync: SyncState,
): Promise<T> {
  return db.connection().execute(async (conn) => {
    sync.full = false;
    await conn.executeQuery(PRAGMA_NORMAL);
    try {
      return await fn(conn);
    } finally {
      await conn.executeQuery(PRAGMA_FULL);
      sync.full = true;
    }
  });
}

/**
 * `SqliteAccess` over the store's connection: Kysely's mutex orders it with every other use;
 * inside, better-sqlite3 runs the whole transaction without a promise in between.
 */
function rawSqlite(
  db: Kysely<Database>,
  sqlite: SqliteDatabase.Database,
  prepare: (sql: string) => SqliteStatement,
  sync: SyncState,
): SqliteAccess {
  // One wrapper for every run (better-sqlite3 prepares its BEGIN/COMMIT/ROLLBACK once per connection).
  const inTransaction = sqlite.transaction((fn: (p: typeof prepare) => unknown) => fn(prepare));
  return {
    run<T>(fn: (p: typeof prepare) => T, options: SqliteRunOptions = {}): Promise<T> {
      return db.connection().execute(async () => {
        // Whoever holds the mutex ends their transaction before letting go: one open now was
        // begun outside it, and better-sqlite3 would nest into it (a savepoint), not wait.
        if (sqlite.inTransaction) throw new Error('a transaction is already open on the SQLite connection');
        if (!sync.full) {
          prepare(SYNC_FULL).run();
          sync.full = true;
        }
        const once = (): T => {
          const out = options.transaction ? (inTransaction.immediate(fn) as T) : fn(prepare);
          if (typeof (out as { then?: unknown } | undefined)?.then === 'function') {
            throw new TypeError('SqliteAccess.run takes a synchronous function');
          }
          return out;
        };
        if (!options.relaxed) return once();
        // Set outside the transaction: SQLite refuses to change it inside one.
        sync.full = false;
        prepare(SYNC_NORMAL).run();
        try {
          return once();
        } finally {
          prepare(SYNC_FULL).run();
          sync.full = true;
        }
      });
    },
  };
}

/**
 * A hot query built once: `build` makes it with `arg(i)` standing for the i-th
 * runtime value; it is compiled once, and each run passes its own values in the
 * places those stood (the query's own constants stay where they were). For the
 * few queries every tool call makes, where building them through the query
 * builder cost more than running them.
 */
export function fixedQuery<Row>(build: (arg: (i: number) => string) => Compilable<Row>): FixedQuery<Row> {
  // Markers that stand for the runtime values while the query is built (a NUL-prefixed
  // text no caller passes); the builder keeps every other value as a constant.
  const markers: string[] = [];
  const marker = (i: number) => (markers[i] ??= `\u0000fixed-query-arg:${i}`);
  const compiled = build(marker).compile();
  const slots = compiled.parameters.map((p) => (typeof p === 'string' ? markers.indexOf(p) : -1));
  const parameters = (args: readonly unknown[]) =>
    compiled.parameters.map((p, k) => (slots[k]! >= 0 ? args[slots[k]!] : p));
  const run = (db: Kysely<Database>, args: readonly unknown[]) =>
    db.executeQuery<Row>(CompiledQuery.raw(compiled.sql, parameters(args)));
  return Object.assign(run, { sql: compiled.sql, parameters });
}

/** A query built once (see `fixedQuery`): run it through Kysely, or take its text and values. */
export interface FixedQuery<Row> {
  (db: Kysely<Database>, args: readonly unknown[]): Promise<QueryResult<Row>>;
  /** Its SQL text, for a prepared statement of the raw SQLite connection (`SqliteAccess`). */
  readonly sql: string;
  /** The values to bind for `args`, in the text's order. */
  parameters(args: readonly unknown[]): unknown[];
}
