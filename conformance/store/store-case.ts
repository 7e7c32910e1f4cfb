import type { ExtendedStore, StoreCapabilities } from '../../src/types.js';
import type { StoreHarness } from './store-harness.js';

/** A capability a store declares (see `StoreCapabilities`). */
export type Capability = Exclude<keyof StoreCapabilities, 'reasons'>;

/** What a harness must offer for a case to run. */
export type HarnessFeature = 'createPeer' | 'reopen' | 'lockInOtherProcess';

/** Data set up once per run and shared by the cases that use it (the query grid's seeded store). */
export interface SharedFixture<T> {
  /** Unique name; the runner sets the fixture up once per run. */
  name: string;
  setUp(harness: StoreHarness): Promise<{ value: T; tearDown(): Promise<void> }>;
}

/** What a case gets to work with. */
export interface CaseContext {
  /** A fresh, open store from `harness.create()` (replaced by `reopen()`). */
  readonly store: ExtendedStore;
  /** The harness under test. */
  readonly harness: StoreHarness;
  /** The store's capabilities, with the harness's overrides applied. */
  readonly capabilities: StoreCapabilities;
  /**
   * A fresh agent id no other case (or run) uses. `label` makes failures
   * readable; `suffix` is appended verbatim (hostile characters welcome).
   */
  agentId(label?: string, suffix?: string): string;
  /** A second store object on the same data (`harness.createPeer`); closed after the case. */
  peer(): Promise<ExtendedStore>;
  /** Closes the store and opens a new one on the same data (`harness.reopen`); `store` becomes the new one. */
  reopen(): Promise<ExtendedStore>;
  /** A fixture shared by all cases of the run, set up on first use. */
  shared<T>(fixture: SharedFixture<T>): Promise<T>;
}

/** One conformance case: a rule of the contract, checked against a store. */
export interface StoreCase {
  /** Stable id, `<area>.<rule>[.<variant>]`; used in skip lists and results. */
  id: string;
  /** The rule, in words. */
  title: string;
  /** Capabilities the store must declare; otherwise the case is skipped with the store's reason. */
  requires?: Capability[];
  /** Harness features the case needs; otherwise it is skipped, saying which is missing. */
  needs?: HarnessFeature[];
  /** False for cases that only use a shared fixture (no fresh store is created for them). */
  freshStore?: boolean;
  /** Longer budget than the default, for cases that wait on purpose. */
  timeoutMs?: number;
  run(ctx: CaseContext): Promise<void>;
}

/** Shorthand for declaring cases of one area with a common id prefix. */
export function defineCases(area: string, cases: Array<Omit<StoreCase, 'id'> & { id: string }>): StoreCase[] {
  return cases.map((c) => ({ ...c, id: `${area}.${c.id}` }));
}
