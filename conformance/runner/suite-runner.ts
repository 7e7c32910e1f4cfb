import { describeError } from './assertions.js';

/**
 * What the agent-store suite and the KV suite share: registering cases with a
 * test runner, running them without one, and printing the outcome. Each suite
 * brings its own cases and session (how a case gets its store).
 */

type TestFn = (this: unknown, context?: unknown) => Promise<void>;

/** The parts of a test runner's API the suites use (vitest, jest and mocha all fit). */
export interface TestApi {
  describe?: (name: string, body: () => void) => unknown;
  it?: ((name: string, fn: TestFn, timeoutMs?: number) => unknown) & {
    skip?: (name: string, fn: TestFn) => unknown;
  };
  afterAll?: (fn: () => Promise<void>, timeoutMs?: number) => unknown;
}

/** What running one case produced. */
export interface SuiteCaseResult {
  id: string;
  status: 'passed' | 'failed' | 'skipped';
  /** Why a case was skipped. */
  reason?: string;
  /** Why a case failed. */
  error?: unknown;
}

/** What a run without a test runner found. */
export interface SuiteResult<R extends SuiteCaseResult = SuiteCaseResult> {
  passed: number;
  failed: number;
  skipped: number;
  results: R[];
}

/** Runs cases against one harness and cleans up what they shared. */
export interface SuiteSession<C, R extends SuiteCaseResult> {
  runCase(c: C): Promise<R>;
  tearDown(): Promise<void>;
}

interface RegisteredCase {
  id: string;
  title: string;
  timeoutMs?: number;
}

function globalApi(name: 'describe' | 'it' | 'afterAll'): unknown {
  return (globalThis as Record<string, unknown>)[name];
}

/** Marks the running test skipped with `reason`, in whatever way the runner allows. */
function skipRunningTest(self: unknown, context: unknown, reason: string, suite: string): void {
  const vitestSkip = (context as { skip?: (note?: string) => never } | undefined)?.skip;
  if (typeof vitestSkip === 'function') vitestSkip(reason);
  const mochaSkip = (self as { skip?: () => never } | undefined)?.skip;
  if (typeof mochaSkip === 'function') mochaSkip.call(self);
  // A runner without dynamic skips (jest): say so loudly rather than pass silently.
  console.warn(`[${suite}] skipped: ${reason}`);
}

/**
 * Registers one test per case, grouped by `areaOf`, with the given test API
 * (the global `describe`/`it`/`afterAll` when none is given).
 */
export function registerSuite<C extends RegisteredCase, R extends SuiteCaseResult>(suite: {
  caller: string;
  title: string;
  api: TestApi;
  cases: C[];
  areaOf: (c: C) => string;
  session: SuiteSession<C, R>;
  caseTimeoutMs: number;
}): void {
  const describe = (suite.api.describe ?? globalApi('describe')) as TestApi['describe'];
  const it = (suite.api.it ?? globalApi('it')) as TestApi['it'];
  const afterAll = (suite.api.afterAll ?? globalApi('afterAll')) as TestApi['afterAll'];
  if (typeof describe !== 'function' || typeof it !== 'function') {
    throw new Error(`${suite.caller} needs describe and it: pass them in options or run under a test runner`);
  }
  const areas = new Map<string, C[]>();
  for (const c of suite.cases) {
    const area = suite.areaOf(c);
    areas.set(area, [...(areas.get(area) ?? []), c]);
  }
  describe(suite.title, () => {
    for (const [area, areaCases] of areas) {
      describe(area, () => {
        for (const c of areaCases) {
          // The runner's own timeout sits above the case's, so the case reports its own.
          const timeout = (c.timeoutMs ?? suite.caseTimeoutMs) + 5_000;
          it(
            `${c.id}: ${c.title}`,
            async function (this: unknown, context?: unknown) {
              const result = await suite.session.runCase(c);
              if (result.status === 'failed') throw result.error;
              if (result.status === 'skipped') {
                skipRunningTest(this, context, result.reason ?? 'no reason given', suite.title);
              }
            },
            timeout,
          );
        }
      });
    }
    if (typeof afterAll === 'function') afterAll(() => suite.session.tearDown(), 60_000);
    else it(`${suite.title}: shared fixtures are removed`, () => suite.session.tearDown());
  });
}

/** Runs every case one after another, without a test runner. */
export async function runSuite<C, R extends SuiteCaseResult>(
  cases: C[],
  session: SuiteSession<C, R>,
  onResult?: (result: R) => void,
): Promise<SuiteResult<R>> {
  const results: R[] = [];
  try {
    for (const c of cases) {
      const result = await session.runCase(c);
      results.push(result);
      onResult?.(result);
    }
  } finally {
    await session.tearDown();
  }
  const count = (status: SuiteCaseResult['status']) => results.filter((r) => r.status === status).length;
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped'), results };
}

/** One line per failed or skipped case, then the totals. */
export function formatSuiteResult(result: SuiteResult): string {
  const lines = result.results
    .filter((r) => r.status !== 'passed')
    .map((r) =>
      r.status === 'skipped' ? `SKIP ${r.id}: ${r.reason}` : `FAIL ${r.id}: ${describeError(r.error)}`,
    );
  lines.push(`${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped`);
  return lines.join('\n');
}
