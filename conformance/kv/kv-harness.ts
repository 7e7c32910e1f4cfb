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
 * What a KV backend guarantees beyond the basics every backend must meet;
 * cases that rely on one are skipped, with the reason, where the harness
 * declares it `false` (see `KvCase.requires`).
 */
export interface KvCapabilities {
  /**
   * A write of several records (`setMany`) and `deleteNamespace` are seen
   * whole or not at all by every other operation, including those of other
   * store objects and processes.
   */
  atomicBatches: boolean;
  /** Why each missing capability is missing, for skip messages. */
  reasons?: Partial<Record<Exclude<keyof KvCapabilities, 'reasons'>, string>>;
}

/** A capability a KV backend may lack. */
export type KvCapability = Exclude<keyof KvCapabilities, 'reasons'>;

/**
 * How the KV suite reaches a backend.
 *
 * @example
 * const harness: KvHarness = {
 *   name: 'my-backend',
 *   create: async ({ now }) => createKvStore(new MyKvBackend(connect()), { now }),
 *   destroy: async (kv) => disconnect(kv),
 *   createPeer: async (kv, { now }) => createKvStore(new MyKvBackend(connect()), { now }),
 *   capabilities: { atomicBatches: false, reasons: { atomicBatches: 'no multi-record transactions' } },
 * };
 */
export interface KvHarness {
  /** Shown in test names and results. */
  name: string;
  /**
   * A KV store on an empty or shared database (every case works in fresh
   * instances). **Pass `context.now` to the store** (`createKvStore(backend,
   * { now })`): the suite moves that clock to test expiry without waiting. A
   * store on the real clock fails `kv.harness.uses-suite-clock`, and the
   * cases that move time are left unjudged.
   */
  create(context: KvHarnessContext): Promise<KvStore>;
  /** Releases what `create` or `createPeer` made. Called once for every store they returned. */
  destroy(kv: KvStore): Promise<void>;
  /** A second, independent store object (its own connection) on the same data as `kv`: race and atomicity cases. */
  createPeer?(kv: KvStore, context: KvHarnessContext): Promise<KvStore>;
  /**
   * What the backend guarantees; a capability declared `false` skips the
   * cases that require it, with `reasons[capability]`. Undeclared ones are
   * assumed present (the cases then run and must pass).
   */
  capabilities?: Partial<KvCapabilities>;
  /**
   * Cases the backend cannot pass, each with its reason: exact ids, group
   * prefixes (`kv.races`, `kv.query-grid.*`) or globs. A pattern matching no
   * case is an error.
   */
  skip?: Record<string, string>;
}
