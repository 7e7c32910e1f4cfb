import type { Store, StoreCapabilities } from '../../src/types.js';
import type { StoreLevel } from './store-levels.js';

/**
 * A lock held by another process on the same database, for the cross-process
 * lock cases. The harness starts the process; the suite decides when it lets go.
 */
export interface OtherProcessLock {
  /** Resolves once the other process holds the lock. */
  acquired: Promise<void>;
  /** Asks the other process to release the lock and exit; resolves when it has. */
  release(): Promise<void>;
  /** Kills the other process without releasing (a crashed holder); resolves when it is gone. */
  kill(): Promise<void>;
}

/**
 * How the suite reaches a backend: create and destroy stores, and optionally
 * open a second object (or process) on the same data.
 *
 * @example
 * const harness: StoreHarness<SqliteStore> = {
 *   name: 'sqlite',
 *   create: async () => new SqliteStore(join(await mkdtemp(tmp), 'agents.db')),
 *   destroy: async (store) => { await store.close(); },
 *   createPeer: async (store) => new SqliteStore(store.path),
 * };
 */
export interface StoreHarness<S extends Store = Store> {
  /** Shown in test names and results. */
  name: string;
  /** A fresh, open store. Several may be open at once; every case uses fresh unique agent ids, so stores may share one database. */
  create(): Promise<S>;
  /** Closes `store` (tolerating an already-closed one) and removes what create() made, if anything. */
  destroy(store: S): Promise<void>;
  /** A second, independent store object on the same database/files as `store` (cross-instance cases: locks, races). */
  createPeer?(store: S): Promise<S>;
  /** Closes `store` and opens a new store on the same data (durability cases). */
  reopen?(store: S): Promise<S>;
  /**
   * Takes `agentId`'s lock from another process on the same database as
   * `store` (cross-process lock cases; only asked of stores declaring
   * `crossProcessLocks`).
   */
  lockInOtherProcess?(store: S, agentId: string): Promise<OtherProcessLock>;
  /**
   * The highest level the store implements: `store` (the SDK's `Store`),
   * `queryable` (`QueryableStore`) or `extended` (`ExtendedStore`). Detected
   * from the methods of the first store when absent. Cases of a higher level
   * are skipped with that reason, never failed.
   */
  level?: StoreLevel;
  /** Overrides of store.capabilities (see src/types.ts StoreCapabilities). */
  capabilities?: Partial<StoreCapabilities>;
  /**
   * Cases the backend cannot pass, each with its reason: exact ids, group
   * prefixes (`locks.cross-process`, `query-grid.*`) or globs
   * (`*.hostile-*`). A pattern matching no case is an error.
   */
  skip?: Record<string, string>;
}
