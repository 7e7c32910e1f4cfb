import { ConfigError } from '../errors.js';
import type { KodeStore } from './create-extended-store.js';
import {
  booleanFrom,
  countFrom,
  DEFAULT_FILE_STORE_PATH,
  DEFAULT_SQLITE_PATH,
  type Env,
  eventStorageFrom,
  millisecondsFrom,
  portFrom,
  set,
} from './env.js';
import type {
  ExtendedStoreConfig,
  MemoryStoreConfig,
  MongoStoreConfig,
  PostgresConnectionConfig,
  PostgresStoreConfig,
  SqliteStoreConfig,
} from './store-config.js';

/**
 * Everything the package knows about one backend outside its adapter: how
 * the environment and a location string name it, what an explicit config
 * must hold, and how to open it. The factory (`createExtendedStore`), the
 * command line and their messages read this list; adding a backend is one
 * entry here and one folder under `adapters/`.
 */
export interface BackendEntry<C extends ExtendedStoreConfig = ExtendedStoreConfig> {
  /** The config's `type` and `KODE_STORE_TYPE`'s value. */
  readonly type: C['type'];
  /** Other spellings `KODE_STORE_TYPE` accepts. */
  readonly aliases: readonly string[];
  /** How a location names it, for messages. */
  readonly locationSyntax: string;
  /** True when a location string names this backend (by its scheme). */
  claims(location: string): boolean;
  fromEnv(env: Env): C;
  fromLocation(location: string): C;
  /** Refuses an explicit config missing what the backend needs (`ConfigError` naming the field). */
  check(config: C): void;
  /** The store, imported on demand: an application installs only the driver it uses. */
  open(config: C): Promise<KodeStore>;
}

const POSTGRES_URL = /^postgres(ql)?:\/\//i;
const MONGO_URL = /^mongodb(\+srv)?:\/\//i;

const sqlite: BackendEntry<SqliteStoreConfig> = {
  type: 'sqlite',
  aliases: [],
  locationSyntax: 'sqlite:<path>',
  claims: (location) => location.startsWith('sqlite:'),
  fromEnv: (env) => ({
    type: 'sqlite',
    dbPath: set(env, 'KODE_SQLITE_PATH') ?? DEFAULT_SQLITE_PATH,
    fileStoreBaseDir: set(env, 'KODE_STORE_PATH') ?? DEFAULT_FILE_STORE_PATH,
    eventStorage: eventStorageFrom(env),
  }),
  fromLocation(location) {
    const dbPath = location.slice('sqlite:'.length);
    if (!dbPath) {
      throw new ConfigError('sqlite: needs a file path, e.g. sqlite:./data/agents.db', {
        variable: 'location',
      });
    }
    return { type: 'sqlite', dbPath };
  },
  check(config) {
    if (config.dbPath !== undefined && (typeof config.dbPath !== 'string' || config.dbPath === '')) {
      throw new ConfigError('dbPath must be a non-empty string', { variable: 'dbPath' });
    }
  },
  async open(config) {
    const { SqliteStore } = await import('../../adapters/sqlite/index.js');
    return new SqliteStore({
      path: config.dbPath ?? DEFAULT_SQLITE_PATH,
      fileStoreBaseDir: config.fileStoreBaseDir,
      eventStorage: config.eventStorage,
      readOnly: config.readOnly,
    });
  },
};

const POSTGRES_PARTS = [
  'POSTGRES_HOST',
  'POSTGRES_PORT',
  'POSTGRES_DB',
  'POSTGRES_USER',
  'POSTGRES_PASSWORD',
];

const postgres: BackendEntry<PostgresStoreConfig> = {
  type: 'postgres',
  aliases: ['postgresql'],
  locationSyntax: 'postgres://…',
  claims: (location) => POSTGRES_URL.test(location),
  fromEnv(env) {
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
      if (!POSTGRES_URL.test(url)) {
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
        port: portFrom(env, 'POSTGRES_PORT'),
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
      // Comma-separated postgres:// URLs of hot standbys the query APIs may read.
      replicas: set(env, 'KODE_POSTGRES_REPLICA_URLS')
        ?.split(',')
        .map((url) => url.trim())
        .filter((url) => url !== ''),
      maxReplicaLagMs: millisecondsFrom(env, 'KODE_POSTGRES_MAX_REPLICA_LAG_MS'),
      eventPartitions: countFrom(env, 'KODE_POSTGRES_EVENT_PARTITIONS'),
    };
  },
  /**
   * `?schema=<name>` names the PostgreSQL schema of the store's tables (taken
   * out of the URL the driver sees), so that a store kept in its own schema
   * can be named by one string.
   */
  fromLocation(location) {
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
  },
  check(config) {
    if (config.connection === undefined || config.connection === null) {
      throw new ConfigError('type postgres needs `connection` (settings or a postgres:// URL)', {
        variable: 'connection',
      });
    }
  },
  async open(config) {
    const { PostgresStore } = await import('../../adapters/postgres/index.js');
    return new PostgresStore({
      connection: config.connection,
      schema: config.schema,
      preparedStatements: config.preparedStatements,
      fileStoreBaseDir: config.fileStoreBaseDir,
      eventStorage: config.eventStorage,
      connectTimeoutMs: config.connectTimeoutMs,
      statementTimeoutMs: config.statementTimeoutMs,
      lockTimeoutMs: config.lockTimeoutMs,
      readOnly: config.readOnly,
      replicas: config.replicas,
      maxReplicaLagMs: config.maxReplicaLagMs,
      eventPartitions: config.eventPartitions,
    });
  },
};

const mongo: BackendEntry<MongoStoreConfig> = {
  type: 'mongo',
  aliases: ['mongodb'],
  locationSyntax: 'mongodb://…',
  claims: (location) => MONGO_URL.test(location),
  fromEnv(env) {
    const uri = set(env, 'MONGODB_URI');
    if (!uri) throw new ConfigError('KODE_STORE_TYPE=mongo needs MONGODB_URI', { variable: 'MONGODB_URI' });
    if (!MONGO_URL.test(uri)) {
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
  },
  fromLocation: (location) => ({ type: 'mongo', uri: location }),
  check(config) {
    if (typeof config.uri !== 'string' || config.uri === '') {
      throw new ConfigError('type mongo needs `uri` (a mongodb:// URI)', { variable: 'uri' });
    }
  },
  async open(config) {
    const { MongoStore } = await import('../../adapters/mongo/index.js');
    return new MongoStore({
      uri: config.uri,
      dbName: config.dbName,
      fileStoreBaseDir: config.fileStoreBaseDir,
      eventStorage: config.eventStorage,
      connectTimeoutMs: config.connectTimeoutMs,
      operationTimeoutMs: config.operationTimeoutMs,
      lockWaitTimeoutMs: config.lockWaitTimeoutMs,
      readOnly: config.readOnly,
    });
  },
};

const memory: BackendEntry<MemoryStoreConfig> = {
  type: 'memory',
  aliases: [],
  locationSyntax: 'memory:',
  claims: (location) => location === 'memory:' || location === 'memory',
  fromEnv: () => ({ type: 'memory' }),
  fromLocation: () => ({ type: 'memory' }),
  check: () => {},
  async open(config) {
    if (config.readOnly) {
      throw new ConfigError('memory: a new in-memory store holds no data to read (readOnly)', {
        variable: 'readOnly',
      });
    }
    const { MemoryStore } = await import('../agent/memory-store.js');
    return new MemoryStore();
  },
};

/**
 * Every backend, in the order messages list them. Each entry reads and opens
 * only its own config type; the list is read through the common shape.
 */
export const BACKENDS = [sqlite, postgres, mongo, memory] as unknown as readonly BackendEntry[];

/** The entry of a config `type`, or undefined for an unknown one. */
export function backendOfType(type: unknown): BackendEntry | undefined {
  return BACKENDS.find((backend) => backend.type === type);
}
