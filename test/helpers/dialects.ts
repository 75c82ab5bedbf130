/**
 * Runs a suite against every store dialect: SQLite (a fresh temp file) and
 * PostgreSQL (a fresh schema in database `test` at 127.0.0.1:5432).
 *
 * PostgreSQL missing: in CI (CI=true or WARDEN_REQUIRE_PG=1) that is a failure;
 * on a laptop the PostgreSQL half is skipped with a clear message.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe } from 'vitest';
import { openStore, type Store, type StoreDialect } from '../../src/store/index.js';

export const PG_URL = process.env.WARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.WARDEN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const required = process.env.CI === 'true' || process.env.WARDEN_REQUIRE_PG === '1';

async function probePg(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await c.end().catch(() => {});
  }
}

const pgProblem = await probePg();
if (pgProblem !== null) {
  if (required) throw new Error(`PostgreSQL is required (CI) but unreachable at ${PG_URL}: ${pgProblem}`);
  console.warn(
    `[warden tests] PostgreSQL unreachable at ${PG_URL} (${pgProblem}): PostgreSQL suites are SKIPPED.`,
  );
}

/** True when PostgreSQL suites run in this process. */
export const pgAvailable = pgProblem === null;

export interface DialectTarget {
  dialect: StoreDialect;
  /** A store URL for a gateway process (PostgreSQL: use with `pgSchema`). */
  url: string;
  /** PostgreSQL: the schema name; SQLite: undefined. */
  pgSchema: string | undefined;
  /** Open a fresh, migrated store for this dialect. */
  open(): Promise<Store>;
  /** Drop what open() created. */
  cleanup(): Promise<void>;
}

let counter = 0;

/** A fresh, isolated store target for `dialect`. */
export function makeTarget(dialect: StoreDialect): DialectTarget {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'warden-test-'));
    const url = `sqlite:${join(dir, 'warden.db')}`;
    return {
      dialect,
      url,
      pgSchema: undefined,
      open: () => openStore(url),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const schema = `t_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  return {
    dialect,
    url: PG_URL,
    pgSchema: schema,
    open: () => openStore(PG_URL, { pgSchema: schema, poolSize: 4 }),
    cleanup: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

/** `describe` once per dialect; the PostgreSQL one is skipped (with a message) when unavailable outside CI. */
export function describeEachDialect(name: string, fn: (target: DialectTarget) => void): void {
  for (const dialect of ['sqlite', 'postgres'] as const) {
    const d = dialect === 'postgres' && !pgAvailable ? describe.skip : describe;
    d(`${name} [${dialect}]`, () => fn(makeTarget(dialect)));
  }
}
