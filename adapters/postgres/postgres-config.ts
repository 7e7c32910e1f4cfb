import type {
  PostgresConnectionConfig as SeedConnectionConfig,
  EventStorage as StoreEventStorage,
} from '../../src/config/store-config.js';
import { ConfigError } from '../../src/errors.js';
import type { PostgresBounds } from './postgres-errors.js';
import { DEFAULT_MAX_REPLICA_LAG_MS } from './postgres-replicas.js';

/**
 * Options of `PostgresStore`, and the few parts of the `pg` driver the store
 * uses, declared structurally so that `pg` stays an optional peer dependency:
 * an application that never opens a PostgreSQL store does not need it
 * installed, and one that does shares its single copy with the SDK.
 */

const BACKEND = 'postgres';

/** Where events are kept: rows in PostgreSQL (default), or append-only files under `fileStoreBaseDir`. */
export type PostgresEventStorageMode = StoreEventStorage;

/**
 * Connection settings as in seed 004 (`host`, `port`, `database`, `user`,
 * `password`, `ssl`, and the pool options `max`, `idleTimeoutMillis`,
 * `connectionTimeoutMillis`), plus a connection string and the
 * `application_name` the server shows for the store's connections.
 *
 * @example
 * new PostgresStore({ host: 'localhost', port: 5432, database: 'kode_agents', user: 'kode', password }, './data/store');
 */
export interface PostgresConnectionConfig extends SeedConnectionConfig {
  /** A `postgres://` URL; fields given next to it override its parts. */
  connectionString?: string;
  /** Shown in `pg_stat_activity.application_name` (default `kode-store`). */
  applicationName?: string;
}

/**
 * Options of `new PostgresStore(options)`. Give either `connection` (the
 * store opens and ends its own pool) or `pool` (an existing `pg.Pool`,
 * which the store uses but never ends).
 *
 * @example
 * const store = new PostgresStore({
 *   connection: process.env.DATABASE_URL,
 *   schema: 'kode',
 *   eventStorage: 'file',
 *   fileStoreBaseDir: './data/store',
 * });
 */
export interface PostgresStoreOptions {
  /** Connection settings, or a `postgres://` URL. */
  connection?: PostgresConnectionConfig | string;
  /** A pool to use instead of opening one; `close()` leaves it open. */
  pool?: PostgresPool;
  /**
   * The PostgreSQL schema holding the store's tables (default `public`),
   * created if missing. Any name is allowed (it is always quoted); stores
   * with different schemas on one database never see each other's data.
   */
  schema?: string;
  /** Base directory of the event files (required when `eventStorage` is `'file'`). */
  fileStoreBaseDir?: string;
  /** `'database'` (default) or `'file'` (hybrid mode, SPEC §4). */
  eventStorage?: PostgresEventStorageMode;
  /**
   * How long a held agent lock survives without renewal (default 15000 ms).
   * A holder renews it every third of this time; a holder that dies frees
   * its locks within this time.
   */
  lockLeaseMs?: number;
  /** In hybrid mode, fsync event files before an append resolves (default true). */
  fsync?: boolean;
  /**
   * Run the store's fixed statements (saves, loads, appends, reads) as named
   * prepared statements, parsed and planned once per connection instead of
   * on every call (default true). Set `false` behind a connection pooler in
   * transaction mode that does not support them (PgBouncer before 1.21).
   */
  preparedStatements?: boolean;
  /**
   * Read an existing store without changing anything (default false): no
   * schema, table or index is created or migrated, and every write rejects
   * with an `UnsupportedError`. A schema without a kode-store is refused with
   * a `ConfigError` (a mistyped `schema` never passes for an empty store), one
   * older than this code with an `UnsupportedError` (open it once without
   * `readOnly` to upgrade it).
   * @example
   * ```ts
   * const store = new PostgresStore({ connection: process.env.DATABASE_URL, schema: 'kode', readOnly: true });
   * ```
   */
  readOnly?: boolean;
  /**
   * How long to wait for a connection (to open one, or for a free one when
   * the pool is full), default 10 000 ms: `connection.connectionTimeoutMillis`
   * under its own name (give one of the two). Past it a call fails with
   * `TimeoutError`; a server that refuses connections fails at once with
   * `ConnectionError`.
   * @example
   * ```ts
   * new PostgresStore({ connection: process.env.DATABASE_URL, connectTimeoutMs: 5_000 });
   * ```
   */
  connectTimeoutMs?: number;
  /**
   * How long one statement may run, default 30 000 ms. The server cancels it
   * then (`statement_timeout`), and a server that does not answer at all is
   * given up on half a second later, so a stopped server fails the call with
   * `TimeoutError` instead of holding it. As with any lost reply, a write
   * that timed out may or may not have taken effect.
   */
  statementTimeoutMs?: number;
  /**
   * How long one statement may wait for a row or advisory lock another
   * session holds (`lock_timeout`), default 30 000 ms; then `TimeoutError`.
   * The wait is part of the statement, so `statementTimeoutMs` bounds it too.
   * Agent locks (`acquireAgentLock`) take their own `timeoutMs`.
   */
  lockTimeoutMs?: number;
  /**
   * Read replicas: hot standbys of the primary, as connection settings or
   * `postgres://` URLs (the store opens and ends their pools, with the same
   * bounds as the primary's). `querySessions`, `queryMessages`,
   * `queryToolCalls`, `aggregateStats` and the KV API's `query` and
   * `getRecordCount` may read there; everything else, and every read that
   * must see the store's own writes (loads, `exists`, `list`, `readEvents`),
   * stays on the primary. A replica that is down, or behind by more than
   * `maxReplicaLagMs`, is skipped, and its reads go to the primary.
   * @example
   * ```ts
   * new PostgresStore({ connection: process.env.DATABASE_URL, replicas: [process.env.REPLICA_URL] });
   * ```
   */
  replicas?: Array<PostgresConnectionConfig | string>;
  /**
   * How stale a replica's answers may be, default 5 000 ms: a replica is
   * used only while it is known to hold every write the primary had
   * committed at most this long ago (checked by WAL position, a quarter of
   * this often but at least once a second, while reads come).
   */
  maxReplicaLagMs?: number;
  /**
   * Keep events in a table partitioned by hash of the agent id, in this many
   * partitions (`kode_events_p0` ...), so that one agent's append and read
   * touch one partition's indexes however many events the store holds, and
   * each partition can be vacuumed on its own. `0`: one plain table. The
   * layout is chosen when the schema is created; a store given this option
   * refuses, with a `ConfigError` naming both, a schema whose events table is
   * laid out otherwise (it never mixes layouts or re-partitions on its own).
   * Not given: the store uses whichever layout the schema has, and creates a
   * plain table. Env `KODE_POSTGRES_EVENT_PARTITIONS`.
   * @example
   * ```ts
   * new PostgresStore({ connection: process.env.DATABASE_URL, schema: 'kode', eventPartitions: 16 });
   * ```
   */
  eventPartitions?: number;
}

/** A type parser table for one query (`pg`'s `CustomTypesConfig`). */
export interface PostgresTypeParsers {
  getTypeParser(oid: number, format?: string): (value: string) => unknown;
}

/** What the store hands to `query()`: parameters are always bound, never spliced into the text. */
export interface PostgresQueryConfig {
  /** Set for a named prepared statement (see `PostgresStoreOptions.preparedStatements`). */
  name?: string;
  text: string;
  values?: unknown[];
  types?: PostgresTypeParsers;
}

/** The part of a `pg` query result the store reads. */
export interface PostgresQueryResult<R> {
  rows: R[];
  rowCount: number | null;
}

/** The subset of `pg.PoolClient` the store uses (transactions run on one client). */
export interface PostgresPoolClient {
  query<R = Record<string, unknown>>(config: PostgresQueryConfig): Promise<PostgresQueryResult<R>>;
  release(error?: Error | boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/** What pg-pool reports about its clients (`'connect'` for a new one, `'acquire'` for each checkout). */
export interface PostgresPoolClientEvents {
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * The subset of `pg.Pool` the store uses. A `pg.Pool` satisfies it.
 * https://node-postgres.com/apis/pool
 */
export interface PostgresPool {
  connect(): Promise<PostgresPoolClient>;
  query<R = Record<string, unknown>>(config: PostgresQueryConfig): Promise<PostgresQueryResult<R>>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error, client?: unknown) => void): unknown;
  on(event: 'connect' | 'acquire', listener: (client: PostgresPoolClientEvents) => void): unknown;
  removeListener(event: 'error', listener: (error: Error, client?: unknown) => void): unknown;
  removeListener(event: 'connect' | 'acquire', listener: (client: PostgresPoolClientEvents) => void): unknown;
}

/** The options the store passes to `new pg.Pool(...)`. */
export interface PgPoolConfig {
  connectionString?: string;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  ssl?: unknown;
  max?: number;
  idleTimeoutMillis?: number;
  connectionTimeoutMillis?: number;
  application_name?: string;
  /** Server-side bound of each statement (ms). */
  statement_timeout?: number;
  /** Server-side bound of each lock wait (ms). */
  lock_timeout?: number;
  /** Client-side bound on a statement's answer (ms): what ends the wait on a server that stopped. */
  query_timeout?: number;
}

/**
 * A `pg.Query` that hands its rows over one by one (`'row'` events, each row
 * an array of column values) as they arrive: what
 * `PostgresConnection.eachRow` submits to a pool client. It ends through
 * its callback (success or error): `pg` routes errors to the callback
 * whenever there is one, and gives every query one when `query_timeout` is
 * set.
 */
export interface PgRowQuery {
  on(event: 'row', listener: (row: unknown[], result: { rows: unknown[] }) => void): unknown;
}

/** The part of the `pg` module the store needs. */
export interface PgModule {
  Pool: new (config: PgPoolConfig) => PostgresPool;
  Query: new (
    config: PostgresQueryConfig & { rowMode: 'array'; callback: (error: Error | null) => void },
  ) => PgRowQuery;
}

/** Settings after defaults and validation; what the rest of the adapter works from. */
export interface ResolvedPostgresSettings {
  /** Pool settings when the store opens its own pool. */
  poolConfig?: PgPoolConfig;
  /** An injected pool (never ended by the store). */
  pool?: PostgresPool;
  schema: string;
  eventStorage: PostgresEventStorageMode;
  fileStoreBaseDir?: string;
  lockLeaseMs: number;
  fsync: boolean;
  preparedStatements: boolean;
  readOnly: boolean;
  /** The bounds in effect, named by `TimeoutError`s. */
  bounds: PostgresBounds;
  /** Pool settings of the read replicas (none: every read on the primary). */
  replicaPoolConfigs: PgPoolConfig[];
  maxReplicaLagMs: number;
  /** Hash partitions of the events table (0: plain); undefined: whichever layout the schema has. */
  eventPartitions?: number;
}

/** The most hash partitions `eventPartitions` may ask for. */
export const MAX_EVENT_PARTITIONS = 1024;

export const DEFAULT_APPLICATION_NAME = 'kode-store';
export const DEFAULT_LOCK_LEASE_MS = 15_000;
/** pg waits forever for a connection by default; a store must fail instead (SPEC §3: unreachable server → typed error). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
/**
 * How long the client waits for an answer: longer than `statement_timeout`,
 * so that a live server cancels the statement first and the connection
 * stays usable; only a server that does not answer at all runs into the
 * client's bound (and its connection is discarded). The margin is a tenth
 * of the bound and at least a second: the server's cancel still has to
 * reach a process whose event loop a loaded machine may hold up (a 500 ms
 * margin lost that race under load in the timeout tests).
 */
export function clientTimeoutMs(statementTimeoutMs: number): number {
  return statementTimeoutMs + Math.max(1_000, Math.ceil(statementTimeoutMs / 10));
}
/** PostgreSQL truncates identifiers longer than this many bytes (NAMEDATALEN - 1). */
const MAX_IDENTIFIER_BYTES = 63;

const OPTION_KEYS = new Set([
  'connection',
  'pool',
  'schema',
  'fileStoreBaseDir',
  'eventStorage',
  'lockLeaseMs',
  'fsync',
  'preparedStatements',
  'readOnly',
  'connectTimeoutMs',
  'statementTimeoutMs',
  'lockTimeoutMs',
  'replicas',
  'maxReplicaLagMs',
  'eventPartitions',
]);
const CONNECTION_KEYS = new Set([
  'host',
  'port',
  'database',
  'user',
  'password',
  'ssl',
  'max',
  'idleTimeoutMillis',
  'connectionTimeoutMillis',
  'connectionString',
  'applicationName',
]);

function fail(message: string, variable: string): never {
  throw new ConfigError(message, { backend: BACKEND, operation: 'configure', variable });
}

/**
 * Tells the two constructor forms apart by their keys: an options object
 * names `connection` or `pool`; a seed-style connection config names
 * `host`, `database`, `user`... An object naming both kinds is refused
 * rather than guessed at.
 */
function isOptionsObject(value: object): boolean {
  const keys = Object.keys(value);
  const option = keys.filter((k) => OPTION_KEYS.has(k) && !CONNECTION_KEYS.has(k));
  const connection = keys.filter((k) => CONNECTION_KEYS.has(k));
  if (option.length > 0 && connection.length > 0) {
    fail(
      `PostgresStore got both store options (${option.join(', ')}) and connection fields (${connection.join(', ')}) in one object; put the connection fields under \`connection\``,
      connection[0] as string,
    );
  }
  return option.length > 0;
}

/** Double-quotes an identifier, doubling embedded quotes, as PostgreSQL's own `quote_ident` does. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The schema option, checked: a name PostgreSQL keeps as given. Throws `ConfigError`. */
export function validateSchema(schema: unknown): string {
  if (schema === undefined) return 'public';
  if (typeof schema !== 'string' || schema.length === 0) fail('schema must be a non-empty string', 'schema');
  if (schema.includes('\u0000') || !schema.isWellFormed()) {
    fail('schema must not contain NUL or lone surrogates', 'schema');
  }
  if (Buffer.byteLength(schema, 'utf8') > MAX_IDENTIFIER_BYTES) {
    // PostgreSQL would silently truncate it, and two long names could then meet in one schema.
    fail(`schema must be at most ${MAX_IDENTIFIER_BYTES} bytes long`, 'schema');
  }
  return schema;
}

/** Pool settings from connection settings or a URL; `name` is how errors call the option (`connection`, `replicas[0]`). */
function connectionToPoolConfig(
  connection: unknown,
  bounds: PostgresBounds,
  name = 'connection',
): PgPoolConfig {
  const variable = name === 'connection' ? name : 'replicas';
  const timeouts = {
    connectionTimeoutMillis: bounds.connectTimeoutMs,
    statement_timeout: bounds.statementTimeoutMs,
    lock_timeout: bounds.lockTimeoutMs,
    query_timeout: clientTimeoutMs(bounds.statementTimeoutMs),
  };
  if (typeof connection === 'string') {
    if (!/^postgres(ql)?:\/\//i.test(connection)) {
      fail(`${name} must be a postgres:// or postgresql:// URL`, variable);
    }
    return { connectionString: connection, application_name: DEFAULT_APPLICATION_NAME, ...timeouts };
  }
  if (typeof connection !== 'object' || connection === null || Array.isArray(connection)) {
    fail(`${name} must be a connection config object or a postgres:// URL`, variable);
  }
  const { applicationName, ...rest } = connection as PostgresConnectionConfig;
  for (const key of ['max', 'idleTimeoutMillis', 'connectionTimeoutMillis', 'port'] as const) {
    const value = rest[key];
    if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 0)) {
      fail(`${name}.${key} must be a non-negative integer`, name === 'connection' ? key : variable);
    }
  }
  if (rest.max === 0) fail(`${name}.max must be at least 1`, name === 'connection' ? 'max' : variable);
  return { ...rest, application_name: applicationName ?? DEFAULT_APPLICATION_NAME, ...timeouts };
}

type TimeoutOption = 'connectTimeoutMs' | 'statementTimeoutMs' | 'lockTimeoutMs' | 'maxReplicaLagMs';

function timeoutOption(options: PostgresStoreOptions, name: TimeoutOption): number | undefined {
  const value = options[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    fail(`${name} must be a whole number of milliseconds >= 1`, name);
  }
  return value;
}

/**
 * The bounds of a pool the store opens: the options, `connectionTimeoutMillis`
 * as the connect bound under its seed name, then the defaults.
 */
function ownPoolBounds(options: PostgresStoreOptions): PostgresBounds {
  const connectTimeoutMs = timeoutOption(options, 'connectTimeoutMs');
  const connection = options.connection;
  const seedName =
    typeof connection === 'object' && connection !== null ? connection.connectionTimeoutMillis : undefined;
  if (connectTimeoutMs !== undefined && seedName !== undefined && seedName !== connectTimeoutMs) {
    fail(
      'connectTimeoutMs and connection.connectionTimeoutMillis are the same bound; give one of them',
      'connectTimeoutMs',
    );
  }
  return {
    connectTimeoutMs: connectTimeoutMs ?? seedName ?? DEFAULT_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: timeoutOption(options, 'statementTimeoutMs') ?? DEFAULT_STATEMENT_TIMEOUT_MS,
    lockTimeoutMs: timeoutOption(options, 'lockTimeoutMs') ?? DEFAULT_LOCK_TIMEOUT_MS,
  };
}

/**
 * The bounds of a pool handed in, read from its settings for error messages
 * (0: not set). The store never changes another pool's sessions.
 */
export function injectedPoolBounds(pool: unknown): PostgresBounds {
  const settings = (pool as { options?: Record<string, unknown> } | null)?.options ?? {};
  const number = (value: unknown) => (typeof value === 'number' && value > 0 ? value : 0);
  return {
    connectTimeoutMs: number(settings.connectionTimeoutMillis),
    statementTimeoutMs: number(settings.statement_timeout) || number(settings.query_timeout),
    lockTimeoutMs: number(settings.lock_timeout),
    fromPool: true,
  };
}

/** Resolves either constructor form into validated settings. Throws `ConfigError`. */
export function resolvePostgresSettings(
  first: PostgresStoreOptions | PostgresConnectionConfig | string,
  fileStoreBaseDir?: string,
): ResolvedPostgresSettings {
  let options: PostgresStoreOptions;
  if (typeof first === 'string') {
    options = { connection: first, fileStoreBaseDir };
  } else if (typeof first !== 'object' || first === null || Array.isArray(first)) {
    fail('PostgresStore needs connection settings, a postgres:// URL or an options object', 'connection');
  } else if (isOptionsObject(first)) {
    options = { ...(first as PostgresStoreOptions) };
    if (fileStoreBaseDir !== undefined) {
      if (options.fileStoreBaseDir !== undefined && options.fileStoreBaseDir !== fileStoreBaseDir) {
        fail('fileStoreBaseDir was given twice with different values', 'fileStoreBaseDir');
      }
      options.fileStoreBaseDir = fileStoreBaseDir;
    }
  } else {
    options = { connection: first as PostgresConnectionConfig, fileStoreBaseDir };
  }

  if (options.pool !== undefined && options.connection !== undefined) {
    fail('give either `pool` or `connection`, not both', 'pool');
  }
  if (options.pool === undefined && options.connection === undefined) {
    fail('PostgresStore needs `connection` (settings or URL) or `pool`', 'connection');
  }
  if (options.pool !== undefined) {
    const pool = options.pool as Partial<PostgresPool> | null;
    if (typeof pool?.connect !== 'function' || typeof pool.query !== 'function') {
      fail('pool must be a pg.Pool (it needs connect() and query())', 'pool');
    }
  }

  const eventStorage = options.eventStorage ?? 'database';
  if (eventStorage !== 'database' && eventStorage !== 'file') {
    fail(`eventStorage must be 'database' or 'file', got ${JSON.stringify(eventStorage)}`, 'eventStorage');
  }
  if (options.fileStoreBaseDir !== undefined && typeof options.fileStoreBaseDir !== 'string') {
    fail('fileStoreBaseDir must be a string', 'fileStoreBaseDir');
  }
  if (eventStorage === 'file' && !options.fileStoreBaseDir) {
    fail("eventStorage 'file' needs fileStoreBaseDir", 'fileStoreBaseDir');
  }
  if (options.preparedStatements !== undefined && typeof options.preparedStatements !== 'boolean') {
    fail('preparedStatements must be true or false', 'preparedStatements');
  }
  if (options.readOnly !== undefined && typeof options.readOnly !== 'boolean') {
    fail('readOnly must be true or false', 'readOnly');
  }
  const eventPartitions = options.eventPartitions;
  if (
    eventPartitions !== undefined &&
    (typeof eventPartitions !== 'number' ||
      !Number.isInteger(eventPartitions) ||
      eventPartitions < 0 ||
      eventPartitions > MAX_EVENT_PARTITIONS)
  ) {
    fail(
      `eventPartitions must be a whole number from 0 (one plain table) to ${MAX_EVENT_PARTITIONS}, got ${JSON.stringify(eventPartitions)}`,
      'eventPartitions',
    );
  }
  const lockLeaseMs = options.lockLeaseMs ?? DEFAULT_LOCK_LEASE_MS;
  if (typeof lockLeaseMs !== 'number' || !Number.isFinite(lockLeaseMs) || lockLeaseMs < 100) {
    fail('lockLeaseMs must be a number of milliseconds, at least 100', 'lockLeaseMs');
  }

  if (options.pool !== undefined) {
    const given = (['connectTimeoutMs', 'statementTimeoutMs', 'lockTimeoutMs'] as const).filter(
      (name) => options[name] !== undefined,
    );
    if (given.length > 0) {
      // Setting them would change the sessions of a pool the application owns.
      fail(
        `${given.join(', ')} apply to a pool the store opens; on a pool you pass, set connectionTimeoutMillis, statement_timeout, lock_timeout and query_timeout yourself`,
        given[0] as string,
      );
    }
  }
  const bounds = options.pool === undefined ? ownPoolBounds(options) : injectedPoolBounds(options.pool);
  if (options.replicas !== undefined && !Array.isArray(options.replicas)) {
    fail('replicas must be an array of connection settings or postgres:// URLs', 'replicas');
  }
  // Replica pools are the store's own: with a pool handed in, they take the default bounds.
  const replicaBounds = options.pool === undefined ? bounds : ownPoolBounds(options);
  const replicaPoolConfigs = (options.replicas ?? []).map((replica, i) =>
    connectionToPoolConfig(replica, replicaBounds, `replicas[${i}]`),
  );
  return {
    replicaPoolConfigs,
    maxReplicaLagMs: timeoutOption(options, 'maxReplicaLagMs') ?? DEFAULT_MAX_REPLICA_LAG_MS,
    poolConfig:
      options.connection === undefined ? undefined : connectionToPoolConfig(options.connection, bounds),
    bounds,
    pool: options.pool,
    schema: validateSchema(options.schema),
    eventStorage,
    fileStoreBaseDir: options.fileStoreBaseDir,
    lockLeaseMs,
    fsync: options.fsync ?? true,
    preparedStatements: options.preparedStatements ?? true,
    readOnly: options.readOnly ?? false,
    ...(eventPartitions === undefined ? {} : { eventPartitions }),
  };
}

function isModuleNotFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/**
 * Loads `pg` on first use. A missing driver is a `ConfigError` saying how to
 * install it, not a bare module-resolution failure.
 */
export async function loadPgDriver(): Promise<PgModule> {
  let loaded: { default?: PgModule } & Partial<PgModule>;
  try {
    loaded = (await import('pg')) as { default?: PgModule } & Partial<PgModule>;
  } catch (error) {
    if (isModuleNotFound(error)) {
      throw new ConfigError(
        'the PostgreSQL driver `pg` is not installed; run `npm install pg` (it is an optional peer dependency of kode-store)',
        { backend: BACKEND, operation: 'connect', variable: 'pg', cause: error },
      );
    }
    throw error;
  }
  // pg is CommonJS: its exports arrive as `default` under ESM and flat under CJS.
  const driver = loaded.Pool ? (loaded as PgModule) : loaded.default;
  if (!driver || typeof driver.Pool !== 'function') {
    throw new ConfigError('the installed `pg` module has no Pool export', {
      backend: BACKEND,
      operation: 'connect',
      variable: 'pg',
    });
  }
  return driver;
}
