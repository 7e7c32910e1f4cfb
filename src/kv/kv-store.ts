import { randomUUID } from 'node:crypto';
import type { OperationKind } from '../agent/operation-metrics.js';
import { StoreOperations } from '../agent/store-operations.js';
import { ConflictError, type ErrorContext, ValidationError } from '../errors.js';
import { decodeJson, encodeJson } from '../json-codec.js';
import { isLive, type KvBackend, type KvInstanceRow, type KvKeyRef, type KvRecordRow } from './kv-backend.js';
import { decodeCursor, encodeCursor, queryFingerprint } from './kv-cursor.js';
import { normalizeKvQuery } from './kv-query.js';
import { sortPosition, vectorDirections } from './kv-query-eval.js';
import {
  assertKvName,
  checkOptions,
  checkVersion,
  encodeMetadata,
  instanceFromRow,
  instanceNotFound,
  projectRow,
  recordFromRow,
  resolveExpiry,
  viewOfRow,
} from './kv-records.js';
import type {
  JsonValue,
  KvDeleteOptions,
  KvGetResult,
  KvIncrementOptions,
  KvInstance,
  KvQuery,
  KvQueryResult,
  KvRecord,
  KvSetManyItem,
  KvSetOptions,
  KvStore,
  KvWriteOptions,
} from './kv-types.js';
import {
  actorOf,
  autoInstance,
  INCREMENT_OPTIONS,
  metadataOf,
  nextRow,
  SET_OPTIONS,
  WRITE_OPTIONS,
} from './kv-writes.js';
import { MemoryKvBackend } from './memory-kv.js';

/** Options of `createKvStore`. */
export interface KvStoreOptions {
  /**
   * The clock (epoch ms) for timestamps and expiry. Defaults to `Date.now`.
   * The conformance suite passes its own to test TTLs without sleeping.
   */
  now?: () => number;
  /**
   * The owning store's operation frame, so that KV calls count in its
   * `getMetrics()` and fail with `StoreClosedError` once it is closed.
   * A standalone KV store gets its own.
   */
  operations?: StoreOperations;
}

/** Most keys one `getMany` / `setMany` call may touch (one statement's worth of bound parameters). */
export const KV_MAX_BATCH = 1000;

function isBackend(value: object): value is KvBackend {
  return (
    typeof (value as KvBackend).mutate === 'function' && typeof (value as KvBackend).query === 'function'
  );
}

function hasKv(value: object): value is { kv: KvStore } {
  const kv = (value as { kv?: unknown }).kv;
  return typeof kv === 'object' && kv !== null && typeof (kv as KvStore).query === 'function';
}

/** The writes that accept `autoCreateInstance` (and so are told about it when the instance is missing). */
const WRITES_THAT_CREATE = new Set(['kv.set', 'kv.setMany', 'kv.increment']);

/**
 * The KV namespace API (SPEC §6) over a backend:
 *
 * ```ts
 * const kv = createKvStore();                                 // in memory
 * const kv = createKvStore(new SqliteKvBackend(db));         // on a better-sqlite3 database
 * const kv = createKvStore(new PostgresKvBackend(pool, { schema: 'public' }));
 * const kv = createKvStore(store);                            // the KV API of a store: store.kv
 * ```
 *
 * Everything that must behave the same on every backend lives here:
 * validation, JSON encoding (`strict-no-undefined`), versions, timestamps,
 * TTL arithmetic, conditional writes, increments and shallow metadata merges
 * (computed inside the backend's atomic `mutate`, so two writers never lose
 * each other's update), and query cursors.
 */
export function createKvStore(source?: KvBackend | { kv: KvStore }, options: KvStoreOptions = {}): KvStore {
  if (source === undefined) return new BackendKvStore(new MemoryKvBackend(), options);
  if (typeof source === 'object' && source !== null) {
    if (isBackend(source)) return new BackendKvStore(source, options);
    if (hasKv(source)) return source.kv;
  }
  throw new ValidationError('createKvStore needs a KvBackend or a store with a kv property');
}

class BackendKvStore implements KvStore {
  readonly backend: string;
  private readonly ops: StoreOperations;
  private readonly now: () => number;
  private opened = false;
  private opening: Promise<void> | undefined;

  constructor(
    private readonly storage: KvBackend,
    options: KvStoreOptions,
  ) {
    this.backend = storage.name;
    this.ops =
      options.operations ??
      new StoreOperations(storage.name, {
        classifyError: storage.classifyError
          ? (error, ctx) => storage.classifyError?.(error, ctx)
          : undefined,
      });
    this.now = options.now ?? Date.now;
  }

  // -- plumbing -------------------------------------------------------------

  private ctx(operation: string): ErrorContext {
    return { backend: this.backend, operation };
  }

  /** Opens the backend once, on first use; a failed open is retried by the next call. */
  private async ready(): Promise<void> {
    if (this.opened) return;
    this.opening ??= this.storage.open().then(
      () => {
        this.opened = true;
      },
      (error: unknown) => {
        this.opening = undefined;
        throw error;
      },
    );
    await this.opening;
  }

  private run<T>(
    operation: string,
    kind: OperationKind,
    body: (ctx: ErrorContext) => Promise<T>,
  ): Promise<T> {
    const name = `kv.${operation}`;
    return this.ops.run(name, kind, () => body(this.ctx(name)));
  }

  private checkRef(namespace: unknown, key: unknown, ctx: ErrorContext): KvKeyRef {
    assertKvName(namespace, 'namespace', ctx);
    assertKvName(key, 'key', ctx);
    return { namespace, key };
  }

  private async mutate(
    instanceId: string,
    refs: KvKeyRef[],
    createInstance: KvInstanceRow | undefined,
    ctx: ErrorContext,
    decide: (
      live: Array<KvRecordRow | undefined>,
      current: ReadonlyArray<KvRecordRow | undefined>,
    ) => {
      put: KvRecordRow[];
      remove: KvKeyRef[];
    },
  ): Promise<void> {
    await this.ready();
    const found = await this.storage.mutate(instanceId, refs, { createInstance }, (current) => {
      // Read the clock once the backend holds the rows: a wait for a lock must
      // not let a record that expired meanwhile count as live.
      const now = this.now();
      return decide(
        current.map((row) => (row && isLive(row, now) ? row : undefined)),
        current,
      );
    });
    if (!found)
      throw instanceNotFound(
        instanceId,
        ctx,
        createInstance || !WRITES_THAT_CREATE.has(ctx.operation ?? '')
          ? ''
          : ' (pass autoCreateInstance: true to create it)',
      );
  }

  // -- instances ------------------------------------------------------------

  createInstance(input: { name: string; description?: string; id?: string }): Promise<KvInstance> {
    return this.run('createInstance', 'save', async (ctx) => {
      if (typeof input !== 'object' || input === null)
        throw new ValidationError('createInstance needs { name, description? }', ctx);
      checkOptions(input, ['name', 'description', 'id'], ctx);
      assertKvName(input.name, 'instanceName', ctx);
      const description = input.description ?? '';
      assertKvName(description, 'description', ctx, true);
      const id = input.id ?? randomUUID();
      assertKvName(id, 'instanceId', ctx);
      await this.ready();
      const now = this.now();
      const row: KvInstanceRow = { id, name: input.name, description, createdAt: now, updatedAt: now };
      if (!(await this.storage.insertInstance(row))) {
        throw new ConflictError(`KV instance ${JSON.stringify(id)} already exists`, ctx);
      }
      return instanceFromRow(row);
    });
  }

  getInstance(id: string): Promise<KvInstance | undefined> {
    return this.run('getInstance', 'load', async (ctx) => {
      assertKvName(id, 'instanceId', ctx);
      await this.ready();
      const row = await this.storage.getInstance(id);
      return row && instanceFromRow(row);
    });
  }

  listInstances(): Promise<KvInstance[]> {
    return this.run('listInstances', 'load', async () => {
      await this.ready();
      return (await this.storage.listInstances()).map(instanceFromRow);
    });
  }

  updateInstance(id: string, updates: { name?: string; description?: string }): Promise<KvInstance> {
    return this.run('updateInstance', 'save', async (ctx) => {
      assertKvName(id, 'instanceId', ctx);
      if (typeof updates !== 'object' || updates === null)
        throw new ValidationError('updates must be an object', ctx);
      checkOptions(updates, ['name', 'description'], ctx);
      const changes: { name?: string; description?: string } = {};
      if (updates.name !== undefined) {
        assertKvName(updates.name, 'instanceName', ctx);
        changes.name = updates.name;
      }
      if (updates.description !== undefined) {
        assertKvName(updates.description, 'description', ctx, true);
        changes.description = updates.description;
      }
      await this.ready();
      const row = await this.storage.updateInstance(id, changes, this.now());
      if (!row) throw instanceNotFound(id, ctx);
      return instanceFromRow(row);
    });
  }

  deleteInstance(id: string): Promise<boolean> {
    return this.run('deleteInstance', 'delete', async (ctx) => {
      assertKvName(id, 'instanceId', ctx);
      await this.ready();
      return this.storage.deleteInstance(id);
    });
  }

  // -- records --------------------------------------------------------------

  get<V = JsonValue>(instanceId: string, namespace: string, key: string): Promise<KvGetResult<V>> {
    return this.run('get', 'load', async (ctx) => {
      assertKvName(instanceId, 'instanceId', ctx);
      const ref = this.checkRef(namespace, key, ctx);
      await this.ready();
      const rows = await this.storage.getRecords(instanceId, [ref], this.now());
      if (!rows) throw instanceNotFound(instanceId, ctx);
      const row = rows[0];
      if (!row) return { exists: false, value: undefined, record: undefined };
      const record = recordFromRow<V>(row, ctx);
      return { exists: true, value: record.value, record };
    });
  }

  getMany<V = JsonValue>(instanceId: string, namespace: string, keys: string[]): Promise<Array<KvRecord<V>>> {
    return this.run('getMany', 'load', async (ctx) => {
      assertKvName(instanceId, 'instanceId', ctx);
      assertKvName(namespace, 'namespace', ctx);
      if (!Array.isArray(keys)) throw new ValidationError('keys must be an array of strings', ctx);
      if (keys.length > KV_MAX_BATCH) throw new ValidationError(`at most ${KV_MAX_BATCH} keys per call`, ctx);
      const unique = [...new Set(keys)];
      const refs = unique.map((key) => this.checkRef(namespace, key, ctx));
      await this.ready();
      const rows = await this.storage.getRecords(instanceId, refs, this.now());
      if (!rows) throw instanceNotFound(instanceId, ctx);
      return rows
        .filter((row): row is KvRecordRow => row !== undefined)
        .map((row) => recordFromRow<V>(row, ctx));
    });
  }

  set<V = JsonValue>(
    instanceId: string,
    namespace: string,
    key: string,
    value: V,
    options?: KvSetOptions,
  ): Promise<KvRecord<V>> {
    return this.run('set', 'save', async (ctx) => {
      assertKvName(instanceId, 'instanceId', ctx);
      const ref = this.checkRef(namespace, key, ctx);
      const opts = checkOptions(options, SET_OPTIONS, ctx);
      // Encode before touching the database: a bad value changes nothing.
      const text = encodeJson(value, 'strict-no-undefined', { ...ctx, what: 'value' });
      const metadata = metadataOf(opts, ctx);
      const actor = actorOf(opts, ctx);
      const ifVersion = checkVersion(opts.ifVersion, ctx);
      if (opts.ifAbsent !== undefined && typeof opts.ifAbsent !== 'boolean') {
        throw new ValidationError('ifAbsent must be a boolean', ctx);
      }
      if (opts.ifAbsent === true && ifVersion !== undefined) {
        throw new ValidationError('pass either ifAbsent or ifVersion, not both', ctx);
      }
      const now = this.now();
      const expiresAt = resolveExpiry(opts, now, ctx) ?? null;
      const createInstance = autoInstance(instanceId, opts.autoCreateInstance, now, ctx);
      let written: KvRecordRow | undefined;
      await this.mutate(instanceId, [ref], createInstance, ctx, ([live]) => {
        if (opts.ifAbsent === true && live) {
          throw new ConflictError(
            `ifAbsent: ${JSON.stringify(ref.namespace)}/${JSON.stringify(ref.key)} exists (version ${live.version})`,
            ctx,
          );
        }
        if (ifVersion !== undefined && live?.version !== ifVersion) {
          throw new ConflictError(
            `ifVersion ${ifVersion}: ${JSON.stringify(ref.namespace)}/${JSON.stringify(ref.key)} is ${live ? `at version ${live.version}` : 'absent'}`,
            ctx,
          );
        }
        written = nextRow(
          instanceId,
          ref,
          live,
          { value: text, metadata, expiresAt, actor },
          this.now(),
          ctx,
        );
        return { put: [written], remove: [] };
      });
      return recordFromRow<V>(written as KvRecordRow, ctx);
    });
  }

  setMany(instanceId: string, items: KvSetManyItem[], options?: KvWriteOptions): Promise<KvRecord[]> {
    return this.run('setMany', 'save', async (ctx) => {
      assertKvName(instanceId, 'instanceId', ctx);
      if (!Array.isArray(items))
        throw new ValidationError('items must be an array of { namespace, key, value }', ctx);
      if (items.length > KV_MAX_BATCH)
        throw new ValidationError(`at most ${KV_MAX_BATCH} items per call`, ctx);
      const opts = checkOptions(options, WRITE_OPTIONS, ctx);
      const shared = metadataOf(opts, ctx);
      const actor = actorOf(opts, ctx);
      const seen = new Set<string>();
      const prepared = items.map((item, i) => {
        const at = { ...ctx, operation: `${ctx.operation}[${i}]` };
        if (typeof item !== 'object' || item === null)
          throw new ValidationError('each item must be an object', at);
        checkOptions(item, ['namespace', 'key', 'value', 'metadata'], at);
        const ref = this.checkRef(item.namespace, item.key, at);
        const identity = JSON.stringify([ref.namespace, ref.key]);
        if (seen.has(identity)) throw new ValidationError(`duplicate key ${identity} in one batch`, at);
        seen.add(identity);
        const value = encodeJson(item.value, 'strict-no-undefined', { ...at, what: 'value' });
        const own = item.metadata === undefined ? undefined : JSON.parse(encodeMetadata(item.metadata, at));
        const metadata = shared || own ? { ...shared, ...own } : undefined;
        return { ref, value, metadata };
      });
      const now = this.now();
      const expiresAt = resolveExpiry(opts, now, ctx) ?? null;
      const createInstance = autoInstance(instanceId, opts.autoCreateInstance, now, ctx);
      if (prepared.length === 0) {
        await this.mutate(instanceId, [], createInstance, ctx, () => ({ put: [], remove: [] }));
        return [];
      }
      let written: KvRecordRow[] = [];
      await this.mutate(
        instanceId,
        prepared.map((item) => item.ref),
        createInstance,
        ctx,
        (live) => {
          const at = this.now();
          written = prepared.map((item, i) =>
            nextRow(
              instanceId,
              item.ref,
              live[i],
              { value: item.value, metadata: item.metadata, expiresAt, actor },
              at,
              ctx,
            ),
          );
          return { put: written, remove: [] };
        },
      );
      return written.map((row) => recordFromRow(row, ctx));
    });
  }

  increment(
    instanceId: string,
    namespace: string,
    key: string,
    delta = 1,
    options?: KvIncrementOptions,
  ): Promise<KvRecord<number>> {
    return this.run('increment', 'save', async (ctx) => {
      assertKvName(instanceId, 'instanceId', ctx);
      const ref = this.checkRef(namespace, key, ctx);
      if (typeof delta !== 'number' || !Number.isFinite(delta)) {
        throw new ValidationError(`delta must be a finite number, got ${String(delta)}`, ctx);
      }
      const opts = checkOptions(options, INCREMENT_OPTIONS, ctx);
      const metadata = metadataOf(opts, ctx);
      const actor = actorOf(opts, ctx);
      const ifVersion = checkVersion(opts.ifVersion, ctx);
      const now = this.now();
      // Without ttlMs/expiresAt an increment keeps the record's expiry, as Redis INCR does.
      const expiresAt = resolveExpiry(opts, now, ctx);
      const createInstance = autoInstance(instanceId, opts.autoCreateInstance, now, ctx);
      let written: KvRecordRow | undefined;
      await this.mutate(instanceId, [ref], createInstance, ctx, ([live]) => {
        if (ifVersion !== undefined && live?.version !== ifVersion) {
          throw new ConflictError(
            `ifVersion ${ifVersion}: ${JSON.stringify(ref.namespace)}/${JSON.stringify(ref.key)} is ${live ? `at version ${live.version}` : 'absent'}`,
            ctx,
          );
        }
        const current = live ? decodeJson<unknown>(live.value, ctx) : 0;
        if (typeof current !== 'number') {
          throw new ValidationError(
            `cannot increment ${JSON.stringify(ref.namespace)}/${JSON.stringify(ref.key)}: its value is not a number`,
            ctx,
          );
        }
        const next = current + delta;
        if (!Number.isFinite(next))
          throw new ValidationError('increment would leave the range of finite numbers', ctx);
        // Past 2^53 - 1 integers are no longer exact: a counter must not silently stop counting.
        if (Number.isInteger(current) && Number.isInteger(delta) && !Number.isSafeInteger(next))
          throw new ValidationError(
            'increment would pass 2^53 - 1, beyond which integers are not exact',
            ctx,
          );
        written = nextRow(
          instanceId,
          ref,
          live,
          { value: JSON.stringify(next), metadata, expiresAt, actor },
          this.now(),
          ctx,
        );
        return { put: [written], remove: [] };
      });
      return recordFromRow<number>(written as KvRecordRow, ctx);
    });
  }

  delete(instanceId: string, namespace: string, key: string, options?: KvDeleteOptions): Promise<boolean> {
    return this.run('delete', 'delete', async (ctx) => {
      assertKvName(instanceId, 'instanceId', ctx);
      const ref = this.checkRef(namespace, key, ctx);
      const opts = checkOptions(options, ['ifVersion'], ctx);
      const ifVersion = checkVersion(opts.ifVersion, ctx);
      let existed = false;
      await this.mutate(instanceId, [ref], undefined, ctx, ([live], [stored]) => {
        if (ifVersion !== undefined && live?.version !== ifVersion) {
          throw new ConflictError(
            `ifVersion ${ifVersion}: ${JSON.stringify(ref.namespace)}/${JSON.stringify(ref.key)} is ${live ? `at version ${live.version}` : 'absent'}`,
            ctx,
          );
        }
        existed = live !== undefined;
        // An expired row is removed too, but it did not "exist" for the caller.
        return { put: [], remove: stored ? [ref] : [] };
      });
      return existed;
    });
  }

  deleteNamespace(instanceId: string, namespace: string): Promise<number> {
    return this.run('deleteNamespace', 'delete', async (ctx) => {
      assertKvName(instanceId, 'instanceId', ctx);
      assertKvName(namespace, 'namespace', ctx);
      await this.ready();
      const deleted = await this.storage.deleteNamespace(instanceId, namespace, this.now());
      if (deleted === undefined) throw instanceNotFound(instanceId, ctx);
      return deleted;
    });
  }

  getNamespaces(instanceId: string): Promise<string[]> {
    return this.run('getNamespaces', 'load', async (ctx) => {
      assertKvName(instanceId, 'instanceId', ctx);
      await this.ready();
      const namespaces = await this.storage.namespaces(instanceId, this.now());
      if (!namespaces) throw instanceNotFound(instanceId, ctx);
      return namespaces;
    });
  }

  getRecordCount(instanceId: string, namespace?: string): Promise<number> {
    return this.run('getRecordCount', 'load', async (ctx) => {
      assertKvName(instanceId, 'instanceId', ctx);
      if (namespace !== undefined) assertKvName(namespace, 'namespace', ctx);
      await this.ready();
      const count = await this.storage.countRecords(instanceId, namespace, this.now());
      if (count === undefined) throw instanceNotFound(instanceId, ctx);
      return count;
    });
  }

  query(query: KvQuery): Promise<KvQueryResult> {
    return this.run('query', 'query', async (ctx) => {
      const { cursor, ...plan } = normalizeKvQuery(query);
      const fingerprint = queryFingerprint(plan);
      const after = cursor
        ? decodeCursor(cursor, fingerprint, vectorDirections(plan.orderBy).length)
        : undefined;
      await this.ready();
      // One row more than asked tells whether another page follows.
      const fetch = plan.limit === undefined ? undefined : plan.limit + 1;
      const page = await this.storage.query({ ...plan, after, limit: fetch }, this.now());
      if (!page) throw instanceNotFound(plan.instanceId, ctx);
      const rows = plan.limit === undefined ? page.rows : page.rows.slice(0, plan.limit);
      const result: KvQueryResult = {
        records: rows.map((row) => projectRow(row, plan.projection, ctx)),
        total: page.total,
      };
      const last = rows.at(-1);
      if (last && plan.limit !== undefined && page.rows.length > plan.limit) {
        result.nextCursor = encodeCursor(fingerprint, sortPosition(viewOfRow(last, ctx), plan.orderBy));
      }
      return result;
    });
  }

  sweepExpired(): Promise<number> {
    return this.run('sweepExpired', 'delete', async () => {
      await this.ready();
      return this.storage.sweepExpired(this.now());
    });
  }
}
