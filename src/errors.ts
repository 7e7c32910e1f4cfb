/**
 * Typed errors. Match them by `code` (stable across releases), never by
 * message. Every error raised by a store is a `KodeStoreError`, except
 * `ValidationError`, which is a `TypeError` (the Agent Data Store seed raises
 * `TypeError` for values that are not JSON) and carries the same fields.
 */

/** Stable error codes. */
export type KodeStoreErrorCode =
  | 'KODE_STORE_ERROR'
  | 'KODE_NOT_FOUND'
  | 'KODE_CONFLICT'
  | 'KODE_LOCK_TIMEOUT'
  | 'KODE_VALIDATION'
  | 'KODE_QUERY'
  | 'KODE_STORE_CLOSED'
  | 'KODE_CONFIG'
  | 'KODE_CONNECTION'
  | 'KODE_UNSUPPORTED'
  | 'KODE_CORRUPT'
  | 'KODE_TIMEOUT'
  | 'KODE_BUSY'
  | 'KODE_STORAGE_FULL';

/** Where an error happened: the backend, the store operation, the agent. */
export interface ErrorContext {
  backend?: string;
  operation?: string;
  agentId?: string;
  cause?: unknown;
}

function describe(message: string, ctx: ErrorContext): string {
  const where = [ctx.backend, ctx.operation].filter(Boolean).join('.');
  const agent = ctx.agentId === undefined ? '' : ` (agent ${JSON.stringify(ctx.agentId)})`;
  return where ? `${where}${agent}: ${message}` : `${message}${agent}`;
}

/** Base class of every error this package raises (except `ValidationError`, a `TypeError`). */
export class KodeStoreError extends Error {
  readonly code: KodeStoreErrorCode = 'KODE_STORE_ERROR';
  readonly backend?: string;
  readonly operation?: string;
  readonly agentId?: string;

  constructor(message: string, ctx: ErrorContext = {}) {
    super(describe(message, ctx), ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = new.target.name;
    this.backend = ctx.backend;
    this.operation = ctx.operation;
    this.agentId = ctx.agentId;
  }
}

/** The thing asked for does not exist (an agent to fork, a KV instance). */
export class NotFoundError extends KodeStoreError {
  override readonly code = 'KODE_NOT_FOUND' as const;
}

/** A conditional write lost (`ifVersion`, `ifAbsent`), or an id is already taken. */
export class ConflictError extends KodeStoreError {
  override readonly code = 'KODE_CONFLICT' as const;
}

/** `acquireAgentLock` waited `timeoutMs` and the lock was still held. */
export class LockTimeoutError extends KodeStoreError {
  override readonly code = 'KODE_LOCK_TIMEOUT' as const;
  readonly timeoutMs: number;
  constructor(message: string, ctx: ErrorContext & { timeoutMs: number }) {
    super(message, ctx);
    this.timeoutMs = ctx.timeoutMs;
  }
}

/** A malformed query: unknown `sortBy`, bad operator, bad field path, bad limit. */
export class QueryError extends KodeStoreError {
  override readonly code = 'KODE_QUERY' as const;
}

/** The store was closed; nothing may be called on it any more. */
export class StoreClosedError extends KodeStoreError {
  override readonly code = 'KODE_STORE_CLOSED' as const;
}

/** A missing or contradictory setting; `variable` names the setting at fault. */
export class ConfigError extends KodeStoreError {
  override readonly code = 'KODE_CONFIG' as const;
  readonly variable?: string;
  constructor(message: string, ctx: ErrorContext & { variable?: string } = {}) {
    super(message, ctx);
    this.variable = ctx.variable;
  }
}

/** The database server could not be reached or dropped the connection. */
export class ConnectionError extends KodeStoreError {
  override readonly code = 'KODE_CONNECTION' as const;
}

/** The backend cannot do this (e.g. a transaction on a standalone MongoDB). */
export class UnsupportedError extends KodeStoreError {
  override readonly code = 'KODE_UNSUPPORTED' as const;
}

/**
 * Stored data could not be read back, or a file or database is damaged or not
 * ours (a torn file, an unparsable row, a file that is not a database).
 * `path` names the file when there is one.
 */
export class CorruptDataError extends KodeStoreError {
  override readonly code = 'KODE_CORRUPT' as const;
  readonly path?: string;
  constructor(message: string, ctx: ErrorContext & { path?: string } = {}) {
    super(message, ctx);
    this.path = ctx.path;
  }
}

/**
 * The server did not answer within a configured bound (connect, statement or
 * lock wait). `timeoutMs` is the bound that ran out; the operation may or may
 * not have taken effect on the server, as with any lost reply.
 */
export class TimeoutError extends KodeStoreError {
  override readonly code = 'KODE_TIMEOUT' as const;
  readonly timeoutMs?: number;
  constructor(message: string, ctx: ErrorContext & { timeoutMs?: number } = {}) {
    super(message, ctx);
    this.timeoutMs = ctx.timeoutMs;
  }
}

/**
 * Another connection or process held what this operation needed (SQLite's
 * write lock) for longer than the store was configured to wait. Nothing was
 * written; retrying later may succeed.
 */
export class BusyError extends KodeStoreError {
  override readonly code = 'KODE_BUSY' as const;
}

/** The disk or the database ran out of space; nothing of the failed write is readable. */
export class StorageFullError extends KodeStoreError {
  override readonly code = 'KODE_STORAGE_FULL' as const;
}

/**
 * A value that cannot be stored: not JSON-serialisable (function, symbol,
 * BigInt, cycle, NaN, Infinity, `undefined`), or an invalid argument such as
 * an empty agent id. A `TypeError`, with the same `code` and context fields as
 * `KodeStoreError`. `path` points at the offending part of the value.
 */
export class ValidationError extends TypeError {
  readonly code = 'KODE_VALIDATION' as const;
  readonly backend?: string;
  readonly operation?: string;
  readonly agentId?: string;
  readonly path?: string;

  constructor(message: string, ctx: ErrorContext & { path?: string } = {}) {
    super(describe(message, ctx), ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = 'ValidationError';
    this.backend = ctx.backend;
    this.operation = ctx.operation;
    this.agentId = ctx.agentId;
    this.path = ctx.path;
  }
}

/** Any error of this package, typed or validation. */
export type AnyKodeStoreError = KodeStoreError | ValidationError;

/** True for errors raised by this package (matched by `code`, so it works across copies of the package). */
export function isKodeStoreError(error: unknown): error is AnyKodeStoreError {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    (error as { code: string }).code.startsWith('KODE_')
  );
}

const SECRET_IN_URL = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi;
const PASSWORD_FIELD = /(password["'=:\s]+)[^\s"',;]+/gi;

/** Removes credentials (URL passwords, `password=` fields) from a driver's message. */
export function redactSecrets(text: string): string {
  return text.replace(SECRET_IN_URL, '$1***@').replace(PASSWORD_FIELD, '$1***');
}

/**
 * Wraps a driver error with the backend, operation and agent id, keeping our
 * own typed errors as they are. The driver error stays reachable as `cause`;
 * its message is copied without credentials. Only the operating system's
 * error codes are read here (a refused or reset connection, a full disk);
 * each adapter reads its own driver's codes first (`classifyError` of its
 * backend), so the core knows no SQLSTATE, SQLite code or driver class.
 */
export function wrapDriverError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError {
  if (isKodeStoreError(error)) return error;
  const raw = error instanceof Error ? error.message : String(error);
  const message = redactSecrets(raw);
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (CONNECTION_CODES.has(code)) return new ConnectionError(message, { ...ctx, cause: error });
    if (STORAGE_FULL_CODES.has(code)) return new StorageFullError(message, { ...ctx, cause: error });
  }
  return new KodeStoreError(message, { ...ctx, cause: error });
}

/** Socket errors of Node's `net` and `dns`: the peer cannot be reached or went away. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
]);

/** File-system errors of a full disk or an exhausted quota. */
const STORAGE_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);
