import { DELETED_AGENT_RETENTION_MS, tombstoneLive } from '../../src/agent/deleted-agents.js';
import type { FileEventRegistry } from '../../src/hybrid/file-event-storage.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { wrapSqliteError } from './sqlite-errors.js';

/**
 * The `agents` table is the registry behind `exists()` and `list()`: one row
 * per agent that has anything stored. `delete` leaves the row behind as a
 * tombstone (`deleted_at_ms` set, everything else cleared) so that late
 * events of the deleted agent are discarded (src/agent/deleted-agents.ts); any
 * other write registers the agent through `REGISTER_AGENT`, which ends the
 * tombstone.
 */

/**
 * Registers an agent for a write (parameters: the id, the time of the
 * write); a tombstone ends here. Every write sets `last_write_ms`, the time
 * retention judges inactivity by (src/agent/retention.ts).
 */
export const REGISTER_AGENT =
  'INSERT INTO agents (agent_id, last_write_ms) VALUES (?, ?) ' +
  'ON CONFLICT (agent_id) DO UPDATE SET deleted_at_ms = NULL, last_write_ms = excluded.last_write_ms';

/** The condition, on `agents`, of an agent that exists (not a tombstone). */
export const LIVE_AGENT = 'deleted_at_ms IS NULL';

/**
 * Replaces the agent's registry row with a tombstone and prunes expired
 * ones. Runs inside the delete's write transaction, after the agent's other
 * rows were deleted.
 */
export function writeTombstone(connection: SqliteConnection, agentId: string, nowMs: number): void {
  connection.statement('DELETE FROM agents WHERE agent_id = ?').run(agentId);
  connection.statement('INSERT INTO agents (agent_id, deleted_at_ms) VALUES (?, ?)').run(agentId, nowMs);
  connection.statement('DELETE FROM agents WHERE deleted_at_ms < ?').run(nowMs - DELETED_AGENT_RETENTION_MS);
}

/**
 * What a database-mode event append does for its agent: `append`; `discard`
 * (a late event of a deleted agent); or `refuse`, because the agent's events
 * live in files (hybrid mode), where this store does not write.
 */
export type EventAdmission = 'append' | 'discard' | 'refuse';

/**
 * Decides, inside an event batch's write transaction, what becomes of the
 * agent's events: a live tombstone discards them, recorded file events refuse
 * them; otherwise the agent is registered (an expired tombstone ends) and
 * they are appended.
 */
export function admitEvents(connection: SqliteConnection, agentId: string, nowMs: number): EventAdmission {
  const row = connection
    .statement('SELECT deleted_at_ms, has_file_events FROM agents WHERE agent_id = ?')
    .get(agentId) as { deleted_at_ms: number | null; has_file_events: number } | undefined;
  if (row?.deleted_at_ms === null) {
    if (row.has_file_events === 1) return 'refuse';
    // Once per agent per batch, not per event: the batch is the hot path's unit.
    connection.statement('UPDATE agents SET last_write_ms = ? WHERE agent_id = ?').run(nowMs, agentId);
    return 'append';
  }
  if (tombstoneLive(row?.deleted_at_ms, nowMs)) return 'discard';
  connection.statement(REGISTER_AGENT).run(agentId, nowMs);
  return 'append';
}

/** True when the agent has events in the database's `events` table (database mode). */
export function hasDatabaseEvents(connection: SqliteConnection, agentId: string): boolean {
  return connection.statement('SELECT 1 FROM events WHERE agent_id = ? LIMIT 1').get(agentId) !== undefined;
}

/** True when the registry records that the (live) agent's events are in files. */
export function hasFileEvents(connection: SqliteConnection, agentId: string): boolean {
  const row = connection
    .statement(`SELECT has_file_events FROM agents WHERE agent_id = ? AND ${LIVE_AGENT}`)
    .get(agentId) as { has_file_events: number } | undefined;
  return row?.has_file_events === 1;
}

/** Hybrid mode's questions to the registry (src/hybrid/file-event-storage.ts), answered by `agents`. */
export function sqliteFileEventRegistry(connection: SqliteConnection): FileEventRegistry {
  return {
    admission: (agentId) =>
      connection.read(() => ({
        deletedAtMs: (
          connection.statement('SELECT deleted_at_ms FROM agents WHERE agent_id = ?').get(agentId) as
            | { deleted_at_ms: number | null }
            | undefined
        )?.deleted_at_ms,
        inDatabase: hasDatabaseEvents(connection, agentId),
      })),
    // An expired tombstone ends here; a live one stays and is reported, so that the log removes the file.
    recordFile: (agentId) =>
      connection.write(() => {
        const row = connection
          .statement(
            'INSERT INTO agents (agent_id, has_file_events, last_write_ms) VALUES (?, 1, ?) ' +
              'ON CONFLICT (agent_id) DO UPDATE SET has_file_events = 1, last_write_ms = excluded.last_write_ms, ' +
              'deleted_at_ms = CASE WHEN deleted_at_ms > ? THEN deleted_at_ms END ' +
              'RETURNING deleted_at_ms',
          )
          .get(agentId, Date.now(), Date.now() - DELETED_AGENT_RETENTION_MS) as {
          deleted_at_ms: number | null;
        };
        return row.deleted_at_ms === null;
      }),
    hasDatabaseEvents: (agentId) => connection.read(() => hasDatabaseEvents(connection, agentId)),
    recordsFile: (agentId) => connection.read(() => hasFileEvents(connection, agentId)),
    wrapError: wrapSqliteError,
  };
}
