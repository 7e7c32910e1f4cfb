import { AgentStore } from '../../src/agent/agent-store.js';
import type { StoreRetentionOption } from '../../src/agent/retention-schedule.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import type { KvStore } from '../../src/kv/kv-types.js';
import { ReadOnlyKvBackend } from '../../src/kv/read-only-kv-backend.js';
import type { EventRowAccess } from '../../src/transfer/event-mode-move.js';
import { MongoAgentBackend } from './mongo-agent-backend.js';
import {
  type MongoStoreOptions,
  type ResolvedMongoStoreOptions,
  resolveMongoStoreOptions,
} from './mongo-config.js';
import { MongoConnection, type OpenMongo } from './mongo-connection.js';
import { mongoEventRows } from './mongo-event-rows.js';
import { MongoKvBackend, type MongoKvOptions } from './mongo-kv.js';
import { installedVersion, KV_SCHEMA_COMPONENT } from './mongo-schema.js';

/**
 * The agent store on MongoDB (`kode-store/mongo`), with the official `mongodb`
 * driver (v6+), an optional peer dependency loaded on first use.
 *
 * Every value is stored as its JSON text beside the fields queries use, one
 * document per message, tool call, event, snapshot and history entry (see
 * `MongoAgentBackend`). Collections and indexes are created on first connect
 * and versioned in `<prefix>schema_version`.
 *
 * On a replica set or sharded cluster, every multi-document write runs in a
 * transaction (`capabilities.transactions`). On a standalone server there are
 * none; writes are then ordered so that a failure leaves nothing half-visible
 * that a retry would not repair: see the README's MongoDB section.
 *
 * The constructor never throws and connects to nothing: the first operation
 * (or `open()`) connects, and bad options reject every operation with a
 * `ConfigError` naming the option at fault.
 *
 * @example
 * ```ts
 * import { MongoStore } from 'kode-store/mongo';
 * const store = new MongoStore({ uri: process.env.MONGODB_URI, dbName: 'agents' });
 * const agent = await Agent.create({ store, ... });
 * ```
 */
export class MongoStore extends AgentStore {
  /** The options after validation and defaults (the defaults alone when the options were invalid). */
  readonly options: ResolvedMongoStoreOptions;
  /** True when the store was opened with `readOnly`: it reads an existing database and never writes. */
  readonly readOnly: boolean;
  /** The KV namespace API (SPEC §6), in the same database. */
  readonly kv: KvStore;
  /** Opens the connection, or rejects with the options' `ConfigError`. */
  private readonly connect: () => Promise<OpenMongo>;

  constructor(options: MongoStoreOptions & StoreRetentionOption) {
    let resolved: ResolvedMongoStoreOptions;
    let configError: unknown;
    try {
      resolved = resolveMongoStoreOptions(options);
    } catch (error) {
      configError = error;
      // Never connected: every operation rejects with the ConfigError first.
      resolved = resolveMongoStoreOptions({ uri: 'mongodb://127.0.0.1/' });
    }
    const connection = new MongoConnection(resolved);
    const retention = typeof options === 'object' ? options?.retention : undefined;
    super(new MongoAgentBackend(resolved, connection), { configError, retention });
    this.options = resolved;
    this.readOnly = resolved.readOnly;
    this.connect = () => (configError === undefined ? connection.open() : Promise.reject(configError));
    this.kv = createKvStore(
      this.readOnly
        ? new ReadOnlyKvBackend(
            this.kvBackend(),
            async () =>
              (await installedVersion(
                (
                  await this.connect()
                ).db,
                resolved.collectionPrefix,
                KV_SCHEMA_COMPONENT,
              )) !== undefined,
          )
        : this.kvBackend(),
      { operations: this.ops },
    );
  }

  /**
   * A KV backend on this store's connection, database and collection prefix,
   * for `createKvStore` (its collections are `<prefix>kv_*`).
   */
  kvBackend(options: Omit<MongoKvOptions, 'collectionPrefix'> = {}): MongoKvBackend {
    return new MongoKvBackend(() => this.connect(), {
      readOnly: this.readOnly,
      leaseMs: this.options.lockLeaseMs,
      lockWaitTimeoutMs: this.options.lockWaitTimeoutMs,
      bounds: {
        connectTimeoutMs: this.options.connectTimeoutMs,
        operationTimeoutMs: this.options.operationTimeoutMs,
      },
      ...options,
      collectionPrefix: this.options.collectionPrefix,
    });
  }

  /**
   * The database side of moving events between modes (`kode-store events`).
   * @internal
   */
  eventRows(): EventRowAccess {
    return mongoEventRows(() => this.connect());
  }
}
