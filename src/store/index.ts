export {
  dialectOf,
  fixedQuery,
  type OpenStoreOptions,
  openStore,
  redactUrl,
  type Store,
  type StoreDialect,
} from './db.js';
export { GENESIS_HASH } from './migrations.js';
export type * from './schema.js';
