import type { EventMode } from '../../src/hybrid/event-modes.js';
import type { EventRowAccess } from '../../src/transfer/event-mode-move.js';
import { optionalColumnKey } from './postgres-column-keys.js';
import type { PostgresConnection } from './postgres-connection.js';
import { LIVE_AGENT } from './postgres-registry.js';

const PAGE_ROWS = 1024;

/** The database side of moving events between modes (`kode-store events`). */
export function postgresEventRows(db: PostgresConnection): EventRowAccess {
  const events = db.table('kode_events');
  const agents = db.table('kode_agents');
  return {
    async agentsWithRows() {
      const rows = await db.query<{ agent_id: string }>(
        `SELECT DISTINCT agent_id FROM ${events} ORDER BY agent_id`,
        [],
        true,
      );
      return rows.map((row) => row.agent_id);
    },
    async *readRows(agentId) {
      let lastId = 0;
      for (;;) {
        const rows = await db.query<{ id: string; timeline_json: string }>(
          `SELECT id, timeline_json FROM ${events} WHERE agent_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
          [agentId, lastId, PAGE_ROWS],
          true,
        );
        if (rows.length === 0) return;
        lastId = Number(rows[rows.length - 1]!.id);
        yield rows.map((row) => row.timeline_json);
      }
    },
    async insertRows(agentId, lines) {
      const parsed = lines.map(
        (line) => JSON.parse(line) as { bookmark?: { seq?: unknown }; event?: { channel?: unknown } },
      );
      await db.query(
        `INSERT INTO ${events} (agent_id, seq, channel_key, timeline_json)
         SELECT $1, e.seq, e.channel_key, e.timeline_json
         FROM unnest($2::float8[], $3::text[], $4::text[]) WITH ORDINALITY AS e(seq, channel_key, timeline_json, n)
         ORDER BY e.n`,
        [
          agentId,
          parsed.map((entry) => (typeof entry.bookmark?.seq === 'number' ? entry.bookmark.seq : null)),
          parsed.map((entry) => optionalColumnKey(entry.event?.channel)),
          lines,
        ],
      );
    },
    async deleteRows(agentId) {
      await db.query(`DELETE FROM ${events} WHERE agent_id = $1`, [agentId]);
    },
    async recordedMode(agentId): Promise<EventMode | undefined> {
      const [row] = await db.query<{ files: boolean | null; rows: boolean }>(
        `SELECT (SELECT event_files FROM ${agents} WHERE agent_id = $1 AND ${LIVE_AGENT}) AS files,
           EXISTS (SELECT 1 FROM ${events} WHERE agent_id = $1) AS rows`,
        [agentId],
        true,
      );
      if (row?.files) return 'file';
      return row?.rows ? 'database' : undefined;
    },
    async recordMode(agentId, mode) {
      await db.query(
        `INSERT INTO ${agents} AS a (agent_id, event_files) VALUES ($1, $2)
         ON CONFLICT (agent_id) DO UPDATE SET event_files = excluded.event_files, deleted_at_ms = NULL`,
        [agentId, mode === 'file'],
      );
    },
  };
}
