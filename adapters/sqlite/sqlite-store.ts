import { dirname, resolve } from 'node:path';
import { newForkId } from '../../src/agent-id.js';
import { compareCodePoints } from '../../src/code-point-order.js';
import { checkDirectoryWritable } from '../../src/directory-health.js';
import { NotFoundError, ValidationError, wrapDriverError } from '../../src/errors.js';
import type { EventRowAccess } from '../../src/event-mode-move.js';
import { eventModeMismatch } from '../../src/event-modes.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import type { KvStore } from '../../src/kv/kv-types.js';
import type { OperationKind } from '../../src/operation-metrics.js';
import { pagedIterable } from '../../src/paged-iterable.js';
import {
  normalizeMessageFilters,
  normalizeSessionFilters,
  normalizeToolCallFilters,
} from '../../src/query-filters.js';
import { ReadOnlyKvBackend } from '../../src/read-only-kv-backend.js';
import {
  messageContentTypes,
  sessionFields,
  type ToolCallFields,
  toolCallFields,
  toSessionInfo,
} from '../../src/record-fields.js';
import { assertForkCount, assertLockTimeout } from '../../src/store-arguments.js';
import { eventFilter, StoreCodec } from '../../src/store-codec.js';
import type { EventStorage } from '../../src/store-config.js';
import { StoreOperations } from '../../src/store-operations.js';
import type {
  AgentInfo,
  AgentStats,
  CompressionRecord,
  ConsistencyCheckResult,
  ExtendedStore,
  HistoryWindow,
  LockReleaseFn,
  MediaCacheRecord,
  Message,
  MessageFilters,
  ReadEventsOptions,
  RecoveredFile,
  SessionFilters,
  SessionInfo,
  Snapshot,
  StoreCapabilities,
  StoreHealthStatus,
  StoreMetrics,
  Timeline,
  TodoSnapshot,
  ToolCallFilters,
  ToolCallRecord,
} from '../../src/types.js';
import {
  type ResolvedSqliteOptions,
  resolveSqliteOptions,
  type SqliteDurability,
  type SqliteStoreOptions,
} from './sqlite-config.js';
import { SqliteConnection } from './sqlite-connection.js';
import { DatabaseEventStorage } from './sqlite-database-events.js';
import { sqliteEventRows } from './sqlite-event-rows.js';
import { type AgentEventStorage, type EventFilter, eventFields } from './sqlite-event-storage.js';
import { FileEventStorage } from './sqlite-file-events.js';
import { copyAgentRows, type ForkInfoRow } from './sqlite-fork.js';
import { SqliteKvBackend } from './sqlite-kv.js';
import { IncrementalListSaver, type ListRow } from './sqlite-list-saver.js';
import { SqliteAgentLocks } from './sqlite-lock.js';
import {
  type BuiltQuery,
  listAgentsQuery,
  messageQuery,
  sessionQuery,
  toolCallQuery,
} from './sqlite-queries.js';
import { hasFileEvents, LIVE_AGENT, REGISTER_AGENT, writeTombstone } from './sqlite-registry.js';

const BACKEND = 'sqlite';

type HistoryKind = 'history_window' | 'compression_record' | 'recovered_file';

interface MessageFields {
  role: string;
  contentTypes: string[];
}

interface ToolCallRowFields extends ToolCallFields {
  id: string;
}

/** Tables holding rows of one agent, all deleted together. */
const AGENT_TABLES = [
  'agent_info',
  'messages',
  'message_content_types',
  'tool_calls',
  'events',
  'snapshots',
  'agent_history',
] as const;

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
 * const agent = await Agent.create({ store, ... });
 * // ...
 * await store.close();
 * ```
 */
export class SqliteStore implements ExtendedStore {
  /** What this store guarantees; see `StoreCapabilities`. */
  readonly capabilities: StoreCapabilities;
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

  private readonly ops: StoreOperations;
  private readonly codec = new StoreCodec(BACKEND);
  /** The KV namespace API (SPEC §6), in the same database file. */
  readonly kv: KvStore;
  private readonly options: ResolvedSqliteOptions;
  /** Set when the options were invalid: every operation rejects with it. */
  private readonly configError: unknown;
  private readonly connection: SqliteConnection;
  private readonly events: AgentEventStorage;
  private readonly locks: SqliteAgentLocks;
  private readonly messages: IncrementalListSaver<MessageFields>;
  private readonly toolCalls: IncrementalListSaver<ToolCallRowFields>;
  /** Operations still running; `close()` lets them finish before closing the database. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  /**
   * @param pathOrOptions the database file (seed 004: `new SqliteStore(dbPath, fileStoreBaseDir?)`)
   *   or the options object.
   * @param fileStoreBaseDir base directory for hybrid mode's event files (with a path argument).
   */
  constructor(pathOrOptions: string | SqliteStoreOptions, fileStoreBaseDir?: string) {
    let options: ResolvedSqliteOptions;
    try {
      options = resolveSqliteOptions(pathOrOptions, fileStoreBaseDir);
    } catch (error) {
      this.configError = error;
      options = resolveSqliteOptions(':memory:');
    }
    this.options = options;
    this.path = options.path;
    this.eventStorage = options.eventStorage;
    this.fileStoreBaseDir = options.fileStoreBaseDir;
    this.durability = options.durability;
    this.readOnly = options.readOnly;
    this.ops = new StoreOperations(BACKEND, { readOnly: options.readOnly });
    this.connection = new SqliteConnection(options, () => this.inFlight.size);
    this.events =
      options.eventStorage === 'file' && options.fileStoreBaseDir !== undefined
        ? new FileEventStorage(this.connection, options.fileStoreBaseDir, options.durability === 'full')
        : new DatabaseEventStorage(this.connection);
    this.locks = new SqliteAgentLocks(this.connection, options.lockLeaseMs);
    const kvBackend = new SqliteKvBackend(() => this.connection.database(), {
      busyTimeoutMs: options.busyTimeoutMs,
      readOnly: options.readOnly,
    });
    this.kv = createKvStore(
      options.readOnly
        ? new ReadOnlyKvBackend(kvBackend, async () => (await this.connection.schemaVersions()).has('kv'))
        : kvBackend,
      { operations: this.ops },
    );
    this.messages = new IncrementalListSaver(this.connection, {
      revisionColumn: 'messages_revision',
      loadStored: (agentId) => this.storedJson('message_json', 'messages', agentId),
      writeRow: (row) => this.writeMessageRow(row),
      // message_content_types is keyed by (agent, type, time, position): a
      // range of positions is one scan of the agent's rows, so clear it once.
      rewriteFrom: (agentId, from) =>
        this.execute('DELETE FROM message_content_types WHERE agent_id = ? AND position >= ?', agentId, from),
      truncate: (agentId, from) => {
        this.execute('DELETE FROM messages WHERE agent_id = ? AND position >= ?', agentId, from);
        this.execute('DELETE FROM message_content_types WHERE agent_id = ? AND position >= ?', agentId, from);
      },
      loadSavedTimes: (agentId, from) =>
        this.selectAll<{ t: number }>(
          'SELECT created_at_ms AS t FROM messages WHERE agent_id = ? AND position >= ? ORDER BY position',
          agentId,
          from,
        ).map((row) => row.t),
    });
    this.toolCalls = new IncrementalListSaver(this.connection, {
      revisionColumn: 'tool_calls_revision',
      loadStored: (agentId) => this.storedJson('record_json', 'tool_calls', agentId),
      writeRow: ({ agentId, position, json, fields }) =>
        this.execute(
          'INSERT INTO tool_calls (agent_id, position, call_id, record_json, name, state, is_error, has_approval, created_at_ms, updated_at_ms) ' +
            'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, position) DO UPDATE SET ' +
            'call_id = excluded.call_id, record_json = excluded.record_json, name = excluded.name, ' +
            'state = excluded.state, is_error = excluded.is_error, has_approval = excluded.has_approval, ' +
            'created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms',
          agentId,
          position,
          fields.id,
          json,
          fields.name,
          fields.state,
          fields.isError ? 1 : 0,
          fields.hasApproval ? 1 : 0,
          fields.createdAt,
          fields.updatedAt,
        ),
      truncate: (agentId, from) =>
        this.execute('DELETE FROM tool_calls WHERE agent_id = ? AND position >= ?', agentId, from),
    });
    const inMemory = this.connection.inMemory;
    const onlyThisConnection = 'an in-memory SQLite database belongs to one connection';
    this.capabilities = {
      crossInstanceLocks: !inMemory,
      crossProcessLocks: !inMemory,
      transactions: true,
      durable: !inMemory,
      fileEvents: options.eventStorage === 'file',
      reasons: {
        ...(inMemory
          ? {
              crossInstanceLocks: onlyThisConnection,
              crossProcessLocks: onlyThisConnection,
              durable: 'an in-memory SQLite database is lost when it is closed',
            }
          : {}),
        ...(options.eventStorage === 'file'
          ? {}
          : { fileEvents: "events are kept in the database (eventStorage: 'database')" }),
      },
    };
  }

  /**
   * Opens the database and creates or upgrades its schema now rather than
   * at the first operation (optional: every operation opens on first use).
   */
  open(): Promise<this> {
    return this.runGlobal('open', null, async () => {
      await this.connection.database();
      return this;
    });
  }

  // ---- plumbing --------------------------------------------------------

  /** Runs one public operation on an agent: closed check, id validation, metrics, error wrapping. */
  private runForAgent<T>(
    operation: string,
    kind: OperationKind | null,
    agentId: string,
    body: () => Promise<T> | T,
  ): Promise<T> {
    return this.track(this.ops.runForAgent(operation, kind, agentId, () => this.configured(body)));
  }

  /** Runs one public operation that takes no agent id. */
  private runGlobal<T>(
    operation: string,
    kind: OperationKind | null,
    body: () => Promise<T> | T,
  ): Promise<T> {
    return this.track(this.ops.run(operation, kind, () => this.configured(body)));
  }

  /** Invalid options fail every operation, as a rejected promise, never in the constructor. */
  private configured<T>(body: () => Promise<T> | T): Promise<T> | T {
    if (this.configError !== undefined) throw this.configError;
    return body();
  }

  /** Remembers a running operation until it settles, so that `close()` can let it finish. */
  private track<T>(result: Promise<T>): Promise<T> {
    this.inFlight.add(result);
    const forget = () => this.inFlight.delete(result);
    result.then(forget, forget);
    return result;
  }

  /** Runs a cached prepared statement. */
  private execute(sql: string, ...parameters: unknown[]) {
    return this.connection.statement(sql).run(...parameters);
  }

  private selectOne<T>(sql: string, ...parameters: unknown[]): T | undefined {
    return this.connection.statement(sql).get(...parameters) as T | undefined;
  }

  private selectAll<T>(sql: string, ...parameters: unknown[]): T[] {
    return this.connection.statement(sql).all(...parameters) as T[];
  }

  private storedJson(column: string, table: string, agentId: string): string[] {
    return this.selectAll<Record<string, string>>(
      `SELECT ${column} AS json FROM ${table} WHERE agent_id = ? ORDER BY position`,
      agentId,
    ).map((row) => row.json!);
  }

  private writeMessageRow({ agentId, position, json, fields, savedAtMs }: ListRow<MessageFields>) {
    this.execute(
      'INSERT INTO messages (agent_id, position, message_json, role, created_at_ms) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (agent_id, position) DO UPDATE SET message_json = excluded.message_json, ' +
        'role = excluded.role, created_at_ms = excluded.created_at_ms',
      agentId,
      position,
      json,
      fields.role,
      savedAtMs,
    );
    // The content types of replaced rows were cleared by rewriteFrom.
    for (const type of fields.contentTypes) {
      this.execute(
        'INSERT INTO message_content_types (agent_id, position, content_type, created_at_ms) VALUES (?, ?, ?, ?)',
        agentId,
        position,
        type,
        savedAtMs,
      );
    }
  }

  /** Records that the agent exists (every save does this inside its transaction). */
  private registerAgent(agentId: string): void {
    this.execute(REGISTER_AGENT, agentId);
  }

  private requireObject(value: unknown, what: string, operation: string, agentId: string): void {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ValidationError(`${what} must be an object`, { backend: BACKEND, operation, agentId });
    }
  }

  private read<T>(body: () => T, snapshot = false): Promise<T> {
    return this.connection.read(body, { snapshot });
  }

  private rows<T>(query: BuiltQuery): Promise<T[]> {
    return this.read(() => this.selectAll<T>(query.sql, ...query.parameters));
  }

  // ---- runtime state ---------------------------------------------------

  async saveMessages(agentId: string, messages: Message[]): Promise<void> {
    return this.runForAgent('saveMessages', 'save', agentId, async () => {
      const encoded = this.codec.list(messages, 'saveMessages', agentId, 'messages');
      await this.messages.save(agentId, encoded, (i): MessageFields => {
        const message = messages[i];
        const role = (message as { role?: unknown } | null)?.role;
        return {
          role: typeof role === 'string' ? role : '',
          contentTypes: messageContentTypes(message as Message),
        };
      });
    });
  }

  async loadMessages(agentId: string): Promise<Message[]> {
    return this.runForAgent('loadMessages', 'load', agentId, async () =>
      (await this.read(() => this.storedJson('message_json', 'messages', agentId))).map((json) =>
        this.codec.decode<Message>(json, 'loadMessages', agentId),
      ),
    );
  }

  async saveToolCallRecords(agentId: string, records: ToolCallRecord[]): Promise<void> {
    return this.runForAgent('saveToolCallRecords', 'save', agentId, async () => {
      const encoded = this.codec.list(records, 'saveToolCallRecords', agentId, 'records');
      // Every item is checked (a cheap test), though fields are taken only from those written.
      for (const [i, record] of records.entries()) {
        this.requireObject(record, `records[${i}]`, 'saveToolCallRecords', agentId);
      }
      await this.toolCalls.save(agentId, encoded, (i): ToolCallRowFields => {
        const record = records[i] as ToolCallRecord;
        return { id: String(record.id), ...toolCallFields(record) };
      });
    });
  }

  async loadToolCallRecords(agentId: string): Promise<ToolCallRecord[]> {
    return this.runForAgent('loadToolCallRecords', 'load', agentId, async () =>
      (await this.read(() => this.storedJson('record_json', 'tool_calls', agentId))).map((json) =>
        this.codec.decode<ToolCallRecord>(json, 'loadToolCallRecords', agentId),
      ),
    );
  }

  async saveTodos(agentId: string, snapshot: TodoSnapshot): Promise<void> {
    return this.runForAgent('saveTodos', 'save', agentId, async () => {
      const json = this.codec.value(snapshot, 'strict', 'saveTodos', agentId, 'snapshot');
      await this.connection.write(() =>
        this.execute(
          'INSERT INTO agents (agent_id, todos_json) VALUES (?, ?) ' +
            'ON CONFLICT (agent_id) DO UPDATE SET todos_json = excluded.todos_json, deleted_at_ms = NULL',
          agentId,
          json,
        ),
      );
    });
  }

  async loadTodos(agentId: string): Promise<TodoSnapshot | undefined> {
    return this.runForAgent('loadTodos', 'load', agentId, async () => {
      const row = await this.read(() =>
        this.selectOne<{ todos_json: string | null }>(
          'SELECT todos_json FROM agents WHERE agent_id = ?',
          agentId,
        ),
      );
      return row?.todos_json == null
        ? undefined
        : this.codec.decode<TodoSnapshot>(row.todos_json, 'loadTodos', agentId);
    });
  }

  // ---- events ----------------------------------------------------------

  appendEvent(agentId: string, timeline: Timeline): Promise<void> {
    // The SDK's hottest call: one per streamed chunk, fired without awaiting.
    // Checks and encoding run synchronously, so un-awaited appends reach the
    // batcher in exactly their call order; the write itself is shared by the
    // whole batch, whose failure the storage reports as typed errors.
    return this.ops.append('appendEvent', agentId, () => {
      if (this.configError !== undefined) throw this.configError;
      this.requireObject(timeline, 'timeline', 'appendEvent', agentId);
      const json = this.codec.timeline(timeline, 'appendEvent', agentId);
      return this.events.append(agentId, json, eventFields(timeline));
    });
  }

  readEvents(agentId: string, opts: ReadEventsOptions = {}): AsyncIterable<Timeline> {
    const store = this;
    async function* pages(): AsyncGenerator<Timeline[]> {
      const filter: EventFilter = {};
      const checked = await store.runForAgent('readEvents', 'load', agentId, async () =>
        eventFilter(opts, { backend: BACKEND, operation: 'readEvents', agentId }),
      );
      if (checked.sinceSeq !== undefined) filter.since = opts.since;
      if (checked.channel !== undefined) filter.channel = checked.channel as EventFilter['channel'];
      yield* store.events.readPages(agentId, filter);
    }
    return pagedIterable(pages, {
      // A per-entry closed check, not a whole operation frame per entry:
      // reading is as hot as appending, and the frame ran once above.
      beforeEach: () => store.ops.assertOpen('readEvents'),
      mapError: (error) => wrapDriverError(error, { backend: BACKEND, operation: 'readEvents', agentId }),
    });
  }

  // ---- history & compression -------------------------------------------

  private appendHistory(
    operation: string,
    kind: HistoryKind,
    agentId: string,
    value: unknown,
    what: string,
  ): Promise<void> {
    return this.runForAgent(operation, 'save', agentId, async () => {
      const json = this.codec.value(value, 'strict', operation, agentId, what);
      await this.connection.write(() => {
        this.registerAgent(agentId);
        this.execute(
          'INSERT INTO agent_history (agent_id, kind, record_json) VALUES (?, ?, ?)',
          agentId,
          kind,
          json,
        );
      });
    });
  }

  private loadHistory<T>(operation: string, kind: HistoryKind, agentId: string): Promise<T[]> {
    return this.runForAgent(operation, 'load', agentId, async () =>
      (
        await this.read(() =>
          this.selectAll<{ record_json: string }>(
            'SELECT record_json FROM agent_history WHERE agent_id = ? AND kind = ? ORDER BY row_id',
            agentId,
            kind,
          ),
        )
      ).map((row) => this.codec.decode<T>(row.record_json, operation, agentId)),
    );
  }

  async saveHistoryWindow(agentId: string, window: HistoryWindow): Promise<void> {
    return this.appendHistory('saveHistoryWindow', 'history_window', agentId, window, 'window');
  }

  async loadHistoryWindows(agentId: string): Promise<HistoryWindow[]> {
    return this.loadHistory('loadHistoryWindows', 'history_window', agentId);
  }

  async saveCompressionRecord(agentId: string, record: CompressionRecord): Promise<void> {
    return this.appendHistory('saveCompressionRecord', 'compression_record', agentId, record, 'record');
  }

  async loadCompressionRecords(agentId: string): Promise<CompressionRecord[]> {
    return this.loadHistory('loadCompressionRecords', 'compression_record', agentId);
  }

  async saveRecoveredFile(agentId: string, file: RecoveredFile): Promise<void> {
    return this.appendHistory('saveRecoveredFile', 'recovered_file', agentId, file, 'file');
  }

  async loadRecoveredFiles(agentId: string): Promise<RecoveredFile[]> {
    return this.loadHistory('loadRecoveredFiles', 'recovered_file', agentId);
  }

  // ---- media cache -----------------------------------------------------

  async saveMediaCache(agentId: string, records: MediaCacheRecord[]): Promise<void> {
    return this.runForAgent('saveMediaCache', 'save', agentId, async () => {
      const json = `[${this.codec.list(records, 'saveMediaCache', agentId, 'records').join(',')}]`;
      await this.connection.write(() =>
        this.execute(
          'INSERT INTO agents (agent_id, media_cache_json) VALUES (?, ?) ' +
            'ON CONFLICT (agent_id) DO UPDATE SET media_cache_json = excluded.media_cache_json, deleted_at_ms = NULL',
          agentId,
          json,
        ),
      );
    });
  }

  async loadMediaCache(agentId: string): Promise<MediaCacheRecord[]> {
    return this.runForAgent('loadMediaCache', 'load', agentId, async () => {
      const row = await this.read(() =>
        this.selectOne<{ media_cache_json: string | null }>(
          'SELECT media_cache_json FROM agents WHERE agent_id = ?',
          agentId,
        ),
      );
      return row?.media_cache_json == null
        ? []
        : this.codec.decode<MediaCacheRecord[]>(row.media_cache_json, 'loadMediaCache', agentId);
    });
  }

  // ---- snapshots -------------------------------------------------------

  async saveSnapshot(agentId: string, snapshot: Snapshot): Promise<void> {
    return this.runForAgent('saveSnapshot', 'save', agentId, async () => {
      const json = this.codec.value(snapshot, 'strict', 'saveSnapshot', agentId, 'snapshot');
      if (typeof snapshot.id !== 'string') {
        throw new ValidationError('snapshot.id must be a string', {
          backend: BACKEND,
          operation: 'saveSnapshot',
          agentId,
        });
      }
      await this.connection.write(() => {
        this.registerAgent(agentId);
        this.execute(
          'INSERT INTO snapshots (agent_id, snapshot_id, snapshot_json) VALUES (?, ?, ?) ' +
            'ON CONFLICT (agent_id, snapshot_id) DO UPDATE SET snapshot_json = excluded.snapshot_json',
          agentId,
          snapshot.id,
          json,
        );
      });
    });
  }

  async loadSnapshot(agentId: string, snapshotId: string): Promise<Snapshot | undefined> {
    return this.runForAgent('loadSnapshot', 'load', agentId, async () => {
      if (typeof snapshotId !== 'string') return undefined;
      const row = await this.read(() =>
        this.selectOne<{ snapshot_json: string }>(
          'SELECT snapshot_json FROM snapshots WHERE agent_id = ? AND snapshot_id = ?',
          agentId,
          snapshotId,
        ),
      );
      return row === undefined
        ? undefined
        : this.codec.decode<Snapshot>(row.snapshot_json, 'loadSnapshot', agentId);
    });
  }

  async listSnapshots(agentId: string): Promise<Snapshot[]> {
    return this.runForAgent('listSnapshots', 'load', agentId, async () =>
      (
        await this.read(() =>
          this.selectAll<{ snapshot_json: string }>(
            'SELECT snapshot_json FROM snapshots WHERE agent_id = ? ORDER BY row_id',
            agentId,
          ),
        )
      ).map((row) => this.codec.decode<Snapshot>(row.snapshot_json, 'listSnapshots', agentId)),
    );
  }

  // ---- metadata --------------------------------------------------------

  async saveInfo(agentId: string, info: AgentInfo): Promise<void> {
    return this.runForAgent('saveInfo', 'save', agentId, async () => {
      const json = this.codec.value(info, 'strict', 'saveInfo', agentId, 'info');
      this.requireObject(info, 'info', 'saveInfo', agentId);
      const fields = sessionFields(info);
      await this.connection.write(() => {
        this.registerAgent(agentId);
        this.execute(
          'INSERT INTO agent_info (agent_id, info_json, template_id, user_id, created_at_ms, updated_at_ms, message_count) ' +
            'VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET info_json = excluded.info_json, ' +
            'template_id = excluded.template_id, user_id = excluded.user_id, created_at_ms = excluded.created_at_ms, ' +
            'updated_at_ms = excluded.updated_at_ms, message_count = excluded.message_count',
          agentId,
          json,
          fields.templateId,
          fields.userId,
          fields.createdAtMs,
          Date.now(),
          fields.messageCount,
        );
      });
    });
  }

  async loadInfo(agentId: string): Promise<AgentInfo | undefined> {
    return this.runForAgent('loadInfo', 'load', agentId, async () => {
      const row = await this.read(() =>
        this.selectOne<{ info_json: string }>('SELECT info_json FROM agent_info WHERE agent_id = ?', agentId),
      );
      return row === undefined ? undefined : this.codec.decode<AgentInfo>(row.info_json, 'loadInfo', agentId);
    });
  }

  // ---- lifecycle -------------------------------------------------------

  async exists(agentId: string): Promise<boolean> {
    return this.runForAgent('exists', 'load', agentId, async () => this.agentExists(agentId));
  }

  private async agentExists(agentId: string): Promise<boolean> {
    const row = await this.read(() =>
      this.selectOne<{ deleted: number }>(
        `SELECT NOT (${LIVE_AGENT}) AS deleted FROM agents WHERE agent_id = ?`,
        agentId,
      ),
    );
    if (row !== undefined) return row.deleted === 0;
    // An agent whose registration failed is seen through its event file; a deleted one's never is.
    return this.events.hasOutsideDatabase(agentId);
  }

  async delete(agentId: string): Promise<void> {
    return this.runForAgent('delete', 'delete', agentId, async () => {
      // Appends made before the delete are written first, then removed with the rest.
      await this.events.idle();
      // Event files this store cannot reach would outlive the agent.
      if (
        this.events.kind === 'database' &&
        (await this.read(() => hasFileEvents(this.connection, agentId)))
      ) {
        throw eventModeMismatch('file', { backend: BACKEND, operation: 'delete', agentId });
      }
      await this.connection.write(() => {
        for (const table of AGENT_TABLES) this.execute(`DELETE FROM ${table} WHERE agent_id = ?`, agentId);
        writeTombstone(this.connection, agentId, Date.now());
        // A lock row is the holder's, not the agent's data; only a dead holder's expired row goes.
        this.execute(
          'DELETE FROM agent_locks WHERE agent_id = ? AND expires_at_ms <= ?',
          agentId,
          Date.now(),
        );
      });
      this.messages.forget(agentId);
      this.toolCalls.forget(agentId);
      await this.events.deleteOutsideDatabase(agentId);
    });
  }

  async list(prefix?: string): Promise<string[]> {
    return this.runGlobal('list', 'load', async () => {
      if (prefix !== undefined && typeof prefix !== 'string') {
        throw new ValidationError('prefix must be a string', { backend: BACKEND, operation: 'list' });
      }
      const rows = await this.rows<{ agent_id: string; deleted: number }>(listAgentsQuery(prefix));
      const ids = rows.filter((row) => row.deleted === 0).map((row) => row.agent_id);
      const fromFiles = await this.events.agentIdsOutsideDatabase(prefix);
      if (fromFiles.length === 0) return ids;
      // An agent whose registration failed is listed through its event file; a deleted one's never is.
      const registered = new Set(rows.map((row) => row.agent_id));
      return [...ids, ...fromFiles.filter((id) => !registered.has(id))].sort(compareCodePoints);
    });
  }

  // ---- queries ---------------------------------------------------------

  async querySessions(filters: SessionFilters): Promise<SessionInfo[]> {
    return this.runGlobal('querySessions', 'query', async () => {
      const query = normalizeSessionFilters(filters);
      if (query.limit === 0) return [];
      const rows = await this.rows<{ agent_id: string; info_json: string }>(sessionQuery(query));
      return rows.map((row) =>
        toSessionInfo(
          row.agent_id,
          this.codec.decode<AgentInfo>(row.info_json, 'querySessions', row.agent_id),
        ),
      );
    });
  }

  async queryMessages(filters: MessageFilters): Promise<Message[]> {
    return this.runGlobal('queryMessages', 'query', async () => {
      const query = normalizeMessageFilters(filters);
      if (query.limit === 0) return [];
      const rows = await this.rows<{ message_json: string }>(messageQuery(query));
      return rows.map((row) => this.codec.decode<Message>(row.message_json, 'queryMessages', query.agentId));
    });
  }

  async queryToolCalls(filters: ToolCallFilters): Promise<ToolCallRecord[]> {
    return this.runGlobal('queryToolCalls', 'query', async () => {
      const query = normalizeToolCallFilters(filters);
      if (query.limit === 0) return [];
      const rows = await this.rows<{ record_json: string }>(toolCallQuery(query));
      return rows.map((row) =>
        this.codec.decode<ToolCallRecord>(row.record_json, 'queryToolCalls', query.agentId),
      );
    });
  }

  async aggregateStats(agentId: string): Promise<AgentStats> {
    return this.runForAgent('aggregateStats', 'query', agentId, () =>
      this.read(() => {
        const count = (table: string) =>
          this.selectOne<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE agent_id = ?`, agentId)!.n;
        const groups = (column: 'name' | 'state') => {
          const counts: Record<string, number> = {};
          for (const row of this.selectAll<{ key: string; n: number }>(
            `SELECT ${column} AS key, count(*) AS n FROM tool_calls WHERE agent_id = ? GROUP BY ${column}`,
            agentId,
          )) {
            counts[row.key] = row.n;
          }
          return counts;
        };
        const totalMessages = count('messages');
        return {
          totalMessages,
          totalToolCalls: count('tool_calls'),
          totalSnapshots: count('snapshots'),
          // One agent is one session, as in the SDK's own stores.
          avgMessagesPerSession: totalMessages,
          toolCallsByName: groups('name'),
          toolCallsByState: groups('state'),
        };
      }, true),
    );
  }

  // ---- extended --------------------------------------------------------

  async healthCheck(): Promise<StoreHealthStatus> {
    return this.runGlobal('healthCheck', null, async () => {
      const started = performance.now();
      let database: StoreHealthStatus['database'];
      try {
        await this.read(() => this.selectOne('SELECT 1 AS ok'));
        database = { connected: true, latencyMs: performance.now() - started };
      } catch (error) {
        database = { connected: false, error: error instanceof Error ? error.message : String(error) };
      }
      const fileSystem = await this.fileSystemStatus();
      return {
        healthy: database.connected && fileSystem.writable,
        database,
        fileSystem,
        checkedAt: Date.now(),
      };
    });
  }

  /**
   * The database side of moving events between modes (`kode-store events`).
   * @internal
   */
  eventRows(): EventRowAccess {
    return sqliteEventRows(this.connection);
  }

  /**
   * SQLite's own check of the file (`PRAGMA integrity_check`): every page,
   * every index against its table. Returns what it found wrong, at most
   * `maxProblems` lines; empty when the file is sound. It reads the whole
   * file, so it takes a while on a large database. Changes nothing.
   */
  async checkIntegrity(maxProblems = 100): Promise<string[]> {
    return this.runGlobal('checkIntegrity', null, async () => {
      if (!Number.isInteger(maxProblems) || maxProblems < 1) {
        throw new ValidationError('maxProblems must be a positive integer', {
          backend: BACKEND,
          operation: 'checkIntegrity',
        });
      }
      const lines = await this.read(() =>
        this.selectAll<{ integrity_check: string }>(`PRAGMA integrity_check(${maxProblems})`).map(
          (row) => row.integrity_check,
        ),
      );
      return lines.length === 1 && lines[0] === 'ok' ? [] : lines;
    });
  }

  /** Whether the database's directory (and the event files' base directory) can be written. */
  private async fileSystemStatus(): Promise<StoreHealthStatus['fileSystem']> {
    const dirs: string[] = [];
    if (!this.connection.inMemory) dirs.push(dirname(resolve(this.path)));
    if (this.options.eventStorage === 'file' && this.fileStoreBaseDir !== undefined)
      dirs.push(this.fileStoreBaseDir);
    for (const dir of dirs) {
      const health = await checkDirectoryWritable(dir, { probe: !this.readOnly });
      if (!health.writable) return health;
    }
    return { writable: true };
  }

  async checkConsistency(agentId: string): Promise<ConsistencyCheckResult> {
    return this.runForAgent('checkConsistency', 'query', agentId, async () => {
      const issues: string[] = [];
      if (!(await this.agentExists(agentId))) {
        issues.push(`agent ${JSON.stringify(agentId)} does not exist`);
        return { consistent: false, issues, checkedAt: Date.now() };
      }
      await this.read(() => {
        const info = this.selectOne<{ info_json: string }>(
          'SELECT info_json FROM agent_info WHERE agent_id = ?',
          agentId,
        );
        const messages = this.listShape('messages', 'message_json', agentId, issues);
        this.listShape('tool_calls', 'record_json', agentId, issues);
        if (info !== undefined) {
          const { messageCount } = this.codec.decode<Partial<AgentInfo>>(
            info.info_json,
            'checkConsistency',
            agentId,
          );
          if (typeof messageCount === 'number' && messageCount !== messages) {
            issues.push(`info.messageCount is ${messageCount} but ${messages} messages are stored`);
          }
        }
      }, true);
      issues.push(...(await this.events.check(agentId)));
      return { consistent: issues.length === 0, issues, checkedAt: Date.now() };
    });
  }

  /** Counts a list's rows and reports gaps in its positions or rows whose JSON does not parse. */
  private listShape(table: string, column: string, agentId: string, issues: string[]): number {
    const shape = this.selectOne<{ n: number; last: number | null }>(
      `SELECT count(*) AS n, max(position) AS last FROM ${table} WHERE agent_id = ?`,
      agentId,
    )!;
    if (shape.n > 0 && shape.last !== shape.n - 1) {
      issues.push(`${table}: ${shape.n} rows but positions run to ${shape.last}`);
    }
    // json_valid finds the suspects without shipping every row, but it also
    // says no to valid JSON nested deeper than SQLite's JSON functions read
    // (1,000 levels): each suspect is judged by the parser loads use.
    const suspects = this.selectAll<{ json: string }>(
      `SELECT ${column} AS json FROM ${table} WHERE agent_id = ? AND NOT json_valid(${column})`,
      agentId,
    );
    const invalid = suspects.filter((row) => !parsesAsJson(row.json)).length;
    if (invalid > 0) issues.push(`${table}: ${invalid} rows hold JSON that does not parse`);
    return shape.n;
  }

  async getMetrics(): Promise<StoreMetrics> {
    return this.runGlobal('getMetrics', null, async () => {
      const storage = await this.read(() => {
        const count = (table: string) =>
          this.selectOne<{ n: number }>(`SELECT count(*) AS n FROM ${table}`)!.n;
        const pages = this.selectOne<{ bytes: number }>(
          'SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()',
        )!;
        return {
          totalAgents: count(`agents WHERE ${LIVE_AGENT}`),
          totalMessages: count('messages'),
          totalToolCalls: count('tool_calls'),
          dbSizeBytes: pages.bytes,
        };
      }, true);
      const totalEvents = await this.events.count();
      return {
        operations: this.ops.metrics.operations(),
        performance: this.ops.metrics.performance(),
        storage: totalEvents === undefined ? storage : { ...storage, totalEvents },
        collectedAt: Date.now(),
      };
    });
  }

  async acquireAgentLock(agentId: string, timeoutMs = 30000): Promise<LockReleaseFn> {
    // Not tracked as in flight: `close()` must not wait for a caller that waits for a lock.
    return this.ops.runForAgent('acquireAgentLock', null, agentId, async () => {
      if (this.configError !== undefined) throw this.configError;
      assertLockTimeout(timeoutMs, { backend: BACKEND, operation: 'acquireAgentLock', agentId });
      this.ops.assertWritable('acquireAgentLock', agentId);
      return this.locks.acquire(agentId, timeoutMs);
    });
  }

  async batchFork(agentId: string, count: number): Promise<string[]> {
    return this.runForAgent('batchFork', 'save', agentId, async () => {
      assertForkCount(count, { backend: BACKEND, operation: 'batchFork', agentId });
      const forkIds = Array.from({ length: count }, () => newForkId(agentId));
      await this.connection.write(() => {
        if (
          this.selectOne(`SELECT 1 AS found FROM agents WHERE agent_id = ? AND ${LIVE_AGENT}`, agentId) ===
          undefined
        ) {
          throw new NotFoundError('no agent to fork', { backend: BACKEND, operation: 'batchFork', agentId });
        }
        const info = this.selectOne<{ info_json: string }>(
          'SELECT info_json FROM agent_info WHERE agent_id = ?',
          agentId,
        );
        const source =
          info === undefined
            ? undefined
            : this.codec.decode<Partial<AgentInfo>>(info.info_json, 'batchFork', agentId);
        copyAgentRows(
          this.connection,
          agentId,
          forkIds.map((forkId) => ({ forkId, info: source && this.forkInfo(source, agentId, forkId) })),
          Date.now(),
        );
      });
      return forkIds;
    });
  }

  /** The fork's info: the source's, with its own id and the source appended to the lineage. */
  private forkInfo(source: Partial<AgentInfo>, sourceId: string, forkId: string): ForkInfoRow {
    const lineage = Array.isArray(source.lineage) ? source.lineage : [];
    const info = { ...source, agentId: forkId, lineage: [...lineage, sourceId] };
    const fields = sessionFields(info);
    return {
      json: this.codec.value(info, 'strict', 'batchFork', sourceId, 'info'),
      templateId: fields.templateId,
      userId: fields.userId,
      createdAtMs: fields.createdAtMs,
      messageCount: fields.messageCount,
    };
  }

  /**
   * Waits for running operations and pending appends, releases the locks
   * this object holds, and closes the database (unless it was injected) and
   * the event files. Later calls reject with `StoreClosedError`. Idempotent.
   */
  close(): Promise<void> {
    if (!this.ops.markClosed()) return this.closing ?? Promise.resolve();
    this.closing = (async () => {
      if (this.configError !== undefined) return;
      await Promise.allSettled([...this.inFlight]);
      try {
        await this.locks.releaseAll();
        await this.events.close();
      } finally {
        this.messages.clear();
        this.toolCalls.clear();
        await this.connection.close();
      }
    })();
    return this.closing;
  }
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
