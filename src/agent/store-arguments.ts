import { type ErrorContext, ValidationError } from '../errors.js';

/**
 * Checks of the plain-number arguments of `ExtendedStore` methods, shared so
 * that every backend refuses the same values with the same message.
 */

/** `acquireAgentLock`'s `timeoutMs`: a non-negative number (0 means "try once"). */
export function assertLockTimeout(timeoutMs: unknown, ctx: ErrorContext): asserts timeoutMs is number {
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
    throw new ValidationError(`timeoutMs must be a non-negative number, got ${String(timeoutMs)}`, ctx);
  }
}

/** `batchFork`'s `count`: a non-negative integer. */
export function assertForkCount(count: unknown, ctx: ErrorContext): asserts count is number {
  if (!Number.isInteger(count) || (count as number) < 0) {
    throw new ValidationError(`count must be a non-negative integer, got ${String(count)}`, ctx);
  }
}
