import { newForkId } from '../../src/agent-id.js';
import { compareCodePoints } from '../../src/code-point-order.js';
import { DELETED_AGENT_RETENTION_MS } from '../../src/deleted-agents.js';
import { checkDirectoryWritable } from '../../src/directory-health.js';
import { NotFoundError, redactSecrets, ValidationError } from '../../src/errors.js';
import type { EventRowAccess } from '../../src/event-mode-move.js';
import { eventModeMismatch } from '../../src/event-modes.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import type { KvStore } from '../../src/kv/kv-types.js';
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
  toolCallFields,
  toSessionInfo,
} from '../../src/record-fields.js';
import { assertForkCount, assertLockTimeout } from '../../src/store-arguments.js';
import { eventFilter, StoreCodec } from '../../src/store-codec.js';
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
import { columnKey, optionalColumnKey, prefixUpperBound } from './postgres-column-keys.js';
import {
  type PostgresConnectionConfig,
  type PostgresStoreOptions,
  type ResolvedPostgresSettings,
  resolvePostgresSettings,
} from './postgres-config.js';
import { PostgresDatabase, type Statement } from './postgres-database.js';
import { postgresEventRows } from './postgres-event-rows.js';
import {
  DatabaseEventStorage,
  type EncodedTimeline,
  type EventStorage,
  FileEventStorage,
} from './postgres-event-storage.js';
import { PostgresKvBackend } from './postgres-kv.js';
import { PostgresListWriter } from './postgres-list-writer.js';
import { PostgresAgentLocks } from './postgres-lock.js';
import { impossibleAgentFilter, messagesQuery, sessionsQuery, toolCallsQuery } from './postgres-queries.js';
import { LIVE_AGENT, REGISTER_ON_CONFLICT } from './postgres-registry.js';
import { AGENT_TABLES, installedVersion } from './postgres-schema.js';
import { AgentWriteQueue } from './postgres-write-queue.js';

const BACKEND = 'postgres';

/** Kinds of rows in `kode_agent_records` (append-only lists). */
type RecordKind = 'history_window' | 'compression_record' | 'recovered_file';
/** Kinds of rows in `kode_agent_documents` (one replaceable document each). */
type DocumentKind = 'todos' | 'media_cache';

/** PostgreSQL's foreign_key_violation: the agent row vanished under a write (a concurrent delete). */
const FOREIGN_KEY_VIOLATION = '23503';

/** The inverse of `columnKey`, for keys returned to callers (tool names and states in stats). */
function fromColumnKey(key: string): string {
  return key.startsWith('"') ? (JSON.parse(key) as string) : key;
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
export class PostgresStore implements ExtendedStore {
  /** What this store guarantees; see `StoreCapabilities`. */
  readonly capabilities: StoreCapabilities;
  /** The PostgreSQL schema holding this store's tables. */
  readonly schema: string;
  /** Base directory for files (hybrid mode's event files), when configured. */
  readonly fileStoreBaseDir: string | undefined;
  /** Whether the store's fixed statements run as named prepared statements. */
  readonly preparedStatements: boolean;
  /** True when the store was opened with `readOnly`: it reads an existing schema and never writes. */
  readonly readOnly: boolean;

  /** @internal The connection layer (shared with the KV backend). */
  readonly db: PostgresDatabase;
  /** The KV namespace API (SPEC §6), in the same database and schema. */
  readonly kv: KvStore;
  private readonly settings: ResolvedPostgresSettings;
  private readonly ops: StoreOperations;
  private readonly codec = new StoreCodec(BACKEND);
  private readonly writes = new AgentWriteQueue();
  private readonly events: EventStorage;
  private readonly locks: PostgresAgentLocks;
  private readonly messages: PostgresListWriter;
  private readonly toolCalls: PostgresListWriter;
  private readonly sql: ReturnType<typeof buildStatements>;
  private closing: Promise<void> | undefined;

  /**
   * @param connection connection settings as in seed 004, a `postgres://` URL, or an options object
   * @param fileStoreBaseDir base directory for event files (hybrid mode)
   */
  constructor(connection: PostgresConnectionConfig | string, fileStoreBaseDir?: string);
  constructor(options: PostgresStoreOptions);
  constructor(first: PostgresStoreOptions | PostgresConnectionConfig | string, fileStoreBaseDir?: string) {
    this.settings = resolvePostgresSettings(first, fileStoreBaseDir);
    this.schema = this.settings.schema;
    this.preparedStatements = this.settings.preparedStatements;
    this.readOnly = this.settings.readOnly;
    this.fileStoreBaseDir = this.settings.fileStoreBaseDir;
    this.db = new PostgresDatabase(this.settings);
    const db = this.db;
    this.ops = new StoreOperations(BACKEND, {
      readOnly: this.readOnly,
      classifyError: (error, ctx) => db.classifyError(error, ctx),
    });
    const fileEvents = this.settings.eventStorage === 'file';
    this.events = fileEvents
      ? new FileEventStorage(this.db, this.settings.fileStoreBaseDir as string, this.settings.fsync)
      : new DatabaseEventStorage(this.db);
    this.locks = new PostgresAgentLocks(this.db, this.settings.lockLeaseMs);
    const kvBackend = new PostgresKvBackend(() => this.db.ready(), {
      schema: this.db.schema,
      preparedStatements: this.settings.preparedStatements,
      readOnly: this.readOnly,
      bounds: this.db.bounds,
    });
    this.kv = createKvStore(
      this.readOnly
        ? new ReadOnlyKvBackend(
            kvBackend,
            async () => (await installedVersion(this.db, (name) => this.db.table(name), 'kv')) !== undefined,
          )
        : kvBackend,
      { operations: this.ops },
    );
    const agents = this.db.table('kode_agents');
    const revisions = this.db.table('kode_revision_seq');
    this.messages = new PostgresListWriter(
      this.db,
      this.writes,
      {
        table: this.db.table('kode_messages'),
        jsonColumn: 'message_json',
        revisionColumn: 'messages_revision',
        columns: [
          { name: 'role_key', arrayType: 'text' },
          {
            name: 'content_types',
            arrayType: 'text',
            // Arrays of arrays cannot be unnested row by row; each row's types travel as a JSON array.
            expression: 'ARRAY(SELECT json_array_elements_text(n.content_types::json))',
          },
          { name: 'created_at_ms', arrayType: 'float8' },
        ],
        firstSavedColumn: 'created_at_ms',
      },
      agents,
      revisions,
    );
    this.toolCalls = new PostgresListWriter(
      this.db,
      this.writes,
      {
        table: this.db.table('kode_tool_calls'),
        jsonColumn: 'record_json',
        revisionColumn: 'tool_calls_revision',
        columns: [
          { name: 'tool_call_key', arrayType: 'text' },
          { name: 'name_key', arrayType: 'text' },
          { name: 'state_key', arrayType: 'text' },
          { name: 'is_error', arrayType: 'bool' },
          { name: 'has_approval', arrayType: 'bool' },
          { name: 'created_at_ms', arrayType: 'float8' },
          { name: 'updated_at_ms', arrayType: 'float8' },
        ],
      },
      agents,
      revisions,
    );
    this.sql = buildStatements(this.db);
    // Unsynced event files survive a crash of the process but not of the machine.
    const durable = !fileEvents || this.settings.fsync;
    this.capabilities = {
      crossInstanceLocks: true,
      crossProcessLocks: true,
      transactions: true,
      durable,
      fileEvents,
      reasons: {
        ...(fileEvents ? {} : { fileEvents: "events are rows in PostgreSQL (eventStorage: 'database')" }),
        ...(durable ? {} : { durable: 'event files are not fsynced (fsync: false)' }),
      },
    };
  }

  // ---- helpers ---------------------------------------------------------

  /**
   * A write that also registers the agent (in a CTE of the same statement).
   * If a concurrent delete removed the agent row between the two, the
   * foreign key refuses the write and nothing was written, so it is retried
   * once, registering the agent anew.
   */
  private async registeredWrite(statement: Statement, values: unknown[], idempotent: boolean): Promise<void> {
    try {
      await this.db.query(statement, values, idempotent);
    } catch (error) {
      if ((error as { code?: unknown }).code !== FOREIGN_KEY_VIOLATION) throw error;
      await this.db.query(statement, values, idempotent);
    }
  }

  /** Queues the write (call synchronously, in call order). */
  private saveDocument(agentId: string, kind: DocumentKind, json: string): Promise<void> {
    return this.writes.write(agentId, () =>
      this.registeredWrite(this.sql.saveDocument, [agentId, kind, json], true),
    );
  }

  private async loadDocument(agentId: string, kind: DocumentKind): Promise<string | undefined> {
    await this.writes.settled(agentId);
    const rows = await this.db.query<{ json: string }>(this.sql.loadDocument, [agentId, kind], true);
    return rows[0]?.json;
  }

  /** Queues the append (call synchronously, in call order). */
  private appendRecord(agentId: string, kind: RecordKind, json: string): Promise<void> {
    // Not idempotent: a retry after an unknown outcome could store the record twice.
    return this.writes.write(agentId, () =>
      this.registeredWrite(this.sql.appendRecord, [agentId, kind, json], false),
    );
  }

  private async loadRecords<T>(agentId: string, kind: RecordKind, operation: string): Promise<T[]> {
    await this.writes.settled(agentId);
    const rows = await this.db.query<{ json: string }>(this.sql.loadRecords, [agentId, kind], true);
    return rows.map((row) => this.codec.decode<T>(row.json, operation, agentId));
  }

  // ---- runtime state ---------------------------------------------------

  async saveMessages(agentId: string, messages: Message[]): Promise<void> {
    return this.ops.runForAgent('saveMessages', 'save', agentId, () => {
      const texts = this.codec.list(messages, 'saveMessages', agentId, 'messages');
      const savedAt = Date.now();
      return this.messages.save(agentId, {
        texts,
        valuesAt: (i) => {
          const message = messages[i] as Message | null;
          const role = (message as { role?: unknown } | null)?.role;
          return [
            columnKey(typeof role === 'string' ? role : ''),
            JSON.stringify(messageContentTypes(message as Message).map(columnKey)),
            savedAt,
          ];
        },
      });
    });
  }

  async loadMessages(agentId: string): Promise<Message[]> {
    return this.ops.runForAgent('loadMessages', 'load', agentId, async () =>
      (await this.messages.load(agentId)).map((json) =>
        this.codec.decode<Message>(json, 'loadMessages', agentId),
      ),
    );
  }

  async saveToolCallRecords(agentId: string, records: ToolCallRecord[]): Promise<void> {
    return this.ops.runForAgent('saveToolCallRecords', 'save', agentId, () => {
      const texts = this.codec.list(records, 'saveToolCallRecords', agentId, 'records');
      // Every item is checked (a cheap test), though fields are taken only from those written.
      records.forEach((record, i) => {
        if (typeof record !== 'object' || record === null || Array.isArray(record)) {
          throw new ValidationError(`records[${i}] must be an object`, {
            backend: BACKEND,
            operation: 'saveToolCallRecords',
            agentId,
          });
        }
      });
      return this.toolCalls.save(agentId, {
        texts,
        valuesAt: (i) => {
          const record = records[i] as ToolCallRecord;
          const fields = toolCallFields(record);
          return [
            columnKey(String(record.id)),
            columnKey(fields.name),
            columnKey(fields.state),
            fields.isError,
            fields.hasApproval,
            fields.createdAt,
            fields.updatedAt,
          ];
        },
      });
    });
  }

  async loadToolCallRecords(agentId: string): Promise<ToolCallRecord[]> {
    return this.ops.runForAgent('loadToolCallRecords', 'load', agentId, async () =>
      (await this.toolCalls.load(agentId)).map((json) =>
        this.codec.decode<ToolCallRecord>(json, 'loadToolCallRecords', agentId),
      ),
    );
  }

  async saveTodos(agentId: string, snapshot: TodoSnapshot): Promise<void> {
    return this.ops.runForAgent('saveTodos', 'save', agentId, () =>
      this.saveDocument(
        agentId,
        'todos',
        this.codec.value(snapshot, 'strict', 'saveTodos', agentId, 'snapshot'),
      ),
    );
  }

  async loadTodos(agentId: string): Promise<TodoSnapshot | undefined> {
    return this.ops.runForAgent('loadTodos', 'load', agentId, async () => {
      const json = await this.loadDocument(agentId, 'todos');
      return json === undefined ? undefined : this.codec.decode<TodoSnapshot>(json, 'loadTodos', agentId);
    });
  }

  // ---- events ----------------------------------------------------------

  appendEvent(agentId: string, timeline: Timeline): Promise<void> {
    // The SDK's hottest call: the body runs synchronously, so un-awaited
    // appends reach the event storage in exactly their call order; the
    // storage reports a failed write as typed errors.
    return this.ops.append('appendEvent', agentId, () => {
      if (typeof timeline !== 'object' || timeline === null || Array.isArray(timeline)) {
        throw new ValidationError('timeline must be an object', {
          backend: BACKEND,
          operation: 'appendEvent',
          agentId,
        });
      }
      const json = this.codec.timeline(timeline, 'appendEvent', agentId);
      const seq = timeline.bookmark?.seq;
      const channel = timeline.event?.channel;
      const event: EncodedTimeline = {
        json,
        seq: typeof seq === 'number' && Number.isFinite(seq) ? seq : null,
        channel: typeof channel === 'string' ? channel : null,
      };
      return this.events.append(agentId, event);
    });
  }

  readEvents(agentId: string, opts: ReadEventsOptions = {}): AsyncIterable<Timeline> {
    const store = this;
    async function* pages(): AsyncGenerator<Timeline[]> {
      await store.ops.runForAgent('readEvents', 'load', agentId, () =>
        eventFilter(opts, { backend: BACKEND, operation: 'readEvents', agentId }),
      );
      yield* store.events.readPages(agentId, opts ?? {});
    }
    return pagedIterable(pages, {
      // A closed check per entry, not an operation frame: the frame ran once above.
      beforeEach: () => store.ops.assertOpen('readEvents'),
      // Errors thrown while paging arrive outside `ops.run`; give them the same shape.
      mapError: (error) => store.db.wrapError(error, { backend: BACKEND, operation: 'readEvents', agentId }),
    });
  }

  // ---- history & compression -------------------------------------------

  async saveHistoryWindow(agentId: string, window: HistoryWindow): Promise<void> {
    return this.ops.runForAgent('saveHistoryWindow', 'save', agentId, () =>
      this.appendRecord(
        agentId,
        'history_window',
        this.codec.value(window, 'strict', 'saveHistoryWindow', agentId, 'window'),
      ),
    );
  }

  async loadHistoryWindows(agentId: string): Promise<HistoryWindow[]> {
    return this.ops.runForAgent('loadHistoryWindows', 'load', agentId, () =>
      this.loadRecords<HistoryWindow>(agentId, 'history_window', 'loadHistoryWindows'),
    );
  }

  async saveCompressionRecord(agentId: string, record: CompressionRecord): Promise<void> {
    return this.ops.runForAgent('saveCompressionRecord', 'save', agentId, () =>
      this.appendRecord(
        agentId,
        'compression_record',
        this.codec.value(record, 'strict', 'saveCompressionRecord', agentId, 'record'),
      ),
    );
  }

  async loadCompressionRecords(agentId: string): Promise<CompressionRecord[]> {
    return this.ops.runForAgent('loadCompressionRecords', 'load', agentId, () =>
      this.loadRecords<CompressionRecord>(agentId, 'compression_record', 'loadCompressionRecords'),
    );
  }

  async saveRecoveredFile(agentId: string, file: RecoveredFile): Promise<void> {
    return this.ops.runForAgent('saveRecoveredFile', 'save', agentId, () =>
      this.appendRecord(
        agentId,
        'recovered_file',
        this.codec.value(file, 'strict', 'saveRecoveredFile', agentId, 'file'),
      ),
    );
  }

  async loadRecoveredFiles(agentId: string): Promise<RecoveredFile[]> {
    return this.ops.runForAgent('loadRecoveredFiles', 'load', agentId, () =>
      this.loadRecords<RecoveredFile>(agentId, 'recovered_file', 'loadRecoveredFiles'),
    );
  }

  // ---- media cache -----------------------------------------------------

  async saveMediaCache(agentId: string, records: MediaCacheRecord[]): Promise<void> {
    return this.ops.runForAgent('saveMediaCache', 'save', agentId, () => {
      const encoded = this.codec.list(records, 'saveMediaCache', agentId, 'records');
      return this.saveDocument(agentId, 'media_cache', `[${encoded.join(',')}]`);
    });
  }

  async loadMediaCache(agentId: string): Promise<MediaCacheRecord[]> {
    return this.ops.runForAgent('loadMediaCache', 'load', agentId, async () => {
      const json = await this.loadDocument(agentId, 'media_cache');
      return json === undefined ? [] : this.codec.decode<MediaCacheRecord[]>(json, 'loadMediaCache', agentId);
    });
  }

  // ---- snapshots -------------------------------------------------------

  async saveSnapshot(agentId: string, snapshot: Snapshot): Promise<void> {
    return this.ops.runForAgent('saveSnapshot', 'save', agentId, async () => {
      const json = this.codec.value(snapshot, 'strict', 'saveSnapshot', agentId, 'snapshot');
      if (typeof snapshot.id !== 'string') {
        throw new ValidationError('snapshot.id must be a string', {
          backend: BACKEND,
          operation: 'saveSnapshot',
          agentId,
        });
      }
      await this.writes.write(agentId, () =>
        this.registeredWrite(this.sql.saveSnapshot, [agentId, columnKey(snapshot.id), json], true),
      );
    });
  }

  async loadSnapshot(agentId: string, snapshotId: string): Promise<Snapshot | undefined> {
    return this.ops.runForAgent('loadSnapshot', 'load', agentId, async () => {
      if (typeof snapshotId !== 'string') return undefined;
      await this.writes.settled(agentId);
      const rows = await this.db.query<{ json: string }>(
        this.sql.loadSnapshot,
        [agentId, columnKey(snapshotId)],
        true,
      );
      const json = rows[0]?.json;
      return json === undefined ? undefined : this.codec.decode<Snapshot>(json, 'loadSnapshot', agentId);
    });
  }

  async listSnapshots(agentId: string): Promise<Snapshot[]> {
    return this.ops.runForAgent('listSnapshots', 'load', agentId, async () => {
      await this.writes.settled(agentId);
      const rows = await this.db.query<{ json: string }>(this.sql.listSnapshots, [agentId], true);
      return rows.map((row) => this.codec.decode<Snapshot>(row.json, 'listSnapshots', agentId));
    });
  }

  // ---- metadata --------------------------------------------------------

  async saveInfo(agentId: string, info: AgentInfo): Promise<void> {
    return this.ops.runForAgent('saveInfo', 'save', agentId, async () => {
      const json = this.codec.value(info, 'strict', 'saveInfo', agentId, 'info');
      if (typeof info !== 'object' || info === null || Array.isArray(info)) {
        throw new ValidationError('info must be an object', {
          backend: BACKEND,
          operation: 'saveInfo',
          agentId,
        });
      }
      const fields = sessionFields(info);
      const values = [
        agentId,
        json,
        columnKey(fields.templateId),
        optionalColumnKey(fields.userId),
        fields.createdAtMs,
        Date.now(),
        fields.messageCount,
      ];
      await this.writes.write(agentId, () => this.db.query(this.sql.saveInfo, values, true));
    });
  }

  async loadInfo(agentId: string): Promise<AgentInfo | undefined> {
    return this.ops.runForAgent('loadInfo', 'load', agentId, async () => {
      await this.writes.settled(agentId);
      const rows = await this.db.query<{ json: string | null }>(this.sql.loadInfo, [agentId], true);
      const json = rows[0]?.json;
      return json === null || json === undefined
        ? undefined
        : this.codec.decode<AgentInfo>(json, 'loadInfo', agentId);
    });
  }

  // ---- lifecycle -------------------------------------------------------

  async exists(agentId: string): Promise<boolean> {
    return this.ops.runForAgent('exists', 'load', agentId, async () => {
      await this.writes.settled(agentId);
      const rows = await this.db.query<{ live: boolean | null }>(this.sql.exists, [agentId], true);
      const live = rows[0]?.live;
      if (live !== null && live !== undefined) return live;
      // An agent whose registration failed is seen through its event file; a deleted one's never is.
      await this.events.idle();
      return this.events.hasOutsideRegistry(agentId);
    });
  }

  async delete(agentId: string): Promise<void> {
    return this.ops.runForAgent('delete', 'delete', agentId, () =>
      // Writes and appends made before the delete land first, then go with the rest.
      this.writes.write(agentId, async () => {
        await this.events.idle();
        // Event files this store cannot reach would outlive the agent.
        if (this.events instanceof DatabaseEventStorage && (await this.events.hasFileEvents(agentId))) {
          throw eventModeMismatch('file', { backend: BACKEND, operation: 'delete', agentId });
        }
        this.messages.forget(agentId);
        this.toolCalls.forget(agentId);
        await this.db.transaction(async (tx) => {
          // The agent row first: a save or an append in flight holds it until
          // it commits, and the next statements, with new snapshots, then see
          // (and delete) what it wrote; a later append finds the tombstone.
          const now = Date.now();
          await tx.query(this.sql.deleteAgent, [agentId, now - DELETED_AGENT_RETENTION_MS]);
          await tx.query(this.sql.writeTombstone, [agentId, now]);
          await tx.query(this.sql.deleteLists, [agentId]);
          await this.events.deleteWithin(tx, agentId);
        });
        this.messages.forget(agentId);
        this.toolCalls.forget(agentId);
        await this.events.deleteAfterCommit(agentId);
      }),
    );
  }

  async list(prefix?: string): Promise<string[]> {
    return this.ops.run('list', 'load', async () => {
      if (prefix !== undefined && typeof prefix !== 'string') {
        throw new ValidationError('prefix must be a string', { backend: BACKEND, operation: 'list' });
      }
      // Agent ids never hold NUL or lone surrogates (assertAgentId), so such a prefix matches nothing.
      if (prefix !== undefined && impossibleAgentFilter(prefix)) return [];
      const conditions: string[] = [];
      const values: unknown[] = [];
      if (prefix) {
        values.push(prefix);
        conditions.push(`agent_id >= $${values.length}`);
        const upper = prefixUpperBound(prefix);
        if (upper !== undefined) {
          values.push(upper);
          conditions.push(`agent_id < $${values.length}`);
        }
      }
      const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
      // Tombstones come too: hybrid mode's list leaves out their files.
      const rows = await this.db.query<{ agent_id: string; live: boolean }>(
        `SELECT agent_id, ${LIVE_AGENT} AS live FROM ${this.db.table('kode_agents')} ${where} ORDER BY agent_id`,
        values,
        true,
      );
      const ids = rows.filter((row) => row.live).map((row) => row.agent_id);
      await this.events.idle();
      const fromFiles = await this.events.agentIds(prefix || undefined);
      if (fromFiles.length === 0) return ids;
      // An agent whose registration failed is listed through its event file; a deleted one's never is.
      const registered = new Set(rows.map((row) => row.agent_id));
      return [...ids, ...fromFiles.filter((id) => !registered.has(id))].sort(compareCodePoints);
    });
  }

  // ---- queries ---------------------------------------------------------

  async querySessions(filters: SessionFilters): Promise<SessionInfo[]> {
    return this.ops.run('querySessions', 'query', async () => {
      const query = normalizeSessionFilters(filters);
      if (query.limit === 0 || impossibleAgentFilter(query.agentId)) return [];
      const { text, values } = sessionsQuery(this.db.table('kode_agents'), query);
      const rows = await this.db.query<{ agent_id: string; info_json: string }>(text, values, true);
      return rows.map((row) =>
        toSessionInfo(
          row.agent_id,
          this.codec.decode<AgentInfo>(row.info_json, 'querySessions', row.agent_id),
        ),
      );
    });
  }

  async queryMessages(filters: MessageFilters): Promise<Message[]> {
    return this.ops.run('queryMessages', 'query', async () => {
      const query = normalizeMessageFilters(filters);
      if (query.limit === 0 || impossibleAgentFilter(query.agentId)) return [];
      const { text, values } = messagesQuery(this.db.table('kode_messages'), query);
      const rows = await this.db.query<{ agent_id: string; message_json: string }>(text, values, true);
      return rows.map((row) => this.codec.decode<Message>(row.message_json, 'queryMessages', row.agent_id));
    });
  }

  async queryToolCalls(filters: ToolCallFilters): Promise<ToolCallRecord[]> {
    return this.ops.run('queryToolCalls', 'query', async () => {
      const query = normalizeToolCallFilters(filters);
      if (query.limit === 0 || impossibleAgentFilter(query.agentId)) return [];
      const { text, values } = toolCallsQuery(this.db.table('kode_tool_calls'), query);
      const rows = await this.db.query<{ agent_id: string; record_json: string }>(text, values, true);
      return rows.map((row) =>
        this.codec.decode<ToolCallRecord>(row.record_json, 'queryToolCalls', row.agent_id),
      );
    });
  }

  async aggregateStats(agentId: string): Promise<AgentStats> {
    return this.ops.runForAgent('aggregateStats', 'query', agentId, async () => {
      await this.writes.settled(agentId);
      const rows = await this.db.query<{
        messages: number;
        snapshots: number;
        by_name: string | null;
        by_state: string | null;
      }>(this.sql.aggregateStats, [agentId], true);
      const row = rows[0];
      const groups = (json: string | null | undefined): Record<string, number> => {
        const counts: Record<string, number> = {};
        for (const [key, n] of JSON.parse(json ?? '[]') as Array<[string, number]>)
          counts[fromColumnKey(key)] = n;
        return counts;
      };
      const totalMessages = row?.messages ?? 0;
      const totalSnapshots = row?.snapshots ?? 0;
      const toolCallsByName = groups(row?.by_name);
      const toolCallsByState = groups(row?.by_state);
      const totalToolCalls = Object.values(toolCallsByName).reduce((sum, n) => sum + n, 0);
      return {
        totalMessages,
        totalToolCalls,
        totalSnapshots,
        // One agent is one session, as in the SDK's own stores.
        avgMessagesPerSession: totalMessages,
        toolCallsByName,
        toolCallsByState,
      };
    });
  }

  // ---- extended --------------------------------------------------------

  /**
   * Connects and creates or upgrades the schema now rather than at the first
   * operation (optional: every operation connects on first use). Rejects
   * with `ConnectionError` when the server cannot be reached; a later call
   * tries again.
   */
  open(): Promise<this> {
    return this.ops.run('open', null, async () => {
      await this.db.ready();
      return this;
    });
  }

  /**
   * The database side of moving events between modes (`kode-store events`).
   * @internal
   */
  eventRows(): EventRowAccess {
    return postgresEventRows(this.db);
  }

  /**
   * Real connectivity (a round trip to the server, its latency) and whether
   * the schema is usable; in hybrid mode also whether the event directory is
   * writable (checked without creating anything). Never rejects for an
   * unreachable server: that is what it reports.
   */
  async healthCheck(): Promise<StoreHealthStatus> {
    return this.ops.run('healthCheck', null, async () => {
      const database: StoreHealthStatus['database'] = { connected: false };
      try {
        database.latencyMs = await this.db.ping();
        database.connected = true;
        await this.db.ready();
        // Migrations ran once per store; a schema dropped since then is only seen by looking.
        const [tables] = await this.db.query<{ present: boolean }>(
          'SELECT to_regclass($1) IS NOT NULL AS present',
          [this.db.table('kode_agents')],
          true,
        );
        if (!tables?.present)
          database.error = `the store's tables are missing from schema ${JSON.stringify(this.schema)}`;
      } catch (error) {
        database.error = redactSecrets(error instanceof Error ? error.message : String(error));
      }
      const fileSystem = await this.fileSystemHealth();
      return {
        healthy: database.connected && database.error === undefined && fileSystem.writable,
        database,
        fileSystem,
        checkedAt: Date.now(),
      };
    });
  }

  private async fileSystemHealth(): Promise<StoreHealthStatus['fileSystem']> {
    // Only hybrid mode writes files; the database mode has nothing to check.
    if (this.events.mode !== 'file' || !this.fileStoreBaseDir) return { writable: true };
    return checkDirectoryWritable(this.fileStoreBaseDir, { probe: !this.readOnly });
  }

  async checkConsistency(agentId: string): Promise<ConsistencyCheckResult> {
    return this.ops.runForAgent('checkConsistency', 'query', agentId, async () => {
      await this.writes.settled(agentId);
      await this.events.idle();
      const issues: string[] = [];
      const rows = await this.db.query<{
        registered: boolean;
        info_json: string | null;
        event_files: boolean | null;
        messages: number;
        max_position: number | null;
        duplicate_tool_calls: number;
      }>(this.sql.consistency, [agentId], true);
      const row = rows[0];
      const registered = row?.registered === true;
      const eventsOutside = await this.events.hasOutsideRegistry(agentId);
      if (!registered && !eventsOutside) {
        issues.push(`agent ${JSON.stringify(agentId)} does not exist`);
        return { consistent: false, issues, checkedAt: Date.now() };
      }
      const messages = row?.messages ?? 0;
      let info: Partial<AgentInfo> | undefined;
      if (row?.info_json) {
        try {
          info = JSON.parse(row.info_json) as Partial<AgentInfo>;
        } catch (error) {
          issues.push(`stored info is not valid JSON (${(error as Error).message})`);
        }
      }
      if (info && typeof info.messageCount === 'number' && info.messageCount !== messages) {
        issues.push(`info.messageCount is ${info.messageCount} but ${messages} messages are stored`);
      }
      if (
        row?.max_position !== null &&
        row?.max_position !== undefined &&
        row.max_position + 1 !== messages
      ) {
        issues.push(
          `message positions have gaps: ${messages} messages, highest position ${row.max_position}`,
        );
      }
      if (row && row.duplicate_tool_calls > 0) {
        issues.push(`${row.duplicate_tool_calls} tool-call ids are stored more than once`);
      }
      if (row?.event_files && !eventsOutside) {
        issues.push('events were written to an event file, but the file is missing');
      }
      issues.push(...(await this.events.check(agentId)));
      return { consistent: issues.length === 0, issues, checkedAt: Date.now() };
    });
  }

  async getMetrics(): Promise<StoreMetrics> {
    return this.ops.run('getMetrics', null, async () => {
      await this.events.idle();
      const [rows, totalEvents, fileAgents] = await Promise.all([
        this.db.query<{ agents: number; messages: number; tool_calls: number; size: number | null }>(
          this.sql.metrics,
          [this.schema, [...AGENT_TABLES]],
          true,
        ),
        this.events.count(),
        this.events.agentIds(undefined),
      ]);
      const row = rows[0];
      let totalAgents = row?.agents ?? 0;
      if (fileAgents.length > 0) {
        const outside = await this.db.query<{ n: number }>(this.sql.countUnregistered, [fileAgents], true);
        totalAgents += outside[0]?.n ?? 0;
      }
      const storage: StoreMetrics['storage'] = {
        totalAgents,
        totalMessages: row?.messages ?? 0,
        totalToolCalls: row?.tool_calls ?? 0,
      };
      if (totalEvents !== undefined) storage.totalEvents = totalEvents;
      if (row?.size !== null && row?.size !== undefined) storage.dbSizeBytes = row.size;
      return {
        operations: this.ops.metrics.operations(),
        performance: this.ops.metrics.performance(),
        storage,
        collectedAt: Date.now(),
      };
    });
  }

  async acquireAgentLock(agentId: string, timeoutMs = 30000): Promise<LockReleaseFn> {
    return this.ops.runForAgent('acquireAgentLock', null, agentId, () => {
      assertLockTimeout(timeoutMs, { backend: BACKEND, operation: 'acquireAgentLock', agentId });
      this.ops.assertWritable('acquireAgentLock', agentId);
      return this.locks.acquire(agentId, timeoutMs);
    });
  }

  /**
   * `count` full copies of the agent (info with lineage extended, messages
   * with their first-saved times, tool-call records with unchanged ids,
   * todos, snapshots in order), made by one set-based INSERT ... SELECT
   * statement per table, all in one transaction.
   */
  async batchFork(agentId: string, count: number): Promise<string[]> {
    return this.ops.runForAgent('batchFork', 'save', agentId, async () => {
      assertForkCount(count, { backend: BACKEND, operation: 'batchFork', agentId });
      return this.writes.write(agentId, () => this.forkInTransaction(agentId, count));
    });
  }

  private forkInTransaction(agentId: string, count: number): Promise<string[]> {
    return this.db.transaction(async (tx) => {
      const source = await tx.query<{ info_json: string | null }>(this.sql.lockSource, [agentId]);
      const found = source[0];
      if (!found && !(await this.events.hasOutsideRegistry(agentId))) {
        throw new NotFoundError('no agent to fork', { backend: BACKEND, operation: 'batchFork', agentId });
      }
      if (count === 0) return [];
      const ids = Array.from({ length: count }, () => newForkId(agentId));
      const infos: Array<string | null> = [];
      const fields: Array<ReturnType<typeof sessionFields> | null> = [];
      for (const forkId of ids) {
        if (!found?.info_json) {
          infos.push(null);
          fields.push(null);
          continue;
        }
        const info = this.codec.decode<Partial<AgentInfo>>(found.info_json, 'batchFork', agentId);
        const lineage = Array.isArray(info.lineage) ? info.lineage : [];
        // Spreading keeps the source's key order; the two replaced keys stay where they were.
        const forkInfo = { ...info, agentId: forkId, lineage: [...lineage, agentId] };
        infos.push(this.codec.value(forkInfo, 'strict', 'batchFork', agentId, 'info'));
        fields.push(sessionFields(forkInfo));
      }
      const now = Date.now();
      await tx.query(this.sql.fork, [
        agentId,
        ids,
        infos,
        fields.map((f) => (f ? columnKey(f.templateId) : null)),
        fields.map((f) => (f ? optionalColumnKey(f.userId) : null)),
        fields.map((f) => (f ? f.createdAtMs : null)),
        fields.map((f) => (f ? now : null)),
        fields.map((f) => (f ? f.messageCount : null)),
      ]);
      return ids;
    });
  }

  /**
   * Waits for pending writes and appends, releases held locks, closes the event files
   * and ends the pool the store opened (an injected pool stays open).
   * Idempotent; later calls reject with `StoreClosedError`.
   */
  async close(): Promise<void> {
    if (!this.ops.markClosed()) return this.closing;
    this.closing = (async () => {
      await this.writes.settledAll();
      await this.events.idle();
      await this.locks.releaseAll();
      await this.events.close().catch(() => undefined);
      await this.db.close();
    })();
    return this.closing;
  }
}

/** The store's fixed statements, built once per store (the schema name is part of them). */
function buildStatements(db: PostgresDatabase) {
  return preparedStatements(db, statementTexts(db));
}

/** Each fixed statement as a `Statement` (prepared by name unless the store was told not to). */
function preparedStatements<K extends string>(
  db: PostgresDatabase,
  texts: Record<K, string>,
): Record<K, Statement> {
  const statements = {} as Record<K, Statement>;
  for (const key of Object.keys(texts) as K[]) statements[key] = db.statement(texts[key]);
  return statements;
}

function statementTexts(db: PostgresDatabase) {
  const agents = db.table('kode_agents');
  const messages = db.table('kode_messages');
  const toolCalls = db.table('kode_tool_calls');
  const snapshots = db.table('kode_snapshots');
  const records = db.table('kode_agent_records');
  const documents = db.table('kode_agent_documents');
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
    saveInfo: `INSERT INTO ${agents} (agent_id, info_json, template_key, user_key, created_at_ms, updated_at_ms, message_count)
      VALUES ($1, $2, $3, $4, $5, $6, $7)
      ON CONFLICT (agent_id) DO UPDATE SET info_json = excluded.info_json, template_key = excluded.template_key,
        user_key = excluded.user_key, created_at_ms = excluded.created_at_ms,
        updated_at_ms = excluded.updated_at_ms, message_count = excluded.message_count, deleted_at_ms = NULL`,
    loadInfo: `SELECT info_json AS json FROM ${agents} WHERE agent_id = $1`,
    // null: no row; false: a tombstone.
    exists: `SELECT (SELECT ${LIVE_AGENT} FROM ${agents} WHERE agent_id = $1) AS live`,
    // The row goes (with what cascades from it) and a tombstone row takes its
    // place, all other columns at their defaults; expired tombstones go too.
    deleteAgent: `WITH removed AS (DELETE FROM ${agents} WHERE agent_id = $1)
      DELETE FROM ${agents} WHERE deleted_at_ms < $2`,
    writeTombstone: `INSERT INTO ${agents} (agent_id, deleted_at_ms) VALUES ($1, $2)`,
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
        (SELECT event_files FROM ${agents} WHERE agent_id = $1) AS event_files,
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
          WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind = 'r') AS size`,
    countUnregistered: `SELECT count(*) AS n FROM unnest($1::text[]) AS f(id)
      WHERE NOT EXISTS (SELECT 1 FROM ${agents} WHERE agent_id = f.id AND ${LIVE_AGENT})`,
    // FOR SHARE: saves of the source wait until the copies are made, so all copies are of one state.
    lockSource: `SELECT info_json FROM ${agents} WHERE agent_id = $1 FOR SHARE`,
    // One statement: the fork rows first (CTE), then every copy; foreign-key
    // checks run at the end of the statement and see the new agent rows.
    fork: `
      WITH forks AS (
        INSERT INTO ${agents} (agent_id, info_json, template_key, user_key, created_at_ms, updated_at_ms,
          message_count, messages_revision, tool_calls_revision)
        SELECT f.id, f.info_json, f.template_key, f.user_key, f.created_at_ms, f.updated_at_ms, f.message_count,
          nextval('${revisions}'), nextval('${revisions}')
        FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::float8[])
          AS f(id, info_json, template_key, user_key, created_at_ms, updated_at_ms, message_count)
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
