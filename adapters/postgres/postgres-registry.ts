import { DELETED_AGENT_RETENTION_MS } from '../../src/agent/deleted-agents.js';
import type { FileEventRegistry } from '../../src/hybrid/file-event-storage.js';
import { prefixUpperBound } from '../../src/strings.js';
import type { PostgresConnection } from './postgres-connection.js';

/**
 * `kode_agents` is the registry behind `exists()` and `list()` (and holds the
 * info columns). `delete` replaces an agent's row with a tombstone
 * (`deleted_at_ms` set, every other column at its default) so that late
 * events of the deleted agent are discarded (src/agent/deleted-agents.ts); any
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

/**
 * The ON CONFLICT clause with which a write that is not an event registers
 * its agent (alias `a`). It also sets `last_write_ms` (the column's default,
 * the database clock), the time retention judges inactivity by.
 */
export const REGISTER_ON_CONFLICT =
  'ON CONFLICT (agent_id) DO UPDATE SET deleted_at_ms = NULL, last_write_ms = excluded.last_write_ms';

/**
 * The database's clock in epoch milliseconds: the time of every write that
 * retention reads (`kode_agents.last_write_ms`, `kode_events.appended_at_ms`).
 * One clock for a whole fleet of processes.
 */
export const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::double precision';

/** Conditions on `agent_id` for ids starting with `prefix` (none without one), their values pushed onto `values`. */
export function prefixConditions(prefix: string | undefined, values: unknown[]): string[] {
  if (!prefix) return [];
  values.push(prefix);
  const conditions = [`agent_id >= $${values.length}`];
  const upper = prefixUpperBound(prefix);
  if (upper !== undefined) {
    values.push(upper);
    conditions.push(`agent_id < $${values.length}`);
  }
  return conditions;
}

/** Hybrid mode's questions to the registry (src/hybrid/file-event-storage.ts), answered by `kode_agents`. */
export function postgresFileEventRegistry(db: PostgresConnection): FileEventRegistry {
  const agents = db.table('kode_agents');
  const events = db.table('kode_events');
  const admission =
    db.statement(`SELECT (SELECT deleted_at_ms FROM ${agents} WHERE agent_id = $1) AS deleted_at_ms,
    EXISTS (SELECT 1 FROM ${events} WHERE agent_id = $1) AS in_database`);
  // Records the event file; a live tombstone (a delete by another store
  // after admission) stays, and is reported so that the log removes the file.
  const record = db.statement(`INSERT INTO ${agents} AS a (agent_id, event_files) VALUES ($1, true)
    ON CONFLICT (agent_id) DO UPDATE
      SET event_files = a.event_files OR a.deleted_at_ms IS NULL OR a.deleted_at_ms <= $2,
        deleted_at_ms = CASE WHEN a.deleted_at_ms > $2 THEN a.deleted_at_ms END,
        last_write_ms = excluded.last_write_ms
    RETURNING deleted_at_ms`);
  const rows = db.statement(`SELECT EXISTS (SELECT 1 FROM ${events} WHERE agent_id = $1) AS in_database`);
  const recorded = db.statement(
    `SELECT EXISTS (SELECT 1 FROM ${agents} WHERE agent_id = $1 AND event_files AND ${LIVE_AGENT}) AS files`,
  );
  return {
    async admission(agentId) {
      const [row] = await db.query<{ deleted_at_ms: number | null; in_database: boolean }>(
        admission,
        [agentId],
        true,
      );
      return { deletedAtMs: row?.deleted_at_ms, inDatabase: row?.in_database === true };
    },
    async recordFile(agentId) {
      const [row] = await db.query<{ deleted_at_ms: number | null }>(
        record,
        [agentId, Date.now() - DELETED_AGENT_RETENTION_MS],
        true,
      );
      return row?.deleted_at_ms === null;
    },
    async hasDatabaseEvents(agentId) {
      const [row] = await db.query<{ in_database: boolean }>(rows, [agentId], true);
      return row?.in_database === true;
    },
    async recordsFile(agentId) {
      const [row] = await db.query<{ files: boolean }>(recorded, [agentId], true);
      return row?.files === true;
    },
    wrapError: (error, ctx) => db.wrapError(error, ctx),
  };
}
