import type { KvStore } from '../../src/kv/kv-types.js';
import type { Profile } from '../runner/suite-options.js';
import type { KvCapability, KvHarness } from './kv-harness.js';

/** The suite's clock: it starts at the real time and stands still until a case moves it forward. */
export interface KvTestClock {
  now(): number;
  /** Moves time forward by `ms` for every store of the run. */
  advance(ms: number): void;
}

/** Data set up once per run and shared by the cases that read it (the query grid's records). */
export interface KvSharedFixture<T> {
  name: string;
  setUp(kv: KvStore, clock: KvTestClock): Promise<T>;
}

/** What a case gets to work with. */
export interface KvCaseContext {
  /** The store under test (one per run; every case uses its own instances). */
  readonly kv: KvStore;
  readonly harness: KvHarness;
  readonly clock: KvTestClock;
  /** Creates a fresh instance and returns its id. */
  instance(label?: string): Promise<string>;
  /** A string no other case or run uses, for ids (user ids, instance ids). */
  unique(label?: string): string;
  /** A second store object on the same data (`harness.createPeer`). */
  peer(): Promise<KvStore>;
  shared<T>(fixture: KvSharedFixture<T>): Promise<T>;
  /** Undefined when the store keeps time by the suite's clock, else what is wrong and the fix. */
  clockProblem(): Promise<string | undefined>;
}

/** One conformance case: a rule of SPEC §6, checked against a KV store. */
export interface KvCase {
  /** Stable id, `kv.<area>.<rule>`; used in skip lists and results. */
  id: string;
  /** The rule, in words. */
  title: string;
  /** Needs `harness.createPeer`; skipped (with that reason) without it. */
  needsPeer?: boolean;
  /** Capabilities the backend must have; skipped with the harness's reason where it declares one `false`. */
  requires?: KvCapability[];
  /**
   * The weakest profile the case belongs to (default `sdk`: the KV layer
   * above a backend is kode-store's own, so its errors are ours in both
   * profiles).
   */
  profile?: Profile;
  /** A longer budget than the default, for races and fuzzing. */
  timeoutMs?: number;
  run(ctx: KvCaseContext): Promise<void>;
}

/** Declares the cases of one area: ids become `kv.<area>.<id>`. */
export function defineKvCases(area: string, cases: KvCase[]): KvCase[] {
  return cases.map((c) => ({ ...c, id: `kv.${area}.${c.id}` }));
}
