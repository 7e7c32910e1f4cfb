import { noStoreDataError, olderSchemaError } from '../../src/agent/read-only-errors.js';
import { ConfigError } from '../../src/errors.js';
import { quoteIdentifier } from './postgres-config.js';
import type { Queryable, Transaction } from './postgres-connection.js';
import { NOW_MS } from './postgres-registry.js';

/**
 * The agent store's tables and their versioned migrations.
 *
 * Design rules the statements follow (see docs/ARCHITECTURE.md):
 * - values are `text` holding `encodeJson` output, never `jsonb` (jsonb
 *   reorders object keys and refuses `\u0000`);
 * - times are epoch milliseconds in `double precision`, never `timestamptz`,
 *   so neither the server's nor the client's time zone can change them;
 * - ids and filter columns use the "C" collation: byte order of UTF-8, which
 *   is code-point order, the order every backend sorts in;
 * - every query filter is answered from an index whose order is the sort
 *   keys' (so one index serves both sort directions): a selective filter
 *   (tool name, content type, approval) leads its own index; on a column of
 *   a few values (role, state, error), a common value is a key column after
 *   the sort keys, checked inside the index as it is walked in order (a
 *   limited query stops early and reads no table row for entries that do not
 *   match), and the rare values lead a partial index of their own, so that
 *   finding them never walks every entry;
 * - the list tables (messages, tool calls) have no foreign key: their every
 *   writer first locks the agent row in the same statement or transaction
 *   (the revision update, the fork's insert of the new agents), and `delete`
 *   deletes the agent row before their rows, in the same transaction.
 */

/** Newest schema version of component `agent` this code knows. */
export const AGENT_SCHEMA_VERSION = 5;

/**
 * First key of the advisory lock that serialises migrations (the second is
 * `hashtext(schema)`). Shared by every component migrating tables in a
 * schema (agent store, KV), so two processes creating `kode_schema_version`
 * at once cannot collide. A hash collision only makes unrelated migrations
 * wait for each other; it never lets two run at once.
 */
export const MIGRATION_LOCK_CLASS = 0x6b6f6465; // 'kode'

/**
 * The roles of nearly every message: conversations alternate between them
 * (tool results are user messages), so each is about half of any table.
 * Messages of any other role (system: context summaries) are the rare ones
 * that `kode_messages_by_role` holds. Part of schema version 2: changing
 * this list needs a new version that rebuilds the index.
 */
export const COMMON_ROLES: readonly string[] = ['user', 'assistant'];

/** The predicate of `kode_messages_by_role`; a query for a rare role states it too. */
export const RARE_ROLE = `role_key NOT IN (${COMMON_ROLES.map((role) => `'${role}'`).join(', ')})`;

/**
 * The state most tool calls end in. Calls in any other state (failed,
 * denied, still pending...) are the ones `kode_tool_calls_by_state` holds.
 * Part of schema version 2, like COMMON_ROLES.
 */
export const COMMON_STATE = 'COMPLETED';

/** The predicate of `kode_tool_calls_by_state`; a query for another state states it too. */
export const RARE_STATE = `state_key <> '${COMMON_STATE}'`;

/** What a migration is told besides the table names: choices made when tables are created. */
export interface MigrationOptions {
  /** Partitions of `kode_events` by hash of agent id; 0: one plain table (see `eventsTable`). */
  eventPartitions: number;
}

export type Migration = (table: (name: string) => string, options: MigrationOptions) => string[];

const MIGRATIONS: Migration[] = [
  // Version 1: everything the agent store needs; `kode_events` laid out as the options say, the
  // only choice made at creation (every later statement works on either layout).
  (t, { eventPartitions }) => [
    `CREATE SEQUENCE ${t('kode_revision_seq')}`,
    // One row per agent that has anything stored: the registry behind
    // exists()/list(), the info columns behind querySessions, and the
    // revisions that tell a store whether its cached message list is current.
    `CREATE TABLE ${t('kode_agents')} (
      agent_id text COLLATE "C" PRIMARY KEY,
      info_json text,
      template_key text COLLATE "C",
      user_key text COLLATE "C",
      created_at_ms double precision,
      updated_at_ms double precision,
      message_count double precision,
      messages_revision bigint NOT NULL DEFAULT 0,
      tool_calls_revision bigint NOT NULL DEFAULT 0,
      -- Hybrid mode: an event file was written for this agent, so a missing file is a fault.
      event_files boolean NOT NULL DEFAULT false
    )`,
    `CREATE INDEX kode_agents_by_created ON ${t('kode_agents')} (created_at_ms, agent_id) WHERE info_json IS NOT NULL`,
    `CREATE INDEX kode_agents_by_updated ON ${t('kode_agents')} (updated_at_ms, agent_id) WHERE info_json IS NOT NULL`,
    `CREATE INDEX kode_agents_by_message_count ON ${t('kode_agents')} (message_count, agent_id) WHERE info_json IS NOT NULL`,
    `CREATE INDEX kode_agents_by_template ON ${t('kode_agents')} (template_key, created_at_ms, agent_id) WHERE info_json IS NOT NULL`,
    `CREATE INDEX kode_agents_by_user ON ${t('kode_agents')} (user_key, created_at_ms, agent_id) WHERE info_json IS NOT NULL`,

    `CREATE TABLE ${t('kode_messages')} (
      agent_id text COLLATE "C" NOT NULL REFERENCES ${t('kode_agents')} (agent_id) ON DELETE CASCADE,
      position integer NOT NULL,
      message_json text NOT NULL,
      role_key text COLLATE "C" NOT NULL,
      content_types text[] COLLATE "C" NOT NULL,
      created_at_ms double precision NOT NULL,
      PRIMARY KEY (agent_id, position)
    )`,
    `CREATE INDEX kode_messages_by_agent_created ON ${t('kode_messages')} (agent_id, created_at_ms, position)`,
    `CREATE INDEX kode_messages_by_created ON ${t('kode_messages')} (created_at_ms, agent_id, position)`,
    `CREATE INDEX kode_messages_by_role ON ${t('kode_messages')} (role_key, created_at_ms, agent_id, position)`,
    `CREATE INDEX kode_messages_by_content_type ON ${t('kode_messages')} USING gin (content_types)`,

    `CREATE TABLE ${t('kode_tool_calls')} (
      agent_id text COLLATE "C" NOT NULL REFERENCES ${t('kode_agents')} (agent_id) ON DELETE CASCADE,
      position integer NOT NULL,
      tool_call_key text COLLATE "C" NOT NULL,
      record_json text NOT NULL,
      name_key text COLLATE "C" NOT NULL,
      state_key text COLLATE "C" NOT NULL,
      is_error boolean NOT NULL,
      has_approval boolean NOT NULL,
      created_at_ms double precision NOT NULL,
      updated_at_ms double precision NOT NULL,
      PRIMARY KEY (agent_id, position)
    )`,
    `CREATE INDEX kode_tool_calls_by_agent_created ON ${t('kode_tool_calls')} (agent_id, created_at_ms, tool_call_key, position)`,
    `CREATE INDEX kode_tool_calls_by_agent_updated ON ${t('kode_tool_calls')} (agent_id, updated_at_ms, tool_call_key, position)`,
    `CREATE INDEX kode_tool_calls_by_created ON ${t('kode_tool_calls')} (created_at_ms, agent_id, tool_call_key, position)`,
    `CREATE INDEX kode_tool_calls_by_updated ON ${t('kode_tool_calls')} (updated_at_ms, agent_id, tool_call_key, position)`,
    `CREATE INDEX kode_tool_calls_by_name ON ${t('kode_tool_calls')} (name_key, created_at_ms, agent_id, tool_call_key, position)`,
    `CREATE INDEX kode_tool_calls_by_state ON ${t('kode_tool_calls')} (state_key, created_at_ms, agent_id, tool_call_key, position)`,
    `CREATE INDEX kode_tool_calls_by_error ON ${t('kode_tool_calls')} (is_error, created_at_ms, agent_id, tool_call_key, position)`,
    `CREATE INDEX kode_tool_calls_by_approval ON ${t('kode_tool_calls')} (has_approval, created_at_ms, agent_id, tool_call_key, position)`,

    // Events are the hottest table: no foreign key (a per-row key-share lock
    // on the agent row would serialise concurrent appenders), ordered by the
    // bigserial id (append order), never by bookmark.seq (not unique).
    ...eventsTable(t, eventPartitions),
    `CREATE INDEX kode_events_by_channel ON ${t('kode_events')} (agent_id, channel_key, id)`,
    `CREATE INDEX kode_events_by_seq ON ${t('kode_events')} (agent_id, seq, id)`,

    // created_seq keeps first-save order: an upsert keeps its place, so
    // listSnapshots is oldest first.
    `CREATE TABLE ${t('kode_snapshots')} (
      agent_id text COLLATE "C" NOT NULL REFERENCES ${t('kode_agents')} (agent_id) ON DELETE CASCADE,
      snapshot_key text COLLATE "C" NOT NULL,
      snapshot_json text NOT NULL,
      created_seq bigserial NOT NULL,
      PRIMARY KEY (agent_id, snapshot_key)
    )`,
    `CREATE INDEX kode_snapshots_in_order ON ${t('kode_snapshots')} (agent_id, created_seq)`,

    // Append-only per-agent lists: history windows, compression records, recovered files.
    `CREATE TABLE ${t('kode_agent_records')} (
      agent_id text COLLATE "C" NOT NULL REFERENCES ${t('kode_agents')} (agent_id) ON DELETE CASCADE,
      kind text COLLATE "C" NOT NULL,
      id bigserial NOT NULL,
      record_json text NOT NULL,
      PRIMARY KEY (agent_id, kind, id)
    )`,

    // One replaceable document per agent and kind: todos, media cache.
    `CREATE TABLE ${t('kode_agent_documents')} (
      agent_id text COLLATE "C" NOT NULL REFERENCES ${t('kode_agents')} (agent_id) ON DELETE CASCADE,
      kind text COLLATE "C" NOT NULL,
      document_json text NOT NULL,
      PRIMARY KEY (agent_id, kind)
    )`,

    // Lock leases, one row per locked agent id (exact, no hash), expiring
    // unless renewed. No foreign key: an agent may be locked before it exists.
    `CREATE TABLE ${t('kode_agent_locks')} (
      agent_id text COLLATE "C" PRIMARY KEY,
      holder text NOT NULL,
      owner text NOT NULL,
      expires_at_ms double precision NOT NULL
    )`,
  ],
  // Version 2: fewer index entries to write when lists are saved and forked
  // (a fork of 20 copies spent more than half of its time keeping indexes),
  // no per-row foreign-key check on the list tables. Per-agent queries use
  // the primary key (agent_id, position) and sort the agent's rows.
  //
  // A value that is common (a role of every other message, the state most
  // calls end in, a false error flag) is found by walking the time index,
  // which holds the filter columns as trailing keys (checked inside the index;
  // a limited query stops after a few pages). A rare value must not walk it
  // (SPEC §3: it would read every entry to find a handful), so it seeks its
  // own index, kept small by indexing only the rows that are not common:
  // see RARE_ROLE and RARE_STATE, which the queries repeat word for word so
  // that the planner, generic plans included, can prove the index's predicate.
  (t) => [
    `ALTER TABLE ${t('kode_messages')} DROP CONSTRAINT IF EXISTS kode_messages_agent_id_fkey`,
    `ALTER TABLE ${t('kode_tool_calls')} DROP CONSTRAINT IF EXISTS kode_tool_calls_agent_id_fkey`,
    `DROP INDEX IF EXISTS ${t('kode_messages_by_agent_created')}`,
    `DROP INDEX IF EXISTS ${t('kode_messages_by_role')}`,
    `DROP INDEX IF EXISTS ${t('kode_messages_by_created')}`,
    `CREATE INDEX kode_messages_by_created ON ${t('kode_messages')} (created_at_ms, agent_id, position, role_key)`,
    `CREATE INDEX kode_messages_by_role ON ${t('kode_messages')}
      (role_key, created_at_ms, agent_id, position) WHERE ${RARE_ROLE}`,
    ...[
      'kode_tool_calls_by_agent_created',
      'kode_tool_calls_by_agent_updated',
      'kode_tool_calls_by_state',
      'kode_tool_calls_by_error',
      'kode_tool_calls_by_created',
      'kode_tool_calls_by_name',
    ].map((index) => `DROP INDEX IF EXISTS ${t(index)}`),
    `CREATE INDEX kode_tool_calls_by_created ON ${t('kode_tool_calls')}
      (created_at_ms, agent_id, tool_call_key, position, state_key, is_error)`,
    `CREATE INDEX kode_tool_calls_by_name ON ${t('kode_tool_calls')}
      (name_key, created_at_ms, agent_id, tool_call_key, position, state_key)`,
    `CREATE INDEX kode_tool_calls_by_state ON ${t('kode_tool_calls')}
      (state_key, created_at_ms, agent_id, tool_call_key, position) WHERE ${RARE_STATE}`,
    // Errors are the exception: only calls that failed are indexed, and
    // `NOT is_error` walks the time index. Whether approval is the exception
    // depends on the permission mode (every call of an approval-mode agent
    // needs one), so version 1's kode_tool_calls_by_approval (has_approval,
    // created_at_ms, agent_id, tool_call_key, position) stays: both values seek.
    `CREATE INDEX kode_tool_calls_by_error ON ${t('kode_tool_calls')}
      (created_at_ms, agent_id, tool_call_key, position) WHERE is_error`,
  ],
  // Version 3: a deleted agent's registry row stays behind for a while as a
  // tombstone (deleted_at_ms set, nothing else), so that its late events do
  // not register it again (src/agent/deleted-agents.ts, postgres-registry.ts). The
  // partial index finds expired tombstones without touching live rows.
  (t) => [
    `ALTER TABLE ${t('kode_agents')} ADD COLUMN deleted_at_ms double precision`,
    `CREATE INDEX kode_agents_deleted ON ${t('kode_agents')} (deleted_at_ms) WHERE deleted_at_ms IS NOT NULL`,
  ],
  // Version 4: write times for retention (src/agent/retention.ts). Every write
  // sets kode_agents.last_write_ms (an event batch once per agent, in the
  // upsert it already makes), every event gets appended_at_ms; both default
  // to the database clock, so inserts need not name them. Adding a column
  // without a default and then setting one rewrites no table. Agents from
  // before start at their last saveInfo, or at the upgrade when they have no
  // info; older events keep no time and are judged by bookmark.timestamp.
  // No index: prune walks the registry in id order.
  (t) => [
    `ALTER TABLE ${t('kode_agents')} ADD COLUMN last_write_ms double precision`,
    `UPDATE ${t('kode_agents')} SET last_write_ms = coalesce(updated_at_ms, ${NOW_MS}) WHERE deleted_at_ms IS NULL`,
    `ALTER TABLE ${t('kode_agents')} ALTER COLUMN last_write_ms SET DEFAULT ${NOW_MS}`,
    `ALTER TABLE ${t('kode_events')} ADD COLUMN appended_at_ms double precision`,
    `ALTER TABLE ${t('kode_events')} ALTER COLUMN appended_at_ms SET DEFAULT ${NOW_MS}`,
  ],
  // Version 5: the session beside the info. Each saveInfo stores
  // `sessionFields(info).sessionJson`, so a querySessions page ships and
  // parses that small text, not every agent's whole configuration. A
  // nullable column without a default rewrites no row, so a schema of
  // millions of agents upgrades at once; a row saved before keeps NULL until
  // its next saveInfo, and the query reads its info instead.
  (t) => [`ALTER TABLE ${t('kode_agents')} ADD COLUMN session_json text`],
];

/**
 * `kode_events` as version 1 creates it: one table, or a table partitioned
 * by hash of `agent_id` into `partitions` tables `kode_events_p<i>`. The
 * primary key (agent_id, id) holds the partition key, as PostgreSQL requires
 * of a unique index on a partitioned table, and every index created on
 * `kode_events` afterwards is created on each partition: one agent's rows,
 * and every index entry of them, are in one partition. Inserts name the
 * parent (the server routes each row); the id sequence is the parent's, so
 * ids keep append order across partitions.
 */
function eventsTable(t: (name: string) => string, partitions: number): string[] {
  const table = `CREATE TABLE ${t('kode_events')} (
      id bigserial NOT NULL,
      agent_id text COLLATE "C" NOT NULL,
      seq double precision,
      channel_key text COLLATE "C",
      timeline_json text NOT NULL,
      PRIMARY KEY (agent_id, id)
    )`;
  if (partitions === 0) return [table];
  return [
    `${table} PARTITION BY HASH (agent_id)`,
    ...Array.from(
      { length: partitions },
      (_, i) =>
        `CREATE TABLE ${t(eventPartitionName(i))} PARTITION OF ${t('kode_events')}
          FOR VALUES WITH (MODULUS ${partitions}, REMAINDER ${i})`,
    ),
  ];
}

/** The name of partition `i` of `kode_events`. */
export function eventPartitionName(i: number): string {
  return `kode_events_p${i}`;
}

/** How a schema's `kode_events` is laid out, as the catalogue says. */
export interface EventsLayout {
  /** Partitions by hash of `agent_id`; 0: one plain table. */
  partitions: number;
  /** Set when the table is partitioned some other way: how (`range (agent_id)`). */
  other?: string;
}

const STRATEGIES: Record<string, string> = { h: 'hash', l: 'list', r: 'range' };

/** The layout of `kode_events` in `schema` (pg_partitioned_table, pg_inherits); undefined when there is no such table. */
export async function readEventsLayout(tx: Queryable, schema: string): Promise<EventsLayout | undefined> {
  // The key as one text: the store's connections parse no arrays.
  const [row] = await tx.query<{ strategy: string | null; key: string; partitions: number }>(
    `SELECT p.partstrat AS strategy,
        array_to_string(array(SELECT a.attname::text FROM unnest(p.partattrs::int2[]) WITH ORDINALITY AS k(attnum, n)
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.n), ', ') AS key,
        (SELECT count(*)::int FROM pg_inherits i WHERE i.inhparent = c.oid) AS partitions
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid
     WHERE n.nspname = $1 AND c.relname = 'kode_events' AND c.relkind IN ('r', 'p')`,
    [schema],
  );
  if (row === undefined) return undefined;
  if (row.strategy === null) return { partitions: 0 };
  if (row.strategy === 'h' && row.key === 'agent_id') return { partitions: row.partitions };
  const how = `${STRATEGIES[row.strategy] ?? row.strategy} (${row.key || 'an expression'})`;
  return { partitions: row.partitions, other: how };
}

/** A layout in words, for messages. */
export function describeEventsLayout(layout: EventsLayout): string {
  if (layout.other !== undefined) return `a table partitioned by ${layout.other} into ${layout.partitions}`;
  if (layout.partitions === 0) return 'one plain table (eventPartitions: 0)';
  return `${layout.partitions} partitions by hash of agent_id (eventPartitions: ${layout.partitions})`;
}

/**
 * Refuses a schema whose `kode_events` is laid out otherwise than
 * `eventPartitions` asks (undefined: any layout is used as it is). The
 * store never re-partitions a table on its own: moving billions of rows is
 * an operator's decision, made by copying the store into a new schema.
 */
async function checkEventsLayout(
  tx: Queryable,
  schema: string,
  eventPartitions: number | undefined,
): Promise<void> {
  if (eventPartitions === undefined) return;
  const layout = await readEventsLayout(tx, schema);
  if (layout === undefined || (layout.other === undefined && layout.partitions === eventPartitions)) return;
  throw new ConfigError(
    `schema ${JSON.stringify(schema)} keeps events in ${describeEventsLayout(layout)}, but this store was opened with eventPartitions: ${eventPartitions} (${describeEventsLayout({ partitions: eventPartitions })}); open it with the schema's layout or without eventPartitions, or copy the store into a new schema with \`kode-store migrate\` to change the layout`,
    { backend: 'postgres', operation: 'open', variable: 'eventPartitions' },
  );
}

/** The tables of the agent store, for size reports. */
export const AGENT_TABLES = [
  'kode_agents',
  'kode_messages',
  'kode_tool_calls',
  'kode_events',
  'kode_snapshots',
  'kode_agent_records',
  'kode_agent_documents',
  'kode_agent_locks',
] as const;

/**
 * One set of tables versioned on its own in `kode_schema_version`: its row's
 * name there, how errors call it, and its migrations (version n + 1 is
 * `migrations[n]`).
 */
export interface SchemaComponent {
  readonly name: string;
  readonly title: string;
  readonly version: number;
  readonly migrations: readonly Migration[];
  /** What its migrations are told (how tables they create are laid out). */
  readonly options?: MigrationOptions;
  /** The operation an error of its migration names. */
  readonly operation: string;
  /**
   * Refuses installed tables laid out otherwise than the options ask (a
   * typed error); run before anything is migrated, on every open.
   */
  readonly checkLayout?: (tx: Queryable, schema: string) => Promise<void>;
}

/**
 * The agent store's tables, with `kode_events` in `eventPartitions` hash
 * partitions (0: one plain table; undefined: a plain table when created,
 * and any existing layout accepted).
 */
export function agentSchema(eventPartitions?: number): SchemaComponent {
  return {
    name: 'agent',
    title: 'agent-store',
    version: AGENT_SCHEMA_VERSION,
    migrations: MIGRATIONS,
    options: { eventPartitions: eventPartitions ?? 0 },
    operation: 'migrate',
    ...(eventPartitions === undefined
      ? {}
      : { checkLayout: (tx: Queryable, schema: string) => checkEventsLayout(tx, schema, eventPartitions) }),
  };
}

/** The agent store's tables, laid out as they are (plain when created). */
export const AGENT_SCHEMA: SchemaComponent = agentSchema();

/** Newest schema version of component `kv`. */
export const POSTGRES_KV_SCHEMA_VERSION = 1;

/**
 * The KV tables (see postgres-kv.ts for why they look as they do). Created on
 * the first KV call, not with the agent store's: a database whose agents
 * never use the KV API has none.
 */
const KV_MIGRATIONS: Migration[] = [
  (t) => [
    `CREATE TABLE ${t('kode_kv_instances')} (
      id text COLLATE "C" PRIMARY KEY,
      name text NOT NULL,
      description text NOT NULL,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL
    )`,
    `CREATE INDEX kode_kv_instances_by_created ON ${t('kode_kv_instances')} (created_at, id)`,
    `CREATE TABLE ${t('kode_kv_records')} (
      instance_id text COLLATE "C" NOT NULL REFERENCES ${t('kode_kv_instances')} (id) ON DELETE CASCADE,
      namespace text COLLATE "C" NOT NULL,
      key text COLLATE "C" NOT NULL,
      id text NOT NULL,
      value text NOT NULL,
      metadata text NOT NULL,
      jsonb_ok boolean NOT NULL,
      version bigint NOT NULL,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL,
      expires_at bigint,
      created_by text,
      updated_by text,
      PRIMARY KEY (instance_id, namespace, key)
    )`,
    `CREATE INDEX kode_kv_records_expiring ON ${t('kode_kv_records')} (instance_id, namespace, expires_at)
      WHERE expires_at IS NOT NULL`,
    `CREATE INDEX kode_kv_records_by_expiry ON ${t('kode_kv_records')} (expires_at) WHERE expires_at IS NOT NULL`,
    `CREATE INDEX kode_kv_records_not_jsonb ON ${t('kode_kv_records')} (instance_id, namespace) WHERE NOT jsonb_ok`,
    `CREATE TABLE ${t('kode_kv_namespaces')} (
      instance_id text COLLATE "C" NOT NULL REFERENCES ${t('kode_kv_instances')} (id) ON DELETE CASCADE,
      namespace text COLLATE "C" NOT NULL,
      record_count bigint NOT NULL,
      PRIMARY KEY (instance_id, namespace)
    )`,
  ],
];

/** The KV layer's tables. */
export const KV_SCHEMA: SchemaComponent = {
  name: 'kv',
  title: 'KV',
  version: POSTGRES_KV_SCHEMA_VERSION,
  migrations: KV_MIGRATIONS,
  operation: 'kv.open',
};

/** PostgreSQL's undefined_table and invalid_schema_name: nothing was installed yet. */
const NOT_INSTALLED = new Set(['42P01', '3F000']);

/** The version of `component` (`agent`, `kv`) installed in `schema`; undefined when there is none. Reads only. */
export async function installedVersion(
  tx: Queryable,
  table: (name: string) => string,
  component = 'agent',
): Promise<number | undefined> {
  try {
    const rows = await tx.query<{ version: number }>(
      `SELECT version FROM ${table('kode_schema_version')} WHERE component = $1`,
      [component],
    );
    return rows[0]?.version;
  } catch (error) {
    if (NOT_INSTALLED.has((error as { code?: string }).code ?? '')) return undefined;
    throw error;
  }
}

/**
 * For a read-only store: checks that `schema` holds `component` at version
 * `latest`, creating and changing nothing. A schema without it holds no
 * kode-store data to read (`ConfigError`, so a mistyped schema name is never
 * taken for an empty store); an older one would need the migration a
 * read-only store may not run (`UnsupportedError`).
 */
export async function assertSchemaReadable(
  tx: Queryable,
  schema: string,
  { name: component, version: latest, checkLayout }: SchemaComponent = AGENT_SCHEMA,
): Promise<void> {
  const table = (name: string) => `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`;
  const current = await installedVersion(tx, table, component);
  const ctx = { backend: 'postgres', operation: 'open' };
  if (current === undefined) {
    throw noStoreDataError(
      `schema ${JSON.stringify(schema)}`,
      `no ${component} version in kode_schema_version`,
      {
        ...ctx,
        variable: 'schema',
      },
    );
  }
  if (current > latest) {
    throw new ConfigError(
      `schema ${JSON.stringify(schema)} is at ${component} version ${current}, newer than this kode-store knows (${latest}); upgrade kode-store`,
      { ...ctx, variable: 'schema' },
    );
  }
  if (current < latest) {
    throw olderSchemaError(`schema ${JSON.stringify(schema)}`, component, current, latest, ctx);
  }
  await checkLayout?.(tx, schema);
}

/**
 * Brings `component` in `schema` to version `target` (default: its newest),
 * in one transaction that `migrateSchema` opens itself on `tx` (one
 * connection), under an advisory transaction lock so that processes, and
 * components, opening the database at the same moment migrate one after
 * another. Refuses a database whose version is newer than this code knows.
 * The one migration runner of the adapter: the agent store and the KV
 * backend both go through it.
 */
export async function migrateSchema(
  tx: Transaction,
  schema: string,
  component: SchemaComponent,
  target = component.version,
): Promise<void> {
  const table = (name: string) => `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`;
  // Fast path, one statement outside any transaction: every open but the first finds the schema current.
  if ((await installedVersion(tx, table, component.name)) === target) {
    await component.checkLayout?.(tx, schema);
    return;
  }
  await tx.query('BEGIN');
  try {
    await tx.query('SELECT pg_advisory_xact_lock($1::int, hashtext($2))', [MIGRATION_LOCK_CLASS, schema]);
    const present = await tx.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    // Only create what is missing: CREATE SCHEMA needs a privilege that a
    // user of an existing schema may lack, even with IF NOT EXISTS.
    if (present.length === 0) await tx.query(`CREATE SCHEMA ${quoteIdentifier(schema)}`);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS ${table('kode_schema_version')} (component text PRIMARY KEY, version integer NOT NULL)`,
    );
    const rows = await tx.query<{ version: number }>(
      `SELECT version FROM ${table('kode_schema_version')} WHERE component = $1`,
      [component.name],
    );
    const current = rows[0]?.version ?? 0;
    if (current > component.version) {
      throw new ConfigError(
        `schema ${JSON.stringify(schema)} is at ${component.title} version ${current}, newer than this kode-store knows (${component.version}); upgrade kode-store`,
        { backend: 'postgres', operation: component.operation, variable: 'schema' },
      );
    }
    const options = component.options ?? { eventPartitions: 0 };
    // Tables already there must be laid out as asked before anything is added to them.
    if (current > 0) await component.checkLayout?.(tx, schema);
    for (let version = current; version < target; version++) {
      const statements = (component.migrations[version] as Migration)(table, options);
      for (const statement of statements) await tx.query(statement);
    }
    if (current < target) {
      await tx.query(
        `INSERT INTO ${table('kode_schema_version')} (component, version) VALUES ($1, $2)
         ON CONFLICT (component) DO UPDATE SET version = excluded.version`,
        [component.name, target],
      );
    }
    await tx.query('COMMIT');
  } catch (error) {
    await tx.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** The agent store's tables at version `target` (tests build older schemas with a lower one). */
export function migrateAgentSchema(
  tx: Transaction,
  schema: string,
  target = AGENT_SCHEMA_VERSION,
  eventPartitions?: number,
): Promise<void> {
  return migrateSchema(tx, schema, agentSchema(eventPartitions), target);
}
