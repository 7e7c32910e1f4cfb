/** The agent-store suite's entry points: with a test runner or without one. */

import {
  formatSuiteResult,
  registerSuite,
  runSuite,
  type SuiteResult,
  type TestApi,
} from '../runner/suite-runner.js';
import { allStoreCases } from './cases/index.js';
import type { StoreCase } from './store-case.js';
import type { StoreHarness } from './store-harness.js';
import { STORE_LEVELS } from './store-levels.js';
import {
  type CaseResult,
  type ConformanceOptions,
  ConformanceSession,
  selectCases,
} from './store-session.js';

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
  return runSuite(cases, new ConformanceSession(harness, options), STORE_LEVELS, options.onResult);
}

/** The failures, the skips by reason, the profile and level run, the scores and the totals: for printing a `verifyStore` result. */
export function formatResults(result: VerifyStoreResult): string {
  return formatSuiteResult(result);
}
