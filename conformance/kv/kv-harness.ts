import type { KvStore } from '../../src/kv/kv-types.js';

/**
 * What the suite hands the harness when it asks for a store: the clock the
 * store must use (pass it to `createKvStore(backend, { now })`). The suite
 * moves this clock forward to test expiry without sleeping.
 */
export interface KvHarnessContext {
  now: () => number;
}

/**
 * How the KV suite reaches a backend.
 *
 * @example
 * const harness: KvHarness = {
 *   name: 'my-backend',
 *   create: async ({ now }) => createKvStore(new MyKvBackend(connect()), { now }),
 *   destroy: async (kv) => disconnect(kv),
 *   createPeer: async (kv, { now }) => createKvStore(new MyKvBackend(connect()), { now }),
 * };
 */
export interface KvHarness {
  /** Shown in test names and results. */
  name: string;
  /** A KV store on an empty or shared database (every case works in fresh instances). */
  create(context: KvHarnessContext): Promise<KvStore>;
  /** Releases what `create` or `createPeer` made. Called once for every store they returned. */
  destroy(kv: KvStore): Promise<void>;
  /** A second, independent store object (its own connection) on the same data as `kv`: race and atomicity cases. */
  createPeer?(kv: KvStore, context: KvHarnessContext): Promise<KvStore>;
  /** Case ids to skip, each with its reason. An unknown id is an error. */
  skip?: Record<string, string>;
}
