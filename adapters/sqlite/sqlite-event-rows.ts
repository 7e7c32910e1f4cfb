import { eventFields } from '../../src/agent/store-codec.js';
import type { EventMode } from '../../src/hybrid/event-modes.js';
import type { EventRowAccess } from '../../src/transfer/event-mode-move.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { hasDatabaseEvents, LIVE_AGENT, REGISTER_AGENT } from './sqlite-registry.js';

const PAGE_ROWS = 1024;

/** The database side of moving events between modes (`kode-store events`). */
export function sqliteEventRows(connection: SqliteConnection): EventRowAccess {
  return {
    async agentsWithRows() {
      const rows = (await connection.read(() =>
        connection.statement('SELECT DISTINCT agent_id FROM events ORDER BY agent_id').all(),
      )) as Array<{ agent_id: string }>;
      return rows.map((row) => row.agent_id);
    },
    async *readRows(agentId) {
      let lastId = 0;
      for (;;) {
        const rows = (await connection.read(() =>
          connection
            .statement(
              'SELECT id, timeline_json FROM events WHERE agent_id = ? AND id > ? ORDER BY id LIMIT ?',
            )
            .all(agentId, lastId, PAGE_ROWS),
        )) as Array<{ id: number; timeline_json: string }>;
        if (rows.length === 0) return;
        lastId = rows[rows.length - 1]!.id;
        yield rows.map((row) => row.timeline_json);
      }
    },
    async insertRows(agentId, lines) {
      await connection.write(() => {
        const insert = connection.statement(
          'INSERT INTO events (agent_id, channel, seq, timeline_json) VALUES (?, ?, ?, ?)',
        );
        for (const line of lines) {
          const fields = eventFields(JSON.parse(line));
          insert.run(agentId, fields.channel, fields.seq, line);
        }
      });
    },
    async deleteRows(agentId) {
      await connection.write(() =>
        connection.statement('DELETE FROM events WHERE agent_id = ?').run(agentId),
      );
    },
    async recordedMode(agentId): Promise<EventMode | undefined> {
      return connection.read(() => {
        const row = connection
          .statement(`SELECT has_file_events FROM agents WHERE agent_id = ? AND ${LIVE_AGENT}`)
          .get(agentId) as { has_file_events: number } | undefined;
        if (row?.has_file_events === 1) return 'file';
        return hasDatabaseEvents(connection, agentId) ? 'database' : undefined;
      });
    },
    async recordMode(agentId, mode) {
      await connection.write(() => {
        connection.statement(REGISTER_AGENT).run(agentId, Date.now());
        connection
          .statement('UPDATE agents SET has_file_events = ? WHERE agent_id = ?')
          .run(mode === 'file' ? 1 : 0, agentId);
      });
    },
  };
}
