import { randomUUID } from 'node:crypto';
import {
  type AnyKodeStoreError,
  ConflictError,
  type ErrorContext,
  KodeStoreError,
} from '../../src/errors.js';
import type {
  KvBackend,
  KvInstanceRow,
  KvKeyRef,
  KvMutation,
  KvMutationPlan,
  KvQueryRow,
  KvRecordRow,
} from '../../src/kv/kv-backend.js';
import { evaluatePlan, type KvPredicate, type KvQueryPlan } from '../../src/kv/kv-query.js';
import { viewOfRow } from '../../src/kv/kv-records.js';
import { prefixUpperBound } from '../../src/strings.js';
import type { MongoCollection, MongoDocument, MongoSession } from './mongo-config.js';
import { type OpenMongo, runAtomically, withSession } from './mongo-connection.js';
import { bsonSize, documentTooLarge, MAX_STORED_DOCUMENT_BYTES } from './mongo-documents.js';
import { classifyMongoError, type MongoBounds } from './mongo-errors.js';
import { type HeldBatch, KvBatches, lostLease, type UndoEntry } from './mongo-kv-batches.js';
import { DUPLICATE_KEY } from './mongo-lock.js';
import {
  assertComponentReadable,
  ensureCollection,
  type MongoIndexSpec,
  type MongoMigration,
  migrateComponent,
} from './mongo-schema.js';

/**
 * The KV backend on MongoDB (`createKvStore(new MongoKvBackend(...))`, or
 * `mongoStore.kvBackend()`), in the agent store's database and prefix.
 *
 * Storage choices, and why:
 * - Value and metadata are the JSON text of `encodeJson` in string fields,
 *   returned byte for byte: BSON would reorder nothing but cannot hold NUL in
 *   keys, turns numbers into int32/double/Long, and `$`-prefixed or dotted
 *   keys are awkward in queries.
 * - Instance, namespace and key are separate fields with a unique index;
 *   strings compare as UTF-8 bytes, which is code point order.
 * - Each instance document carries an `incarnation` (random) that its records
 *   carry too. Deleting an instance deletes its document (the atomic step)
 *   and then its records; if that clean-up is interrupted, the leftovers
 *   belong to a dead incarnation, invisible to every read and never in the
 *   way of a new instance with the same id (the unique index includes the
 *   incarnation).
 * - `mutate` (read-modify-write: merges, increments, conditional writes) runs
 *   in a transaction where the deployment has them: a concurrent writer of
 *   the same key makes one transaction fail with a write conflict, and the
 *   driver runs it again with fresh reads. On a standalone server each row
 *   carries a random `rev`; a single-key write is conditional on the `rev` it
 *   read and retried when it lost a race, which is exactly as atomic. Writes
 *   of several records (`setMany`, `deleteNamespace`) follow the batch
 *   protocol of `mongo-kv-batches.ts` there (an instance lease, an undo log,
 *   readers that check the lease before and after), so every other
 *   operation sees them whole or not at all.
 * - A record's document must fit MongoDB's 16 MiB limit: a value or metadata
 *   too large for it is refused with `ValidationError` before anything is
 *   written.
 * - Queries narrow the rows on the server (instance, namespace, liveness, and
 *   the conditions on columns that translate exactly), then run the shared
 *   plain evaluator over what remains, so every answer is the evaluator's
 *   own. A condition on `value.*` / `metadata.*` is therefore evaluated in
 *   this process, over the namespace's (or instance's) live rows.
 */

/** Collections of the KV component, each `<prefix><name>`. */
export const KV_COLLECTIONS = ['kv_instances', 'kv_records', 'kv_undo'] as const;

export const KV_INDEXES: Readonly<Record<(typeof KV_COLLECTIONS)[number], readonly MongoIndexSpec[]>> = {
  kv_instances: [{ name: 'kv_instances_created', key: { createdAt: 1, _id: 1 } }],
  kv_records: [
    { name: 'kv_records_key', key: { instanceId: 1, incarnation: 1, namespace: 1, key: 1 }, unique: true },
    { name: 'kv_records_expiry', key: { expiresAt: 1 } },
    { name: 'kv_records_batch', key: { batch: 1 }, sparse: true },
  ],
  kv_undo: [{ name: 'kv_undo_batch', key: { batch: 1 } }],
};

/** The KV component's schema history in `<prefix>schema_version`. */
export const KV_MIGRATIONS: readonly MongoMigration[] = [
  {
    version: 1,
    description: 'KV instances and records',
    async up(db, prefix) {
      for (const name of ['kv_instances', 'kv_records'] as const) {
        await ensureCollection(db, `${prefix}${name}`, KV_INDEXES[name]);
      }
    },
  },
  {
    version: 2,
    description: 'undo log and batch marks of multi-record writes without transactions',
    async up(db, prefix) {
      for (const name of KV_COLLECTIONS) await ensureCollection(db, `${prefix}${name}`, KV_INDEXES[name]);
    },
  },
];

export const KV_SCHEMA_COMPONENT = 'kv';

/** What the backend needs of a connection: a `MongoStore`'s open connection has it. */
export type MongoKvConnection = Pick<OpenMongo, 'client' | 'db' | 'deployment'>;

/** Options of `new MongoKvBackend(source, options)`. */
export interface MongoKvOptions {
  /** Prefix of the collections, as the agent store's `collectionPrefix` (default `kode_`). */
  collectionPrefix?: string;
  /** Retries of a standalone server's optimistic mutation before giving up with `ConflictError` (default 50). */
  maxAttempts?: number;
  /** Check the KV schema instead of creating or upgrading it (the store is read-only). */
  readOnly?: boolean;
  /**
   * Without transactions: how long a multi-record write's lease outlives a
   * process that died holding it (renewed every third of this while held).
   * Default 10 000 ms, as the agent store's `lockLeaseMs`.
   */
  leaseMs?: number;
  /**
   * Without transactions: how long an operation waits for another process's
   * multi-record write on the same instance before `TimeoutError`. Default 30 000 ms.
   */
  lockWaitTimeoutMs?: number;
  /** The connection's timeouts, named by a `TimeoutError` (a `MongoStore` passes its own). */
  bounds?: MongoBounds;
}

/** What the backend guarantees, with a reason for each `false` (for the KV conformance harness). */
export interface MongoKvCapabilities {
  /** A write of several records is seen whole or not at all by every other operation. */
  atomicBatches: boolean;
  reasons: { atomicBatches?: string };
}

// ---- documents -------------------------------------------------------------

/** `<prefix>kv_instances`: `_id` = instance id. */
export interface KvInstanceDocument {
  _id: string;
  name: string;
  description: string;
  createdAt: number;
  updatedAt: number;
  incarnation: string;
}

export function toKvInstanceDocument(row: KvInstanceRow, incarnation: string): KvInstanceDocument {
  return {
    _id: row.id,
    name: row.name,
    description: row.description,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    incarnation,
  };
}

export function fromKvInstanceDocument(doc: MongoDocument): KvInstanceRow {
  return {
    id: String(doc._id),
    name: String(doc.name),
    description: String(doc.description),
    createdAt: Number(doc.createdAt),
    updatedAt: Number(doc.updatedAt),
  };
}

/** `<prefix>kv_records`: one document per record. */
export interface KvRecordDocument extends KvRecordRow {
  incarnation: string;
  /** Random per write: the standalone server's optimistic concurrency token. */
  rev: string;
  /** Without transactions: the holder of the multi-record write this row belongs to, while it runs. */
  batch?: string;
}

export function toKvRecordDocument(row: KvRecordRow, incarnation: string, rev: string): KvRecordDocument {
  return {
    instanceId: row.instanceId,
    incarnation,
    namespace: row.namespace,
    key: row.key,
    id: row.id,
    value: row.value,
    metadata: row.metadata,
    version: row.version,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    expiresAt: row.expiresAt,
    createdBy: row.createdBy,
    updatedBy: row.updatedBy,
    rev,
  };
}

/** A stored record back as a row; `value` / `metadata` only when the document was read with them. */
export function fromKvRecordDocument(doc: MongoDocument): KvQueryRow {
  const row: KvQueryRow = {
    instanceId: String(doc.instanceId),
    namespace: String(doc.namespace),
    key: String(doc.key),
    id: String(doc.id),
    version: Number(doc.version),
    createdAt: Number(doc.createdAt),
    updatedAt: Number(doc.updatedAt),
    expiresAt: doc.expiresAt === null || doc.expiresAt === undefined ? null : Number(doc.expiresAt),
    createdBy: typeof doc.createdBy === 'string' ? doc.createdBy : null,
    updatedBy: typeof doc.updatedBy === 'string' ? doc.updatedBy : null,
  };
  if (typeof doc.value === 'string') row.value = doc.value;
  if (typeof doc.metadata === 'string') row.metadata = doc.metadata;
  return row;
}

// ---- filters ---------------------------------------------------------------

/** Rows visible at `now`: no expiry, or one still ahead (`{expiresAt: null}` also matches a missing field). */
export function kvLiveFilter(now: number): MongoDocument {
  return { $or: [{ expiresAt: null }, { expiresAt: { $gt: now } }] };
}

/** The rows of these keys, grouped by namespace so each group is one index range. */
export function kvKeysFilter(refs: readonly KvKeyRef[]): MongoDocument {
  const byNamespace = new Map<string, string[]>();
  for (const ref of refs)
    byNamespace.set(ref.namespace, [...(byNamespace.get(ref.namespace) ?? []), ref.key]);
  return { $or: [...byNamespace].map(([namespace, keys]) => ({ namespace, key: { $in: keys } })) };
}

const COLUMN_KINDS = {
  key: 'string',
  namespace: 'string',
  version: 'number',
  createdAt: 'number',
  updatedAt: 'number',
} as const;

const RANGE_OPERATORS = { gt: '$gt', gte: '$gte', lt: '$lt', lte: '$lte' } as const;

/** One column condition as an exact MongoDB condition, or `undefined` when it has none. */
function columnCondition(predicate: KvPredicate): MongoDocument | undefined {
  if (predicate.kind === 'in') {
    if (predicate.field.kind !== 'column') return undefined;
    const kind = COLUMN_KINDS[predicate.field.column];
    if (!predicate.operands.every((operand) => typeof operand === kind)) return undefined;
    return { [predicate.field.column]: { [predicate.negated ? '$nin' : '$in']: predicate.operands } };
  }
  if (predicate.kind !== 'compare' || predicate.field.kind !== 'column') return undefined;
  const { column } = predicate.field;
  const { operator, operand } = predicate;
  if (typeof operand !== COLUMN_KINDS[column]) return undefined;
  if (operator === 'eq') return { [column]: operand };
  if (operator === 'neq') return { [column]: { $ne: operand } };
  if (operator in RANGE_OPERATORS) {
    return { [column]: { [RANGE_OPERATORS[operator as keyof typeof RANGE_OPERATORS]]: operand } };
  }
  if (operator === 'startsWith' && typeof operand === 'string') {
    // An empty prefix gives no upper bound: `$gte: ''` keeps every string, as startsWith('') does.
    const upper = prefixUpperBound(operand);
    return { [column]: upper === undefined ? { $gte: operand } : { $gte: operand, $lt: upper } };
  }
  return undefined;
}

/**
 * The conditions of a query's top-level conjunction that are on columns and
 * translate exactly (equality, ranges, `in`, `startsWith` as a range), as
 * MongoDB conditions ANDed together: a narrowing that never drops a record
 * the full predicate keeps. Everything else is left to the evaluator.
 */
export function kvColumnPrefilter(where: KvPredicate): MongoDocument[] {
  if (where.kind !== 'and') {
    const single = columnCondition(where);
    return single ? [single] : [];
  }
  return where.items.flatMap((item) => kvColumnPrefilter(item));
}

function readsDocument(predicate: KvPredicate, document: 'value' | 'metadata'): boolean {
  if (predicate.kind === 'and' || predicate.kind === 'or') {
    return predicate.items.some((item) => readsDocument(item, document));
  }
  return predicate.field.kind === 'json' && predicate.field.document === document;
}

/** Whether evaluating the plan (conditions and order) needs each JSON document. */
export function kvDocumentsRead(plan: Pick<KvQueryPlan, 'where' | 'orderBy'>): {
  value: boolean;
  metadata: boolean;
} {
  const sorts = (document: 'value' | 'metadata') =>
    plan.orderBy.some((key) => key.field.kind === 'json' && key.field.document === document);
  return {
    value: readsDocument(plan.where, 'value') || sorts('value'),
    metadata: readsDocument(plan.where, 'metadata') || sorts('metadata'),
  };
}

/** The map key of a record's row: its namespace and key. */
export function refKey(namespace: string, key: string): string {
  return JSON.stringify([namespace, key]);
}

// ---- sizes -------------------------------------------------------------------

/** Stands in for the incarnation and revision ids (random UUIDs) when a record's document is measured. */
const UUID_SIZED = '00000000-0000-0000-0000-000000000000';

/**
 * Refuses rows whose document would not fit in MongoDB, before anything is
 * written, naming the field to shrink: the value, the metadata, or the two
 * together.
 */
export function assertRecordsFit(rows: readonly KvRecordRow[]): void {
  for (const row of rows) {
    // Names, keys and ids are short (at most 512 bytes each): only a long value or metadata can matter.
    if ((row.value.length + row.metadata.length) * 3 + 16 * 1024 <= MAX_STORED_DOCUMENT_BYTES) continue;
    const size = (record: KvRecordRow) => bsonSize(toKvRecordDocument(record, UUID_SIZED, UUID_SIZED));
    const bytes = size(row);
    if (bytes <= MAX_STORED_DOCUMENT_BYTES) continue;
    const field =
      size({ ...row, metadata: '' }) > MAX_STORED_DOCUMENT_BYTES
        ? 'value'
        : size({ ...row, value: '' }) > MAX_STORED_DOCUMENT_BYTES
          ? 'metadata'
          : 'value and metadata';
    throw documentTooLarge(
      `${field} of the record ${JSON.stringify(row.namespace)}/${JSON.stringify(row.key)}`,
      bytes,
      { backend: 'mongo' },
      field,
    );
  }
}

// ---- the backend -------------------------------------------------------------

interface Collections {
  connection: MongoKvConnection;
  instances: MongoCollection;
  records: MongoCollection;
  /** Without transactions: the batch protocol. */
  batches: KvBatches;
}

interface InstanceRef {
  incarnation: string;
}

/** A stored row as read for a mutation: the row, and what identifies this exact version of it. */
interface CurrentRow {
  row: KvRecordRow;
  _id: unknown;
  rev: string;
  doc: MongoDocument;
}

const MAX_BATCH_FIND = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A lost race's pause before the next attempt: a little more each time, with jitter. */
function raceBackoff(attempt: number): Promise<unknown> {
  return sleep(Math.random() * Math.min(100, 2 * attempt));
}

/** KV storage in MongoDB; see the module comment. */
export class MongoKvBackend implements KvBackend {
  readonly name = 'mongo';
  private readonly prefix: string;
  private readonly maxAttempts: number;
  private readonly readOnly: boolean;
  private readonly leaseMs: number;
  private readonly lockWaitTimeoutMs: number;
  private readonly bounds: MongoBounds | undefined;
  private opened: Collections | undefined;

  constructor(
    private readonly source: () => Promise<MongoKvConnection>,
    options: MongoKvOptions = {},
  ) {
    this.prefix = options.collectionPrefix ?? 'kode_';
    this.maxAttempts = options.maxAttempts ?? 50;
    this.readOnly = options.readOnly ?? false;
    this.leaseMs = options.leaseMs ?? 10_000;
    this.lockWaitTimeoutMs = options.lockWaitTimeoutMs ?? 30_000;
    this.bounds = options.bounds;
  }

  /** The driver's errors read as the agent store reads them (mongo-errors.ts): a lost connection is a `ConnectionError`. */
  classifyError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined {
    return classifyMongoError(error, ctx, this.bounds);
  }

  /**
   * Writes of several records are atomic for every reader on any deployment:
   * in transactions, or through the batch protocol without them. Known once open.
   */
  get capabilities(): MongoKvCapabilities {
    return { atomicBatches: true, reasons: {} };
  }

  async open(): Promise<void> {
    const connection = await this.source();
    if (this.readOnly) {
      await assertComponentReadable(connection.db, this.prefix, KV_SCHEMA_COMPONENT, KV_MIGRATIONS);
    } else {
      await migrateComponent(connection.db, this.prefix, KV_SCHEMA_COMPONENT, KV_MIGRATIONS);
    }
    const instances = connection.db.collection(`${this.prefix}kv_instances`);
    const records = connection.db.collection(`${this.prefix}kv_records`);
    const undo = connection.db.collection(`${this.prefix}kv_undo`);
    this.opened = {
      connection,
      instances,
      records,
      batches: new KvBatches(
        { instances, records, undo },
        { leaseMs: this.leaseMs, waitMs: this.lockWaitTimeoutMs, readOnly: this.readOnly },
      ),
    };
  }

  private collections(): Collections {
    if (!this.opened) throw new KodeStoreError('the MongoDB KV backend is not open', { backend: 'mongo' });
    return this.opened;
  }

  private get transactions(): boolean {
    return this.collections().connection.deployment.transactions;
  }

  // ---- instances ----------------------------------------------------------

  async insertInstance(row: KvInstanceRow): Promise<boolean> {
    const { instances, records, batches } = this.collections();
    const incarnation = randomUUID();
    try {
      await instances.insertOne(toKvInstanceDocument(row, incarnation) as unknown as MongoDocument);
    } catch (error) {
      if ((error as { code?: unknown }).code === DUPLICATE_KEY) return false;
      throw error;
    }
    // Leftovers of an earlier instance with this id (a delete whose clean-up
    // was interrupted) are invisible already; this only reclaims the space.
    const older = { instanceId: row.id, incarnation: { $ne: incarnation } };
    await records.deleteMany(older).catch(() => undefined);
    await batches.forget(older).catch(() => undefined);
    return true;
  }

  async getInstance(id: string): Promise<KvInstanceRow | undefined> {
    const doc = await this.collections().instances.findOne({ _id: id });
    return doc ? fromKvInstanceDocument(doc) : undefined;
  }

  async listInstances(): Promise<KvInstanceRow[]> {
    const docs = await this.collections().instances.find({}).sort({ createdAt: 1, _id: 1 }).toArray();
    return docs.map(fromKvInstanceDocument);
  }

  async updateInstance(
    id: string,
    changes: { name?: string; description?: string },
    now: number,
  ): Promise<KvInstanceRow | undefined> {
    const set: MongoDocument = { updatedAt: { $max: [now, { $add: ['$updatedAt', 1] }] } };
    // $literal: a name starting with "$" would otherwise be read as a field path.
    if (changes.name !== undefined) set.name = { $literal: changes.name };
    if (changes.description !== undefined) set.description = { $literal: changes.description };
    const doc = await this.collections().instances.findOneAndUpdate({ _id: id }, [{ $set: set }], {
      returnDocument: 'after',
    });
    return doc ? fromKvInstanceDocument(doc) : undefined;
  }

  async deleteInstance(id: string): Promise<boolean> {
    const { instances, records, batches } = this.collections();
    // Deleting the instance document is the atomic step: from then on its
    // records are unreachable. Removing them can take long for a big
    // instance, so it is not squeezed into a transaction.
    const deleted = await instances.deleteOne({ _id: id });
    if (deleted.deletedCount === 0) return false;
    await records.deleteMany({ instanceId: id });
    await batches.forget({ instanceId: id });
    return true;
  }

  private async instance(id: string, session?: MongoSession): Promise<InstanceRef | undefined> {
    const doc = await this.collections().instances.findOne(
      { _id: id },
      withSession(session, { projection: { incarnation: 1 } }),
    );
    return doc ? { incarnation: String(doc.incarnation) } : undefined;
  }

  /**
   * Runs a read of several records against the instance: as it is where
   * transactions keep writes whole, and otherwise so that it never sees a
   * multi-record write in part (`KvBatches.readConsistent`).
   */
  private read<T>(
    instanceId: string,
    operation: string,
    body: (instance: InstanceRef) => Promise<T>,
  ): Promise<T | undefined> {
    if (!this.transactions) return this.collections().batches.readConsistent(instanceId, operation, body);
    return this.instance(instanceId).then((instance) => (instance ? body(instance) : undefined));
  }

  // ---- records ------------------------------------------------------------

  async getRecords(
    instanceId: string,
    refs: KvKeyRef[],
    now: number,
  ): Promise<Array<KvRecordRow | undefined> | undefined> {
    const aligned = (rows: Map<string, CurrentRow>) =>
      refs.map((ref) => rows.get(refKey(ref.namespace, ref.key))?.row);
    if (this.transactions || refs.length > 1) {
      return this.read(instanceId, 'kv.getMany', async (instance) =>
        aligned(await this.readRows(instanceId, instance, refs, now)),
      );
    }
    // One record needs no snapshot, only a row that no running batch may still take back.
    for (;;) {
      const instance = await this.instance(instanceId);
      if (!instance) return undefined;
      const rows = await this.readRows(instanceId, instance, refs, now);
      if (!(await this.waitForBatches(instanceId, rows, 'kv.get'))) return aligned(rows);
    }
  }

  /** Waits when a row carries the mark of a batch still running; true when it did (read the rows again). */
  private waitForBatches(instanceId: string, rows: Map<string, CurrentRow>, operation: string) {
    const marks = [...rows.values()].map((current) => current.doc.batch);
    return this.collections().batches.waitForMarkedRows(instanceId, marks, operation);
  }

  /** The stored rows of `refs` (live at `now`, or all when `now` is undefined), by namespace and key. */
  private async readRows(
    instanceId: string,
    instance: InstanceRef,
    refs: readonly KvKeyRef[],
    now: number | undefined,
    session?: MongoSession,
  ): Promise<Map<string, CurrentRow>> {
    const found = new Map<string, CurrentRow>();
    if (refs.length === 0) return found;
    const { records } = this.collections();
    for (let start = 0; start < refs.length; start += MAX_BATCH_FIND) {
      const batch = refs.slice(start, start + MAX_BATCH_FIND);
      const conditions: MongoDocument[] = [
        { instanceId, incarnation: instance.incarnation },
        kvKeysFilter(batch),
      ];
      if (now !== undefined) conditions.push(kvLiveFilter(now));
      const docs = await records.find({ $and: conditions }, withSession(session)).toArray();
      for (const doc of docs) {
        found.set(refKey(String(doc.namespace), String(doc.key)), {
          row: fromKvRecordDocument(doc) as KvRecordRow,
          _id: doc._id,
          rev: String(doc.rev),
          doc,
        });
      }
    }
    return found;
  }

  async mutate(
    instanceId: string,
    refs: KvKeyRef[],
    options: { createInstance?: KvInstanceRow },
    mutation: KvMutation,
  ): Promise<boolean> {
    if (this.transactions) return this.mutateInTransaction(instanceId, refs, options, mutation);
    if (refs.length > 1) return this.mutateInBatch(instanceId, refs, options, mutation);
    return this.mutateOptimistically(instanceId, refs, options, mutation);
  }

  private async mutateInTransaction(
    instanceId: string,
    refs: KvKeyRef[],
    options: { createInstance?: KvInstanceRow },
    mutation: KvMutation,
  ): Promise<boolean> {
    const { connection, instances, records } = this.collections();
    for (let attempt = 1; ; attempt++) {
      try {
        return await runAtomically(connection, async (session) => {
          let instance = await this.instance(instanceId, session);
          if (!instance && options.createInstance) {
            const incarnation = randomUUID();
            await instances.insertOne(
              toKvInstanceDocument(options.createInstance, incarnation) as unknown as MongoDocument,
              withSession(session),
            );
            instance = { incarnation };
          }
          if (!instance) return false;
          const current = await this.readRows(instanceId, instance, refs, undefined, session);
          const plan = mutation(refs.map((ref) => current.get(refKey(ref.namespace, ref.key))?.row));
          // Inside the transaction: a refused row takes the instance it created with it.
          assertRecordsFit(plan.put);
          const operations = planOperations(instanceId, instance.incarnation, plan);
          if (operations.length > 0)
            await records.bulkWrite(operations, withSession(session, { ordered: true }));
          return true;
        });
      } catch (error) {
        // Two writers creating the same instance or key at once: the loser
        // hits the unique index; a new transaction then reads the winner's.
        if ((error as { code?: unknown }).code === DUPLICATE_KEY && attempt < this.maxAttempts) continue;
        throw error;
      }
    }
  }

  /**
   * Creates the instance for a write that asked for it, after checking that
   * the write's rows fit (on a new instance every key is absent), so that a
   * refused write creates nothing either.
   */
  private async createFor(
    options: { createInstance?: KvInstanceRow },
    refs: KvKeyRef[],
    mutation: KvMutation,
  ): Promise<boolean> {
    if (!options.createInstance) return false;
    assertRecordsFit(mutation(refs.map(() => undefined)).put);
    await this.insertInstance(options.createInstance);
    return true;
  }

  private async mutateOptimistically(
    instanceId: string,
    refs: KvKeyRef[],
    options: { createInstance?: KvInstanceRow },
    mutation: KvMutation,
  ): Promise<boolean> {
    for (let attempt = 1; attempt <= this.maxAttempts; ) {
      let instance = await this.instance(instanceId);
      if (!instance && (await this.createFor(options, refs, mutation))) {
        instance = await this.instance(instanceId);
      }
      if (!instance) return false;
      const current = await this.readRows(instanceId, instance, refs, undefined);
      // Never build on a row that a running batch may still take back.
      if (await this.waitForBatches(instanceId, current, 'kv.mutate')) continue;
      const plan = mutation(refs.map((ref) => current.get(refKey(ref.namespace, ref.key))?.row));
      assertRecordsFit(plan.put);
      if (await this.applyConditionally(instanceId, instance, current, plan)) return true;
      // Lost a race: decide again on fresh rows.
      await raceBackoff(attempt++);
    }
    throw this.gaveUp();
  }

  private gaveUp(): ConflictError {
    return new ConflictError(
      `gave up after ${this.maxAttempts} attempts: other writers kept changing these keys`,
      { backend: 'mongo', operation: 'kv.mutate' },
    );
  }

  /**
   * Applies a plan step by step, each step conditional on the row being the
   * version that was read (`rev`), or absent when it was absent. On a lost
   * race the steps already taken are undone (again conditionally: a row
   * someone changed since is left alone) and false is returned.
   */
  private async applyConditionally(
    instanceId: string,
    instance: InstanceRef,
    current: Map<string, CurrentRow>,
    plan: KvMutationPlan,
  ): Promise<boolean> {
    const { records } = this.collections();
    const undo: Array<() => Promise<unknown>> = [];
    const lost = async () => {
      for (const step of undo.reverse()) await step().catch(() => undefined);
      return false;
    };
    for (const ref of plan.remove) {
      const existing = current.get(refKey(ref.namespace, ref.key));
      if (!existing) continue;
      const removed = await records.deleteOne({ _id: existing._id, rev: existing.rev });
      if (removed.deletedCount === 0) return lost();
      undo.push(() => records.insertOne({ ...existing.doc }));
    }
    for (const row of plan.put) {
      const rev = randomUUID();
      const doc = toKvRecordDocument(row, instance.incarnation, rev) as unknown as MongoDocument;
      const existing = current.get(refKey(row.namespace, row.key));
      if (
        existing &&
        plan.remove.every((ref) => refKey(ref.namespace, ref.key) !== refKey(row.namespace, row.key))
      ) {
        const replaced = await records.replaceOne({ _id: existing._id, rev: existing.rev }, doc);
        if (replaced.matchedCount === 0) return lost();
        const { _id, ...previous } = existing.doc;
        undo.push(() => records.replaceOne({ _id: existing._id, rev }, previous));
      } else {
        try {
          await records.insertOne(doc);
        } catch (error) {
          if ((error as { code?: unknown }).code === DUPLICATE_KEY) return lost();
          throw error;
        }
        undo.push(() =>
          records.deleteOne({
            instanceId,
            incarnation: instance.incarnation,
            namespace: row.namespace,
            key: row.key,
            rev,
          }),
        );
      }
    }
    return true;
  }

  /**
   * A write of several records without transactions, under the instance's
   * batch lease (see mongo-kv-batches.ts): undo log first, then every row in
   * one ordered bulk write, each step conditional on the version read. A
   * lost race with a single-key writer is undone from the log and tried
   * again; readers wait until the batch is over.
   */
  private async mutateInBatch(
    instanceId: string,
    refs: KvKeyRef[],
    options: { createInstance?: KvInstanceRow },
    mutation: KvMutation,
  ): Promise<boolean> {
    const { batches } = this.collections();
    let held = await batches.acquire(instanceId, 'put', 'kv.setMany');
    if (!held && (await this.createFor(options, refs, mutation))) {
      held = await batches.acquire(instanceId, 'put', 'kv.setMany');
    }
    if (!held) return false;
    try {
      for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
        const current = await this.readRows(instanceId, held, refs, undefined);
        const plan = mutation(refs.map((ref) => current.get(refKey(ref.namespace, ref.key))?.row));
        assertRecordsFit(plan.put);
        const steps = batchSteps(held, current, plan);
        await batches.log(steps.undo);
        if (await this.applyBatch(steps)) {
          if (!(await held.renew())) {
            await batches.undoAttempt(held, steps.undo);
            throw lostLease(instanceId);
          }
          await held.finish();
          return true;
        }
        await batches.undoAttempt(held, steps.undo);
        await raceBackoff(attempt);
      }
      throw this.gaveUp();
    } catch (error) {
      await held.abandon();
      throw error;
    }
  }

  /** One ordered bulk write of a batch's steps; false when one of them lost a race. */
  private async applyBatch(steps: BatchSteps): Promise<boolean> {
    if (steps.operations.length === 0) return true;
    try {
      const result = await this.collections().records.bulkWrite(steps.operations, { ordered: true });
      return result.matchedCount === steps.replaced && result.deletedCount === steps.removed;
    } catch (error) {
      if ((error as { code?: unknown }).code === DUPLICATE_KEY) return false;
      throw error;
    }
  }

  async deleteNamespace(instanceId: string, namespace: string, now: number): Promise<number | undefined> {
    const { connection, records, batches } = this.collections();
    if (connection.deployment.transactions) {
      const instance = await this.instance(instanceId);
      if (!instance) return undefined;
      const scope = { instanceId, incarnation: instance.incarnation, namespace };
      return runAtomically(connection, async (session) => {
        // Expired rows go first and uncounted; what the second delete removes
        // is exactly the rows live at `now`.
        await records.deleteMany({ ...scope, expiresAt: { $lte: now } }, withSession(session));
        const removed = await records.deleteMany(scope, withSession(session));
        return removed.deletedCount;
      });
    }
    // Without transactions: mark the rows (a new `rev`, so that single-key
    // writers that read them before retry and then wait), count the live
    // ones, pass the point of no return, delete the marked rows.
    const held = await batches.acquire(instanceId, 'delete', 'kv.deleteNamespace');
    if (!held) return undefined;
    try {
      const scope = { instanceId, incarnation: held.incarnation, namespace };
      await records.updateMany(scope, { $set: { batch: held.owner, rev: randomUUID() } });
      const live = await records.countDocuments({
        $and: [{ ...scope, batch: held.owner }, kvLiveFilter(now)],
      });
      if (!(await held.commitDelete())) throw lostLease(instanceId);
      await records.deleteMany({ batch: held.owner });
      // Past the point of no return a failed release is harmless: the next holder finishes the deletion.
      await held.release().catch(() => undefined);
      return live;
    } catch (error) {
      await held.abandon();
      throw error;
    }
  }

  async namespaces(instanceId: string, now: number): Promise<string[] | undefined> {
    return this.read(instanceId, 'kv.getNamespaces', async (instance) => {
      const groups = await this.collections()
        .records.aggregate([
          { $match: { $and: [{ instanceId, incarnation: instance.incarnation }, kvLiveFilter(now)] } },
          { $group: { _id: '$namespace' } },
          // Strings sort by UTF-8 bytes: code point order.
          { $sort: { _id: 1 } },
        ])
        .toArray();
      return groups.map((group) => String(group._id));
    });
  }

  async countRecords(
    instanceId: string,
    namespace: string | undefined,
    now: number,
  ): Promise<number | undefined> {
    return this.read(instanceId, 'kv.getRecordCount', (instance) => {
      const scope: MongoDocument = { instanceId, incarnation: instance.incarnation };
      if (namespace !== undefined) scope.namespace = namespace;
      return this.collections().records.countDocuments({ $and: [scope, kvLiveFilter(now)] });
    });
  }

  async query(plan: KvQueryPlan, now: number): Promise<{ rows: KvQueryRow[]; total: number } | undefined> {
    return this.read(plan.instanceId, 'kv.query', (instance) => this.runQuery(plan, instance, now));
  }

  private async runQuery(
    plan: KvQueryPlan,
    instance: InstanceRef,
    now: number,
  ): Promise<{ rows: KvQueryRow[]; total: number }> {
    const { records } = this.collections();
    const scope: MongoDocument = { instanceId: plan.instanceId, incarnation: instance.incarnation };
    if (plan.namespace !== undefined) scope.namespace = plan.namespace;
    const read = kvDocumentsRead(plan);
    const projection: MongoDocument = { rev: 0, incarnation: 0, batch: 0 };
    if (!read.value) projection.value = 0;
    if (!read.metadata) projection.metadata = 0;
    const cursor = records
      .find({ $and: [scope, kvLiveFilter(now), ...kvColumnPrefilter(plan.where)] }, { projection })
      .batchSize(MAX_BATCH_FIND);
    const views: Array<ReturnType<typeof viewOfRow> & { row: KvQueryRow }> = [];
    for await (const doc of cursor) {
      const row = fromKvRecordDocument(doc);
      views.push({ ...viewOfRow(row, { backend: 'mongo', operation: 'kv.query' }), row });
    }
    const result = evaluatePlan(views, plan);
    const rows = result.records.map((view) => view.row);
    // What the evaluation did not need but the caller wants: fetched for this page only.
    const missing = (plan.needsValue && !read.value) || (plan.needsMetadata && !read.metadata);
    if (missing && rows.length > 0) {
      const full = await this.readRows(plan.instanceId, instance, rows, undefined);
      for (const row of rows) {
        const stored = full.get(refKey(row.namespace, row.key))?.row;
        if (plan.needsValue && stored) row.value = stored.value;
        if (plan.needsMetadata && stored) row.metadata = stored.metadata;
      }
    }
    return { rows, total: result.total };
  }

  async sweepExpired(now: number): Promise<number> {
    const removed = await this.collections().records.deleteMany({ expiresAt: { $lte: now } });
    return removed.deletedCount;
  }
}

/** A batch attempt: its undo log, its ordered steps, and how many replacements and removals must match. */
interface BatchSteps {
  undo: UndoEntry[];
  operations: MongoDocument[];
  replaced: number;
  removed: number;
}

/**
 * The steps of one batch attempt: removals, then whole-row writes, each
 * conditional on the version read (`rev`) or on the key being absent (the
 * unique index), each row marked with the batch's holder; and the undo
 * entry of each.
 */
export function batchSteps(
  held: Pick<HeldBatch, 'owner' | 'instanceId' | 'incarnation'>,
  current: ReadonlyMap<string, Pick<CurrentRow, '_id' | 'rev' | 'doc'>>,
  plan: KvMutationPlan,
): BatchSteps {
  const { owner: batch, instanceId, incarnation } = held;
  const steps: BatchSteps = { undo: [], operations: [], replaced: 0, removed: 0 };
  // Grouped by kind (removals, replacements, insertions), so the driver sends
  // at most three commands; their order across keys does not matter.
  const inserts: MongoDocument[] = [];
  const replaces: MongoDocument[] = [];
  const removedKeys = new Set<string>();
  for (const ref of plan.remove) {
    const existing = current.get(refKey(ref.namespace, ref.key));
    removedKeys.add(refKey(ref.namespace, ref.key));
    if (!existing) continue;
    steps.undo.push({ batch, instanceId, incarnation, ...ref, rev: null, prev: existing.doc });
    steps.operations.push({ deleteOne: { filter: { _id: existing._id, rev: existing.rev } } });
    steps.removed++;
  }
  for (const row of plan.put) {
    const key = refKey(row.namespace, row.key);
    const rev = randomUUID();
    const document = { ...toKvRecordDocument(row, incarnation, rev), batch };
    const existing = removedKeys.has(key) ? undefined : current.get(key);
    const ref = { namespace: row.namespace, key: row.key };
    steps.undo.push({ batch, instanceId, incarnation, ...ref, rev, prev: existing?.doc ?? null });
    if (existing) {
      replaces.push({
        replaceOne: { filter: { _id: existing._id, rev: existing.rev }, replacement: document },
      });
    } else {
      inserts.push({ insertOne: { document } });
    }
  }
  steps.replaced = replaces.length;
  steps.operations.push(...replaces, ...inserts);
  return steps;
}

/** A plan as one ordered bulk write: removals, then whole-row upserts. */
export function planOperations(
  instanceId: string,
  incarnation: string,
  plan: KvMutationPlan,
): MongoDocument[] {
  const operations: MongoDocument[] = [];
  for (const ref of plan.remove) {
    operations.push({
      deleteOne: { filter: { instanceId, incarnation, namespace: ref.namespace, key: ref.key } },
    });
  }
  for (const row of plan.put) {
    operations.push({
      replaceOne: {
        filter: { instanceId, incarnation, namespace: row.namespace, key: row.key },
        replacement: toKvRecordDocument(row, incarnation, randomUUID()),
        upsert: true,
      },
    });
  }
  return operations;
}
