import { ConfigError, type ErrorContext, UnsupportedError } from '../errors.js';

/**
 * The errors of a store opened read-only (`readOnly: true`), worded once for
 * every backend.
 */

/** A write asked of a read-only store. */
export function readOnlyWriteError(ctx: Omit<ErrorContext, 'cause'>): UnsupportedError {
  return new UnsupportedError('the store was opened read-only (readOnly: true) and does not write', ctx);
}

/**
 * The location holds no kode-store data: `where` names it (a file, a schema,
 * a database), `missing` says what was looked for. A `ConfigError`, so that a
 * mistyped location is never read as an empty store.
 */
export function noStoreDataError(
  where: string,
  missing: string,
  ctx: Omit<ErrorContext, 'cause'> & { variable: string },
): ConfigError {
  return new ConfigError(`${where} holds no kode-store data (${missing}); nothing to read`, ctx);
}

/** The schema is older than this code: reading it would need the migration a read-only store does not run. */
export function olderSchemaError(
  where: string,
  component: string,
  current: number,
  latest: number,
  ctx: Omit<ErrorContext, 'cause'>,
): UnsupportedError {
  return new UnsupportedError(
    `${where} holds the ${component} schema at version ${current}, older than this kode-store's (${latest}), ` +
      'and a read-only store does not upgrade it: open it once read-write to upgrade it ' +
      '(a store opened without readOnly, or `kode-store doctor --repair`)',
    ctx,
  );
}
