/** The agent-store suite (SPEC §1-5): cases, harness, runner entry points. */

export { allStoreCases } from './cases/index.js';
export { fixtureSample } from './fixture-sample.js';
export type { FixtureAgent, FixtureSample } from './fixture-sample-types.js';
export type { Capability, CaseContext, HarnessFeature, SharedFixture, StoreCase } from './store-case.js';
export type { OtherProcessLock, StoreHarness } from './store-harness.js';
export {
  detectLevel,
  LEVEL_INTERFACE,
  LEVEL_METHODS,
  STORE_LEVELS,
  type StoreLevel,
} from './store-levels.js';
export type { CaseResult, ConformanceOptions, LevelFinding } from './store-session.js';
export {
  formatResults,
  type RunStoreConformanceOptions,
  runStoreConformance,
  type VerifyStoreOptions,
  type VerifyStoreResult,
  verifyStore,
} from './store-suite.js';
