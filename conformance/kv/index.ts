/**
 * The KV conformance suite: the definition of a correct KV backend (SPEC §6).
 *
 * @example
 * import { afterAll, describe, it } from 'vitest';
 * import { runKvConformance } from 'kode-store/conformance';
 * runKvConformance({ name: 'my-kv', create: async ({ now }) => createKvStore(new MyKvBackend(), { now }),
 *   destroy: async () => {} }, { describe, it, afterAll });
 *
 * @example
 * const { passed, failed, skipped } = await verifyKvStore(harness);
 */

export { allKvCases, handWrittenKvCases } from './cases/index.js';
export type { KvCase, KvCaseContext, KvSharedFixture, KvTestClock } from './kv-case.js';
export { defineKvCases } from './kv-case.js';
export type { KvCapabilities, KvCapability, KvHarness, KvHarnessContext } from './kv-harness.js';
export { KV_LEVELS, type KvCaseResult, type KvConformanceOptions, type KvLevel } from './kv-runner.js';
export {
  formatKvResults,
  type KvTestApi,
  type RunKvConformanceOptions,
  runKvConformance,
  type VerifyKvStoreOptions,
  type VerifyKvStoreResult,
  verifyKvStore,
} from './kv-suite.js';
