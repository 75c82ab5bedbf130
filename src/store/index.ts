export {
  dialectOf,
  type FixedQuery,
  fixedQuery,
  type OpenStoreOptions,
  openStore,
  redactUrl,
  type SqliteAccess,
  type SqliteRunOptions,
  type SqliteStatement,
  type Store,
  type StoreDialect,
} from './db.js';
export { GENESIS_HASH } from './migrations.js';
export type * from './schema.js';
