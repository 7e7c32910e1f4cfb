import {
  type AnyKodeStoreError,
  ConnectionError,
  type ErrorContext,
  isKodeStoreError,
  redactSecrets,
  StorageFullError,
  TimeoutError,
  wrapDriverError,
} from '../../src/errors.js';
import type { PostgresPool, PostgresPoolClientEvents } from './postgres-config.js';

/**
 * What the `pg` driver's errors mean for the store, in one place for the
 * agent store, its KV backend and the locks: which are a lost connection,
 * which a bound running out. And the listeners that keep the driver's
 * `'error'` events from crashing the process.
 *
 * A lost connection shows up in several shapes: a server error with a
 * SQLSTATE of class 08 (connection exception) or 57P01-57P05 (the server
 * ended the session: `pg_terminate_backend`, shutdown, crash recovery, idle
 * timeouts); a socket error with a Node errno code; or one of pg's own
 * messages, which carry no code at all ("Connection terminated
 * unexpectedly", "Client has encountered a connection error and is not
 * queryable" for a query sent on a client that already lost its socket).
 */

/** The bounds in effect, to name in a `TimeoutError`. */
export interface PostgresBounds {
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  /** Read from a pool handed in (0: not set there): errors name the pool's settings, not the store's options. */
  fromPool?: boolean;
}

/** The pool setting behind each bound, named when the bounds are a pool's own. */
const POOL_SETTING: Record<BoundName, string> = {
  connectTimeoutMs: 'connectionTimeoutMillis',
  statementTimeoutMs: 'statement_timeout',
  lockTimeoutMs: 'lock_timeout',
};

type BoundName = 'connectTimeoutMs' | 'statementTimeoutMs' | 'lockTimeoutMs';

/** SQLSTATEs of a session the server ended or could not start. */
const SESSION_ENDED = new Set([
  '57P01', // admin_shutdown: pg_terminate_backend, smart/fast shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or shutting down
  '57P05', // idle_session_timeout
  '25P03', // idle_in_transaction_session_timeout (the session is closed)
]);

/** Errno codes of a socket that could not be opened or broke. */
const SOCKET_FAILURES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
]);

/** pg's and pg-pool's own messages for a lost or unusable connection (they carry no code). */
const LOST_CONNECTION_MESSAGES = [
  /^Connection terminated/i,
  /is not queryable$/i,
  /connection.*(closed|ended|reset)/i,
];

/** query_canceled: `statement_timeout` ran out (the store never cancels statements itself). */
const QUERY_CANCELED = '57014';
/** lock_not_available: `lock_timeout` ran out (the store never uses NOWAIT). */
const LOCK_NOT_AVAILABLE = '55P03';
/** pg's message when no answer came within `query_timeout`: the server did not answer at all. */
const READ_TIMEOUT_MESSAGE = /^Query read timeout$/i;

/** pg-pool's messages when no connection could be made within `connectionTimeoutMillis`. */
const CONNECT_TIMEOUT_MESSAGES = [
  /^timeout exceeded when trying to connect$/i,
  /due to connection timeout$/i,
];

function codeOf(error: object): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: object): string {
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' ? message : '';
}

/** True when a pg error is a lost, refused or unusable connection (whatever the statement was). */
export function isPostgresConnectionLoss(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if (error instanceof ConnectionError) return true;
  if (isKodeStoreError(error)) return false;
  const code = codeOf(error);
  if (code !== undefined) {
    if (code.startsWith('08') || SESSION_ENDED.has(code) || SOCKET_FAILURES.has(code)) return true;
    // A server error with any other SQLSTATE came over a working connection.
    if (/^[0-9A-Z]{5}$/.test(code)) return false;
  }
  const message = messageOf(error);
  if (LOST_CONNECTION_MESSAGES.some((pattern) => pattern.test(message))) return true;
  const cause = (error as { cause?: unknown }).cause;
  return cause !== undefined && cause !== error && isPostgresConnectionLoss(cause);
}

/**
 * The typed error for a pg error the generic reading would get wrong: a lost
 * connection is a `ConnectionError`, a bound running out a `TimeoutError`
 * naming the bound. `undefined` for any other error (and for our own typed
 * errors), which `wrapDriverError` then reads.
 */
export function classifyPostgresError(
  error: unknown,
  ctx: Omit<ErrorContext, 'cause'>,
  bounds: PostgresBounds,
): AnyKodeStoreError | undefined {
  if (typeof error !== 'object' || error === null || isKodeStoreError(error)) return undefined;
  const detail = redactSecrets(messageOf(error) || String(error));
  if (CONNECT_TIMEOUT_MESSAGES.some((pattern) => pattern.test(messageOf(error)))) {
    return timeout('no PostgreSQL connection', 'connectTimeoutMs', bounds, detail, ctx, error);
  }
  const code = codeOf(error);
  if (code === QUERY_CANCELED) {
    return timeout('the statement did not finish', 'statementTimeoutMs', bounds, detail, ctx, error);
  }
  if (READ_TIMEOUT_MESSAGE.test(messageOf(error))) {
    return timeout('the PostgreSQL server did not answer', 'statementTimeoutMs', bounds, detail, ctx, error);
  }
  if (code === LOCK_NOT_AVAILABLE) {
    return timeout('a lock was not granted', 'lockTimeoutMs', bounds, detail, ctx, error);
  }
  if (code === DISK_FULL) return new StorageFullError(detail, { ...ctx, cause: error });
  if (isPostgresConnectionLoss(error)) return new ConnectionError(detail, { ...ctx, cause: error });
  return undefined;
}

/** A `TimeoutError` naming the bound (the store's option, or the setting of a pool handed in). */
function timeout(
  what: string,
  option: BoundName,
  bounds: PostgresBounds,
  detail: string,
  ctx: Omit<ErrorContext, 'cause'>,
  cause: unknown,
): TimeoutError {
  const bound = bounds[option];
  const name = bounds.fromPool ? `the pool's ${POOL_SETTING[option]}` : option;
  const within = bound > 0 ? `within ${bound} ms (${name})` : 'within the bound set on the pool';
  return new TimeoutError(`${what} ${within}: ${detail}`, {
    ...ctx,
    timeoutMs: bound > 0 ? bound : undefined,
    cause,
  });
}

/** `wrapDriverError` with pg's errors read first: every error of the adapter goes through here. */
export function wrapPostgresError(
  error: unknown,
  ctx: Omit<ErrorContext, 'cause'>,
  bounds: PostgresBounds,
): AnyKodeStoreError {
  return classifyPostgresError(error, ctx, bounds) ?? wrapDriverError(error, ctx);
}

/** disk_full: the server could not extend a file. */
const DISK_FULL = '53100';

const heard = new WeakSet<object>();
const ignoreClientError = () => {
  // Heard so that it cannot crash the process. The failure itself reaches
  // the caller as the rejection of the statement it broke, or pg-pool
  // discards the idle client it happened on.
};

/**
 * Makes every client of `pool` heard from the moment the store can see it,
 * and the pool itself. pg-pool listens on a client only while it is idle:
 * it removes its listener when it hands the client out, and a connection
 * error that arrives before the borrower attaches one (ReadyForQuery and a
 * FATAL in one socket read, under `pg_terminate_backend`) is an `'error'`
 * event nobody hears, which crashes the process. `'connect'` fires for each
 * new client, `'acquire'` for each checkout (so clients an injected pool
 * made before the store saw it are covered too); both run synchronously
 * before pg-pool removes its own listener. The client listener stays for the
 * client's life. Returns a function that detaches from the pool.
 */
export function hearPoolErrors(pool: PostgresPool): () => void {
  const onClient = (client: PostgresPoolClientEvents) => {
    if (heard.has(client)) return;
    heard.add(client);
    client.on('error', ignoreClientError);
  };
  // An idle client lost its connection: pg-pool has already discarded it.
  const onPoolError = () => undefined;
  pool.on('error', onPoolError);
  pool.on('connect', onClient);
  pool.on('acquire', onClient);
  return () => {
    pool.removeListener('error', onPoolError);
    pool.removeListener('connect', onClient);
    pool.removeListener('acquire', onClient);
  };
}
