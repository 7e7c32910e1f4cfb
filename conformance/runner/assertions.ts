import { currentProfile } from './profile-scope.js';

/**
 * Runner-free assertions for the conformance cases: they throw a
 * `ConformanceAssertionError` whose message says what differs and where, and
 * need no test framework (the suite must run under vitest, jest, mocha or
 * plain node alike).
 */

/** A failed conformance expectation. */
export class ConformanceAssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConformanceAssertionError';
  }
}

/** Fails with `message` unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ConformanceAssertionError(message);
}

/** Fails unconditionally. */
export function fail(message: string): never {
  throw new ConformanceAssertionError(message);
}

function preview(value: unknown): string {
  let text: string;
  try {
    text =
      typeof value === 'string'
        ? JSON.stringify(value)
        : typeof value === 'bigint'
          ? `${value}n`
          : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 160 ? `${text.slice(0, 160)}… (${text.length} chars)` : text;
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * Where `actual` first differs from `expected`, or undefined when they are
 * exactly equal: same types (a number never equals a numeric string), same
 * values, same array lengths, and objects with the same keys **in the same
 * order** (key order is part of a stored value).
 */
export function firstDifference(actual: unknown, expected: unknown, path = '$'): string | undefined {
  if (kind(actual) !== kind(expected)) {
    return `${path}: expected ${kind(expected)} ${preview(expected)}, got ${kind(actual)} ${preview(actual)}`;
  }
  if (typeof expected !== 'object' || expected === null) {
    if (actual === expected || (Number.isNaN(actual) && Number.isNaN(expected))) return undefined;
    return `${path}: expected ${preview(expected)}, got ${preview(actual)}`;
  }
  if (Array.isArray(expected)) {
    const got = actual as unknown[];
    if (got.length !== expected.length) {
      return `${path}: expected ${expected.length} items, got ${got.length}: ${preview(got)}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const diff = firstDifference(got[i], expected[i], `${path}[${i}]`);
      if (diff) return diff;
    }
    return undefined;
  }
  const got = actual as Record<string, unknown>;
  const want = expected as Record<string, unknown>;
  const gotKeys = Object.keys(got);
  const wantKeys = Object.keys(want);
  if (gotKeys.join('\u0000') !== wantKeys.join('\u0000')) {
    const missing = wantKeys.filter((k) => !Object.hasOwn(got, k));
    const extra = gotKeys.filter((k) => !Object.hasOwn(want, k));
    const detail =
      missing.length || extra.length
        ? `missing ${preview(missing)}, unexpected ${preview(extra)}`
        : `order ${preview(gotKeys)} instead of ${preview(wantKeys)}`;
    return `${path}: keys differ (${detail})`;
  }
  for (const key of wantKeys) {
    const diff = firstDifference(got[key], want[key], `${path}.${key}`);
    if (diff) return diff;
  }
  return undefined;
}

/** Fails unless `actual` is exactly `expected` (see `firstDifference`). */
export function checkEqual(actual: unknown, expected: unknown, what: string): void {
  const diff = firstDifference(actual, expected);
  if (diff) throw new ConformanceAssertionError(`${what}: ${diff}`);
}

/** The error's stable code, if it has one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Awaits `action` (a promise, or a function whose call may throw or return a
 * promise) and fails unless it rejects with an error carrying `code`. An
 * error thrown synchronously by the call fails too: store errors must arrive
 * as rejected promises (the SDK fires appends without awaiting them, and a
 * synchronous throw would escape its `.catch`). `KODE_VALIDATION` errors must
 * also be `TypeError`s. In the `sdk` profile any rejection will do: the SDK
 * never looks at an error's class or code.
 */
export async function checkRejects(
  action: Promise<unknown> | (() => unknown),
  code: string,
  what: string,
): Promise<Error> {
  let pending: unknown;
  if (typeof action === 'function') {
    try {
      pending = action();
    } catch (error) {
      throw new ConformanceAssertionError(
        `${what}: threw synchronously (${describeError(error)}) instead of returning a rejected promise`,
      );
    }
  } else {
    pending = action;
  }
  try {
    await pending;
  } catch (error) {
    if (currentProfile() === 'sdk') return error instanceof Error ? error : new Error(String(error));
    if (errorCode(error) !== code) {
      throw new ConformanceAssertionError(
        `${what}: expected an error with code ${code}, got ${describeError(error)}`,
      );
    }
    if (code === 'KODE_VALIDATION' && !(error instanceof TypeError)) {
      throw new ConformanceAssertionError(`${what}: a ValidationError must be a TypeError`);
    }
    return error as Error;
  }
  throw new ConformanceAssertionError(`${what}: expected a rejection with code ${code}, but it resolved`);
}

/** Drains an async iterable into an array. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** A short description of an error for failure messages. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = errorCode(error);
    return `${error.name}${code ? ` [${code}]` : ''}: ${error.message}`;
  }
  return preview(error);
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `Date.now()` has moved past `ms` (so that the next store write gets a later time). */
export async function waitPast(ms: number): Promise<void> {
  while (Date.now() <= ms) await sleep(1);
}
