/**
 * `kode_agents` is the registry behind `exists()` and `list()` (and holds the
 * info columns). `delete` replaces an agent's row with a tombstone
 * (`deleted_at_ms` set, every other column at its default) so that late
 * events of the deleted agent are discarded (src/deleted-agents.ts); any
 * other write ends the tombstone as it registers the agent.
 *
 * Why the tombstone is the registry row itself and not a row elsewhere: an
 * append registers its agents with INSERT ... ON CONFLICT DO UPDATE, which
 * waits for a concurrent delete's uncommitted row and then acts on the row
 * as that delete committed it, tombstone included, whatever the statement's
 * snapshot. A tombstone kept in another table would be invisible to an
 * append whose snapshot predates the delete's commit.
 */

/** The condition, on `kode_agents`, of an agent that exists (not a tombstone). */
export const LIVE_AGENT = 'deleted_at_ms IS NULL';

/** The ON CONFLICT clause with which a write that is not an event registers its agent (alias `a`). */
export const REGISTER_ON_CONFLICT =
  'ON CONFLICT (agent_id) DO UPDATE SET deleted_at_ms = NULL WHERE a.deleted_at_ms IS NOT NULL';
