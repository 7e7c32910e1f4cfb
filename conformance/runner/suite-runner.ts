import { type CaseError, fromCaseError } from './case-error.js';
import { PROFILES, type Profile } from './suite-options.js';

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

/** What running one case produced: plain data. */
export interface SuiteCaseResult {
  id: string;
  /** The level the case needs. */
  level: string;
  /** The weakest profile the case belongs to. */
  profile: Profile;
  status: 'passed' | 'failed' | 'skipped';
  /** Why a case was skipped. */
  reason?: string;
  /** Why a case failed. */
  error?: CaseError;
}

/** Counts of one slice of a run. */
export interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}

/** The level a run found the backend at. */
export interface RunLevel {
  level: string;
  /** `declared` by the harness, `detected` from the store's methods, or `only` for a suite of one level. */
  source: 'declared' | 'detected' | 'only';
}

/** What a run without a test runner found. */
export interface SuiteResult<R extends SuiteCaseResult = SuiteCaseResult> {
  passed: number;
  failed: number;
  skipped: number;
  /** The profile the run judged by. */
  profile: Profile;
  /** The backend's level, when the run got far enough to know it. */
  level?: RunLevel;
  /** Tallies per level, for every level of the suite, lowest first. */
  byLevel: Record<string, Tally>;
  /**
   * Tallies per profile: `sdk` counts the cases of the sdk profile, `strict`
   * every case (all skipped in an sdk run). In a strict run the sdk cases
   * were judged strictly, so `sdk` is then a lower bound of an sdk run's.
   */
  byProfile: Record<Profile, Tally>;
  results: R[];
}

/** Runs cases against one harness and cleans up what they shared. */
export interface SuiteSession<C, R extends SuiteCaseResult> {
  runCase(c: C): Promise<R>;
  tearDown(): Promise<void>;
  /** The backend's level as far as known after the run. */
  runLevel(): Promise<RunLevel | undefined>;
  readonly profile: Profile;
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
              if (result.status === 'failed') {
                throw result.error ? fromCaseError(result.error) : new Error('failed without an error');
              }
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

/** Counts results by status. */
function tally(results: SuiteCaseResult[]): Tally {
  const count = (status: SuiteCaseResult['status']) => results.filter((r) => r.status === status).length;
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped') };
}

/** Runs every case one after another, without a test runner. */
export async function runSuite<C, R extends SuiteCaseResult>(
  cases: C[],
  session: SuiteSession<C, R>,
  levels: readonly string[],
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
  const level = await session.runLevel().catch(() => undefined);
  return {
    ...tally(results),
    profile: session.profile,
    ...(level ? { level } : {}),
    byLevel: Object.fromEntries(levels.map((l) => [l, tally(results.filter((r) => r.level === l))])),
    byProfile: {
      sdk: tally(results.filter((r) => r.profile === 'sdk')),
      // An sdk run judged nothing by the strict rules.
      strict:
        session.profile === 'strict' ? tally(results) : { passed: 0, failed: 0, skipped: results.length },
    },
    results,
  };
}

function score(t: Tally): string {
  return `${t.passed}/${t.passed + t.failed}`;
}

/**
 * The failures one per line, the skips grouped by reason, then which
 * profile and level were run, the score of each profile and level (passed
 * out of run), and the totals.
 */
export function formatSuiteResult(result: SuiteResult): string {
  const lines = result.results
    .filter((r) => r.status === 'failed')
    .map(
      (r) =>
        `FAIL ${r.id}: ${r.error ? `${r.error.name}${r.error.code ? ` [${r.error.code}]` : ''}: ${r.error.message}` : ''}`,
    );
  const skips = new Map<string, string[]>();
  for (const r of result.results) {
    if (r.status !== 'skipped') continue;
    const reason = r.reason ?? 'no reason given';
    skips.set(reason, [...(skips.get(reason) ?? []), r.id]);
  }
  for (const [reason, ids] of skips) {
    const named =
      ids.length <= 3 ? ids.join(', ') : `${ids.slice(0, 2).join(', ')} and ${ids.length - 2} more`;
    lines.push(`SKIP ${named}: ${reason}`);
  }
  lines.push(...formatSummary(result));
  lines.push(`${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped`);
  return lines.join('\n');
}

/** The profile and level a run judged by, and the score of each profile and level (passed out of run). */
export function formatSummary(result: SuiteResult): string[] {
  const lines: string[] = [];
  const level = result.level ? `, level ${result.level.level} (${result.level.source})` : '';
  lines.push(`profile ${result.profile}${level}`);
  const profiles = PROFILES.map((p) => {
    const t = result.byProfile[p];
    const ran = t.passed + t.failed;
    if (ran === 0) return `${p}: not run`;
    // In a strict run the sdk cases are judged strictly too: a lower bound of the sdk profile's score.
    return `${p}: ${score(t)}${p === 'sdk' && result.profile === 'strict' ? ' (judged strictly)' : ''}`;
  });
  lines.push(profiles.join(', '));
  const levels = Object.entries(result.byLevel);
  if (levels.length > 1) {
    lines.push(
      `levels: ${levels.map(([l, t]) => (t.passed + t.failed === 0 ? `${l} not run` : `${l} ${score(t)}`)).join(', ')}`,
    );
  }
  return lines;
}
