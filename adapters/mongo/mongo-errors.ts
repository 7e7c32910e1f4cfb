import {
  type AnyKodeStoreError,
  ConnectionError,
  type ErrorContext,
  isKodeStoreError,
  redactSecrets,
  TimeoutError,
  wrapDriverError,
} from '../../src/errors.js';

/**
 * What the MongoDB driver's errors mean for the store, read here, in the
 * adapter, so that the core (`wrapDriverError`) knows no driver class:
 *
 * - a bound running out is a `TimeoutError` naming it (below);
 * - any other `MongoNetwork*`, `MongoServerSelection*` or `MongoTopology*`
 *   error is a `ConnectionError`: the server cannot be reached, went away,
 *   or the client was closed under the operation.
 *
 * - `MongoNetworkTimeoutError`: a reply did not come within the socket
 *   timeout (`operationTimeoutMs`), or a connection's handshake within the
 *   connect timeout. `MongoOperationTimeoutError` is the driver's own
 *   per-operation timeout, `MaxTimeMSExpired` (code 50) the server's.
 * - `MongoServerSelectionError` means no server could be used within
 *   `serverSelectionTimeoutMS`. Its reason lists each server's last error:
 *   a refused, reset or unresolvable connection stays a `ConnectionError`
 *   (nothing listens there); a timeout, or no answer at all yet, means a
 *   server that does not answer (stopped, overloaded, a network that drops
 *   packets): a `TimeoutError`.
 */

/** Server error codes the adapter acts on. */
export const MONGO_SERVER_CODES = {
  /** A unique index refused a write (another writer created the document first). */
  duplicateKey: 11000,
  /** The collection already exists (another process created it first). */
  namespaceExists: 48,
  /** The server does not know the command (an older server, or the emulator used in tests). */
  commandNotFound: 59,
} as const;

/** Whether `error` carries the server error code `code`. */
export function hasServerCode(error: unknown, code: number): boolean {
  return (error as { code?: unknown } | null)?.code === code;
}

/** A unique index refused the write: the caller lost a race to create the same document. */
export function isDuplicateKey(error: unknown): boolean {
  return hasServerCode(error, MONGO_SERVER_CODES.duplicateKey);
}

/** The bounds in effect, to name in the error. */
export interface MongoBounds {
  connectTimeoutMs: number;
  operationTimeoutMs: number;
}

const MAX_TIME_MS_EXPIRED = 50;

function isTimeoutName(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'MongoNetworkTimeoutError' || name === 'MongoOperationTimeoutError';
}

/** The last error of each server in a server selection failure's reason. */
function serverErrors(error: unknown): unknown[] {
  const servers = (error as { reason?: { servers?: unknown } } | null)?.reason?.servers;
  if (!(servers instanceof Map)) return [];
  return [...servers.values()].map((server) => (server as { error?: unknown } | null)?.error);
}

/** A `TimeoutError` for a driver error that is a bound running out; `undefined` for any other error. */
export function mongoTimeoutError(
  error: unknown,
  ctx: Omit<ErrorContext, 'cause'>,
  bounds: MongoBounds,
): AnyKodeStoreError | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const detail = redactSecrets(error instanceof Error ? error.message : String(error));
  const name = (error as { name?: unknown }).name;
  if (name === 'MongoServerSelectionError') {
    const errors = serverErrors(error).filter((cause) => cause !== undefined && cause !== null);
    if (!errors.every(isTimeoutName)) return undefined;
    return new TimeoutError(
      `no MongoDB server answered within ${bounds.connectTimeoutMs} ms (connectTimeoutMs): ${detail}`,
      { ...ctx, timeoutMs: bounds.connectTimeoutMs, cause: error },
    );
  }
  if (isTimeoutName(error) || (error as { code?: unknown }).code === MAX_TIME_MS_EXPIRED) {
    return new TimeoutError(
      `the MongoDB server did not answer within ${bounds.operationTimeoutMs} ms (operationTimeoutMs): ${detail}`,
      { ...ctx, timeoutMs: bounds.operationTimeoutMs, cause: error },
    );
  }
  return undefined;
}

/** The driver's classes of an unreachable server, a lost connection or a closed client. */
const CONNECTION_CLASSES = /^Mongo(Network|ServerSelection|Topology)/;

/**
 * The typed error for a MongoDB driver error, or `undefined` for any other
 * error (left to `wrapDriverError`). `bounds` name the timeout in effect;
 * without them (a KV backend built without its store's options) only the
 * connection classes are read, a network timeout among them.
 */
export function classifyMongoError(
  error: unknown,
  ctx: Omit<ErrorContext, 'cause'>,
  bounds?: MongoBounds,
): AnyKodeStoreError | undefined {
  if (typeof error !== 'object' || error === null || isKodeStoreError(error)) return undefined;
  const timeout = bounds ? mongoTimeoutError(error, ctx, bounds) : undefined;
  if (timeout) return timeout;
  const name = (error as { name?: unknown }).name;
  if (typeof name === 'string' && CONNECTION_CLASSES.test(name)) {
    const message = redactSecrets(error instanceof Error ? error.message : String(error));
    return new ConnectionError(message, { ...ctx, cause: error });
  }
  return undefined;
}

/** `wrapDriverError` with the MongoDB driver's classes read first; a typed error stays as it is. */
export function wrapMongoError(
  error: unknown,
  ctx: Omit<ErrorContext, 'cause'>,
  bounds?: MongoBounds,
): AnyKodeStoreError {
  return classifyMongoError(error, ctx, bounds) ?? wrapDriverError(error, ctx);
}
