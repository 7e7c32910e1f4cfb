import { noStoreDataError, olderSchemaError } from '../../src/agent/read-only-errors.js';
import { UnsupportedError } from '../../src/errors.js';
import type { SqliteDatabase } from './sqlite-config.js';
import { readableJson } from './sqlite-json.js';

/**
 * Versioned schema migrations. Each component (the agent store `agent`, the
 * KV layer `kv`) keeps its version in `kode_schema_version`; opening a
 * database runs the missing steps in order, inside the caller's write
 * transaction, so two processes opening an old file at once upgrade it once.
 */

/** One step of a component's schema history. Steps are never edited once released, only appended. */
export interface SqliteMigration {
  version: number;
  description: string;
  /** SQL run as one script (several statements). */
  sql: string;
}

/** The agent store's schema history. */
export const AGENT_SCHEMA_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    description: 'agent tables',
    // Every primary key starts with the agent id (ids are per agent). The
    // indexes follow the queries: each filter column comes first, then the
    // sort keys, so a query reads a range of one index in order and stops
    // at its LIMIT. The stored JSON text is what loads return; the other
    // columns are copies of its queryable fields.
    sql: `
      CREATE TABLE agents (
        agent_id TEXT PRIMARY KEY,
        messages_revision TEXT,
        tool_calls_revision TEXT,
        todos_json TEXT,
        media_cache_json TEXT,
        has_file_events INTEGER NOT NULL DEFAULT 0
      );

      CREATE TABLE agent_info (
        agent_id TEXT PRIMARY KEY,
        info_json TEXT NOT NULL,
        template_id TEXT NOT NULL,
        user_id TEXT,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        message_count INTEGER NOT NULL
      );
      CREATE INDEX agent_info_by_created ON agent_info (created_at_ms, agent_id);
      CREATE INDEX agent_info_by_updated ON agent_info (updated_at_ms, agent_id);
      CREATE INDEX agent_info_by_message_count ON agent_info (message_count, agent_id);
      CREATE INDEX agent_info_by_template ON agent_info (template_id, created_at_ms, agent_id);
      CREATE INDEX agent_info_by_user ON agent_info (user_id, created_at_ms, agent_id);

      CREATE TABLE messages (
        agent_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        message_json TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (agent_id, position)
      );
      CREATE INDEX messages_by_created ON messages (created_at_ms, agent_id, position);
      CREATE INDEX messages_by_agent_created ON messages (agent_id, created_at_ms, position);
      CREATE INDEX messages_by_role ON messages (role, created_at_ms, agent_id, position);

      CREATE TABLE tool_calls (
        agent_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        call_id TEXT NOT NULL,
        record_json TEXT NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        is_error INTEGER NOT NULL,
        has_approval INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (agent_id, position)
      );
      CREATE INDEX tool_calls_by_created ON tool_calls (created_at_ms, agent_id, call_id);
      CREATE INDEX tool_calls_by_updated ON tool_calls (updated_at_ms, agent_id, call_id);
      CREATE INDEX tool_calls_by_agent_created ON tool_calls (agent_id, created_at_ms, call_id);
      CREATE INDEX tool_calls_by_agent_updated ON tool_calls (agent_id, updated_at_ms, call_id);
      CREATE INDEX tool_calls_by_name ON tool_calls (name, created_at_ms, agent_id, call_id);
      CREATE INDEX tool_calls_by_state ON tool_calls (state, created_at_ms, agent_id, call_id);
      CREATE INDEX tool_calls_by_error ON tool_calls (is_error, created_at_ms, agent_id, call_id);
      CREATE INDEX tool_calls_by_approval ON tool_calls (has_approval, created_at_ms, agent_id, call_id);

      -- The rowid is the insertion sequence: events are read in append order,
      -- never by bookmark.seq (the SDK reuses seqs after a crash). Every index
      -- ends with the rowid, so (agent_id) serves "agent_id = ? AND id > ?".
      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        agent_id TEXT NOT NULL,
        channel TEXT,
        seq INTEGER,
        timeline_json TEXT NOT NULL
      );
      CREATE INDEX events_by_agent ON events (agent_id);
      CREATE INDEX events_by_agent_channel ON events (agent_id, channel);

      -- An upsert keeps the row id, so a re-saved snapshot keeps its place.
      CREATE TABLE snapshots (
        row_id INTEGER PRIMARY KEY,
        agent_id TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        snapshot_json TEXT NOT NULL,
        UNIQUE (agent_id, snapshot_id)
      );
      CREATE INDEX snapshots_by_agent ON snapshots (agent_id);

      -- History windows, compression records and recovered files: append-only lists.
      CREATE TABLE agent_history (
        row_id INTEGER PRIMARY KEY,
        agent_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        record_json TEXT NOT NULL
      );
      CREATE INDEX agent_history_by_agent ON agent_history (agent_id, kind);

      CREATE TABLE agent_locks (
        agent_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: 'content-type index of messages',
    // "Messages holding a block of type X" cannot use an index over the JSON
    // text, so each message's distinct block types get a row of their own.
    // Existing messages are indexed from their stored JSON (one too deep for
    // SQLite's JSON functions is left out rather than failing the upgrade).
    sql: `
      CREATE TABLE message_content_types (
        agent_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (agent_id, position, content_type)
      );
      CREATE INDEX message_content_types_by_type
        ON message_content_types (content_type, created_at_ms, agent_id, position);
      CREATE INDEX message_content_types_by_agent
        ON message_content_types (agent_id, content_type, created_at_ms, position);

      INSERT OR IGNORE INTO message_content_types (agent_id, position, content_type, created_at_ms)
        SELECT m.agent_id, m.position, json_extract(block.value, '$.type'), m.created_at_ms
        FROM messages AS m, json_each(${readableJson('m.message_json')}, '$.content') AS block
        WHERE json_type(${readableJson('m.message_json')}, '$.content') = 'array'
          AND json_type(block.value, '$.type') = 'text';
    `,
  },
  {
    version: 3,
    description: 'fewer index entries per tool call and per message block',
    // Every index entry is paid on every save and, many times over, by
    // batchFork; entries whose keys interleave with other agents' (those
    // led by a time, name or state) cost most. So:
    // - one agent's tool calls are found by the primary key and sorted
    //   (a list is short), not through two indexes of their own;
    // - the other tool-call indexes keep their full keys (filter, time,
    //   agent id, call id), though the two ids make each entry about five
    //   times wider than one ending at the time: with narrow entries SQLite
    //   must sort the calls of one millisecond as it walks, and at 50,000
    //   agents whose calls share times (forks copy theirs) that cost 10-30
    //   ms for name + state (1 ms with full keys), and for an unfiltered
    //   page with a literal LIMIT the planner chose a full scan and sort
    //   (157 ms). Full keys make every page an ordered walk that stops at
    //   its LIMIT;
    // - is_error and has_approval are indexed only where true (partial
    //   indexes): "true" is the selective question, and "false" walks the
    //   time index, where nearly every row matches;
    // - message_content_types becomes WITHOUT ROWID, keyed for the
    //   per-agent query: two B-trees per row instead of four.
    sql: `
      DROP INDEX tool_calls_by_agent_created;
      DROP INDEX tool_calls_by_agent_updated;
      DROP INDEX tool_calls_by_error;
      DROP INDEX tool_calls_by_approval;
      CREATE INDEX tool_calls_errors
        ON tool_calls (is_error, created_at_ms, agent_id, call_id) WHERE is_error = 1;
      CREATE INDEX tool_calls_approvals
        ON tool_calls (has_approval, created_at_ms, agent_id, call_id) WHERE has_approval = 1;

      CREATE TABLE message_content_types_v3 (
        agent_id TEXT NOT NULL,
        content_type TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (agent_id, content_type, created_at_ms, position)
      ) WITHOUT ROWID;
      INSERT INTO message_content_types_v3 (agent_id, content_type, created_at_ms, position)
        SELECT agent_id, content_type, created_at_ms, position FROM message_content_types;
      DROP TABLE message_content_types;
      ALTER TABLE message_content_types_v3 RENAME TO message_content_types;
      CREATE INDEX message_content_types_by_type
        ON message_content_types (content_type, created_at_ms, agent_id, position);
    `,
  },
  {
    version: 4,
    description: 'tombstones of deleted agents',
    // A deleted agent's registry row stays as a tombstone for a while, so
    // that its late events do not register it again (sqlite-registry.ts).
    // The partial index finds expired tombstones without touching live rows.
    sql: `
      ALTER TABLE agents ADD COLUMN deleted_at_ms INTEGER;
      CREATE INDEX agents_deleted ON agents (deleted_at_ms) WHERE deleted_at_ms IS NOT NULL;
    `,
  },
  {
    version: 5,
    description: 'write times for retention',
    // Retention (src/agent/retention.ts) judges an agent by its last write of any
    // kind, and an event by when it was stored: every write sets
    // agents.last_write_ms (an event batch once per agent), every append
    // events.appended_at_ms. Adding the columns rewrites nothing. Agents
    // from before start at their last saveInfo, or at the upgrade when they
    // have no info (never older than they may be); older events keep no
    // time and are judged by their bookmark.timestamp. No index: prune
    // walks the registry in id order.
    sql: `
      ALTER TABLE agents ADD COLUMN last_write_ms INTEGER;
      UPDATE agents SET last_write_ms = coalesce(
        (SELECT i.updated_at_ms FROM agent_info AS i WHERE i.agent_id = agents.agent_id),
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
      WHERE deleted_at_ms IS NULL;
      ALTER TABLE events ADD COLUMN appended_at_ms INTEGER;
    `,
  },
  {
    version: 6,
    description: 'the session beside the info',
    // Each saveInfo stores the session (`sessionFields(info).sessionJson`)
    // beside the whole info, so a querySessions page reads that small text
    // only. Adding a nullable column rewrites no row, so a store of millions
    // of agents opens at once; a row saved before keeps NULL until its next
    // saveInfo, and the query falls back to its info (sqlite-queries.ts).
    sql: `
      ALTER TABLE agent_info ADD COLUMN session_json TEXT;
    `,
  },
];

/**
 * The columns of each per-agent list table besides `agent_id`, in the
 * order a save writes them (sqlite-list-saver.ts) and a fork copies them
 * (sqlite-fork.ts).
 */
export const LIST_COLUMNS = {
  messages: ['position', 'message_json', 'role', 'created_at_ms'],
  message_content_types: ['position', 'content_type', 'created_at_ms'],
  tool_calls: [
    'position',
    'call_id',
    'record_json',
    'name',
    'state',
    'is_error',
    'has_approval',
    'created_at_ms',
    'updated_at_ms',
  ],
} as const;

/** The KV component's schema history in `kode_schema_version`. */
export const SQLITE_KV_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    description: 'KV instances, records and namespace counters',
    sql: `
      CREATE TABLE kode_kv_instances (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX kode_kv_instances_by_created ON kode_kv_instances (created_at, id);
      CREATE TABLE kode_kv_records (
        instance_id TEXT NOT NULL,
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        id TEXT NOT NULL,
        value TEXT NOT NULL,
        metadata TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER,
        created_by TEXT,
        updated_by TEXT,
        PRIMARY KEY (instance_id, namespace, key)
      );
      CREATE INDEX kode_kv_records_expiring ON kode_kv_records (instance_id, namespace, expires_at)
        WHERE expires_at IS NOT NULL;
      CREATE INDEX kode_kv_records_by_expiry ON kode_kv_records (expires_at) WHERE expires_at IS NOT NULL;
      CREATE TABLE kode_kv_namespaces (
        instance_id TEXT NOT NULL,
        namespace TEXT NOT NULL,
        record_count INTEGER NOT NULL,
        PRIMARY KEY (instance_id, namespace)
      ) WITHOUT ROWID;
    `,
  },
];

/** The newest version of `migrations`. */
export function latestVersion(migrations: readonly SqliteMigration[]): number {
  return migrations.reduce((max, step) => Math.max(max, step.version), 0);
}

/**
 * Brings `component` up to the newest version of `migrations`. Must run
 * inside a write transaction (`BEGIN IMMEDIATE`). A database whose version
 * is newer than the code knows is refused rather than misread.
 *
 * @returns the version the database was at before.
 */
export function migrateSchema(
  db: SqliteDatabase,
  component: string,
  migrations: readonly SqliteMigration[],
): number {
  db.exec(
    'CREATE TABLE IF NOT EXISTS kode_schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)',
  );
  const row = db.prepare('SELECT version FROM kode_schema_version WHERE component = ?').get(component) as
    | { version: number }
    | undefined;
  const current = row?.version ?? 0;
  const latest = latestVersion(migrations);
  if (current > latest) {
    throw new UnsupportedError(
      `the database's ${component} schema is at version ${current}, newer than this kode-store knows (${latest}); upgrade kode-store`,
      { backend: 'sqlite', operation: 'open' },
    );
  }
  const pending = [...migrations]
    .filter((step) => step.version > current)
    .sort((a, b) => a.version - b.version);
  for (const step of pending) db.exec(step.sql);
  if (pending.length > 0) {
    db.prepare(
      'INSERT INTO kode_schema_version (component, version) VALUES (?, ?) ' +
        'ON CONFLICT (component) DO UPDATE SET version = excluded.version',
    ).run(component, latest);
  }
  return current;
}

/** The version of every component the database records; empty when it holds no kode-store schema. Reads only. */
export function installedVersions(db: SqliteDatabase): Map<string, number> {
  const table = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kode_schema_version'")
    .get();
  if (table === undefined) return new Map();
  const rows = db.prepare('SELECT component, version FROM kode_schema_version').all() as Array<{
    component: string;
    version: number;
  }>;
  return new Map(rows.map((row) => [row.component, row.version]));
}

/**
 * For a read-only open: checks that `component` is installed at the newest
 * version of `migrations`, changing nothing. A database without it holds no
 * kode-store data to read (`ConfigError`); an older one would need the
 * migration a read-only store may not run (`UnsupportedError`).
 */
export function assertSchemaReadable(
  db: SqliteDatabase,
  component: string,
  migrations: readonly SqliteMigration[],
  path: string,
): void {
  const current = installedVersions(db).get(component);
  const latest = latestVersion(migrations);
  const ctx = { backend: 'sqlite', operation: 'open' };
  if (current === undefined) {
    throw noStoreDataError(path, `no ${component} schema in kode_schema_version`, {
      ...ctx,
      variable: 'path',
    });
  }
  if (current > latest) {
    throw new UnsupportedError(
      `the database's ${component} schema is at version ${current}, newer than this kode-store knows (${latest}); upgrade kode-store`,
      ctx,
    );
  }
  if (current < latest) {
    throw olderSchemaError(path, component, current, latest, ctx);
  }
}
