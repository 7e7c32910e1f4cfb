import { PROFILES, type Profile, type SuiteOptions } from './suite-options.js';

/**
 * A mistake in what a run asks for (a pattern that names no case, a skip
 * without a reason, an unknown level or profile), found before any case
 * runs. Its `code` lets a caller (the CLI) tell it from a failure of the
 * store.
 */
export class SelectionError extends Error {
  readonly code = 'KODE_CONFORMANCE_SELECTION';
  constructor(message: string) {
    super(message);
    this.name = 'SelectionError';
  }
}

/** What selection needs to know of a case. */
export interface SelectableCase {
  id: string;
  level?: string;
  profile?: Profile;
}

/** What selection needs to know of a harness. */
export interface SelectingHarness {
  name: string;
  skip?: Record<string, string>;
}

/**
 * Whether case `id` is named by `pattern`: the exact id, a group prefix
 * (`events` or `events.*` names `events.since`, never `events-extra.x`), or
 * a glob whose `*` stands for any run of characters.
 */
export function matchesPattern(id: string, pattern: string): boolean {
  const group = pattern.endsWith('.*') ? pattern.slice(0, -2) : undefined;
  if (group !== undefined && !group.includes('*')) return id.startsWith(`${group}.`);
  if (pattern.includes('*')) {
    const source = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    return new RegExp(`^${source}$`).test(id);
  }
  return id === pattern || id.startsWith(`${pattern}.`);
}

function checkPatterns(suite: string, what: string, patterns: string[], ids: string[]): void {
  const unknown = patterns.filter((p) => !ids.some((id) => matchesPattern(id, p)));
  if (unknown.length > 0)
    throw new SelectionError(`${suite}: ${what} names unknown cases: ${unknown.join(', ')}`);
}

function checkReasons(suite: string, what: string, skip: Record<string, string>): void {
  for (const [pattern, reason] of Object.entries(skip)) {
    if (typeof reason !== 'string' || reason.trim() === '') {
      throw new SelectionError(`${suite}: ${what} skips ${pattern} without a reason`);
    }
  }
}

/**
 * Checks the case list, the harness's and the run's skip lists, `only`,
 * `exclude`, `levels` and `profile`; returns the cases to run (skips are
 * decided per case by `skipReason`). Throws on any mistake, so that a typo
 * never silently leaves cases out.
 */
export function selectCases<C extends SelectableCase>(
  suite: string,
  levels: readonly string[],
  cases: C[],
  harness: SelectingHarness,
  options: SuiteOptions,
): C[] {
  const ids = new Set<string>();
  for (const c of cases) {
    if (ids.has(c.id)) throw new SelectionError(`${suite}: duplicate case id ${c.id}`);
    ids.add(c.id);
    if (c.level !== undefined && !levels.includes(c.level)) {
      throw new SelectionError(
        `${suite}: case ${c.id} has level ${c.level}, not one of ${levels.join(', ')}`,
      );
    }
  }
  const all = [...ids];
  checkPatterns(suite, `harness ${harness.name} skip list`, Object.keys(harness.skip ?? {}), all);
  checkReasons(suite, `harness ${harness.name}`, harness.skip ?? {});
  checkPatterns(suite, "'skip'", Object.keys(options.skip ?? {}), all);
  checkReasons(suite, 'the run', options.skip ?? {});
  checkPatterns(suite, "'only'", options.only ?? [], all);
  checkPatterns(suite, "'exclude'", options.exclude ?? [], all);
  const unknownLevels = (options.levels ?? []).filter((l) => !levels.includes(l));
  if (unknownLevels.length > 0) {
    throw new SelectionError(
      `${suite}: unknown levels ${unknownLevels.join(', ')} (levels: ${levels.join(', ')})`,
    );
  }
  if (options.profile !== undefined && !PROFILES.includes(options.profile)) {
    throw new SelectionError(
      `${suite}: unknown profile ${String(options.profile)} (profiles: ${PROFILES.join(', ')})`,
    );
  }
  return cases.filter(
    (c) =>
      (!options.only || options.only.some((p) => matchesPattern(c.id, p))) &&
      !(options.exclude ?? []).some((p) => matchesPattern(c.id, p)),
  );
}

/**
 * Why `c` is skipped before anything runs, or undefined: the harness's skip
 * list, the run's, the profile, the levels chosen for the run.
 */
export function plannedSkipReason(
  c: SelectableCase,
  harness: SelectingHarness,
  options: SuiteOptions,
): string | undefined {
  for (const [pattern, reason] of Object.entries(harness.skip ?? {})) {
    if (matchesPattern(c.id, pattern)) return `skipped by the harness: ${reason}`;
  }
  for (const [pattern, reason] of Object.entries(options.skip ?? {})) {
    if (matchesPattern(c.id, pattern)) return `skipped by the run: ${reason}`;
  }
  if ((options.profile ?? 'strict') === 'sdk' && (c.profile ?? 'strict') === 'strict') {
    return 'not in the sdk profile: a kode-store rule the SDK does not rely on (run with profile strict)';
  }
  if (options.levels && c.level !== undefined && !options.levels.includes(c.level)) {
    return `level ${c.level} is not among the levels chosen for this run (${options.levels.join(', ')})`;
  }
  return undefined;
}
