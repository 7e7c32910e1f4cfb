import {
  type AnyKodeStoreError,
  BusyError,
  CorruptDataError,
  type ErrorContext,
  isKodeStoreError,
  redactSecrets,
  StorageFullError,
  wrapDriverError,
} from '../../src/errors.js';

/**
 * What better-sqlite3's error codes mean for the store: the disk is full,
 * another connection held the file past the busy timeout, or the file is
 * not a (sound) database. Read here, in the adapter, so that the core knows
 * no SQLite code.
 */
const TYPED_CODES: Record<string, typeof StorageFullError | typeof BusyError | typeof CorruptDataError> = {
  SQLITE_FULL: StorageFullError,
  SQLITE_BUSY: BusyError,
  SQLITE_BUSY_SNAPSHOT: BusyError,
  SQLITE_BUSY_TIMEOUT: BusyError,
  SQLITE_LOCKED: BusyError,
  SQLITE_CORRUPT: CorruptDataError,
  SQLITE_NOTADB: CorruptDataError,
};

/** The typed error for a SQLite error, or `undefined` for any other error (left to `wrapDriverError`). */
export function classifySqliteError(
  error: unknown,
  ctx: Omit<ErrorContext, 'cause'>,
): AnyKodeStoreError | undefined {
  if (typeof error !== 'object' || error === null || isKodeStoreError(error)) return undefined;
  const code = (error as { code?: unknown }).code;
  const Typed = typeof code === 'string' ? TYPED_CODES[code] : undefined;
  if (!Typed) return undefined;
  const message = redactSecrets(error instanceof Error ? error.message : String(error));
  return new Typed(message, { ...ctx, cause: error });
}

/** `wrapDriverError` with SQLite's codes read first. */
export function wrapSqliteError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError {
  return classifySqliteError(error, ctx) ?? wrapDriverError(error, ctx);
}
