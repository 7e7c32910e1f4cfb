import { type AnyKodeStoreError, type ErrorContext, redactSecrets, TimeoutError } from '../../src/errors.js';

/**
 * What the MongoDB driver's errors mean for the store, beyond the generic
 * reading of `wrapDriverError`: which of them are a bound running out.
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
