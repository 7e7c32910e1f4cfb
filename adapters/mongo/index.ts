/**
 * `kode-store/mongo`: the agent store on MongoDB. The `mongodb` driver (v6+)
 * is an optional peer dependency, loaded when the store first connects.
 *
 * @example
 * ```ts
 * import { MongoStore } from 'kode-store/mongo';
 * const store = new MongoStore({ uri: 'mongodb://localhost:27017/?replicaSet=rs0', dbName: 'agents' });
 * ```
 */

export type {
  EventStorageMode,
  MongoClientLike,
  MongoCollection,
  MongoDatabase,
  MongoDocument,
  MongoSession,
  MongoStoreOptions,
  ResolvedMongoStoreOptions,
} from './mongo-config.js';
export { DEFAULT_COLLECTION_PREFIX, DEFAULT_DATABASE_NAME, DEFAULT_LOCK_LEASE_MS } from './mongo-config.js';
export type { MongoDeployment } from './mongo-connection.js';
export { MongoKvBackend, type MongoKvConnection, type MongoKvOptions } from './mongo-kv.js';
export { AGENT_INDEXES, AGENT_SCHEMA_VERSION } from './mongo-schema.js';
export { MongoStore } from './mongo-store.js';
