/**
 * The kode-store conformance suite (`kode-store/conformance`): the definition
 * of a correct agent store. Hand it a harness and it checks every rule of the
 * contract against your store, under any test runner or none.
 *
 * @example
 * import { describe, it, afterAll } from 'vitest';
 * import { runStoreConformance } from 'kode-store/conformance';
 * runStoreConformance({ name: 'my-store', create, destroy }, { describe, it, afterAll });
 *
 * @example
 * const { passed, failed, skipped, results } = await verifyStore({ name: 'my-store', create, destroy });
 */

import type { StoreCase } from './case.js';
import { allStoreCases } from './cases/index.js';
import type { StoreHarness } from './harness.js';
import { type CaseResult, type ConformanceOptions, ConformanceSession, selectCases } from './runner.js';
import {
  formatSuiteResult,
  registerSuite,
  runSuite,
  type SuiteResult,
  type TestApi,
} from './suite-runner.js';

export {
  ConformanceAssertionError,
  check,
  checkEqual,
  checkRejects,
  collect,
  firstDifference,
} from './assertions.js';
export type { Capability, CaseContext, HarnessFeature, SharedFixture, StoreCase } from './case.js';
export { allStoreCases } from './cases/index.js';
export { fixtureSample } from './fixture-sample.js';
export type { FixtureAgent, FixtureSample } from './fixture-sample-types.js';
export type { OtherProcessLock, StoreHarness } from './harness.js';
export * from './kv/index.js';
export type { CaseResult, ConformanceOptions } from './runner.js';
export type { SuiteCaseResult, SuiteResult, TestApi } from './suite-runner.js';

/** Options of `runStoreConformance`. */
export interface RunStoreConformanceOptions extends ConformanceOptions, TestApi {
  /** Extra cases of your own, run like the built-in ones. */
  extraCases?: StoreCase[];
}

/** Options of `verifyStore`. */
export interface VerifyStoreOptions extends ConformanceOptions {
  /** Called after each case, e.g. to print progress. */
  onResult?: (result: CaseResult) => void;
  /** Extra cases of your own, run like the built-in ones. */
  extraCases?: StoreCase[];
}

/** What `verifyStore` found. */
export type VerifyStoreResult = SuiteResult<CaseResult>;

/**
 * Registers one test per case with the given test API (vitest's, jest's or
 * mocha's `describe`/`it`; defaults to the global ones). Cases are grouped by
 * area; a skipped case says why.
 */
export function runStoreConformance(harness: StoreHarness, options: RunStoreConformanceOptions = {}): void {
  registerSuite({
    caller: 'runStoreConformance',
    title: `kode-store conformance: ${harness.name}`,
    api: options,
    cases: selectCases([...allStoreCases(), ...(options.extraCases ?? [])], harness, options),
    areaOf: (c) => c.id.split('.')[0] ?? c.id,
    session: new ConformanceSession(harness, options),
    caseTimeoutMs: options.caseTimeoutMs ?? 30_000,
  });
}

/** Runs every case without a test runner, one after another, and reports what passed, failed and was skipped. */
export async function verifyStore(
  harness: StoreHarness,
  options: VerifyStoreOptions = {},
): Promise<VerifyStoreResult> {
  const cases = selectCases([...allStoreCases(), ...(options.extraCases ?? [])], harness, options);
  return runSuite(cases, new ConformanceSession(harness, options), options.onResult);
}

/** One line per failed or skipped case, then the totals: for printing a `verifyStore` result. */
export function formatResults(result: VerifyStoreResult): string {
  return formatSuiteResult(result);
}
