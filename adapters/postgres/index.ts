/**
 * `kode-store/postgres`: the agent store on PostgreSQL (`pg`, an optional
 * peer dependency loaded on first use).
 *
 * @example
 * import { PostgresStore } from 'kode-store/postgres';
 * const store = new PostgresStore({ connection: process.env.DATABASE_URL, schema: 'kode' });
 * const agent = await Agent.create({ store, ... });
 */
export type {
  PgModule,
  PgPoolConfig,
  PostgresConnectionConfig,
  PostgresEventStorageMode,
  PostgresPool,
  PostgresPoolClient,
  PostgresQueryConfig,
  PostgresQueryResult,
  PostgresStoreOptions,
  PostgresTypeParsers,
} from './postgres-config.js';
export { DEFAULT_APPLICATION_NAME, DEFAULT_LOCK_LEASE_MS } from './postgres-config.js';
export { PostgresKvBackend, type PostgresKvOptions } from './postgres-kv.js';
export {
  DEFAULT_MAX_REPLICA_LAG_MS,
  type PostgresReplicaStatus,
} from './postgres-replicas.js';
export { AGENT_SCHEMA_VERSION, MIGRATION_LOCK_CLASS } from './postgres-schema.js';
export { type PostgresHealthStatus, type PostgresMetrics, PostgresStore } from './postgres-store.js';
