import { createKvStore } from '../kv/kv-store.js';
import type { KvStore } from '../kv/kv-types.js';
import { AgentStore } from './agent-store.js';
import { MemoryBackend, MemoryDatabase } from './memory-backend.js';

export { MemoryDatabase };

/** Options of `new MemoryStore(options)`. */
export interface MemoryStoreOptions {
  /**
   * The data to work on; a new, empty database when absent. Pass another
   * store's `database` to get a second store object over the same data.
   * @example const peer = new MemoryStore({ database: store.database });
   */
  database?: MemoryDatabase;
}

/**
 * The reference `ExtendedStore`: every rule of the conformance suite,
 * implemented as plainly as possible, in memory. Use it in unit tests of code
 * that takes a store, or as the model when writing a backend.
 *
 * Locks exclude within the process, between every store object over the same
 * `MemoryDatabase` (see `peer()`). Nothing survives the process.
 *
 * @example
 * const store = new MemoryStore();
 * const agent = await Agent.create(config, { store, ... });
 */
export class MemoryStore extends AgentStore {
  /** The data this store works on, shared with its peers. */
  readonly database: MemoryDatabase;
  /** The KV namespace API (SPEC §6), over the same in-memory database. */
  readonly kv: KvStore;

  constructor(options: MemoryStoreOptions = {}) {
    const database = options.database ?? new MemoryDatabase();
    super(new MemoryBackend(database));
    this.database = database;
    this.kv = createKvStore(database.kv, { operations: this.ops });
  }

  /** A second, independent store object over the same data (its own metrics, its own `close`). */
  peer(): MemoryStore {
    return new MemoryStore({ database: this.database });
  }
}
