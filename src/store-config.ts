import { ConfigError } from './errors.js';

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

export const DEFAULT_SQLITE_PATH = './data/agents.db';
export const DEFAULT_FILE_STORE_PATH = './data/store';

type Env = Record<string, string | undefined>;

function set(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function eventStorageFrom(env: Env): EventStorage | undefined {
  const value = set(env, 'KODE_STORE_EVENTS');
  if (value === undefined) return undefined;
  if (value === 'file' || value === 'database') return value;
  throw new ConfigError(`KODE_STORE_EVENTS must be 'file' or 'database', got ${JSON.stringify(value)}`, {
    variable: 'KODE_STORE_EVENTS',
  });
}

/**
 * Where the environment puts events: `KODE_STORE_EVENTS` (undefined when
 * unset) and `KODE_STORE_PATH` (default `./data/store`). The command line
 * applies it to a location it is given, as `createExtendedStore()` does.
 */
export function eventPlacementFromEnv(env: Env): { eventStorage?: EventStorage; fileStoreBaseDir: string } {
  return {
    eventStorage: eventStorageFrom(env),
    fileStoreBaseDir: set(env, 'KODE_STORE_PATH') ?? DEFAULT_FILE_STORE_PATH,
  };
}

function booleanFrom(env: Env, variable: string): boolean | undefined {
  const value = set(env, variable);
  if (value === undefined) return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new ConfigError(`${variable} must be true or false, got ${JSON.stringify(value)}`, { variable });
}

/** A whole number of milliseconds >= 1 from `variable`, or undefined when it is not set. */
function millisecondsFrom(env: Env, variable: string): number | undefined {
  const value = set(env, variable);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new ConfigError(
      `${variable} must be a whole number of milliseconds >= 1, got ${JSON.stringify(value)}`,
      {
        variable,
      },
    );
  }
  return Number(value);
}

function portFrom(env: Env): number | undefined {
  const value = set(env, 'POSTGRES_PORT');
  if (value === undefined) return undefined;
  const port = Number(value);
  // Digits only: Number() would also take '1e3', '0x50' or ' 5432 '.
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) {
    throw new ConfigError(`POSTGRES_PORT must be a port number, got ${JSON.stringify(value)}`, {
      variable: 'POSTGRES_PORT',
    });
  }
  return port;
}

const POSTGRES_PARTS = [
  'POSTGRES_HOST',
  'POSTGRES_PORT',
  'POSTGRES_DB',
  'POSTGRES_USER',
  'POSTGRES_PASSWORD',
];

function postgresFrom(env: Env): PostgresStoreConfig {
  const url = set(env, 'DATABASE_URL');
  const parts = POSTGRES_PARTS.filter((name) => set(env, name) !== undefined);
  if (url && parts.length > 0) {
    throw new ConfigError(
      `DATABASE_URL and ${parts.join(', ')} are both set; set either DATABASE_URL or the POSTGRES_* variables`,
      { variable: 'DATABASE_URL' },
    );
  }
  let connection: PostgresConnectionConfig | string;
  if (url) {
    if (!/^postgres(ql)?:\/\//i.test(url)) {
      throw new ConfigError('DATABASE_URL must start with postgres:// or postgresql://', {
        variable: 'DATABASE_URL',
      });
    }
    connection = url;
  } else {
    const host = set(env, 'POSTGRES_HOST');
    if (!host) {
      throw new ConfigError('KODE_STORE_TYPE=postgres needs DATABASE_URL or POSTGRES_HOST', {
        variable: 'POSTGRES_HOST',
      });
    }
    connection = {
      host,
      port: portFrom(env),
      database: set(env, 'POSTGRES_DB'),
      user: set(env, 'POSTGRES_USER'),
      password: env.POSTGRES_PASSWORD,
    };
  }
  return {
    type: 'postgres',
    connection,
    schema: set(env, 'KODE_POSTGRES_SCHEMA'),
    preparedStatements: booleanFrom(env, 'KODE_POSTGRES_PREPARED_STATEMENTS'),
    fileStoreBaseDir: set(env, 'KODE_STORE_PATH') ?? DEFAULT_FILE_STORE_PATH,
    eventStorage: eventStorageFrom(env),
    connectTimeoutMs: millisecondsFrom(env, 'KODE_POSTGRES_CONNECT_TIMEOUT_MS'),
    statementTimeoutMs: millisecondsFrom(env, 'KODE_POSTGRES_STATEMENT_TIMEOUT_MS'),
    lockTimeoutMs: millisecondsFrom(env, 'KODE_POSTGRES_LOCK_TIMEOUT_MS'),
  };
}

function mongoFrom(env: Env): MongoStoreConfig {
  const uri = set(env, 'MONGODB_URI');
  if (!uri) throw new ConfigError('KODE_STORE_TYPE=mongo needs MONGODB_URI', { variable: 'MONGODB_URI' });
  if (!/^mongodb(\+srv)?:\/\//i.test(uri)) {
    throw new ConfigError('MONGODB_URI must start with mongodb:// or mongodb+srv://', {
      variable: 'MONGODB_URI',
    });
  }
  return {
    type: 'mongo',
    uri,
    dbName: set(env, 'MONGODB_DB'),
    fileStoreBaseDir: set(env, 'KODE_STORE_PATH') ?? DEFAULT_FILE_STORE_PATH,
    eventStorage: eventStorageFrom(env),
    connectTimeoutMs: millisecondsFrom(env, 'KODE_MONGO_CONNECT_TIMEOUT_MS'),
    operationTimeoutMs: millisecondsFrom(env, 'KODE_MONGO_OPERATION_TIMEOUT_MS'),
    lockWaitTimeoutMs: millisecondsFrom(env, 'KODE_MONGO_LOCK_WAIT_TIMEOUT_MS'),
  };
}

/**
 * Reads the store settings from environment variables (seed 004):
 * `KODE_STORE_TYPE` (`sqlite` default, `postgres`, `mongo`, `memory`),
 * `KODE_SQLITE_PATH`, `KODE_STORE_PATH`, `KODE_STORE_EVENTS`,
 * `DATABASE_URL` or `POSTGRES_HOST/PORT/DB/USER/PASSWORD`, `KODE_POSTGRES_SCHEMA`,
 * `KODE_POSTGRES_PREPARED_STATEMENTS`, `KODE_POSTGRES_{CONNECT,STATEMENT,LOCK}_TIMEOUT_MS`,
 * `MONGODB_URI`, `MONGODB_DB` and `KODE_MONGO_{CONNECT,OPERATION,LOCK_WAIT}_TIMEOUT_MS`. A missing or contradictory setting is a
 * `ConfigError` whose `variable` names the culprit.
 */
export function storeConfigFromEnv(env: Env = process.env): ExtendedStoreConfig {
  const type = (set(env, 'KODE_STORE_TYPE') ?? 'sqlite').toLowerCase();
  switch (type) {
    case 'sqlite':
      return {
        type: 'sqlite',
        dbPath: set(env, 'KODE_SQLITE_PATH') ?? DEFAULT_SQLITE_PATH,
        fileStoreBaseDir: set(env, 'KODE_STORE_PATH') ?? DEFAULT_FILE_STORE_PATH,
        eventStorage: eventStorageFrom(env),
      };
    case 'postgres':
    case 'postgresql':
      return postgresFrom(env);
    case 'mongo':
    case 'mongodb':
      return mongoFrom(env);
    case 'memory':
      return { type: 'memory' };
    default:
      throw new ConfigError(
        `KODE_STORE_TYPE must be one of sqlite, postgres, mongo, memory; got ${JSON.stringify(type)}`,
        { variable: 'KODE_STORE_TYPE' },
      );
  }
}

/**
 * The backend a location string names by its scheme (`sqlite:`,
 * `postgres://` / `postgresql://`, `mongodb://` / `mongodb+srv://`,
 * `memory:`), or `undefined` when it names none of them. Parses nothing else.
 */
export function locationBackend(location: string): ExtendedStoreConfig['type'] | undefined {
  if (/^postgres(ql)?:\/\//i.test(location)) return 'postgres';
  if (/^mongodb(\+srv)?:\/\//i.test(location)) return 'mongo';
  if (location === 'memory:' || location === 'memory') return 'memory';
  if (location.startsWith('sqlite:')) return 'sqlite';
  return undefined;
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
  switch (locationBackend(location)) {
    case 'postgres':
      return postgresLocation(location);
    case 'mongo':
      return { type: 'mongo', uri: location };
    case 'memory':
      return { type: 'memory' };
    case 'sqlite': {
      const dbPath = location.slice('sqlite:'.length);
      if (!dbPath)
        throw new ConfigError('sqlite: needs a file path, e.g. sqlite:./data/agents.db', {
          variable: 'location',
        });
      return { type: 'sqlite', dbPath };
    }
    default:
      throw new ConfigError(
        `unknown store location ${JSON.stringify(location)}; use sqlite:<path>, postgres://…, mongodb://… or memory:`,
        { variable: 'location' },
      );
  }
}

/**
 * A `postgres://` location. `?schema=<name>` names the PostgreSQL schema of
 * the store's tables (taken out of the URL the driver sees), so that a store
 * kept in its own schema can be named by one string.
 */
function postgresLocation(location: string): PostgresStoreConfig {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw new ConfigError('the postgres:// location is not a valid URL', { variable: 'location' });
  }
  const schema = url.searchParams.get('schema');
  if (schema === null) return { type: 'postgres', connection: location };
  if (schema === '') throw new ConfigError('?schema= needs a schema name', { variable: 'location' });
  url.searchParams.delete('schema');
  return { type: 'postgres', connection: url.toString(), schema };
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
  switch (config.type) {
    case 'sqlite':
      if (config.dbPath !== undefined && (typeof config.dbPath !== 'string' || config.dbPath === '')) {
        throw new ConfigError('dbPath must be a non-empty string', { variable: 'dbPath' });
      }
      return config;
    case 'postgres':
      if (config.connection === undefined || config.connection === null) {
        throw new ConfigError('type postgres needs `connection` (settings or a postgres:// URL)', {
          variable: 'connection',
        });
      }
      return config;
    case 'mongo':
      if (typeof config.uri !== 'string' || config.uri === '') {
        throw new ConfigError('type mongo needs `uri` (a mongodb:// URI)', { variable: 'uri' });
      }
      return config;
    case 'memory':
      return config;
    default:
      throw new ConfigError(
        `unknown store type ${JSON.stringify((config as { type?: unknown }).type)}; use sqlite, postgres, mongo or memory`,
        { variable: 'type' },
      );
  }
}
