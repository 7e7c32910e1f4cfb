import { type ErrorContext, isKodeStoreError, QueryError, ValidationError } from '../errors.js';
import { utf8Length } from '../strings.js';
import { assertKvName, KV_NAME_LIMITS } from './kv-records.js';
import type {
  JsonValue,
  KvMetadata,
  KvQuery,
  KvQueryResult,
  KvRecord,
  KvSetManyItem,
  KvStore,
} from './kv-types.js';

/**
 * The Agent Data Store proxy (seeds 002, 003) in TypeScript naming: one
 * user's data, written on behalf of one agent.
 *
 * Isolation: each user's data lives in its own KV instance,
 * `kode-datastore:<userId>`. The instance id is a column of its own and the
 * namespace and key are separate columns beside it, so no key or namespace,
 * however crafted, can name a record of another user; and the proxy has no
 * method that takes an instance.
 */

/** The instance that holds a user's data. Injective: two user ids never share one. */
export const DATA_STORE_INSTANCE_PREFIX = 'kode-datastore:';

/** The namespace a new proxy works in (seed 002). */
export const DEFAULT_DATA_STORE_NAMESPACE = 'default';

/** Who a DataStore proxy acts for: `createDataStore(kv, { userId, agentName })`. */
export interface DataStoreOptions {
  /** The user whose data this is. */
  userId: string;
  /** The agent writing: recorded as `createdBy` / `updatedBy` of the records it writes. */
  agentName: string;
  /** Starting namespace; `"default"` unless given. */
  namespace?: string;
}

/** A query of the current namespace: a `KvQuery` without `from`. */
export type DataStoreQuery = Omit<KvQuery, 'from'>;

/**
 * One user's key-value data, written on behalf of one agent (seeds 002, 003).
 * Every method returns a promise; a value JSON cannot hold is refused with a
 * `TypeError` (`ValidationError`) and nothing is written.
 */
export interface DataStore {
  readonly userId: string;
  readonly agentName: string;
  readonly namespace: string;
  /** The value, or `undefined` when the key does not exist. */
  get<V = JsonValue>(key: string): Promise<V | undefined>;
  /** The value, or `defaultValue` when the key does not exist (never `undefined`). */
  get<V = JsonValue>(key: string, defaultValue: V): Promise<V>;
  /** Stores a value; `metadata` is merged shallowly into the stored metadata. */
  set(key: string, value: unknown, metadata?: KvMetadata): Promise<void>;
  /** True when the key existed. */
  delete(key: string): Promise<boolean>;
  /** Keys of the current namespace in code-point order; `prefix` matches literally. */
  listKeys(prefix?: string): Promise<string[]>;
  /** The user's namespaces that hold data, in code-point order. */
  listNamespaces(): Promise<string[]>;
  /** A proxy for another namespace; this one is unchanged. */
  useNamespace(namespace: string): DataStore;
  /** Deletes the current namespace; how many keys it held. */
  clear(): Promise<number>;
  /** Values of the keys that exist (missing keys are left out). */
  getMany<V = JsonValue>(keys: string[]): Promise<Record<string, V>>;
  /** Stores all items or none; how many. */
  setMany(
    items: Record<string, unknown> | Iterable<readonly [string, unknown]>,
    metadata?: KvMetadata,
  ): Promise<number>;
  /** The whole record (value, metadata, version, timestamps, createdBy/updatedBy) or `undefined`. */
  getRecord<V = JsonValue>(key: string): Promise<KvRecord<V> | undefined>;
  /** Queries the current namespace with the KV query DSL. */
  query(query: DataStoreQuery): Promise<KvQueryResult>;
}

const isNotFound = (error: unknown) => isKodeStoreError(error) && error.code === 'KODE_NOT_FOUND';

/** Reads of a user who never wrote anything answer as for an empty store. */
async function orWhenNoData<T>(read: Promise<T>, empty: T): Promise<T> {
  try {
    return await read;
  } catch (error) {
    if (isNotFound(error)) return empty;
    throw error;
  }
}

class DataStoreProxy implements DataStore {
  private readonly instanceId: string;
  /**
   * The whole KV store, which reads every user's data: a true private field,
   * so that agent code handed this proxy cannot reach it (a TypeScript
   * `private` is an ordinary property at run time).
   */
  readonly #kv: KvStore;

  constructor(
    kv: KvStore,
    readonly userId: string,
    readonly agentName: string,
    readonly namespace: string,
  ) {
    this.#kv = kv;
    this.instanceId = DATA_STORE_INSTANCE_PREFIX + userId;
  }

  private writeOptions(metadata: KvMetadata | undefined) {
    return {
      autoCreateInstance: true,
      actor: this.agentName,
      ...(metadata === undefined ? {} : { metadata }),
    };
  }

  get<V = JsonValue>(key: string): Promise<V | undefined>;
  get<V = JsonValue>(key: string, defaultValue: V): Promise<V>;
  async get<V = JsonValue>(key: string, defaultValue?: V): Promise<V | undefined> {
    const result = await orWhenNoData(this.#kv.get<V>(this.instanceId, this.namespace, key), undefined);
    return result?.exists ? result.value : defaultValue;
  }

  async set(key: string, value: unknown, metadata?: KvMetadata): Promise<void> {
    await this.#kv.set(this.instanceId, this.namespace, key, value as JsonValue, this.writeOptions(metadata));
  }

  delete(key: string): Promise<boolean> {
    return orWhenNoData(this.#kv.delete(this.instanceId, this.namespace, key), false);
  }

  async listKeys(prefix?: string): Promise<string[]> {
    if (prefix !== undefined && typeof prefix !== 'string') {
      throw new ValidationError('prefix must be a string', { operation: 'DataStore.listKeys' });
    }
    const where = prefix ? [{ field: 'key', operator: 'startsWith' as const, value: prefix }] : [];
    const result = await orWhenNoData(
      this.#kv.query({
        from: { instance: this.instanceId, namespace: this.namespace },
        where,
        select: ['key'],
        orderBy: { field: 'key' },
      }),
      { records: [], total: 0 },
    );
    return result.records.map((record) => record.key as string);
  }

  listNamespaces(): Promise<string[]> {
    return orWhenNoData(this.#kv.getNamespaces(this.instanceId), []);
  }

  useNamespace(namespace: string): DataStore {
    assertKvName(namespace, 'namespace', { operation: 'DataStore.useNamespace' });
    return new DataStoreProxy(this.#kv, this.userId, this.agentName, namespace);
  }

  clear(): Promise<number> {
    return orWhenNoData(this.#kv.deleteNamespace(this.instanceId, this.namespace), 0);
  }

  async getMany<V = JsonValue>(keys: string[]): Promise<Record<string, V>> {
    const records = await orWhenNoData(this.#kv.getMany<V>(this.instanceId, this.namespace, keys), []);
    // fromEntries defines own properties, so a key named "__proto__" stays a key.
    return Object.fromEntries(records.map((record) => [record.key, record.value]));
  }

  async setMany(
    items: Record<string, unknown> | Iterable<readonly [string, unknown]>,
    metadata?: KvMetadata,
  ): Promise<number> {
    if (typeof items !== 'object' || items === null) {
      throw new ValidationError('items must be an object or an iterable of [key, value]', {
        operation: 'DataStore.setMany',
      });
    }
    const entries =
      Symbol.iterator in items ? [...(items as Iterable<readonly [string, unknown]>)] : Object.entries(items);
    if (entries.length === 0) return 0;
    const batch: KvSetManyItem[] = entries.map(([key, value]) => ({ namespace: this.namespace, key, value }));
    await this.#kv.setMany(this.instanceId, batch, this.writeOptions(metadata));
    return entries.length;
  }

  async getRecord<V = JsonValue>(key: string): Promise<KvRecord<V> | undefined> {
    const result = await orWhenNoData(this.#kv.get<V>(this.instanceId, this.namespace, key), undefined);
    return result?.record;
  }

  query(query: DataStoreQuery): Promise<KvQueryResult> {
    if (typeof query !== 'object' || query === null) {
      return Promise.reject(new QueryError('the query must be an object'));
    }
    if ('from' in query) {
      // The scope is the proxy's; a query naming another instance must not run at all.
      return Promise.reject(
        new QueryError('a DataStore query has no from: it always reads the current namespace'),
      );
    }
    return orWhenNoData(
      this.#kv.query({ ...query, from: { instance: this.instanceId, namespace: this.namespace } }),
      { records: [], total: 0 },
    );
  }
}

function checkUserId(userId: unknown, ctx: ErrorContext): asserts userId is string {
  assertKvName(userId, 'actor', ctx, false, 'userId');
  const room = KV_NAME_LIMITS.instanceId - utf8Length(DATA_STORE_INSTANCE_PREFIX);
  if (utf8Length(userId) > room) throw new ValidationError(`userId is longer than ${room} UTF-8 bytes`, ctx);
}

/**
 * A DataStore proxy for one user and agent over a KV store.
 *
 * ```ts
 * const dataStore = createDataStore(store.kv, { userId: 'user-42', agentName: 'indexer' });
 * await dataStore.set('config', { timeout: 30 });
 * const files = dataStore.useNamespace(`files:${repo}`);
 * await files.setMany({ 'src/a.ts': 'export {}', 'src/b.ts': 'export {}' });
 * const keys = await files.listKeys('src/');
 * ```
 */
export function createDataStore(kv: KvStore, options: DataStoreOptions): DataStore {
  const ctx = { operation: 'createDataStore' };
  if (typeof kv !== 'object' || kv === null || typeof kv.query !== 'function') {
    throw new ValidationError('createDataStore needs a KvStore (for example store.kv)', ctx);
  }
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError('createDataStore needs { userId, agentName }', ctx);
  }
  checkUserId(options.userId, { operation: 'createDataStore (userId)' });
  assertKvName(options.agentName, 'actor', { operation: 'createDataStore (agentName)' }, false, 'agentName');
  const namespace = options.namespace ?? DEFAULT_DATA_STORE_NAMESPACE;
  assertKvName(namespace, 'namespace', ctx);
  return new DataStoreProxy(kv, options.userId, options.agentName, namespace);
}
