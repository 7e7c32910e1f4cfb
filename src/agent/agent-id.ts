import { ValidationError } from '../errors.js';

/** Longest agent id accepted. Forks append `/fork-<ms>-<n>` to their parent's id, so this leaves room for nesting. */
export const MAX_AGENT_ID_LENGTH = 1024;

/**
 * Agent ids are opaque strings: `/`, `..`, spaces and unicode are ordinary
 * characters. Refused: non-strings, the empty string, NUL (no SQL text type
 * and no file name can hold it), lone surrogates (UTF-8 drivers would turn
 * them into U+FFFD and merge two ids into one), and ids over the maximum length.
 */
export function assertAgentId(
  agentId: unknown,
  operation: string,
  backend?: string,
): asserts agentId is string {
  const ctx = { operation, backend };
  if (typeof agentId !== 'string')
    throw new ValidationError(`agentId must be a string, got ${typeof agentId}`, ctx);
  if (agentId.length === 0) throw new ValidationError('agentId must not be empty', ctx);
  if (agentId.length > MAX_AGENT_ID_LENGTH) {
    throw new ValidationError(`agentId is longer than ${MAX_AGENT_ID_LENGTH} characters`, ctx);
  }
  if (agentId.includes('\u0000')) throw new ValidationError('agentId must not contain NUL', ctx);
  if (!agentId.isWellFormed()) throw new ValidationError('agentId must not contain lone surrogates', ctx);
}

let forkCounter = 0;

/**
 * The id of a fork: `<source>/fork-<ms>-<n>`, in the SDK's `<parent>/fork-<ms>`
 * family, with a per-process counter and random tail so that forks made in the
 * same millisecond (or by two processes) never collide.
 */
export function newForkId(sourceId: string, now = Date.now()): string {
  forkCounter = (forkCounter + 1) % 1_000_000;
  const tail = Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, '0');
  const id = `${sourceId}/fork-${now}-${forkCounter}${tail}`;
  // A fork nobody could load or delete must never be written: refuse before anything is.
  if (id.length > MAX_AGENT_ID_LENGTH) {
    throw new ValidationError(
      `agent ${JSON.stringify(sourceId.slice(0, 40))}… cannot be forked: the fork's id would be longer than ${MAX_AGENT_ID_LENGTH} characters`,
      { operation: 'batchFork', agentId: sourceId },
    );
  }
  return id;
}

/**
 * Ids never hold NUL or lone surrogates (above): a filter or prefix
 * that does matches nothing, and no backend is asked (a database may refuse
 * such a string rather than find nothing).
 */
export function possibleAgentId(text: string | undefined): boolean {
  return text === undefined || (!text.includes('\u0000') && text.isWellFormed());
}
