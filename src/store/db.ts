/**
 * Opens the store: Kysely over SQLite (better-sqlite3, WAL) or PostgreSQL (pg),
 * chosen by the URL, with migrations run before anything else touches it.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
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
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** PostgreSQL only: the schema to use (created when absent). Tests give each suite its own. */
  pgSchema?: string;
  /** PostgreSQL pool size. */
  poolSize?: number;
  /** Skip migrations (read-only tools that must not change the schema). */
  migrate?: boolean;
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
  if (dialect === 'sqlite') {
    const file = url.slice('sqlite:'.length);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const sqlite = new SqliteDatabase(file);
    sqlite.pragma('journal_mode = WAL');
    // FULL: a committed audit entry survives power loss (fail-closed audit needs durability).
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  } else {
    const schema = options.pgSchema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new WardenError('CONFIG_INVALID', `invalid PostgreSQL schema name "${schema}"`);
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    // An idle client's error (server restart) must not crash the process; the next query reports it.
    pool.on('error', () => {});
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
    close: () => db.destroy(),
  };
}
