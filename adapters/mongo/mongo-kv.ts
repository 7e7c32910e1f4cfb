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
import type { KvQueryPlan } from '../../src/kv/kv-query.js';
import type { MongoCollection, MongoDocument, MongoSession } from './mongo-config.js';
import {
  type OpenMongo,
  raceBackoff,
  runAtomically,
  runAtomicallyRetryingInserts,
  withSession,
} from './mongo-connection.js';
import { classifyMongoError, isDuplicateKey, type MongoBounds } from './mongo-errors.js';
import { KvBatches, lostLease } from './mongo-kv-batches.js';
import {
  assertRecordsFit,
  type BatchSteps,
  batchSteps,
  type CurrentRow,
  fromKvInstanceDocument,
  planOperations,
  refKey,
  toKvInstanceDocument,
  toKvRecordDocument,
} from './mongo-kv-documents.js';
import { kvLiveFilter, readKvRows, runKvQuery } from './mongo-kv-query.js';
import { prepareComponent } from './mongo-schema.js';

/**
 * The KV backend on MongoDB (`createKvStore(new MongoKvBackend(...))`, or
 * `mongoStore.kvBackend()`), in the agent store's database and prefix, on
 * the agent store's connection layer (mongo-connection.ts: the client, the
 * deployment, atomic runs and retries) with its schema beside the agent
 * store's (mongo-schema.ts). Documents and write plans are in
 * mongo-kv-documents.ts, queries in mongo-kv-query.ts.
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
 * - Queries narrow the rows on the server, then run the shared plain
 *   evaluator over what remains (mongo-kv-query.ts), so every answer is the
 *   evaluator's own.
 */

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
    await prepareComponent(connection.db, this.prefix, 'kv', this.readOnly);
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
      if (isDuplicateKey(error)) return false;
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
  private readRows(
    instanceId: string,
    instance: InstanceRef,
    refs: readonly KvKeyRef[],
    now: number | undefined,
    session?: MongoSession,
  ): Promise<Map<string, CurrentRow>> {
    const scope = { instanceId, incarnation: instance.incarnation };
    return readKvRows(this.collections().records, scope, refs, now, session);
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
    // Two writers creating the same instance or key at once: the loser hits
    // the unique index, and a new transaction reads the winner's.
    return runAtomicallyRetryingInserts(connection, this.maxAttempts, async (session) => {
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
      if (operations.length > 0) await records.bulkWrite(operations, withSession(session, { ordered: true }));
      return true;
    });
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
          if (isDuplicateKey(error)) return lost();
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
      if (isDuplicateKey(error)) return false;
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
    return this.read(plan.instanceId, 'kv.query', (instance) =>
      runKvQuery(this.collections().records, plan, instance.incarnation, now),
    );
  }

  async sweepExpired(now: number): Promise<number> {
    const removed = await this.collections().records.deleteMany({ expiresAt: { $lte: now } });
    return removed.deletedCount;
  }
}
