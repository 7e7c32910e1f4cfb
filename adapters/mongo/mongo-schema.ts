import { noStoreDataError, olderSchemaError } from '../../src/agent/read-only-errors.js';
import { ConfigError } from '../../src/errors.js';
import type { MongoCollection, MongoDatabase } from './mongo-config.js';
import { hasServerCode, MONGO_SERVER_CODES } from './mongo-errors.js';

/**
 * The schema of both components in one place: the agent store's and the KV
 * layer's collections and indexes, as data, and the versioned migrations
 * that create them, run by one runner (`prepareComponent`). Index specs are plain values so that a unit
 * test can check, without a server, that every query's filter and sort is
 * served by one of them (see `findCoveringIndex` in mongo-queries.ts).
 *
 * Documents never grow without bound: one per message, tool call, event,
 * snapshot, history window, compression record, recovered file and media
 * cache entry, plus one small document per agent in `agents`, `infos`, `todos`.
 */

/** The collections of the agent store, by role. Each is named `<prefix><role>`. */
export const AGENT_COLLECTIONS = [
  'agents',
  'infos',
  'messages',
  'tool_calls',
  'todos',
  'events',
  'snapshots',
  'history_windows',
  'compression_records',
  'recovered_files',
  'media_cache',
  'locks',
] as const;

export type AgentCollectionRole = (typeof AGENT_COLLECTIONS)[number];

/** Collection that records each component's schema version: `{ _id: component, version }`. */
export const SCHEMA_VERSION_COLLECTION = 'schema_version';

/** One index, in the shape `createIndexes` takes. */
export interface MongoIndexSpec {
  name: string;
  key: Record<string, 1 | -1>;
  unique?: boolean;
  /** Only documents that have the field are indexed (marks most documents never carry). */
  sparse?: boolean;
  expireAfterSeconds?: number;
}

/**
 * Every index of the agent store. Sort indexes list their fields in the
 * order of the query's sort, ascending: MongoDB walks an index backwards for
 * the opposite direction, and our tie-breakers always go in the same
 * direction as the main key, so one index serves `asc` and `desc`.
 */
export const AGENT_INDEXES: Readonly<Record<AgentCollectionRole, readonly MongoIndexSpec[]>> = {
  // Only tombstones carry deletedAt: later deletes prune the expired ones through it.
  agents: [{ name: 'agents_deleted', key: { deletedAt: 1 }, sparse: true }],
  infos: [
    { name: 'infos_created', key: { createdAtMs: 1, _id: 1 } },
    { name: 'infos_updated', key: { updatedAt: 1, _id: 1 } },
    { name: 'infos_message_count', key: { messageCount: 1, _id: 1 } },
    { name: 'infos_template_created', key: { templateId: 1, createdAtMs: 1, _id: 1 } },
    { name: 'infos_user_created', key: { userId: 1, createdAtMs: 1, _id: 1 } },
  ],
  messages: [
    { name: 'messages_agent_index', key: { agentId: 1, index: 1 }, unique: true },
    { name: 'messages_agent_created', key: { agentId: 1, createdAt: 1, index: 1 } },
    { name: 'messages_created', key: { createdAt: 1, agentId: 1, index: 1 } },
    { name: 'messages_role_created', key: { role: 1, createdAt: 1, agentId: 1, index: 1 } },
    {
      name: 'messages_content_type_created',
      key: { contentTypes: 1, createdAt: 1, agentId: 1, index: 1 },
    },
  ],
  tool_calls: [
    { name: 'tool_calls_agent_index', key: { agentId: 1, index: 1 }, unique: true },
    { name: 'tool_calls_agent_created', key: { agentId: 1, createdAt: 1, toolCallId: 1, index: 1 } },
    { name: 'tool_calls_agent_updated', key: { agentId: 1, updatedAt: 1, toolCallId: 1, index: 1 } },
    { name: 'tool_calls_created', key: { createdAt: 1, agentId: 1, toolCallId: 1, index: 1 } },
    { name: 'tool_calls_updated', key: { updatedAt: 1, agentId: 1, toolCallId: 1, index: 1 } },
    { name: 'tool_calls_name_created', key: { name: 1, createdAt: 1, agentId: 1, toolCallId: 1, index: 1 } },
    {
      name: 'tool_calls_state_created',
      key: { state: 1, createdAt: 1, agentId: 1, toolCallId: 1, index: 1 },
    },
  ],
  todos: [],
  events: [{ name: 'events_agent_seq', key: { agentId: 1, seq: 1 }, unique: true }],
  snapshots: [
    { name: 'snapshots_agent_id', key: { agentId: 1, snapshotId: 1 }, unique: true },
    { name: 'snapshots_agent_position', key: { agentId: 1, position: 1 } },
  ],
  history_windows: [
    { name: 'history_windows_agent_position', key: { agentId: 1, position: 1 }, unique: true },
  ],
  compression_records: [
    { name: 'compression_records_agent_position', key: { agentId: 1, position: 1 }, unique: true },
  ],
  recovered_files: [
    { name: 'recovered_files_agent_position', key: { agentId: 1, position: 1 }, unique: true },
  ],
  media_cache: [{ name: 'media_cache_agent_index', key: { agentId: 1, index: 1 }, unique: true }],
  // The TTL monitor only tidies up: an expired lease is already free because
  // acquisition compares `expiresAt` with the server's clock itself.
  locks: [{ name: 'locks_expiry', key: { expiresAt: 1 }, expireAfterSeconds: 0 }],
};

/** The collections of one store, resolved to driver objects. */
export type AgentCollections = Readonly<Record<AgentCollectionRole, MongoCollection>>;

/** Full collection names for a prefix. */
export function agentCollectionNames(prefix: string): Record<AgentCollectionRole, string> {
  const names = {} as Record<AgentCollectionRole, string>;
  for (const role of AGENT_COLLECTIONS) names[role] = `${prefix}${role}`;
  return names;
}

/** The schema component of the agent store in the version collection. */
export const AGENT_SCHEMA_COMPONENT = 'agent';

/** One step of a component's schema history. */
export interface MongoMigration {
  version: number;
  description: string;
  up(db: MongoDatabase, prefix: string): Promise<void>;
}

/**
 * Creates a collection (if missing) and its indexes (creating an identical
 * index again is a no-op). Collections are created up front because older
 * servers cannot create one inside a multi-document transaction.
 */
export async function ensureCollection(
  db: MongoDatabase,
  name: string,
  indexes: readonly MongoIndexSpec[],
): Promise<void> {
  try {
    await db.createCollection(name);
  } catch (error) {
    // Another process created it first; anything else is a real failure.
    if (!hasServerCode(error, MONGO_SERVER_CODES.namespaceExists)) throw error;
  }
  if (indexes.length > 0) await db.collection(name).createIndexes(indexes.map((spec) => ({ ...spec })));
}

/**
 * Migrations of the agent store, in order. Each is idempotent, so two
 * processes opening a fresh database at once both succeed.
 */
export const AGENT_MIGRATIONS: readonly MongoMigration[] = [
  {
    version: 1,
    description: 'collections and indexes of the agent store',
    async up(db, prefix) {
      const names = agentCollectionNames(prefix);
      for (const role of AGENT_COLLECTIONS) await ensureCollection(db, names[role], AGENT_INDEXES[role]);
    },
  },
  {
    version: 2,
    description: 'tombstones of deleted agents in the registry (deletedAt), pruned through an index',
    async up(db, prefix) {
      const names = agentCollectionNames(prefix);
      for (const role of AGENT_COLLECTIONS) await ensureCollection(db, names[role], AGENT_INDEXES[role]);
    },
  },
  {
    version: 3,
    description: 'write times for retention (lastWriteAt of each live agent)',
    // Retention judges an agent by its last write of any kind (every write
    // now sets lastWriteAt, mongo-registry.ts) and an event by its
    // appendedAt. Agents from before start at their last saveInfo, or at the
    // upgrade when they have no info (never older than they may be); older
    // events keep no time and are judged by their bookmark.timestamp.
    up: backfillLastWrites,
  },
];

/** Agents the backfill of version 3 sets per round trip. */
const BACKFILL_PAGE = 500;

async function backfillLastWrites(db: MongoDatabase, prefix: string): Promise<void> {
  const names = agentCollectionNames(prefix);
  const agents = db.collection(names.agents);
  // `null` also matches a missing field. Each update repeats the condition,
  // so a write (or another process's backfill) that set the time first wins.
  const pending = { lastWriteAt: null, deletedAt: null };
  for (;;) {
    const page = await agents
      .find(pending, { projection: { _id: 1 } })
      .limit(BACKFILL_PAGE)
      .toArray();
    if (page.length === 0) return;
    const ids = page.map((doc) => doc._id);
    const infos = await db
      .collection(names.infos)
      .find({ _id: { $in: ids } }, { projection: { updatedAt: 1 } })
      .toArray();
    const savedAt = new Map(infos.map((doc) => [String(doc._id), doc.updatedAt]));
    const now = new Date();
    await agents.bulkWrite(
      ids.map((id) => {
        const saved = savedAt.get(String(id));
        const at = typeof saved === 'number' ? new Date(saved) : now;
        return { updateOne: { filter: { _id: id, ...pending }, update: { $set: { lastWriteAt: at } } } };
      }),
      { ordered: false },
    );
  }
}

/** The schema version this code writes and understands. */
export const AGENT_SCHEMA_VERSION = AGENT_MIGRATIONS[AGENT_MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Brings one component (`agent`, `kv`) up to its newest version: runs the
 * migrations its version document says are missing, recording each with
 * `$max` (so a slower process never lowers it). A database written by a newer
 * package is refused rather than misread.
 */
export async function migrateComponent(
  db: MongoDatabase,
  prefix: string,
  component: string,
  migrations: readonly MongoMigration[],
): Promise<number> {
  const newest = migrations[migrations.length - 1]?.version ?? 0;
  const versions = db.collection(`${prefix}${SCHEMA_VERSION_COLLECTION}`);
  const current = (await installedVersion(db, prefix, component)) ?? 0;
  if (current > newest) {
    throw new ConfigError(
      `database ${db.databaseName} holds ${component} schema version ${current}, newer than this package ` +
        `understands (${newest}); upgrade kode-store`,
      { backend: 'mongo', operation: 'migrate', variable: 'dbName' },
    );
  }
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    await migration.up(db, prefix);
    await versions.updateOne({ _id: component }, { $max: { version: migration.version } }, { upsert: true });
  }
  return newest;
}

/** The version of `component` recorded in the database; undefined when it holds none. Reads only. */
export async function installedVersion(
  db: MongoDatabase,
  prefix: string,
  component: string,
): Promise<number | undefined> {
  const doc = await db.collection(`${prefix}${SCHEMA_VERSION_COLLECTION}`).findOne({ _id: component });
  return typeof doc?.version === 'number' ? doc.version : undefined;
}

/**
 * For a read-only store: checks that `component` is installed at the newest
 * version of `migrations`, creating and changing nothing. A database without
 * it holds no kode-store data to read (`ConfigError`, so a mistyped database
 * name is never taken for an empty store); an older one would need the
 * migration a read-only store may not run (`UnsupportedError`).
 */
export async function assertComponentReadable(
  db: MongoDatabase,
  prefix: string,
  component: string,
  migrations: readonly MongoMigration[],
): Promise<void> {
  const newest = migrations[migrations.length - 1]?.version ?? 0;
  const current = await installedVersion(db, prefix, component);
  const ctx = { backend: 'mongo', operation: 'open' };
  if (current === undefined) {
    throw noStoreDataError(
      `database ${db.databaseName}`,
      `no ${component} version in ${prefix}${SCHEMA_VERSION_COLLECTION}`,
      { ...ctx, variable: 'dbName' },
    );
  }
  if (current > newest) {
    throw new ConfigError(
      `database ${db.databaseName} holds ${component} schema version ${current}, newer than this package ` +
        `understands (${newest}); upgrade kode-store`,
      { ...ctx, variable: 'dbName' },
    );
  }
  if (current < newest) {
    throw olderSchemaError(`database ${db.databaseName}`, component, current, newest, ctx);
  }
}

// ---- the KV component --------------------------------------------------------

/** Collections of the KV component, each `<prefix><name>`. */
export const KV_COLLECTIONS = ['kv_instances', 'kv_records', 'kv_undo'] as const;

export const KV_INDEXES: Readonly<Record<(typeof KV_COLLECTIONS)[number], readonly MongoIndexSpec[]>> = {
  kv_instances: [{ name: 'kv_instances_created', key: { createdAt: 1, _id: 1 } }],
  kv_records: [
    { name: 'kv_records_key', key: { instanceId: 1, incarnation: 1, namespace: 1, key: 1 }, unique: true },
    { name: 'kv_records_expiry', key: { expiresAt: 1 } },
    { name: 'kv_records_batch', key: { batch: 1 }, sparse: true },
  ],
  kv_undo: [{ name: 'kv_undo_batch', key: { batch: 1 } }],
};

/** The schema component of the KV layer in the version collection. */
export const KV_SCHEMA_COMPONENT = 'kv';

/** The KV component's schema history in `<prefix>schema_version`. */
export const KV_MIGRATIONS: readonly MongoMigration[] = [
  {
    version: 1,
    description: 'KV instances and records',
    async up(db, prefix) {
      for (const name of ['kv_instances', 'kv_records'] as const) {
        await ensureCollection(db, `${prefix}${name}`, KV_INDEXES[name]);
      }
    },
  },
  {
    version: 2,
    description: 'undo log and batch marks of multi-record writes without transactions',
    async up(db, prefix) {
      for (const name of KV_COLLECTIONS) await ensureCollection(db, `${prefix}${name}`, KV_INDEXES[name]);
    },
  },
];

// ---- opening a component ------------------------------------------------------

/** The migrations of each component. */
export const COMPONENT_MIGRATIONS: Readonly<Record<'agent' | 'kv', readonly MongoMigration[]>> = {
  agent: AGENT_MIGRATIONS,
  kv: KV_MIGRATIONS,
};

/**
 * Makes one component usable: brings it up to date, or, for a read-only
 * store, checks that it is (creating and changing nothing). The agent store
 * runs it on connect, the KV layer when it is first opened, so a store that
 * never uses KV creates none of its collections.
 */
export async function prepareComponent(
  db: MongoDatabase,
  prefix: string,
  component: keyof typeof COMPONENT_MIGRATIONS,
  readOnly: boolean,
): Promise<void> {
  const migrations = COMPONENT_MIGRATIONS[component];
  if (readOnly) await assertComponentReadable(db, prefix, component, migrations);
  else await migrateComponent(db, prefix, component, migrations);
}
