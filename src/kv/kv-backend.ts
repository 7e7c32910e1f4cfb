import type { AnyKodeStoreError, ErrorContext } from '../errors.js';
import type { KvQueryPlan } from './kv-query.js';

/**
 * The contract between `createKvStore` and a storage backend. The store does
 * everything that is the same on every backend (validation, JSON encoding,
 * versions, timestamps, TTL arithmetic, conditional writes, increments,
 * metadata merges, cursors); a backend only stores rows and runs
 * `mutate` atomically. Implement this interface to put the KV API on a new
 * database, then check it with `runKvConformance`.
 *
 * Times are epoch milliseconds. `now` is passed in by the store (one clock for
 * every backend), and a row is live while `expiresAt === null || expiresAt > now`.
 */

/** An instance as stored. */
export interface KvInstanceRow {
  id: string;
  name: string;
  description: string;
  createdAt: number;
  updatedAt: number;
}

/** A record as stored. `value` and `metadata` are JSON text made by `encodeJson`, returned byte for byte. */
export interface KvRecordRow {
  instanceId: string;
  namespace: string;
  key: string;
  id: string;
  value: string;
  metadata: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  createdBy: string | null;
  updatedBy: string | null;
}

/** A query result row: `value` / `metadata` are present when the plan needs them. */
export type KvQueryRow = Omit<KvRecordRow, 'value' | 'metadata'> & { value?: string; metadata?: string };

/** A record's address inside an instance. */
export interface KvKeyRef {
  namespace: string;
  key: string;
}

/** What a mutation writes: rows to insert or replace (whole), keys to remove. */
export interface KvMutationPlan {
  put: KvRecordRow[];
  remove: KvKeyRef[];
}

/**
 * Decides a write from the stored rows of the keys it touches (expired rows
 * included: the store treats them as absent). It may throw (a lost
 * conditional write); the backend then writes nothing and rethrows. It may be
 * called more than once when the backend retries, so it must not have side
 * effects beyond its return value.
 */
export type KvMutation = (current: ReadonlyArray<KvRecordRow | undefined>) => KvMutationPlan;

/** Storage for the KV API: see the module comment for what a backend must (and need not) do. */
export interface KvBackend {
  /** Short name used in error messages and metrics: `memory`, `sqlite`, `postgres`, ... */
  readonly name: string;
  /** Creates or upgrades the schema. Called once, before any other method. */
  open(): Promise<void>;

  /** Inserts an instance; false when the id is taken. */
  insertInstance(row: KvInstanceRow): Promise<boolean>;
  getInstance(id: string): Promise<KvInstanceRow | undefined>;
  /** Oldest first, ties by id. */
  listInstances(): Promise<KvInstanceRow[]>;
  /** Applies the changes and sets `updatedAt` to `max(now, updatedAt + 1)`; `undefined` when absent. */
  updateInstance(
    id: string,
    changes: { name?: string; description?: string },
    now: number,
  ): Promise<KvInstanceRow | undefined>;
  /** Deletes an instance with all its records; false when absent. */
  deleteInstance(id: string): Promise<boolean>;

  /** Live rows for these keys, aligned with `refs`; `undefined` (the whole result) when the instance is absent. */
  getRecords(
    instanceId: string,
    refs: KvKeyRef[],
    now: number,
  ): Promise<Array<KvRecordRow | undefined> | undefined>;
  /**
   * Atomically: ensure the instance exists (inserting `createInstance` when
   * given), read the current rows of `refs` (all of them, expired too) while
   * excluding every other writer of those keys, call `mutation`, and apply
   * its plan. Returns false, writing nothing, when the instance is absent.
   */
  mutate(
    instanceId: string,
    refs: KvKeyRef[],
    options: { createInstance?: KvInstanceRow },
    mutation: KvMutation,
  ): Promise<boolean>;
  /** Deletes every row of a namespace in one atomic step; the number of live rows among them. `undefined` when the instance is absent. */
  deleteNamespace(instanceId: string, namespace: string, now: number): Promise<number | undefined>;
  /** Namespaces with at least one live row, in code-point order; `undefined` when the instance is absent. */
  namespaces(instanceId: string, now: number): Promise<string[] | undefined>;
  /** Live rows of an instance or a namespace; `undefined` when the instance is absent. */
  countRecords(instanceId: string, namespace: string | undefined, now: number): Promise<number | undefined>;
  /**
   * Runs a plan over live rows: the page (after `plan.after`, then `offset`,
   * `limit`) in the plan's order and the total number of matches (ignoring
   * `after`, `offset`, `limit`); `undefined` when the instance is absent.
   */
  query(plan: KvQueryPlan, now: number): Promise<{ rows: KvQueryRow[]; total: number } | undefined>;
  /** Removes rows with `expiresAt <= now`; how many. */
  sweepExpired(now: number): Promise<number>;
  /**
   * Optional: the backend's own reading of its driver's errors (a lost
   * connection, a bound running out), tried before the generic one; return
   * `undefined` to leave an error to it. Used when the KV store has no
   * owning store's operation frame (`createKvStore(backend)`).
   */
  classifyError?(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined;
}

/** Whether a stored row is visible at `now`. */
export function isLive(row: Pick<KvRecordRow, 'expiresAt'>, now: number): boolean {
  return row.expiresAt === null || row.expiresAt > now;
}
