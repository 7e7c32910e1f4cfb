import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ConflictError, TimeoutError } from '../../src/errors.js';
import type { MongoCollection, MongoDocument } from './mongo-config.js';
import { nextBackoff, sleep } from './mongo-connection.js';
import { isDuplicateKey } from './mongo-errors.js';

/**
 * Multi-document KV writes on a server without transactions (a standalone
 * mongod), all or nothing as every other operation sees them.
 *
 * What MongoDB guarantees there: each single-document write is atomic; a
 * command touching several documents (`updateMany`, `deleteMany`, a bulk
 * write) is not, and a query that reads several documents is not a snapshot
 * (it may read one document before a concurrent write and another after it).
 * So no single write can publish a batch to a reader that is already
 * scanning: readers have to take part. The protocol:
 *
 * - **The batch lease** lives in the instance document: `lease` (holder,
 *   expiry by the server's clock, kind) and `leaseSeq`, which every claim and
 *   release increments. One multi-document writer per instance at a time
 *   (`setMany`, `deleteNamespace`), waiting for each other; claiming is one
 *   atomic `findOneAndUpdate` that takes the lease only if it is free or
 *   expired, renewed every third of the lease while held.
 * - **Readers of several records** (counts, queries, namespaces, `getMany`)
 *   read the instance document before and after their reads: they wait while
 *   a lease is held, and read again when `leaseSeq` moved meanwhile. So a
 *   reader never counts a batch half-applied.
 * - **Rows a batch writes carry its holder as `batch`** until the batch is
 *   over; single-key writers and single-key reads that meet such a row wait
 *   for the batch, so no one builds on (or returns) a value that may be undone.
 * - **An undo log is written before the rows** (`<prefix>kv_undo`: the row as
 *   it was, the revision the batch writes). A batch that loses a race with a
 *   single-key writer undoes itself from it and tries again; a batch whose
 *   process died is undone by whoever next takes the expired lease (the dead
 *   holder's lease is kept as `previous` until that is done, so a recovery
 *   interrupted in turn is finished by the next one). `deleteNamespace` marks
 *   its rows first and writes its point of no return (`phase: 'delete'`) into
 *   the lease before deleting them: a dead deleter's marks are cleared, or
 *   its deletion finished.
 *
 * The limit: a holder that stalls longer than its lease (the renewal cannot
 * reach the server, or the process is frozen) can lose the lease while still
 * writing; the batch then fails with `ConflictError`, but a reader may have
 * seen it in part meanwhile. Transactions (a replica set) have no such limit.
 */

/** A lease as stored in the instance document. */
export interface BatchLease {
  owner: string;
  until: Date;
  kind: 'put' | 'delete';
  /** Set once a delete batch is past its point of no return: its marked rows are deleted, not restored. */
  phase?: 'delete';
  /** The expired lease this holder took over and has not finished undoing yet. */
  previous?: BatchLease | null;
}

/** What an operation reads of the instance document. */
export interface InstanceState {
  incarnation: string;
  lease?: BatchLease;
  leaseSeq: number;
}

/** `<prefix>kv_undo`: how to take back one row of a batch. */
export interface UndoEntry {
  batch: string;
  instanceId: string;
  incarnation: string;
  namespace: string;
  key: string;
  /** The revision the batch writes for the row; `null` for a removal. */
  rev: string | null;
  /** The stored document before the batch (with its `_id`), or `null` when the row did not exist. */
  prev: MongoDocument | null;
}

export const INSTANCE_STATE_PROJECTION = { incarnation: 1, lease: 1, leaseSeq: 1 } as const;

export function instanceState(doc: MongoDocument): InstanceState {
  const state: InstanceState = {
    incarnation: String(doc.incarnation),
    leaseSeq: typeof doc.leaseSeq === 'number' ? doc.leaseSeq : 0,
  };
  if (doc.lease && typeof doc.lease === 'object') state.lease = doc.lease as BatchLease;
  return state;
}

/** Update pipeline that claims the instance's batch lease if it is free or expired (by the server's clock). */
export function claimBatchLeasePipeline(owner: string, kind: BatchLease['kind'], leaseMs: number) {
  const free = { $lte: [{ $ifNull: ['$lease.until', new Date(0)] }, '$$NOW'] };
  return [
    {
      $set: {
        // $literal: strings starting with "$" would otherwise be read as field paths.
        lease: {
          $cond: [
            free,
            {
              owner: { $literal: owner },
              until: { $add: ['$$NOW', leaseMs] },
              kind: { $literal: kind },
              previous: { $ifNull: ['$lease', null] },
            },
            '$lease',
          ],
        },
        leaseSeq: { $cond: [free, { $add: [{ $ifNull: ['$leaseSeq', 0] }, 1] }, '$leaseSeq'] },
      },
    },
  ];
}

/** The collections the protocol works on. */
export interface BatchCollections {
  instances: MongoCollection;
  records: MongoCollection;
  undo: MongoCollection;
}

/** Timing of the protocol. */
export interface BatchTiming {
  /** How long a lease outlives a holder that stopped renewing it. */
  leaseMs: number;
  /** How long an operation waits for other batches before `TimeoutError`. */
  waitMs: number;
  /** A read-only store never takes a lease, so it cannot undo a dead holder's batch: it waits for another store to. */
  readOnly?: boolean;
}

/** A lease this process holds. */
export interface HeldBatch {
  readonly owner: string;
  readonly instanceId: string;
  readonly incarnation: string;
  /** Extends the lease by a whole lease from now; false when it was lost (another holder took it over). */
  renew(): Promise<boolean>;
  /** Records the point of no return of a delete batch; false when the lease was lost. */
  commitDelete(): Promise<boolean>;
  /** Ends the batch: clears its row marks and undo log, then frees the lease. */
  finish(): Promise<void>;
  /** Frees a lease that wrote nothing. */
  release(): Promise<void>;
  /**
   * Gives up after an error: undoes what the batch wrote and frees the lease;
   * if that fails too, stops renewing so that the next holder undoes it.
   */
  abandon(): Promise<void>;
}

/** The error of a batch whose holder lost its lease before it ended. */
export function lostLease(instanceId: string): ConflictError {
  return new ConflictError(
    `the batch lease on instance ${JSON.stringify(instanceId)} ran out before the batch ended ` +
      '(its renewal could not reach the server in time); the batch was undone',
    { backend: 'mongo', operation: 'kv.batch' },
  );
}

/** The multi-document write protocol for one backend's collections; see the module comment. */
export class KvBatches {
  constructor(
    private readonly collections: BatchCollections,
    private readonly timing: BatchTiming,
  ) {}

  /** The instance document's identity and lease, or `undefined` when the instance does not exist. */
  async state(instanceId: string): Promise<InstanceState | undefined> {
    const doc = await this.collections.instances.findOne(
      { _id: instanceId },
      { projection: INSTANCE_STATE_PROJECTION },
    );
    return doc ? instanceState(doc) : undefined;
  }

  private deadline(operation: string, instanceId: string): () => number {
    const end = performance.now() + this.timing.waitMs;
    return () => {
      const left = end - performance.now();
      if (left <= 0) {
        throw new TimeoutError(
          `waited ${this.timing.waitMs} ms for another writer's multi-record batch on instance ${JSON.stringify(instanceId)}`,
          { backend: 'mongo', operation, timeoutMs: this.timing.waitMs },
        );
      }
      return left;
    };
  }

  /**
   * Waits a little while `lease` is held; once it has run out by this
   * process's clock, takes the lease over (which undoes the dead holder's
   * batch) and frees it again. The server decides expiry, so a clock ahead of
   * the server's only costs a failed claim.
   */
  private async waitOut(instanceId: string, lease: BatchLease, wait: number): Promise<void> {
    if (!this.timing.readOnly && Date.now() > new Date(lease.until).getTime()) {
      const held = await this.claim(instanceId, 'put');
      if (held) {
        await held.release();
        return;
      }
    }
    await sleep(wait);
  }

  /**
   * Runs `read` so that it sees no batch in part: while no lease is held, and
   * again if one was claimed or released before it ended. `undefined` when
   * the instance does not exist (or was deleted meanwhile).
   */
  async readConsistent<T>(
    instanceId: string,
    operation: string,
    read: (state: InstanceState) => Promise<T>,
  ): Promise<T | undefined> {
    const left = this.deadline(operation, instanceId);
    let wait = 5;
    for (;;) {
      const before = await this.state(instanceId);
      if (!before) return undefined;
      if (before.lease) {
        await this.waitOut(instanceId, before.lease, Math.min(wait, left()));
        wait = nextBackoff(wait, left(), 100);
        continue;
      }
      const result = await read(before);
      const after = await this.state(instanceId);
      if (!after || after.incarnation !== before.incarnation) return undefined;
      if (after.leaseSeq === before.leaseSeq && !after.lease) return result;
      left();
    }
  }

  /**
   * For single-row reads and writes: when a row they read carries the mark of
   * a batch that is still running, waits until it is over and returns true
   * (read again); false when no row is marked by a running batch.
   */
  async waitForMarkedRows(
    instanceId: string,
    marks: ReadonlyArray<unknown>,
    operation: string,
  ): Promise<boolean> {
    const owners = new Set(marks.filter((mark): mark is string => typeof mark === 'string'));
    if (owners.size === 0) return false;
    const left = this.deadline(operation, instanceId);
    let wait = 5;
    let waited = false;
    for (;;) {
      const state = await this.state(instanceId);
      // A mark whose batch no longer holds the lease is left from a lost lease: nothing to wait for.
      if (!state?.lease || !owners.has(state.lease.owner)) return waited;
      await this.waitOut(instanceId, state.lease, Math.min(wait, left()));
      wait = nextBackoff(wait, left(), 100);
      waited = true;
    }
  }

  /** Waits for the instance's lease and takes it; `undefined` when the instance does not exist. */
  async acquire(
    instanceId: string,
    kind: BatchLease['kind'],
    operation: string,
  ): Promise<HeldBatch | undefined> {
    const left = this.deadline(operation, instanceId);
    let wait = 5;
    for (;;) {
      const held = await this.claim(instanceId, kind);
      if (held !== null) return held;
      await sleep(Math.min(wait, left()));
      wait = nextBackoff(wait, left(), 100);
    }
  }

  /** One attempt: the held lease, `null` when another holder has it, `undefined` when there is no instance. */
  private async claim(instanceId: string, kind: BatchLease['kind']): Promise<HeldBatch | null | undefined> {
    const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
    const doc = await this.collections.instances.findOneAndUpdate(
      { _id: instanceId },
      claimBatchLeasePipeline(owner, kind, this.timing.leaseMs),
      { returnDocument: 'after', projection: INSTANCE_STATE_PROJECTION },
    );
    if (!doc) return undefined;
    const state = instanceState(doc);
    if (state.lease?.owner !== owner) return null;
    const held = this.hold(instanceId, state.incarnation, owner, kind);
    if (state.lease.previous) {
      try {
        await this.undo(state.lease.previous);
        await this.collections.instances.updateOne(
          { _id: instanceId, 'lease.owner': owner },
          { $set: { 'lease.previous': null } },
        );
      } catch (error) {
        await held.abandon();
        throw error;
      }
    }
    return held;
  }

  private hold(instanceId: string, incarnation: string, owner: string, kind: BatchLease['kind']): HeldBatch {
    const { instances, records, undo } = this.collections;
    const mine = { _id: instanceId, 'lease.owner': owner };
    // The whole lease is rewritten: a dotted path in a pipeline stage is not portable.
    const extend = [
      { $set: { lease: { $mergeObjects: ['$lease', { until: { $add: ['$$NOW', this.timing.leaseMs] } }] } } },
    ];
    const renewal = setInterval(
      () => {
        // A failed renewal (server briefly away) is retried on the next tick.
        instances.updateOne(mine, extend).catch(() => undefined);
      },
      Math.max(50, Math.floor(this.timing.leaseMs / 3)),
    );
    renewal.unref?.();
    let phase: BatchLease['phase'];
    const release = async () => {
      const released = await instances.updateOne(mine, { $unset: { lease: '' }, $inc: { leaseSeq: 1 } });
      clearInterval(renewal);
      if (released.matchedCount > 0) return;
      // Gone with its instance (deleted meanwhile) is not lost: there is nothing left to protect.
      const now = await this.state(instanceId);
      if (now && now.incarnation === incarnation) throw lostLease(instanceId);
    };
    return {
      owner,
      instanceId,
      incarnation,
      renew: async () => (await instances.updateOne(mine, extend)).matchedCount > 0,
      commitDelete: async () => {
        const set = await instances.updateOne(mine, { $set: { 'lease.phase': 'delete' } });
        if (set.matchedCount === 0) return false;
        phase = 'delete';
        return true;
      },
      finish: async () => {
        await undo.deleteMany({ batch: owner });
        await records.updateMany({ batch: owner }, { $unset: { batch: '' } });
        await release();
      },
      release,
      abandon: async () => {
        try {
          await this.undo({ owner, until: new Date(0), kind, ...(phase ? { phase } : {}) });
          await release();
        } catch {
          // The lease runs out on its own; its next holder undoes the batch from the log.
          clearInterval(renewal);
        }
      },
    };
  }

  /** Takes back what a batch wrote (its own lost race, or a dead holder's batch). Idempotent. */
  async undo(lease: BatchLease): Promise<void> {
    if (lease.previous) await this.undo(lease.previous);
    const { records, undo } = this.collections;
    const batch = lease.owner;
    if (lease.kind === 'delete') {
      if (lease.phase === 'delete') await records.deleteMany({ batch });
      else await records.updateMany({ batch }, { $unset: { batch: '' }, $set: { rev: randomUUID() } });
      return;
    }
    const entries = (await undo.find({ batch }).toArray()) as unknown as UndoEntry[];
    for (const entry of entries) await this.restore(entry);
    await undo.deleteMany({ batch });
    await records.updateMany({ batch }, { $unset: { batch: '' } });
  }

  /** Puts one row back as it was, if what the batch wrote is still there (a later writer's row stays). */
  async restore(entry: UndoEntry): Promise<void> {
    const { records } = this.collections;
    const { instanceId, incarnation, namespace, key, rev, prev } = entry;
    if (rev === null) {
      if (!prev) return;
      // A removal: the row comes back unless someone wrote the key since.
      try {
        await records.insertOne({ ...prev });
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
      }
      return;
    }
    const ours = { instanceId, incarnation, namespace, key, rev };
    if (prev) {
      const { _id, ...previous } = prev;
      await records.replaceOne(ours, previous);
    } else {
      await records.deleteOne(ours);
    }
  }

  /** Drops undo entries of instances that are gone (a deleted instance, an earlier incarnation). */
  async forget(filter: MongoDocument): Promise<void> {
    await this.collections.undo.deleteMany(filter);
  }

  /** Writes the undo log of a batch attempt before any of its rows. */
  async log(entries: readonly UndoEntry[]): Promise<void> {
    if (entries.length > 0) {
      await this.collections.undo.insertMany(entries as unknown as MongoDocument[], { ordered: true });
    }
  }

  /**
   * Undoes one attempt of a held batch from the entries it logged (a lost
   * race, so that it can try again; or a lost lease, where the new holder may
   * have undone only what was written before it took over).
   */
  async undoAttempt(held: HeldBatch, entries: readonly UndoEntry[]): Promise<void> {
    for (const entry of entries) await this.restore(entry);
    await this.collections.undo.deleteMany({ batch: held.owner });
  }
}
