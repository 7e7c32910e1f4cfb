import { AgentStore } from '../../src/agent/agent-store.js';
import type { StoreRetentionOption } from '../../src/agent/retention-schedule.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import type { KvStore } from '../../src/kv/kv-types.js';
import { ReadOnlyKvBackend } from '../../src/kv/read-only-kv-backend.js';
import type { EventRowAccess } from '../../src/transfer/event-mode-move.js';
import type { StoreHealthStatus, StoreMetrics } from '../../src/types.js';
import { PostgresAgentBackend } from './postgres-agent-backend.js';
import {
  type PostgresConnectionConfig,
  type PostgresStoreOptions,
  resolvePostgresSettings,
} from './postgres-config.js';
import { PostgresConnection } from './postgres-connection.js';
import { postgresEventRows } from './postgres-event-rows.js';
import { PostgresKvBackend } from './postgres-kv.js';
import type { PostgresReplicaStatus } from './postgres-replicas.js';
import { agentSchema, installedVersion } from './postgres-schema.js';

/** `healthCheck()` of a PostgreSQL store: the read replicas too, when it has any. */
export interface PostgresHealthStatus extends StoreHealthStatus {
  replicas?: PostgresReplicaStatus[];
}

/** `getMetrics()` of a PostgreSQL store: the read replicas too, when it has any. */
export interface PostgresMetrics extends StoreMetrics {
  replicas?: PostgresReplicaStatus[];
}

/**
 * The KODE SDK's `ExtendedStore` on PostgreSQL (`pg`).
 *
 * Values are stored as the exact JSON text `encodeJson` produced (never
 * jsonb, which reorders keys and refuses `\u0000`), with the fields queries
 * filter on extracted into indexed columns; times are epoch milliseconds, so
 * no time zone can change them. The connection opens lazily and the schema
 * migrates on first use; an unreachable server rejects the call with a
 * `ConnectionError`, and the next call tries again.
 *
 * The SDK's hot paths cost one round trip each: an incremental
 * `saveMessages`/`saveToolCallRecords` (one statement writing only what
 * changed), a batch of un-awaited `appendEvent`s (one INSERT), a page of
 * `readEvents`. Locks are lease rows, so a held or awaited lock never holds
 * a pooled connection.
 *
 * @example
 * const store = new PostgresStore({ host: 'localhost', port: 5432, database: 'kode_agents', user: 'kode', password }, './data/store');
 * @example
 * const store = new PostgresStore({ connection: process.env.DATABASE_URL, schema: 'agents', eventStorage: 'file', fileStoreBaseDir: './data/store' });
 */
export class PostgresStore extends AgentStore {
  /** The PostgreSQL schema holding this store's tables. */
  readonly schema: string;
  /** Base directory for files (hybrid mode's event files), when configured. */
  readonly fileStoreBaseDir: string | undefined;
  /** Whether the store's fixed statements run as named prepared statements. */
  readonly preparedStatements: boolean;
  /** True when the store was opened with `readOnly`: it reads an existing schema and never writes. */
  readonly readOnly: boolean;
  /** @internal The connection layer (shared with the KV backend). */
  readonly db: PostgresConnection;
  /** The KV namespace API (SPEC §6), in the same database and schema. */
  readonly kv: KvStore;

  /**
   * @param connection connection settings as in seed 004, a `postgres://` URL, or an options object
   * @param fileStoreBaseDir base directory for event files (hybrid mode)
   */
  constructor(connection: PostgresConnectionConfig | string, fileStoreBaseDir?: string);
  constructor(options: PostgresStoreOptions & StoreRetentionOption);
  constructor(
    first: (PostgresStoreOptions & StoreRetentionOption) | PostgresConnectionConfig | string,
    fileStoreBaseDir?: string,
  ) {
    const settings = resolvePostgresSettings(first, fileStoreBaseDir);
    const db = new PostgresConnection(settings, agentSchema(settings.eventPartitions));
    const retention =
      typeof first === 'object' && first !== null && 'retention' in first ? first.retention : undefined;
    super(new PostgresAgentBackend(settings, db), { retention });
    this.db = db;
    this.schema = settings.schema;
    this.preparedStatements = settings.preparedStatements;
    this.readOnly = settings.readOnly;
    this.fileStoreBaseDir = settings.fileStoreBaseDir;
    // One connection layer for both: one pool, statement cache, retry rule and migration runner.
    const kvBackend = new PostgresKvBackend(db);
    this.kv = createKvStore(
      settings.readOnly
        ? new ReadOnlyKvBackend(
            kvBackend,
            async () => (await installedVersion(db, (name) => db.table(name), 'kv')) !== undefined,
          )
        : kvBackend,
      { operations: this.ops },
    );
  }

  /** As every store's, and with `replicas` (when the store has any): which are in use, how far behind, why not. */
  override async healthCheck(): Promise<PostgresHealthStatus> {
    const health: PostgresHealthStatus = await super.healthCheck();
    const replicas = await this.db.replicaStatus();
    if (replicas !== undefined) health.replicas = replicas;
    return health;
  }

  /** As every store's, and with `replicas` (when the store has any), as `healthCheck` reports them. */
  override async getMetrics(): Promise<PostgresMetrics> {
    const metrics: PostgresMetrics = await super.getMetrics();
    const replicas = await this.db.replicaStatus();
    if (replicas !== undefined) metrics.replicas = replicas;
    return metrics;
  }

  /**
   * The database side of moving events between modes (`kode-store events`).
   * @internal
   */
  eventRows(): EventRowAccess {
    return postgresEventRows(this.db);
  }
}
