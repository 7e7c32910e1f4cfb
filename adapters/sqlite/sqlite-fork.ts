import type { SqliteConnection } from './sqlite-connection.js';

/** The fork's own `agent_info` row, computed by the caller from the source's info. */
export interface ForkInfoRow {
  json: string;
  templateId: string;
  userId: string | null;
  createdAtMs: number;
  messageCount: number;
}

/**
 * Copies one agent's rows to a new agent id with set-based statements
 * (`INSERT ... SELECT`), so a fork costs a handful of statements whatever
 * the conversation's length. Runs inside the caller's write transaction.
 * Copied: todos, info (given), messages with their first-saved times and
 * content-type index, tool-call records with their ids unchanged (the
 * messages' `tool_use` blocks must still match), snapshots in their order.
 * Not copied, as in the reference store: events, history, media cache.
 */
export function copyAgentRows(
  connection: SqliteConnection,
  sourceId: string,
  forkId: string,
  info: ForkInfoRow | undefined,
  now: number,
): void {
  const run = (sql: string, ...parameters: unknown[]) => connection.statement(sql).run(...parameters);
  run(
    'INSERT INTO agents (agent_id, todos_json) SELECT ?, todos_json FROM agents WHERE agent_id = ?',
    forkId,
    sourceId,
  );
  if (info) {
    run(
      'INSERT INTO agent_info (agent_id, info_json, template_id, user_id, created_at_ms, updated_at_ms, message_count) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?)',
      forkId,
      info.json,
      info.templateId,
      info.userId,
      info.createdAtMs,
      now,
      info.messageCount,
    );
  }
  run(
    'INSERT INTO messages (agent_id, position, message_json, role, created_at_ms) ' +
      'SELECT ?, position, message_json, role, created_at_ms FROM messages WHERE agent_id = ?',
    forkId,
    sourceId,
  );
  run(
    'INSERT INTO message_content_types (agent_id, position, content_type, created_at_ms) ' +
      'SELECT ?, position, content_type, created_at_ms FROM message_content_types WHERE agent_id = ?',
    forkId,
    sourceId,
  );
  run(
    'INSERT INTO tool_calls (agent_id, position, call_id, record_json, name, state, is_error, has_approval, created_at_ms, updated_at_ms) ' +
      'SELECT ?, position, call_id, record_json, name, state, is_error, has_approval, created_at_ms, updated_at_ms ' +
      'FROM tool_calls WHERE agent_id = ?',
    forkId,
    sourceId,
  );
  run(
    'INSERT INTO snapshots (agent_id, snapshot_id, snapshot_json) ' +
      'SELECT ?, snapshot_id, snapshot_json FROM snapshots WHERE agent_id = ? ORDER BY row_id',
    forkId,
    sourceId,
  );
}
