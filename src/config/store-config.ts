import { ConfigError } from '../errors.js';
import { BACKENDS, backendOfType } from './backends.js';
import { type Env, set } from './env.js';

/**
 * Which backend `createExtendedStore()` opens and with what settings. Every
 * way of naming a store (a config object, the environment, a location string
 * such as `sqlite:./data/agents.db`) is resolved here into one of these, so
 * the rules live in one place and can be checked without opening anything.
 */

/** Where events are kept: in the database, or in append-only files (hybrid mode, SPEC §4). */
export type EventStorage = 'database' | 'file';

/** PostgreSQL connection settings, as in seed 004 (the pool options are passed to `pg.Pool`). */
export interface PostgresConnectionConfig {
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  ssl?: boolean | { rejectUnauthorized?: boolean };
  /** Maximum pool connections (default 10). */
  max?: number;
  idleTimeoutMillis?: number;
  connectionTimeoutMillis?: number;
}

export interface SqliteStoreConfig {
  type: 'sqlite';
  /** Database file. Default `./data/agents.db`. */
  dbPath?: string;
  /** Base directory for files (hybrid events). Default `./data/store`. */
  fileStoreBaseDir?: string;
  eventStorage?: EventStorage;
  /**
   * Read an existing store, changing nothing (default false): nothing is
   * created or migrated, writes reject with `UnsupportedError`, and a
   * location that holds no kode-store data is a `ConfigError`.
   */
  readOnly?: boolean;
}

export interface PostgresStoreConfig {
  type: 'postgres';
  /** Connection settings or a `postgres://` URL. */
  connection: PostgresConnectionConfig | string;
  /** PostgreSQL schema holding the tables (default `public`). */
  schema?: string;
  /** Named prepared statements (default true); `false` behind PgBouncer < 1.21 in transaction mode. */
  preparedStatements?: boolean;
  fileStoreBaseDir?: string;
  eventStorage?: EventStorage;
  /** Bound on getting a connection (PostgresStore's `connectTimeoutMs`; env `KODE_POSTGRES_CONNECT_TIMEOUT_MS`). */
  connectTimeoutMs?: number;
  /** Bound on one statement (`statementTimeoutMs`; env `KODE_POSTGRES_STATEMENT_TIMEOUT_MS`). */
  statementTimeoutMs?: number;
  /** Bound on one statement's lock wait (`lockTimeoutMs`; env `KODE_POSTGRES_LOCK_TIMEOUT_MS`). */
  lockTimeoutMs?: number;
  /** Hot standbys the query APIs may read (PostgresStore's `replicas`; env `KODE_POSTGRES_REPLICA_URLS`, comma-separated). */
  replicas?: Array<PostgresConnectionConfig | string>;
  /** How stale a replica's answers may be (`maxReplicaLagMs`; env `KODE_POSTGRES_MAX_REPLICA_LAG_MS`). */
  maxReplicaLagMs?: number;
  /** Events in this many hash partitions by agent id, 0: one plain table (`eventPartitions`; env `KODE_POSTGRES_EVENT_PARTITIONS`). */
  eventPartitions?: number;
  /**
   * Read an existing store, changing nothing (default false): nothing is
   * created or migrated, writes reject with `UnsupportedError`, and a
   * location that holds no kode-store data is a `ConfigError`.
   */
  readOnly?: boolean;
}

export interface MongoStoreConfig {
  type: 'mongo';
  /** A `mongodb://` or `mongodb+srv://` URI. */
  uri: string;
  /** Database name (default: the URI's, else `kode`). */
  dbName?: string;
  fileStoreBaseDir?: string;
  eventStorage?: EventStorage;
  /** Bound on reaching the server (MongoStore's `connectTimeoutMs`; env `KODE_MONGO_CONNECT_TIMEOUT_MS`). */
  connectTimeoutMs?: number;
  /** Bound on one request's reply (`operationTimeoutMs`; env `KODE_MONGO_OPERATION_TIMEOUT_MS`). */
  operationTimeoutMs?: number;
  /** Bound on waiting for another process's KV batch (`lockWaitTimeoutMs`; env `KODE_MONGO_LOCK_WAIT_TIMEOUT_MS`). */
  lockWaitTimeoutMs?: number;
  /**
   * Read an existing store, changing nothing (default false): nothing is
   * created or migrated, writes reject with `UnsupportedError`, and a
   * location that holds no kode-store data is a `ConfigError`.
   */
  readOnly?: boolean;
}

export interface MemoryStoreConfig {
  type: 'memory';
  /** A new memory store holds nothing to read: `true` is refused with a `ConfigError`. */
  readOnly?: boolean;
}

/** What `createExtendedStore(config)` accepts. */
export type ExtendedStoreConfig =
  | SqliteStoreConfig
  | PostgresStoreConfig
  | MongoStoreConfig
  | MemoryStoreConfig;

export { DEFAULT_FILE_STORE_PATH, DEFAULT_SQLITE_PATH, eventPlacementFromEnv } from './env.js';

/**
 * Reads the store settings from environment variables (seed 004):
 * `KODE_STORE_TYPE` (`sqlite` default, `postgres`, `mongo`, `memory`), then
 * the backend's own variables (see `BACKENDS` in backends.ts and the README):
 * `KODE_SQLITE_PATH`, `KODE_STORE_PATH`, `KODE_STORE_EVENTS`,
 * `DATABASE_URL` or `POSTGRES_HOST/PORT/DB/USER/PASSWORD`, `KODE_POSTGRES_*`,
 * `MONGODB_URI`, `MONGODB_DB`, `KODE_MONGO_*`. A missing or contradictory
 * setting is a `ConfigError` whose `variable` names the culprit.
 */
export function storeConfigFromEnv(env: Env = process.env): ExtendedStoreConfig {
  const type = (set(env, 'KODE_STORE_TYPE') ?? 'sqlite').toLowerCase();
  const backend = BACKENDS.find((b) => b.type === type || b.aliases.includes(type));
  if (!backend) {
    throw new ConfigError(
      `KODE_STORE_TYPE must be one of ${BACKENDS.map((b) => b.type).join(', ')}; got ${JSON.stringify(type)}`,
      { variable: 'KODE_STORE_TYPE' },
    );
  }
  return backend.fromEnv(env);
}

/**
 * The backend a location string names by its scheme (`sqlite:`,
 * `postgres://` / `postgresql://`, `mongodb://` / `mongodb+srv://`,
 * `memory:`), or `undefined` when it names none of them. Parses nothing else.
 */
export function locationBackend(location: string): ExtendedStoreConfig['type'] | undefined {
  return BACKENDS.find((b) => b.claims(location))?.type;
}

/** The location syntaxes, for messages: `sqlite:<path>, postgres://…, mongodb://…, memory:`. */
export function locationSyntaxes(): string[] {
  return BACKENDS.map((b) => b.locationSyntax);
}

/**
 * Parses a store location, the one syntax shared by `createExtendedStore()`
 * and the command line: `sqlite:<path>`, `postgres://…` / `postgresql://…`
 * (`?schema=<name>` picks the PostgreSQL schema),
 * `mongodb://…` / `mongodb+srv://…`, `memory:`.
 */
export function storeConfigFromLocation(location: string): ExtendedStoreConfig {
  if (typeof location !== 'string' || location.trim() === '') {
    throw new ConfigError('a store location must be a non-empty string', { variable: 'location' });
  }
  const backend = BACKENDS.find((b) => b.claims(location));
  if (!backend) {
    const syntaxes = locationSyntaxes();
    throw new ConfigError(
      `unknown store location ${JSON.stringify(location)}; use ${syntaxes.slice(0, -1).join(', ')} or ${syntaxes.at(-1)}`,
      { variable: 'location' },
    );
  }
  return backend.fromLocation(location);
}

/** Checks an explicit config object; the error names the field at fault. */
export function validateStoreConfig(config: ExtendedStoreConfig): ExtendedStoreConfig {
  if (typeof config !== 'object' || config === null) {
    throw new ConfigError('createExtendedStore(config) needs an object', { variable: 'config' });
  }
  const eventStorage = (config as { eventStorage?: unknown }).eventStorage;
  if (eventStorage !== undefined && eventStorage !== 'file' && eventStorage !== 'database') {
    throw new ConfigError(`eventStorage must be 'file' or 'database', got ${JSON.stringify(eventStorage)}`, {
      variable: 'eventStorage',
    });
  }
  const readOnly = (config as { readOnly?: unknown }).readOnly;
  if (readOnly !== undefined && typeof readOnly !== 'boolean') {
    throw new ConfigError(`readOnly must be true or false, got ${JSON.stringify(readOnly)}`, {
      variable: 'readOnly',
    });
  }
  const backend = backendOfType((config as { type?: unknown }).type);
  if (!backend) {
    throw new ConfigError(
      `unknown store type ${JSON.stringify((config as { type?: unknown }).type)}; use ${BACKENDS.map((b) => b.type).join(', ')}`,
      { variable: 'type' },
    );
  }
  backend.check(config as never);
  return config;
}
