import {
  formatSuiteResult,
  registerSuite,
  runSuite,
  type SuiteResult,
  type TestApi,
} from '../runner/suite-runner.js';
import { allKvCases } from './cases/index.js';
import type { KvCase } from './kv-case.js';
import type { KvHarness } from './kv-harness.js';
import {
  KV_LEVELS,
  type KvCaseResult,
  type KvConformanceOptions,
  KvConformanceSession,
  selectKvCases,
} from './kv-runner.js';

/** The parts of a test runner's API the suite uses (vitest, jest and mocha all fit). */
export type KvTestApi = TestApi;

/** Options of `runKvConformance`. */
export interface RunKvConformanceOptions extends KvConformanceOptions, KvTestApi {
  /** Extra cases of your own, run like the built-in ones. */
  extraCases?: KvCase[];
}

/** Options of `verifyKvStore`. */
export interface VerifyKvStoreOptions extends KvConformanceOptions {
  /** Called after each case, e.g. to print progress. */
  onResult?: (result: KvCaseResult) => void;
  extraCases?: KvCase[];
}

/** What `verifyKvStore` found. */
export type VerifyKvStoreResult = SuiteResult<KvCaseResult>;

/**
 * Registers one test per KV case with a test runner (vitest's, jest's or
 * mocha's `describe`/`it`; the global ones by default), grouped by area.
 *
 * ```ts
 * import { afterAll, describe, it } from 'vitest';
 * import { runKvConformance } from 'kode-store/conformance';
 * runKvConformance({ name: 'my-kv', create: async ({ now }) => createKvStore(new MyKvBackend(), { now }), destroy: async () => {} },
 *   { describe, it, afterAll });
 * ```
 */
export function runKvConformance(harness: KvHarness, options: RunKvConformanceOptions = {}): void {
  registerSuite({
    caller: 'runKvConformance',
    title: `kode-store kv conformance: ${harness.name}`,
    api: options,
    cases: selectKvCases([...allKvCases(), ...(options.extraCases ?? [])], harness, options),
    areaOf: (c) => c.id.split('.').slice(0, 2).join('.'),
    session: new KvConformanceSession(harness, options),
    caseTimeoutMs: options.caseTimeoutMs ?? 30_000,
  });
}

/** Runs every KV case without a test runner, one after another; reports what passed, failed and was skipped. */
export async function verifyKvStore(
  harness: KvHarness,
  options: VerifyKvStoreOptions = {},
): Promise<VerifyKvStoreResult> {
  const cases = selectKvCases([...allKvCases(), ...(options.extraCases ?? [])], harness, options);
  return runSuite(cases, new KvConformanceSession(harness, options), KV_LEVELS, options.onResult);
}

/** One line per failed or skipped case, then the totals: for printing a `verifyKvStore` result. */
export function formatKvResults(result: VerifyKvStoreResult): string {
  return formatSuiteResult(result);
}
