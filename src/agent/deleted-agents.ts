/**
 * Deleted stays deleted (SPEC §3).
 *
 * The SDK keeps appending monitor events (`step_complete`, `state_changed`,
 * `breakpoint_changed`) for a moment after a step's promise resolves, also
 * while `AgentPool.delete()` runs, and it never awaits them. Without a rule,
 * one such late `appendEvent` registers the id again: `exists()` and `list()`
 * name an agent with no info, and `AgentPool.resumeAll()` fails on it.
 *
 * The rule, the same on every backend: `delete` leaves a tombstone for the
 * id. While it lives, `appendEvent` for the id is acknowledged and its entry
 * discarded (a rejection would make the SDK cache the event and retry it).
 * Any other write (a new agent's `saveInfo` comes first in the SDK's
 * `Agent.create`) clears the tombstone and starts a new agent under the id,
 * whose later events are kept as usual. Events alone cannot tell a late
 * event from a new agent; in the SDK a new agent never starts with one.
 *
 * Tombstones are rows (documents, map entries) in the database, so every
 * store object and process on it obeys them; they are pruned once older than
 * `DELETED_AGENT_RETENTION_MS`, which bounds their number while outliving any
 * step that was still running at the delete.
 */
export const DELETED_AGENT_RETENTION_MS = 60 * 60 * 1000;

/** True when a tombstone written at `deletedAtMs` still discards events at `nowMs`. */
export function tombstoneLive(deletedAtMs: number | null | undefined, nowMs: number): boolean {
  return (
    deletedAtMs !== null && deletedAtMs !== undefined && nowMs - deletedAtMs < DELETED_AGENT_RETENTION_MS
  );
}
