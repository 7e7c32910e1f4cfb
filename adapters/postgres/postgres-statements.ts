import type { PostgresConnection, Statement } from './postgres-connection.js';
import { LIVE_AGENT, REGISTER_ON_CONFLICT } from './postgres-registry.js';

/** The agent store's fixed statements, built once per store (the schema name is part of them). */
export function buildStatements(db: PostgresConnection) {
  return preparedStatements(db, statementTexts(db));
}

/** Each fixed statement as a `Statement` (prepared by name unless the store was told not to). */
export function preparedStatements<K extends string>(
  db: PostgresConnection,
  texts: Record<K, string>,
  prefix?: string,
): Record<K, Statement> {
  const statements = {} as Record<K, Statement>;
  for (const key of Object.keys(texts) as K[]) statements[key] = db.statement(texts[key], prefix);
  return statements;
}

/**
 * The tables named `$2` in schema `$1` among `pg_class c` (joined to
 * `pg_namespace n`), a partitioned table by its partitions: those hold the
 * rows (the partitioned table itself has no storage of its own).
 */
const STORE_RELATIONS = `n.nspname = $1 AND c.relkind = 'r' AND (c.relname = ANY($2::text[])
  OR c.oid IN (SELECT i.inhrelid FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                WHERE p.relnamespace = n.oid AND p.relname = ANY($2::text[])))`;

function statementTexts(db: PostgresConnection) {
  const agents = db.table('kode_agents');
  const messages = db.table('kode_messages');
  const toolCalls = db.table('kode_tool_calls');
  const snapshots = db.table('kode_snapshots');
  const records = db.table('kode_agent_records');
  const documents = db.table('kode_agent_documents');
  const events = db.table('kode_events');
  const revisions = db.table('kode_revision_seq');
  const register = `WITH registered AS (INSERT INTO ${agents} AS a (agent_id) VALUES ($1) ${REGISTER_ON_CONFLICT})`;
  return {
    saveDocument: `${register}
      INSERT INTO ${documents} (agent_id, kind, document_json) VALUES ($1, $2, $3)
      ON CONFLICT (agent_id, kind) DO UPDATE SET document_json = excluded.document_json`,
    loadDocument: `SELECT document_json AS json FROM ${documents} WHERE agent_id = $1 AND kind = $2`,
    appendRecord: `${register}
      INSERT INTO ${records} (agent_id, kind, record_json) VALUES ($1, $2, $3)`,
    loadRecords: `SELECT record_json AS json FROM ${records} WHERE agent_id = $1 AND kind = $2 ORDER BY id`,
    saveSnapshot: `${register}
      INSERT INTO ${snapshots} (agent_id, snapshot_key, snapshot_json) VALUES ($1, $2, $3)
      ON CONFLICT (agent_id, snapshot_key) DO UPDATE SET snapshot_json = excluded.snapshot_json`,
    loadSnapshot: `SELECT snapshot_json AS json FROM ${snapshots} WHERE agent_id = $1 AND snapshot_key = $2`,
    listSnapshots: `SELECT snapshot_json AS json FROM ${snapshots} WHERE agent_id = $1 ORDER BY created_seq`,
    saveInfo: `INSERT INTO ${agents} (agent_id, info_json, template_key, user_key, created_at_ms, updated_at_ms, message_count,
        session_json)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
      ON CONFLICT (agent_id) DO UPDATE SET info_json = excluded.info_json, template_key = excluded.template_key,
        user_key = excluded.user_key, created_at_ms = excluded.created_at_ms,
        updated_at_ms = excluded.updated_at_ms, message_count = excluded.message_count,
        session_json = excluded.session_json, deleted_at_ms = NULL, last_write_ms = excluded.last_write_ms`,
    loadInfo: `SELECT info_json AS json FROM ${agents} WHERE agent_id = $1`,
    // null: no row; false: a tombstone.
    exists: `SELECT (SELECT ${LIVE_AGENT} FROM ${agents} WHERE agent_id = $1) AS live`,
    // The row goes (with what cascades from it) and a tombstone row takes its
    // place, all other columns at their defaults; expired tombstones go too.
    deleteAgent: `WITH removed AS (DELETE FROM ${agents} WHERE agent_id = $1)
      DELETE FROM ${agents} WHERE deleted_at_ms < $2`,
    writeTombstone: `INSERT INTO ${agents} (agent_id, deleted_at_ms) VALUES ($1, $2)`,
    // Event rows go in every mode: an agent may keep rows from database mode that hybrid mode refuses to read.
    deleteEvents: `DELETE FROM ${events} WHERE agent_id = $1`,
    deleteLists: `WITH removed_messages AS (DELETE FROM ${messages} WHERE agent_id = $1)
      DELETE FROM ${toolCalls} WHERE agent_id = $1`,
    // One row of scalar subqueries, not a UNION ALL of the four counts: on
    // tables without statistics the planner expects thousands of rows per
    // agent and runs the branches of a UNION side by side in parallel
    // workers, whose start costs 5-10 ms; each subquery here is one index
    // lookup. Groups come in the order of their first tool call.
    aggregateStats: `
      SELECT (SELECT count(*) FROM ${messages} WHERE agent_id = $1) AS messages,
        (SELECT count(*) FROM ${snapshots} WHERE agent_id = $1) AS snapshots,
        (SELECT json_agg(json_build_array(g.name_key, g.n) ORDER BY g.first) FROM (
          SELECT name_key, count(*) AS n, min(position) AS first FROM ${toolCalls} WHERE agent_id = $1 GROUP BY name_key
        ) AS g) AS by_name,
        (SELECT json_agg(json_build_array(g.state_key, g.n) ORDER BY g.first) FROM (
          SELECT state_key, count(*) AS n, min(position) AS first FROM ${toolCalls} WHERE agent_id = $1 GROUP BY state_key
        ) AS g) AS by_state`,
    consistency: `
      SELECT EXISTS (SELECT 1 FROM ${agents} WHERE agent_id = $1 AND ${LIVE_AGENT}) AS registered,
        (SELECT info_json FROM ${agents} WHERE agent_id = $1) AS info_json,
        (SELECT count(*) FROM ${messages} WHERE agent_id = $1) AS messages,
        (SELECT max(position) FROM ${messages} WHERE agent_id = $1) AS max_position,
        (SELECT count(*) FROM (SELECT tool_call_key FROM ${toolCalls} WHERE agent_id = $1
           GROUP BY tool_call_key HAVING count(*) > 1) AS d) AS duplicate_tool_calls`,
    metrics: `
      SELECT (SELECT count(*) FROM ${agents} WHERE ${LIVE_AGENT}) AS agents,
        (SELECT count(*) FROM ${messages}) AS messages,
        (SELECT count(*) FROM ${toolCalls}) AS tool_calls,
        (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE ${STORE_RELATIONS}) AS size`,
    // What deleting one agent removes (prune's report).
    // and the UTF-8 bytes of the JSON texts it held.
    removalCounts: `
      WITH m AS (SELECT count(*)::int AS n, coalesce(sum(octet_length(message_json)), 0) AS b
                   FROM ${messages} WHERE agent_id = $1),
        t AS (SELECT count(*)::int AS n, coalesce(sum(octet_length(record_json)), 0) AS b
                FROM ${toolCalls} WHERE agent_id = $1),
        e AS (SELECT count(*)::int AS n, coalesce(sum(octet_length(timeline_json)), 0) AS b
                FROM ${db.table('kode_events')} WHERE agent_id = $1),
        s AS (SELECT count(*)::int AS n, coalesce(sum(octet_length(snapshot_json)), 0) AS b
                FROM ${snapshots} WHERE agent_id = $1),
        r AS (SELECT coalesce(sum(octet_length(record_json)), 0) AS b FROM ${records} WHERE agent_id = $1),
        i AS (SELECT coalesce(sum(octet_length(info_json)), 0) AS b FROM ${agents} WHERE agent_id = $1)
      SELECT m.n AS messages, t.n AS tool_calls, e.n AS events, s.n AS snapshots,
        (m.b + t.b + e.b + s.b + r.b + i.b)::float8 AS bytes
      FROM m, t, e, s, r, i`,
    tableSizes: `
      SELECT sum(pg_total_relation_size(c.oid))::float8 AS size FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE ${STORE_RELATIONS}`,
    countUnregistered: `SELECT count(*) AS n FROM unnest($1::text[]) AS f(id)
      WHERE NOT EXISTS (SELECT 1 FROM ${agents} WHERE agent_id = f.id AND ${LIVE_AGENT})`,
    // FOR SHARE: saves of the source wait until the copies are made, so all copies are of one state.
    lockSource: `SELECT info_json FROM ${agents} WHERE agent_id = $1 FOR SHARE`,
    // One statement: the fork rows first (CTE), then every copy; foreign-key
    // checks run at the end of the statement and see the new agent rows.
    fork: `
      WITH forks AS (
        INSERT INTO ${agents} (agent_id, info_json, template_key, user_key, created_at_ms, updated_at_ms,
          message_count, session_json, messages_revision, tool_calls_revision)
        SELECT f.id, f.info_json, f.template_key, f.user_key, f.created_at_ms, f.updated_at_ms, f.message_count,
          f.session_json, nextval('${revisions}'), nextval('${revisions}')
        FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::float8[],
            $9::text[])
          AS f(id, info_json, template_key, user_key, created_at_ms, updated_at_ms, message_count, session_json)
      ),
      fork_ids AS (SELECT id, n FROM unnest($2::text[]) WITH ORDINALITY AS f(id, n)),
      copied_messages AS (
        INSERT INTO ${messages} (agent_id, position, message_json, role_key, content_types, created_at_ms)
        SELECT f.id, m.position, m.message_json, m.role_key, m.content_types, m.created_at_ms
        FROM ${messages} AS m CROSS JOIN fork_ids AS f WHERE m.agent_id = $1
      ),
      copied_tool_calls AS (
        INSERT INTO ${toolCalls} (agent_id, position, tool_call_key, record_json, name_key, state_key, is_error,
          has_approval, created_at_ms, updated_at_ms)
        SELECT f.id, t.position, t.tool_call_key, t.record_json, t.name_key, t.state_key, t.is_error,
          t.has_approval, t.created_at_ms, t.updated_at_ms
        FROM ${toolCalls} AS t CROSS JOIN fork_ids AS f WHERE t.agent_id = $1
      ),
      copied_todos AS (
        INSERT INTO ${documents} (agent_id, kind, document_json)
        SELECT f.id, d.kind, d.document_json
        FROM ${documents} AS d CROSS JOIN fork_ids AS f WHERE d.agent_id = $1 AND d.kind = 'todos'
      )
      INSERT INTO ${snapshots} (agent_id, snapshot_key, snapshot_json)
      SELECT f.id, s.snapshot_key, s.snapshot_json
      FROM ${snapshots} AS s CROSS JOIN fork_ids AS f WHERE s.agent_id = $1
      ORDER BY f.n, s.created_seq`,
  };
}
