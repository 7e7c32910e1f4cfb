import type { EventStorage } from '../../src/config/store-config.js';
import { ConfigError } from '../../src/errors.js';

/**
 * Options of `MongoStore`, and the few shapes of the official `mongodb`
 * driver the store relies on, declared structurally so that the driver stays
 * an optional peer dependency: an application that never uses MongoDB never
 * installs it, and one that does shares its single copy with the SDK.
 */

/** A MongoDB document as the store reads and writes it. */
export type MongoDocument = Record<string, unknown>;

/** The options the store passes to driver calls (sessions, sort, projection, ...). */
export type MongoOptions = Record<string, unknown>;

/** The cursor returned by `Collection.find` (the driver's `FindCursor`). */
export interface MongoFindCursor {
  sort(sort: Record<string, 1 | -1>): MongoFindCursor;
  skip(value: number): MongoFindCursor;
  limit(value: number): MongoFindCursor;
  batchSize(value: number): MongoFindCursor;
  project(projection: MongoDocument): MongoFindCursor;
  toArray(): Promise<MongoDocument[]>;
  close(): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterator<MongoDocument>;
}

/** The cursor returned by `Collection.aggregate`. */
export interface MongoAggregationCursor {
  toArray(): Promise<MongoDocument[]>;
}

/** The part of the driver's `Collection` the store uses. */
export interface MongoCollection {
  readonly collectionName: string;
  find(filter: MongoDocument, options?: MongoOptions): MongoFindCursor;
  findOne(filter: MongoDocument, options?: MongoOptions): Promise<MongoDocument | null>;
  findOneAndUpdate(
    filter: MongoDocument,
    update: MongoDocument | MongoDocument[],
    options: MongoOptions,
  ): Promise<MongoDocument | null>;
  updateOne(
    filter: MongoDocument,
    update: MongoDocument | MongoDocument[],
    options?: MongoOptions,
  ): Promise<{ matchedCount: number; upsertedCount: number }>;
  updateMany(
    filter: MongoDocument,
    update: MongoDocument | MongoDocument[],
    options?: MongoOptions,
  ): Promise<{ matchedCount: number; modifiedCount: number }>;
  replaceOne(
    filter: MongoDocument,
    replacement: MongoDocument,
    options?: MongoOptions,
  ): Promise<{ matchedCount: number; upsertedCount: number }>;
  insertMany(documents: readonly MongoDocument[], options?: MongoOptions): Promise<{ insertedCount: number }>;
  insertOne(document: MongoDocument, options?: MongoOptions): Promise<unknown>;
  bulkWrite(operations: readonly MongoDocument[], options?: MongoOptions): Promise<MongoBulkWriteResult>;
  deleteMany(filter: MongoDocument, options?: MongoOptions): Promise<{ deletedCount: number }>;
  deleteOne(filter: MongoDocument, options?: MongoOptions): Promise<{ deletedCount: number }>;
  countDocuments(filter: MongoDocument, options?: MongoOptions): Promise<number>;
  estimatedDocumentCount(options?: MongoOptions): Promise<number>;
  aggregate(pipeline: MongoDocument[], options?: MongoOptions): MongoAggregationCursor;
  createIndexes(specs: MongoIndexDescription[], options?: MongoOptions): Promise<string[]>;
}

/** What the store reads of a bulk write's result. */
export interface MongoBulkWriteResult {
  insertedCount: number;
  matchedCount: number;
  deletedCount: number;
  upsertedCount: number;
}

/** One index for `createIndexes`. */
export interface MongoIndexDescription {
  key: Record<string, 1 | -1>;
  name?: string;
  unique?: boolean;
  expireAfterSeconds?: number;
}

/** The part of the driver's `Db` the store uses. */
export interface MongoDatabase {
  readonly databaseName: string;
  collection(name: string): MongoCollection;
  command(command: MongoDocument, options?: MongoOptions): Promise<MongoDocument>;
  createCollection(name: string, options?: MongoOptions): Promise<unknown>;
  dropDatabase(options?: MongoOptions): Promise<boolean>;
}

/** The part of the driver's `ClientSession` the store uses. */
export interface MongoSession {
  withTransaction<T>(body: () => Promise<T>, options?: MongoOptions): Promise<T>;
  endSession(): Promise<void>;
}

/**
 * The part of the driver's `MongoClient` the store uses. A real `MongoClient`
 * (driver v6 or later) satisfies it.
 */
export interface MongoClientLike {
  connect(): Promise<unknown>;
  db(name?: string): MongoDatabase;
  startSession(options?: MongoOptions): MongoSession;
  close(force?: boolean): Promise<void>;
}

/** Where the event stream of each agent lives. */
export type EventStorageMode = EventStorage;

/**
 * Options of `new MongoStore(options)`.
 *
 * @example
 * ```ts
 * const store = new MongoStore({ uri: 'mongodb://localhost:27017/?replicaSet=rs0', dbName: 'agents' });
 * // or share an application's client (the store never closes it):
 * const store = new MongoStore({ client, dbName: 'agents' });
 * ```
 */
export interface MongoStoreOptions {
  /**
   * A MongoDB connection string. Timeouts, TLS, credentials and the write
   * concern go here as usual (`?serverSelectionTimeoutMS=5000&w=majority`).
   * One of `uri` and `client` is required.
   */
  uri?: string;
  /**
   * A `MongoClient` the application already made. The store uses it as it
   * is and never closes it; `close()` only stops using it.
   */
  client?: MongoClientLike;
  /** The database. Defaults to the one named in `uri`, else `kode`. */
  dbName?: string;
  /**
   * Prefix of every collection the store creates, so that several stores (or
   * other applications) can share one database. Default `kode_`.
   */
  collectionPrefix?: string;
  /**
   * Where the event stream lives: `database` (default) or `file`, the hybrid
   * mode, with append-only files under `fileStoreBaseDir`.
   */
  eventStorage?: EventStorageMode;
  /** Base directory of the event files; required when `eventStorage` is `file`. */
  fileStoreBaseDir?: string;
  /**
   * How long an agent lock outlives its holder if the holder dies without
   * releasing it (the lease is renewed every third of this while held).
   * Default 10 000 ms.
   */
  lockLeaseMs?: number;
  /**
   * `true` refuses to run without multi-document transactions: on a
   * standalone server every operation then fails with `UnsupportedError`
   * instead of falling back to the ordered, clean-up-on-failure writes
   * described in the README. Default `false`.
   */
  requireTransactions?: boolean;
  /**
   * Extra options for the `MongoClient` the store creates from `uri`. The
   * driver's `serverSelectionTimeoutMS`, `connectTimeoutMS` and
   * `socketTimeoutMS` set here or in `uri` are used as they are unless the
   * matching bound below is given.
   */
  clientOptions?: MongoOptions;
  /**
   * How long to wait for a server to connect to and answer its handshake
   * (the driver's `serverSelectionTimeoutMS` and `connectTimeoutMS`), default
   * 10 000 ms. A server that does not answer in time fails the operation
   * with `TimeoutError`; one that refuses connections with `ConnectionError`.
   */
  connectTimeoutMs?: number;
  /**
   * How long one request may wait for the server's reply (the driver's
   * `socketTimeoutMS`), default 30 000 ms: a server that stops answering
   * fails the operation with `TimeoutError` instead of holding it. As with
   * any lost reply, the operation may or may not have taken effect.
   */
  operationTimeoutMs?: number;
  /**
   * How long a KV operation waits for another process's multi-record write
   * on the same instance (without transactions) before `TimeoutError`,
   * default 30 000 ms. Agent locks take their own `timeoutMs`.
   */
  lockWaitTimeoutMs?: number;
  /**
   * Read an existing store without changing anything (default false): no
   * collection or index is created, no migration runs, and every write
   * rejects with an `UnsupportedError`. A database without a kode-store is
   * refused with a `ConfigError` (a mistyped `dbName` never passes for an
   * empty store), one older than this code with an `UnsupportedError` (open
   * it once without `readOnly` to upgrade it).
   * @example
   * ```ts
   * const store = new MongoStore({ uri: process.env.MONGODB_URI, readOnly: true });
   * ```
   */
  readOnly?: boolean;
}

/** The options after validation and defaults. */
export interface ResolvedMongoStoreOptions {
  uri?: string;
  client?: MongoClientLike;
  dbName: string;
  collectionPrefix: string;
  eventStorage: EventStorageMode;
  fileStoreBaseDir?: string;
  lockLeaseMs: number;
  requireTransactions: boolean;
  /** With the driver's timeouts filled in from the bounds (unless `uri` or `clientOptions` set them). */
  clientOptions: MongoOptions;
  /** The bounds in effect, for error messages (the driver's own settings where those decide). */
  connectTimeoutMs: number;
  operationTimeoutMs: number;
  lockWaitTimeoutMs: number;
  readOnly: boolean;
}

export const DEFAULT_DATABASE_NAME = 'kode';
export const DEFAULT_COLLECTION_PREFIX = 'kode_';
export const DEFAULT_LOCK_LEASE_MS = 10_000;
const MIN_LOCK_LEASE_MS = 100;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_OPERATION_TIMEOUT_MS = 30_000;
export const DEFAULT_LOCK_WAIT_TIMEOUT_MS = 30_000;

type TimeoutOption = 'connectTimeoutMs' | 'operationTimeoutMs' | 'lockWaitTimeoutMs';

const TIMEOUT_DEFAULTS: Record<TimeoutOption, number> = {
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  operationTimeoutMs: DEFAULT_OPERATION_TIMEOUT_MS,
  lockWaitTimeoutMs: DEFAULT_LOCK_WAIT_TIMEOUT_MS,
};

/** The driver settings each bound becomes. */
const DRIVER_TIMEOUTS = [
  ['serverSelectionTimeoutMS', 'connectTimeoutMs'],
  ['connectTimeoutMS', 'connectTimeoutMs'],
  ['socketTimeoutMS', 'operationTimeoutMs'],
] as const;

/** A numeric option of a connection string's query (names are case-insensitive), or undefined. */
export function uriNumberOption(uri: string | undefined, name: string): number | undefined {
  const query = uri?.split('?')[1]?.split('#')[0];
  if (!query) return undefined;
  for (const pair of query.split('&')) {
    const [key, value] = pair.split('=');
    if (key?.toLowerCase() === name.toLowerCase() && value !== undefined && /^\d+$/.test(value)) {
      return Number(value);
    }
  }
  return undefined;
}

/**
 * Fills the driver's timeouts from the bounds: a bound given as an option
 * wins; otherwise a driver setting already in `clientOptions` or `uri` stays,
 * and the default fills what is left. Returns the client options and the
 * bounds in effect.
 */
function resolveTimeouts(
  given: Partial<Record<TimeoutOption, number>>,
  uri: string | undefined,
  clientOptions: MongoOptions,
): { clientOptions: MongoOptions } & Record<TimeoutOption, number> {
  const resolved = { ...clientOptions };
  const effective = { ...TIMEOUT_DEFAULTS, ...given };
  for (const [driver, bound] of DRIVER_TIMEOUTS) {
    const preset =
      typeof resolved[driver] === 'number' ? (resolved[driver] as number) : uriNumberOption(uri, driver);
    if (given[bound] !== undefined || preset === undefined) resolved[driver] = effective[bound];
    else if (driver !== 'connectTimeoutMS') effective[bound] = preset;
  }
  return { clientOptions: resolved, ...effective };
}

const BACKEND = 'mongo';

/**
 * The database named in a connection string (`mongodb://host/<db>?...`), or
 * `undefined` when it names none. Hosts never contain `/`, so the path starts
 * at the first `/` after the scheme.
 */
export function databaseNameFromUri(uri: string): string | undefined {
  const scheme = /^mongodb(\+srv)?:\/\//i.exec(uri);
  if (!scheme) return undefined;
  const rest = uri.slice(scheme[0].length);
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const path = rest.slice(slash + 1).split('?')[0] ?? '';
  if (path === '') return undefined;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

// MongoDB refuses these in database names (and the empty name); see the
// manual's "Naming Restrictions". NUL is checked separately.
const FORBIDDEN_IN_DATABASE_NAME = /[/\\. "$*<>:|?]/;
const COLLECTION_PREFIX = /^[A-Za-z0-9_.-]*$/;

function config(message: string, variable: string): ConfigError {
  return new ConfigError(message, { backend: BACKEND, operation: 'configure', variable });
}

/** Validates the options and fills in the defaults; throws `ConfigError` naming the option at fault. */
export function resolveMongoStoreOptions(options: MongoStoreOptions): ResolvedMongoStoreOptions {
  if (typeof options !== 'object' || options === null) {
    throw config('options must be an object { uri | client, dbName?, ... }', 'options');
  }
  const { uri, client } = options;
  if (uri !== undefined && (typeof uri !== 'string' || uri === '')) {
    throw config('uri must be a non-empty connection string', 'uri');
  }
  if (uri === undefined && client === undefined) {
    throw config('either uri or client is required', 'uri');
  }
  if (uri !== undefined && client !== undefined) {
    throw config('give either uri or client, not both', 'client');
  }
  if (client !== undefined && (typeof client !== 'object' || typeof client?.db !== 'function')) {
    throw config('client must be a MongoClient', 'client');
  }
  const dbName = options.dbName ?? (uri ? databaseNameFromUri(uri) : undefined) ?? DEFAULT_DATABASE_NAME;
  if (
    typeof dbName !== 'string' ||
    dbName === '' ||
    dbName.includes('\u0000') ||
    FORBIDDEN_IN_DATABASE_NAME.test(dbName)
  ) {
    throw config(`dbName ${JSON.stringify(dbName)} is not a valid MongoDB database name`, 'dbName');
  }
  if (Buffer.byteLength(dbName) > 63) throw config('dbName is longer than 63 bytes', 'dbName');
  const collectionPrefix = options.collectionPrefix ?? DEFAULT_COLLECTION_PREFIX;
  if (typeof collectionPrefix !== 'string' || !COLLECTION_PREFIX.test(collectionPrefix)) {
    throw config('collectionPrefix may only contain letters, digits, "_", "-" and "."', 'collectionPrefix');
  }
  if (collectionPrefix.startsWith('system.')) {
    throw config('collectionPrefix must not start with "system."', 'collectionPrefix');
  }
  const eventStorage = options.eventStorage ?? 'database';
  if (eventStorage !== 'database' && eventStorage !== 'file') {
    throw config(
      `eventStorage must be 'database' or 'file', got ${JSON.stringify(eventStorage)}`,
      'eventStorage',
    );
  }
  const { fileStoreBaseDir } = options;
  if (fileStoreBaseDir !== undefined && (typeof fileStoreBaseDir !== 'string' || fileStoreBaseDir === '')) {
    throw config('fileStoreBaseDir must be a non-empty path', 'fileStoreBaseDir');
  }
  if (eventStorage === 'file' && fileStoreBaseDir === undefined) {
    throw config("eventStorage 'file' needs fileStoreBaseDir", 'fileStoreBaseDir');
  }
  const lockLeaseMs = options.lockLeaseMs ?? DEFAULT_LOCK_LEASE_MS;
  if (typeof lockLeaseMs !== 'number' || !Number.isFinite(lockLeaseMs) || lockLeaseMs < MIN_LOCK_LEASE_MS) {
    throw config(`lockLeaseMs must be a number of milliseconds >= ${MIN_LOCK_LEASE_MS}`, 'lockLeaseMs');
  }
  if (options.readOnly !== undefined && typeof options.readOnly !== 'boolean') {
    throw config('readOnly must be true or false', 'readOnly');
  }
  const given: Partial<Record<TimeoutOption, number>> = {};
  for (const name of Object.keys(TIMEOUT_DEFAULTS) as TimeoutOption[]) {
    const value = options[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw config(`${name} must be a whole number of milliseconds >= 1`, name);
    }
    given[name] = value;
  }
  const timeouts = resolveTimeouts(given, uri, options.clientOptions ?? {});
  return {
    uri,
    client,
    dbName,
    collectionPrefix,
    eventStorage,
    fileStoreBaseDir,
    lockLeaseMs,
    requireTransactions: options.requireTransactions === true,
    ...timeouts,
    readOnly: options.readOnly ?? false,
  };
}
