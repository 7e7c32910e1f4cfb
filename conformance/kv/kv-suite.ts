import { describeError } from '../assertions.js';
import { allKvCases } from './cases/index.js';
import type { KvCase } from './kv-case.js';
import type { KvHarness } from './kv-harness.js';
import {
  type KvCaseResult,
  type KvConformanceOptions,
  KvConformanceSession,
  selectKvCases,
} from './kv-runner.js';

type TestFn = (this: unknown, context?: unknown) => Promise<void>;

/** The parts of a test runner's API the suite uses (vitest, jest and mocha all fit). */
export interface KvTestApi {
  describe?: (name: string, body: () => void) => unknown;
  it?: (name: string, fn: TestFn, timeoutMs?: number) => unknown;
  afterAll?: (fn: () => Promise<void>, timeoutMs?: number) => unknown;
}

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
export interface VerifyKvStoreResult {
  passed: number;
  failed: number;
  skipped: number;
  results: KvCaseResult[];
}

function globalApi(name: 'describe' | 'it' | 'afterAll'): unknown {
  return (globalThis as Record<string, unknown>)[name];
}

function skipRunningTest(self: unknown, context: unknown, reason: string): void {
  const vitestSkip = (context as { skip?: (note?: string) => never } | undefined)?.skip;
  if (typeof vitestSkip === 'function') vitestSkip(reason);
  const mochaSkip = (self as { skip?: () => never } | undefined)?.skip;
  if (typeof mochaSkip === 'function') mochaSkip.call(self);
  // A runner without dynamic skips: say so loudly rather than pass silently.
  console.warn(`[kode-store kv conformance] skipped: ${reason}`);
}

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
  const describe = (options.describe ?? globalApi('describe')) as KvTestApi['describe'];
  const it = (options.it ?? globalApi('it')) as KvTestApi['it'];
  const afterAll = (options.afterAll ?? globalApi('afterAll')) as KvTestApi['afterAll'];
  if (typeof describe !== 'function' || typeof it !== 'function') {
    throw new Error(
      'runKvConformance needs describe and it: pass them in options or run under a test runner',
    );
  }
  const cases = selectKvCases([...allKvCases(), ...(options.extraCases ?? [])], harness, options);
  const session = new KvConformanceSession(harness, options);
  const areas = new Map<string, KvCase[]>();
  for (const c of cases) {
    const area = c.id.split('.').slice(0, 2).join('.');
    areas.set(area, [...(areas.get(area) ?? []), c]);
  }
  describe(`kode-store kv conformance: ${harness.name}`, () => {
    for (const [area, areaCases] of areas) {
      describe(area, () => {
        for (const c of areaCases) {
          const timeout = (c.timeoutMs ?? options.caseTimeoutMs ?? 30_000) + 5_000;
          it(
            `${c.id}: ${c.title}`,
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
    else it('kv conformance teardown', () => session.tearDown());
  });
}

/** Runs every KV case without a test runner, one after another; reports what passed, failed and was skipped. */
export async function verifyKvStore(
  harness: KvHarness,
  options: VerifyKvStoreOptions = {},
): Promise<VerifyKvStoreResult> {
  const cases = selectKvCases([...allKvCases(), ...(options.extraCases ?? [])], harness, options);
  const session = new KvConformanceSession(harness, options);
  const results: KvCaseResult[] = [];
  try {
    for (const c of cases) {
      const result = await session.runCase(c);
      results.push(result);
      options.onResult?.(result);
    }
  } finally {
    await session.tearDown();
  }
  const count = (status: KvCaseResult['status']) => results.filter((r) => r.status === status).length;
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped'), results };
}

/** One line per failed or skipped case, then the totals: for printing a `verifyKvStore` result. */
export function formatKvResults(result: VerifyKvStoreResult): string {
  const lines = result.results
    .filter((r) => r.status !== 'passed')
    .map((r) =>
      r.status === 'skipped' ? `SKIP ${r.id}: ${r.reason}` : `FAIL ${r.id}: ${describeError(r.error)}`,
    );
  lines.push(`${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped`);
  return lines.join('\n');
}
