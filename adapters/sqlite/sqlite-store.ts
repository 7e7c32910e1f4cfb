import { AgentStore } from '../../src/agent/agent-store.js';
import type { StoreRetentionOption } from '../../src/agent/retention-schedule.js';
import type { EventStorage } from '../../src/config/store-config.js';
import { ValidationError } from '../../src/errors.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import type { KvStore } from '../../src/kv/kv-types.js';
import { ReadOnlyKvBackend } from '../../src/kv/read-only-kv-backend.js';
import type { EventRowAccess } from '../../src/transfer/event-mode-move.js';
import { SqliteAgentBackend } from './sqlite-agent-backend.js';
import {
  type ResolvedSqliteOptions,
  resolveSqliteOptions,
  type SqliteDurability,
  type SqliteStoreOptions,
} from './sqlite-config.js';
import { SqliteConnection } from './sqlite-connection.js';
import { sqliteEventRows } from './sqlite-event-rows.js';
import { SqliteKvBackend } from './sqlite-kv.js';

/**
 * The KODE SDK's `ExtendedStore` on SQLite (better-sqlite3): the embedded
 * default, one file, zero configuration.
 *
 * - Saves of the whole conversation write only what changed since the last save.
 * - `appendEvent` calls fired without awaiting are batched into shared
 *   transactions in call order; `readEvents` pages through the table.
 * - WAL mode; `durability` chooses `synchronous` (default `full`). A
 *   connection that finds the file locked by another process waits
 *   asynchronously, never blocking the event loop for more than a few ms.
 * - `acquireAgentLock` excludes other store objects and processes on the same
 *   file, with a lease that frees the lock of a process that died.
 * - Hybrid mode (`eventStorage: 'file'`) keeps events in append-only files
 *   under `fileStoreBaseDir`.
 *
 * The constructor never throws and opens nothing: the database is opened,
 * and its schema created or upgraded, by the first operation, and any
 * problem (bad options, missing driver, unwritable path) rejects that
 * operation's promise with a typed error.
 *
 * @example
 * ```ts
 * import { SqliteStore } from 'kode-store/sqlite';
 * const store = new SqliteStore('./data/agents.db');
 * const agent = await Agent.create(config, { store, ... });
 * // ...
 * await store.close();
 * ```
 */
export class SqliteStore extends AgentStore {
  /** The database file (`':memory:'` for an in-memory database). */
  readonly path: string;
  /** Where events are kept. */
  readonly eventStorage: EventStorage;
  /** Base directory of the event files in hybrid mode. */
  readonly fileStoreBaseDir: string | undefined;
  /** The durability chosen for commits. */
  readonly durability: SqliteDurability;
  /** True when the store was opened with `readOnly`: it reads an existing database and never writes. */
  readonly readOnly: boolean;
  /** The KV namespace API (SPEC §6), in the same database file. */
  readonly kv: KvStore;
  private readonly sqlite: SqliteAgentBackend;

  /**
   * @param pathOrOptions the database file (seed 004: `new SqliteStore(dbPath, fileStoreBaseDir?)`)
   *   or the options object.
   * @param fileStoreBaseDir base directory for hybrid mode's event files (with a path argument).
   */
  constructor(
    pathOrOptions: string | (SqliteStoreOptions & StoreRetentionOption),
    fileStoreBaseDir?: string,
  ) {
    let options: ResolvedSqliteOptions;
    let configError: unknown;
    try {
      options = resolveSqliteOptions(pathOrOptions, fileStoreBaseDir);
    } catch (error) {
      configError = error;
      options = resolveSqliteOptions(':memory:');
    }
    // Writes queued while other operations of this store run wait a turn for them to share the commit.
    const self: { store?: SqliteStore } = {};
    const connection = new SqliteConnection(options, () => self.store?.runningOperations ?? 0);
    const backend = new SqliteAgentBackend(options, connection);
    const retention = typeof pathOrOptions === 'object' ? pathOrOptions?.retention : undefined;
    super(backend, { configError, retention });
    self.store = this;
    this.sqlite = backend;
    this.path = options.path;
    this.eventStorage = options.eventStorage;
    this.fileStoreBaseDir = options.fileStoreBaseDir;
    this.durability = options.durability;
    this.readOnly = options.readOnly;
    const kvBackend = new SqliteKvBackend(connection);
    this.kv = createKvStore(
      options.readOnly
        ? new ReadOnlyKvBackend(kvBackend, async () => (await connection.schemaVersions()).has('kv'))
        : kvBackend,
      { operations: this.ops },
    );
  }

  /**
   * The database side of moving events between modes (`kode-store events`).
   * @internal
   */
  eventRows(): EventRowAccess {
    return sqliteEventRows(this.sqlite.connection);
  }

  /**
   * SQLite's own check of the file (`PRAGMA integrity_check`): every page,
   * every index against its table. Returns what it found wrong, at most
   * `maxProblems` lines; empty when the file is sound. It reads the whole
   * file, so it takes a while on a large database. Changes nothing.
   */
  checkIntegrity(maxProblems = 100): Promise<string[]> {
    return this.runOperation('checkIntegrity', null, () => {
      if (!Number.isInteger(maxProblems) || maxProblems < 1) {
        throw new ValidationError('maxProblems must be a positive integer', {
          backend: 'sqlite',
          operation: 'checkIntegrity',
        });
      }
      return this.sqlite.integrityProblems(maxProblems);
    });
  }
}
