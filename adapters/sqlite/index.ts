/**
 * `kode-store/sqlite`: the KODE SDK's `ExtendedStore` on SQLite
 * (better-sqlite3, an optional peer dependency loaded on first use).
 *
 * @example
 * ```ts
 * import { SqliteStore } from 'kode-store/sqlite';
 * const store = new SqliteStore('./data/agents.db');
 * ```
 */
export type {
  SqliteDatabase,
  SqliteDatabaseConstructor,
  SqliteDurability,
  SqliteRunResult,
  SqliteStatement,
  SqliteStoreOptions,
} from './sqlite-config.js';
export { DEFAULT_SQLITE_BUSY_TIMEOUT_MS, DEFAULT_SQLITE_LOCK_LEASE_MS } from './sqlite-config.js';
export { SqliteKvBackend, type SqliteKvOptions } from './sqlite-kv.js';
export { SqliteStore } from './sqlite-store.js';
