import type { ExtendedStore, StoreCapabilities } from '../../src/types.js';
import type { Profile } from '../runner/suite-options.js';
import type { StoreHarness } from './store-harness.js';
import type { StoreLevel } from './store-levels.js';

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
  /**
   * A fresh, open store from `harness.create()` (replaced by `reopen()`).
   * Typed as the whole interface; only the methods of the case's level (and
   * of `level`, when a case checks more where the store has it) may be used.
   */
  readonly store: ExtendedStore;
  /** The level the store implements (declared by the harness or detected). */
  readonly level: StoreLevel;
  /** Whether the store implements `level`: for the parts of a case that need a higher level than the case's own. */
  implements(level: StoreLevel): boolean;
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
  /** The lowest interface level the case needs (default `store`); skipped, with that reason, on a store below it. */
  level?: StoreLevel;
  /**
   * The weakest profile the case belongs to (default `strict`): `sdk` for a
   * rule the KODE SDK relies on (it then runs in both profiles), `strict`
   * for a rule of kode-store's own.
   */
  profile?: Profile;
  /** Capabilities the store must declare; otherwise the case is skipped with the store's reason. */
  requires?: Capability[];
  /** Harness features the case needs; otherwise it is skipped, saying which is missing. */
  needs?: HarnessFeature[];
  /**
   * Why the created store cannot run this case (it lacks an optional API,
   * such as `prune`), or undefined; the case is then skipped with that reason.
   */
  unsupported?(store: object): string | undefined;
  /** False for cases that only use a shared fixture (no fresh store is created for them). */
  freshStore?: boolean;
  /** Longer budget than the default, for cases that wait on purpose. */
  timeoutMs?: number;
  run(ctx: CaseContext): Promise<void>;
}

/**
 * Shorthand for declaring cases of one area with a common id prefix and the
 * area's level and profile (a case may say otherwise for itself).
 */
export function defineCases(
  area: string,
  cases: StoreCase[],
  defaults: { level?: StoreLevel; profile?: Profile } = {},
): StoreCase[] {
  return cases.map((c) => ({ ...defaults, ...c, id: `${area}.${c.id}` }));
}
