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

export * from './kv/index.js';
export {
  ConformanceAssertionError,
  check,
  checkEqual,
  checkRejects,
  collect,
  fail,
  firstDifference,
} from './runner/assertions.js';
export type { CaseError } from './runner/case-error.js';
export { currentProfile } from './runner/profile-scope.js';
export { matchesPattern, SelectionError } from './runner/selection.js';
export { PROFILES, type Profile, type SuiteOptions } from './runner/suite-options.js';
export {
  formatSummary,
  type RunLevel,
  type SuiteCaseResult,
  type SuiteResult,
  type Tally,
  type TestApi,
} from './runner/suite-runner.js';
export * from './store/index.js';
