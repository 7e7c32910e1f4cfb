import type { TimeInput } from '../types.js';

/**
 * The public types of the KV namespace API (SPEC §6): instances hold
 * namespaces, namespaces hold records, records hold any JSON value.
 */

/** Any value JSON can represent. What `get` returns is what `set` stored, deep-equal. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A record's metadata: a JSON object, merged shallowly on every write that passes one. */
export type KvMetadata = { [key: string]: JsonValue };

/** An isolated container of namespaces and records. Timestamps are ISO-8601 strings. */
export interface KvInstance {
  id: string;
  name: string;
  description: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * One stored key. `instanceId`, `namespace` and `key` are separate fields
 * (and separate columns in every backend), never one concatenated string.
 */
export interface KvRecord<V = JsonValue> {
  /** Stable while the key lives; a key deleted and set again gets a new id. */
  id: string;
  instanceId: string;
  namespace: string;
  key: string;
  value: V;
  metadata: KvMetadata;
  /** 1 when created, +1 on every write. The token for `ifVersion`. */
  version: number;
  createdAt: string;
  updatedAt: string;
  /** Present when the record has a time to live; it is invisible from this instant on. */
  expiresAt?: string;
  /** The actor (e.g. the agent name of a `DataStore`) that created the record, when one was given. */
  createdBy?: string;
  /** The actor that wrote the record last, when one was given. */
  updatedBy?: string;
}

/** What `get` answers. `value` and `record` are `undefined` when `exists` is false. */
export interface KvGetResult<V = JsonValue> {
  exists: boolean;
  value: V | undefined;
  record: KvRecord<V> | undefined;
}

/** When a record expires: a time to live in milliseconds, or an instant. At most one of the two. */
export interface KvExpiryOptions {
  /** Milliseconds from now (a positive integer). */
  ttlMs?: number;
  /** An instant: `Date`, epoch milliseconds or ISO-8601 string. An instant in the past hides the record at once. */
  expiresAt?: TimeInput;
}

/** Options of `set`, `setMany` and `increment`. */
export interface KvWriteOptions extends KvExpiryOptions {
  /** Create the instance (named after its id) when it does not exist, instead of failing with `NotFoundError`. */
  autoCreateInstance?: boolean;
  /** Merged shallowly into the stored metadata, inside the database. */
  metadata?: KvMetadata;
  /** Who writes: kept as `createdBy` on creation and `updatedBy` on every write. */
  actor?: string;
}

/** Options of `set`. */
export interface KvSetOptions extends KvWriteOptions {
  /** Write only if the live record has this version; otherwise `ConflictError`. */
  ifVersion?: number;
  /** Write only if no live record has this key; otherwise `ConflictError`. */
  ifAbsent?: boolean;
}

/** Options of `increment`. Without `ttlMs`/`expiresAt` an existing expiry is kept. */
export interface KvIncrementOptions extends KvWriteOptions {
  ifVersion?: number;
}

/** Options of `delete`. */
export interface KvDeleteOptions {
  /** Delete only if the live record has this version; otherwise `ConflictError`. */
  ifVersion?: number;
}

/** One item of `setMany`. */
export interface KvSetManyItem {
  namespace: string;
  key: string;
  value: unknown;
  /** Merged over the batch-wide `metadata` option for this item. */
  metadata?: KvMetadata;
}

/** The comparison operators of the query DSL (seed 000) and the additions `in`, `nin`, `exists`. */
export type KvOperator =
  | 'eq'
  | 'neq'
  | 'gt'
  | 'gte'
  | 'lt'
  | 'lte'
  | 'contains'
  | 'startsWith'
  | 'endsWith'
  | 'in'
  | 'nin'
  | 'exists';

/**
 * One condition. `field` is `key`, `namespace`, `version`, `createdAt`,
 * `updatedAt`, `value`, `metadata`, or a dot path into the last two
 * (`value.user.name`, `metadata.source`).
 *
 * @example { field: 'value.score', operator: 'gte', value: 100 }
 */
export interface KvCondition {
  field: string;
  operator: KvOperator;
  value?: unknown;
}

/** Conditions of which at least one must hold. */
export interface KvOrGroup {
  or: KvWhereItem[];
}

/** Conditions that must all hold (useful inside an `or`). */
export interface KvAndGroup {
  and: KvWhereItem[];
}

/** An item of `where`: a condition or a group of them. */
export type KvWhereItem = KvCondition | KvOrGroup | KvAndGroup;

/** One sort key. `direction` defaults to `asc`. */
export interface KvOrderBy {
  field: string;
  direction?: 'asc' | 'desc';
}

/** The top-level fields `select` may name. */
export type KvSelectableField = keyof KvRecord;

/**
 * An item of `select`: a record field, or a dot path into `value` or
 * `metadata` (`value.user.name`), which keeps only that member.
 */
export type KvSelectField = KvSelectableField | `value.${string}` | `metadata.${string}`;

/**
 * A query (seed 000): `from` names the instance and optionally one namespace;
 * `where` items are ANDed. Results are sorted by `orderBy`, ties always by
 * key and then namespace (ascending). `total` ignores `limit`/`offset`/`cursor`.
 *
 * @example
 * { from: { instance: id, namespace: 'sessions' },
 *   where: [{ field: 'value.createdAt', operator: 'gte', value: Date.now() - 3600000 }],
 *   orderBy: { field: 'createdAt', direction: 'desc' }, limit: 10 }
 */
export interface KvQuery {
  from: { instance: string; namespace?: string };
  where?: KvWhereItem[];
  /** The fields to return (all without it): `['key', 'value.name']` gives `{ key, value: { name } }`. */
  select?: KvSelectField[];
  orderBy?: KvOrderBy | KvOrderBy[];
  limit?: number;
  offset?: number;
  /** The `nextCursor` of the previous page of the same query (instead of `offset`). */
  cursor?: string;
}

/** A query's answer. `nextCursor` is present when `limit` cut the result short. */
export interface KvQueryResult {
  records: Array<Partial<KvRecord>>;
  total: number;
  nextCursor?: string;
}

/** The KV namespace API, on any backend. Every method returns a promise and reports errors by rejecting. */
export interface KvStore {
  /** The backend's name (`memory`, `sqlite`, `postgres`, ...). */
  readonly backend: string;

  createInstance(input: { name: string; description?: string; id?: string }): Promise<KvInstance>;
  getInstance(id: string): Promise<KvInstance | undefined>;
  /** All instances, oldest first (ties by id). */
  listInstances(): Promise<KvInstance[]>;
  /** Renames or re-describes an instance; `NotFoundError` when it does not exist. */
  updateInstance(id: string, updates: { name?: string; description?: string }): Promise<KvInstance>;
  /** Deletes an instance and every record in it; false when it did not exist. */
  deleteInstance(id: string): Promise<boolean>;

  get<V = JsonValue>(instanceId: string, namespace: string, key: string): Promise<KvGetResult<V>>;
  /** The live records of these keys, in the order of `keys`, missing ones left out. */
  getMany<V = JsonValue>(instanceId: string, namespace: string, keys: string[]): Promise<Array<KvRecord<V>>>;
  set<V = JsonValue>(
    instanceId: string,
    namespace: string,
    key: string,
    value: V,
    options?: KvSetOptions,
  ): Promise<KvRecord<V>>;
  /** Writes every item or none (one transaction). Duplicate (namespace, key) pairs are refused. */
  setMany(instanceId: string, items: KvSetManyItem[], options?: KvWriteOptions): Promise<KvRecord[]>;
  /** Adds `delta` (default 1) to a numeric value atomically; a missing key starts at 0. */
  increment(
    instanceId: string,
    namespace: string,
    key: string,
    delta?: number,
    options?: KvIncrementOptions,
  ): Promise<KvRecord<number>>;
  /** True when a live record was deleted. */
  delete(instanceId: string, namespace: string, key: string, options?: KvDeleteOptions): Promise<boolean>;
  /** Deletes a namespace atomically; the number of live records it held. */
  deleteNamespace(instanceId: string, namespace: string): Promise<number>;
  /** Namespaces holding at least one live record, in code-point order. */
  getNamespaces(instanceId: string): Promise<string[]>;
  /** Live records of the instance, or of one namespace. */
  getRecordCount(instanceId: string, namespace?: string): Promise<number>;
  query(query: KvQuery): Promise<KvQueryResult>;
  /** Removes expired records from storage (they are invisible already); how many were removed. */
  sweepExpired(): Promise<number>;
}
