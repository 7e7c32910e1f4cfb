import type { EventStorage } from '../../src/config/store-config.js';
import { ConfigError } from '../../src/errors.js';

/**
 * The parts of a better-sqlite3 prepared statement the store uses. Declared
 * structurally so that `better-sqlite3` stays an optional peer dependency:
 * nothing here imports it.
 */
export interface SqliteStatement {
  /** True for statements that return rows. */
  readonly reader: boolean;
  run(...parameters: unknown[]): SqliteRunResult;
  get(...parameters: unknown[]): unknown;
  all(...parameters: unknown[]): unknown[];
  /**
   * Rows one at a time (better-sqlite3 has it): `readEvents` stops reading a
   * page once it holds its bytes. Without it a page is read whole with `all`.
   */
  iterate?(...parameters: unknown[]): IterableIterator<unknown>;
}

/** What `SqliteStatement.run` reports. */
export interface SqliteRunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

/**
 * The parts of a better-sqlite3 `Database` the store uses. Any object of
 * this shape can be injected, e.g. `new Database('./agents.db')` from the
 * application's own copy of better-sqlite3 (one copy of SQLite per process
 * keeps its file locks working).
 */
export interface SqliteDatabase {
  readonly open: boolean;
  readonly inTransaction: boolean;
  readonly memory: boolean;
  readonly name: string;
  prepare(sql: string): SqliteStatement;
  exec(sql: string): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  close(): unknown;
}

/** The better-sqlite3 module's default export: `new Database(filename, options)`. */
export type SqliteDatabaseConstructor = new (
  filename: string,
  options?: { timeout?: number; readonly?: boolean; fileMustExist?: boolean },
) => SqliteDatabase;

/**
 * How hard SQLite works to make a commit survive power loss.
 * - `full` (default): `PRAGMA synchronous = FULL`. Every commit is fsynced;
 *   a resolved write survives a crash of the process and of the machine.
 * - `normal`: `PRAGMA synchronous = NORMAL`. In WAL mode commits survive a
 *   crash of the process, but the last ones may be lost on power loss;
 *   faster on slow disks.
 *
 * In hybrid mode the event files follow the same choice: `full` syncs every
 * batch of appends to disk before it resolves, `normal` leaves that to the OS.
 */
export type SqliteDurability = 'full' | 'normal';

/**
 * Options of `new SqliteStore(options)`.
 *
 * @example
 * ```ts
 * const store = new SqliteStore({ path: './data/agents.db', durability: 'normal' });
 * ```
 */
export interface SqliteStoreOptions {
  /**
   * The database file. Its parent directories are created if missing
   * (nothing else is created outside this path and `fileStoreBaseDir`).
   * `':memory:'` keeps everything in this process. Required unless
   * `database` is given.
   */
  path?: string;
  /** Base directory of the event files in hybrid mode (`eventStorage: 'file'`). */
  fileStoreBaseDir?: string;
  /**
   * Where events live: `'database'` (default) or `'file'` (hybrid mode:
   * append-only files under `fileStoreBaseDir`, everything else in SQLite).
   */
  eventStorage?: EventStorage;
  /** See `SqliteDurability`; default `'full'`. */
  durability?: SqliteDurability;
  /**
   * Read an existing store without changing anything (default false): the
   * file is opened read-only (it must exist), nothing is created or migrated,
   * and every write rejects with an `UnsupportedError`. A file without a
   * kode-store schema is refused with a `ConfigError`, one whose schema is
   * older than this code with an `UnsupportedError` (open it once without
   * `readOnly` to upgrade it). Event files are read in hybrid mode, never
   * created.
   * @example
   * ```ts
   * const store = new SqliteStore({ path: './data/agents.db', readOnly: true });
   * ```
   */
  readOnly?: boolean;
  /**
   * How long an operation waits for another connection's write lock before
   * it fails, in milliseconds (default 5000). The wait is asynchronous: the
   * Node event loop keeps running while the store retries.
   */
  busyTimeoutMs?: number;
  /**
   * A better-sqlite3 database opened by the application. The store sets
   * WAL mode, `synchronous` and a short `busy_timeout` on it, creates its
   * tables, and never closes it.
   */
  database?: SqliteDatabase;
  /**
   * The better-sqlite3 module (its default export) used to open `path`.
   * Default: `better-sqlite3` loaded with `require` on first use. Pass the
   * application's own import when a bundler hides it from `require`.
   * @example
   * ```ts
   * import Database from 'better-sqlite3';
   * new SqliteStore({ path: './agents.db', driver: Database });
   * ```
   */
  driver?: SqliteDatabaseConstructor;
  /**
   * How long an agent lock stays valid without renewal, in milliseconds
   * (default 15000). A holder renews it while it lives; if the holder's
   * process dies, others can take the lock once the lease has run out.
   */
  lockLeaseMs?: number;
}

/** The options with every default applied and every value checked. */
export interface ResolvedSqliteOptions {
  path: string;
  fileStoreBaseDir?: string;
  eventStorage: EventStorage;
  durability: SqliteDurability;
  readOnly: boolean;
  busyTimeoutMs: number;
  database?: SqliteDatabase;
  driver?: SqliteDatabaseConstructor;
  lockLeaseMs: number;
}

export const DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 5000;
export const DEFAULT_SQLITE_LOCK_LEASE_MS = 15_000;
/** The smallest lease: renewals run every third of it, and a shorter one would be lost to a GC pause. */
export const MIN_SQLITE_LOCK_LEASE_MS = 100;

function positiveInteger(value: unknown, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`, {
      backend: 'sqlite',
      variable: name,
    });
  }
  return value;
}

/**
 * Turns either constructor form (`(dbPath, fileStoreBaseDir?)` from seed 004,
 * or an options object) into checked options. Throws `ConfigError`.
 */
export function resolveSqliteOptions(
  pathOrOptions: string | SqliteStoreOptions,
  fileStoreBaseDir?: string,
): ResolvedSqliteOptions {
  const options: SqliteStoreOptions =
    typeof pathOrOptions === 'string' ? { path: pathOrOptions, fileStoreBaseDir } : (pathOrOptions ?? {});
  if (typeof options !== 'object') {
    throw new ConfigError('SqliteStore needs a database path or an options object', {
      backend: 'sqlite',
      variable: 'path',
    });
  }
  const { database } = options;
  if (database !== undefined && (typeof database !== 'object' || typeof database?.prepare !== 'function')) {
    throw new ConfigError('database must be a better-sqlite3 Database', {
      backend: 'sqlite',
      variable: 'database',
    });
  }
  if (options.driver !== undefined && typeof options.driver !== 'function') {
    throw new ConfigError('driver must be the better-sqlite3 module (its Database constructor)', {
      backend: 'sqlite',
      variable: 'driver',
    });
  }
  let path = options.path;
  if (path === undefined && database) path = database.name;
  if (typeof path !== 'string' || path === '') {
    throw new ConfigError('path must be a non-empty file path (or ":memory:")', {
      backend: 'sqlite',
      variable: 'path',
    });
  }
  const eventStorage = options.eventStorage ?? 'database';
  if (eventStorage !== 'database' && eventStorage !== 'file') {
    throw new ConfigError(`eventStorage must be 'database' or 'file', got ${JSON.stringify(eventStorage)}`, {
      backend: 'sqlite',
      variable: 'eventStorage',
    });
  }
  const baseDir = options.fileStoreBaseDir;
  if (baseDir !== undefined && (typeof baseDir !== 'string' || baseDir === '')) {
    throw new ConfigError('fileStoreBaseDir must be a non-empty directory path', {
      backend: 'sqlite',
      variable: 'fileStoreBaseDir',
    });
  }
  if (eventStorage === 'file' && baseDir === undefined) {
    throw new ConfigError("eventStorage 'file' needs fileStoreBaseDir", {
      backend: 'sqlite',
      variable: 'fileStoreBaseDir',
    });
  }
  const durability = options.durability ?? 'full';
  if (durability !== 'full' && durability !== 'normal') {
    throw new ConfigError(`durability must be 'full' or 'normal', got ${JSON.stringify(durability)}`, {
      backend: 'sqlite',
      variable: 'durability',
    });
  }
  const readOnly = options.readOnly ?? false;
  if (typeof readOnly !== 'boolean') {
    throw new ConfigError(`readOnly must be true or false, got ${JSON.stringify(readOnly)}`, {
      backend: 'sqlite',
      variable: 'readOnly',
    });
  }
  if (readOnly && database === undefined && path === ':memory:') {
    throw new ConfigError('readOnly needs a database file: a new in-memory database holds nothing to read', {
      backend: 'sqlite',
      variable: 'readOnly',
    });
  }
  return {
    path,
    fileStoreBaseDir: baseDir,
    eventStorage,
    durability,
    readOnly,
    busyTimeoutMs: positiveInteger(options.busyTimeoutMs, 'busyTimeoutMs', DEFAULT_SQLITE_BUSY_TIMEOUT_MS),
    database,
    driver: options.driver,
    lockLeaseMs: positiveInteger(
      options.lockLeaseMs,
      'lockLeaseMs',
      DEFAULT_SQLITE_LOCK_LEASE_MS,
      MIN_SQLITE_LOCK_LEASE_MS,
    ),
  };
}
