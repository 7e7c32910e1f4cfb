/**
 * What both suites (agent store and KV) share about choosing and judging
 * cases: profiles, levels, skip/only/exclude patterns, the case budget.
 */

/**
 * How strictly a run judges a store.
 *
 * - `sdk`: what the KODE SDK relies on. Results, order, isolation between
 *   agents, locks that exclude, delete that deletes. A rejection counts as a
 *   rejection whatever its class or code, and cases about our own rules
 *   (error codes, input validation, calls after close, reusing a
 *   `readEvents` iterable, code-point order of `list`) are skipped.
 * - `strict`: everything in SPEC, including kode-store's error classes and
 *   codes (`KODE_VALIDATION`, `KODE_STORE_CLOSED`, ...). The default.
 */
export type Profile = 'sdk' | 'strict';

/** The profiles, weakest first: a case of `sdk` also belongs to `strict`. */
export const PROFILES: readonly Profile[] = ['sdk', 'strict'];

/** Options every suite takes (`verifyStore`, `runStoreConformance`, `verifyKvStore`, `runKvConformance`). */
export interface SuiteOptions<Level extends string = string> {
  /** How strictly to judge (default `strict`); see `Profile`. */
  profile?: Profile;
  /**
   * Run only the cases of these levels (the store suite's `store`,
   * `queryable`, `extended`; the KV suite has the one level `kv`). The
   * others are reported as skipped, with that reason.
   */
  levels?: Level[];
  /**
   * Run only these cases. Each entry is an exact id, a group prefix
   * (`events`, `locks.cross-instance`, or `query-grid.*`) or a glob (`*` for
   * any run of characters: `*.unknown-agent`). An entry matching no case is
   * an error.
   */
  only?: string[];
  /**
   * Cases to report as skipped, each pattern (as in `only`) with its reason.
   * The harness's own `skip` says what the backend lacks; this one is for the
   * run (e.g. "slow, run nightly"). A pattern matching no case is an error.
   */
  skip?: Record<string, string>;
  /**
   * Leave these cases out of the run without a result (patterns as in
   * `only`), e.g. to run the long race cases in a test file of their own.
   */
  exclude?: string[];
  /** Budget of one case, in ms (default 30 000; cases that wait on purpose have their own). */
  caseTimeoutMs?: number;
}

export const DEFAULT_CASE_TIMEOUT_MS = 30_000;
