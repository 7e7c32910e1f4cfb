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

import { describeError } from './assertions.js';
import type { StoreCase } from './case.js';
import { allStoreCases } from './cases/index.js';
import type { StoreHarness } from './harness.js';
import { type CaseResult, type ConformanceOptions, ConformanceSession, selectCases } from './runner.js';

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

type TestFn = (this: unknown, context?: unknown) => Promise<void>;

/** The parts of a test runner's API the suite uses (vitest, jest and mocha all fit). */
export interface TestApi {
  describe?: (name: string, body: () => void) => unknown;
  it?: ((name: string, fn: TestFn, timeoutMs?: number) => unknown) & {
    skip?: (name: string, fn: TestFn) => unknown;
  };
  afterAll?: (fn: () => Promise<void>, timeoutMs?: number) => unknown;
}

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
export interface VerifyStoreResult {
  passed: number;
  failed: number;
  skipped: number;
  results: CaseResult[];
}

function globalApi(name: 'describe' | 'it' | 'afterAll'): unknown {
  return (globalThis as Record<string, unknown>)[name];
}

/** Marks the running test skipped with `reason`, in whatever way the runner allows. */
function skipRunningTest(self: unknown, context: unknown, reason: string): void {
  const vitestSkip = (context as { skip?: (note?: string) => never } | undefined)?.skip;
  if (typeof vitestSkip === 'function') vitestSkip(reason);
  const mochaSkip = (self as { skip?: () => never } | undefined)?.skip;
  if (typeof mochaSkip === 'function') mochaSkip.call(self);
  // A runner without dynamic skips (jest): say so loudly rather than pass silently.
  console.warn(`[kode-store conformance] skipped: ${reason}`);
}

/**
 * Registers one test per case with the given test API (vitest's, jest's or
 * mocha's `describe`/`it`; defaults to the global ones). Cases are grouped by
 * area; a skipped case says why.
 */
export function runStoreConformance(harness: StoreHarness, options: RunStoreConformanceOptions = {}): void {
  const describe = (options.describe ?? globalApi('describe')) as TestApi['describe'];
  const it = (options.it ?? globalApi('it')) as TestApi['it'];
  const afterAll = (options.afterAll ?? globalApi('afterAll')) as TestApi['afterAll'];
  if (typeof describe !== 'function' || typeof it !== 'function') {
    throw new Error(
      'runStoreConformance needs describe and it: pass them in options or run under a test runner',
    );
  }
  const cases = selectCases([...allStoreCases(), ...(options.extraCases ?? [])], harness, options);
  const session = new ConformanceSession(harness, options);
  const budget = options.caseTimeoutMs ?? 30_000;
  const areas = new Map<string, StoreCase[]>();
  for (const c of cases) {
    const area = c.id.split('.')[0] ?? c.id;
    areas.set(area, [...(areas.get(area) ?? []), c]);
  }
  describe(`kode-store conformance: ${harness.name}`, () => {
    for (const [area, areaCases] of areas) {
      describe(area, () => {
        for (const c of areaCases) {
          const name = `${c.id}: ${c.title}`;
          // The runner's own timeout sits above the case's, so the case reports its own.
          const timeout = (c.timeoutMs ?? budget) + 5_000;
          it(
            name,
            async function (this: unknown, context?: unknown) {
              const result = await session.runCase(c);
              if (result.status === 'failed') throw result.error;
              if (result.status === 'skipped')
                skipRunningTest(this, context, result.reason ?? 'no reason given');
            },
            timeout,
          );
        }
      });
    }
    if (typeof afterAll === 'function') afterAll(() => session.tearDown(), 60_000);
    else it('conformance teardown: shared fixtures are removed', () => session.tearDown());
  });
}

/** Runs every case without a test runner, one after another, and reports what passed, failed and was skipped. */
export async function verifyStore(
  harness: StoreHarness,
  options: VerifyStoreOptions = {},
): Promise<VerifyStoreResult> {
  const cases = selectCases([...allStoreCases(), ...(options.extraCases ?? [])], harness, options);
  const session = new ConformanceSession(harness, options);
  const results: CaseResult[] = [];
  try {
    for (const c of cases) {
      const result = await session.runCase(c);
      results.push(result);
      options.onResult?.(result);
    }
  } finally {
    await session.tearDown();
  }
  const count = (status: CaseResult['status']) => results.filter((r) => r.status === status).length;
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped'), results };
}

/** One line per failed or skipped case, for printing a `verifyStore` result. */
export function formatResults(result: VerifyStoreResult): string {
  const lines = result.results
    .filter((r) => r.status !== 'passed')
    .map((r) =>
      r.status === 'skipped' ? `SKIP ${r.id}: ${r.reason}` : `FAIL ${r.id}: ${describeError(r.error)}`,
    );
  lines.push(`${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped`);
  return lines.join('\n');
}
