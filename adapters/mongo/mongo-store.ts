import { newForkId } from '../../src/agent-id.js';
import { checkDirectoryWritable } from '../../src/directory-health.js';
import { KodeStoreError, NotFoundError, redactSecrets, ValidationError } from '../../src/errors.js';
import { FileEventLog } from '../../src/file-event-log.js';
import { decodeJson, type EncodeMode } from '../../src/json-codec.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import type { KvStore } from '../../src/kv/kv-types.js';
import {
  normalizeMessageFilters,
  normalizeSessionFilters,
  normalizeToolCallFilters,
} from '../../src/query-filters.js';
import { ReadOnlyKvBackend } from '../../src/read-only-kv-backend.js';
import { toSessionInfo } from '../../src/record-fields.js';
import { assertForkCount, assertLockTimeout } from '../../src/store-arguments.js';
import { StoreCodec } from '../../src/store-codec.js';
import { StoreOperations } from '../../src/store-operations.js';
import { compareCodePoints } from '../../src/strings.js';
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
import { AgentWriteQueue } from './mongo-agent-queue.js';
import {
  type MongoDocument,
  type MongoSession,
  type MongoStoreOptions,
  type ResolvedMongoStoreOptions,
  resolveMongoStoreOptions,
} from './mongo-config.js';
import { MongoConnection, type OpenMongo, runAtomically, withSession } from './mongo-connection.js';
import {
  assertFitsInDocument,
  readJson,
  toEventDocument,
  toInfoDocument,
  toMediaCacheDocument,
  toMessageDocument,
  toPositionedDocument,
  toSnapshotDocument,
  toToolCallDocument,
} from './mongo-documents.js';
import { mongoTimeoutError } from './mongo-errors.js';
import {
  counterValue,
  DatabaseEventStorage,
  type EventFilter,
  FileEventStorage,
  type MongoEventStorage,
} from './mongo-event-storage.js';
import { KV_SCHEMA_COMPONENT, MongoKvBackend, type MongoKvOptions } from './mongo-kv.js';
import { MongoListSaver } from './mongo-list-saver.js';
import { MongoLeaseLocks } from './mongo-lock.js';
import {
  agentIdPrefixFilter,
  messageQueryPlan,
  sessionQueryPlan,
  toolCallQueryPlan,
  toolCallStatsFromGroups,
  toolCallStatsPipeline,
} from './mongo-queries.js';
import {
  expiredTombstones,
  isLiveTombstone,
  LIVE_AGENT,
  registerForEvents,
  registration,
  tombstone,
} from './mongo-registry.js';
import { type AgentCollectionRole, installedVersion } from './mongo-schema.js';

const BACKEND = 'mongo';

/** Collections holding one document per item, keyed by `agentId` (deleted and forked per agent). */
const PER_ITEM_COLLECTIONS = [
  'messages',
  'tool_calls',
  'snapshots',
  'history_windows',
  'compression_records',
  'recovered_files',
  'media_cache',
] as const satisfies readonly AgentCollectionRole[];

/** Appended lists read back by `position`. */
type PositionedRole = 'history_windows' | 'compression_records' | 'recovered_files';

/**
 * The agent store on MongoDB (`kode-store/mongo`), with the official `mongodb`
 * driver (v6+), an optional peer dependency loaded on first use.
 *
 * Every value is stored as the JSON text of `encodeJson` beside the fields
 * queries use (see `mongo-documents.ts`), one document per message, tool
 * call, event, snapshot and history entry. Collections and indexes are
 * created on first connect and versioned in `<prefix>schema_version`.
 *
 * On a replica set or sharded cluster, every multi-document write runs in a
 * transaction (`capabilities.transactions`). On a standalone server there are
 * none; writes are then ordered so that a failure leaves nothing half-visible
 * that a retry would not repair: see the README's MongoDB section.
 *
 * @example
 * ```ts
 * import { MongoStore } from 'kode-store/mongo';
 * const store = new MongoStore({ uri: process.env.MONGODB_URI, dbName: 'agents' });
 * const agent = await Agent.create({ store, ... });
 * ```
 */
export class MongoStore implements ExtendedStore {
  /** The options after validation and defaults. */
  readonly options: ResolvedMongoStoreOptions;
  /** True when the store was opened with `readOnly`: it reads an existing database and never writes. */
  readonly readOnly: boolean;

  private readonly ops: StoreOperations;
  private readonly codec = new StoreCodec(BACKEND);
  private readonly connection: MongoConnection;
  private readonly events: MongoEventStorage;
  private readonly locks: MongoLeaseLocks;
  private readonly messageLists = new MongoListSaver<Message>({
    collection: 'messages',
    revisionField: 'messagesRevision',
    firstSavedField: 'createdAt',
    toDocument: (agentId, index, json, message, savedAt) =>
      toMessageDocument(agentId, index, json, message, savedAt) as unknown as MongoDocument,
  });
  private readonly toolCallLists = new MongoListSaver<ToolCallRecord>({
    collection: 'tool_calls',
    revisionField: 'toolCallsRevision',
    toDocument: (agentId, index, json, record) =>
      toToolCallDocument(agentId, index, json, record) as unknown as MongoDocument,
  });
  /** Writes of one agent run in call order (see AgentWriteQueue). */
  private readonly writes = new AgentWriteQueue();
  private closing: Promise<void> | undefined;

  /**
   * Validates the options (a `ConfigError` names the one at fault) without
   * connecting: the first operation (or `connect()`) connects.
   */
  constructor(options: MongoStoreOptions) {
    this.options = resolveMongoStoreOptions(options);
    this.readOnly = this.options.readOnly;
    const bounds = { ...this.options };
    this.ops = new StoreOperations(BACKEND, {
      readOnly: this.readOnly,
      classifyError: (error, ctx) => mongoTimeoutError(error, ctx, bounds),
    });
    this.connection = new MongoConnection(this.options);
    const open = () => this.connection.open();
    this.events =
      this.options.eventStorage === 'file'
        ? new FileEventStorage(
            new FileEventLog({
              baseDir: this.options.fileStoreBaseDir as string,
              registerAgent: (agentId) => this.markEventFile(agentId),
              admitAgent: (agentId) => this.admitEventFile(agentId),
            }),
          )
        : new DatabaseEventStorage(open);
    this.locks = new MongoLeaseLocks(async () => (await open()).collections.locks, this.options.lockLeaseMs, {
      backend: BACKEND,
    });
    this.kv = createKvStore(
      this.readOnly
        ? new ReadOnlyKvBackend(
            this.kvBackend(),
            async () =>
              (await installedVersion(
                (
                  await open()
                ).db,
                this.options.collectionPrefix,
                KV_SCHEMA_COMPONENT,
              )) !== undefined,
          )
        : this.kvBackend(),
      { operations: this.ops },
    );
  }

  /**
   * What this store guarantees. Transactions depend on the deployment, known
   * once the store has connected (`await store.open()`); before that they
   * are reported missing.
   */
  /** The KV namespace API (SPEC §6), in the same database. */
  readonly kv: KvStore;

  get capabilities(): StoreCapabilities {
    const deployment = this.connection.current?.deployment;
    const transactions = deployment?.transactions ?? false;
    const fileEvents = this.options.eventStorage === 'file';
    const reasons: StoreCapabilities['reasons'] = {};
    if (!transactions) {
      reasons.transactions = deployment
        ? `${deployment.reason}; multi-document writes are ordered so that a failure is safe to retry instead`
        : 'not known until the store has connected (await store.connect())';
    }
    if (!fileEvents) reasons.fileEvents = "events are stored in the database (eventStorage: 'database')";
    return {
      crossInstanceLocks: true,
      crossProcessLocks: true,
      transactions,
      // A write resolves once the server acknowledged it; how many members
      // must have it on disk is the connection string's write concern.
      durable: true,
      fileEvents,
      reasons,
    };
  }

  /**
   * Connects, creates or upgrades the collections and detects the deployment.
   * Optional: every operation connects on first use. Rejects with
   * `ConnectionError` when the server cannot be reached (the next call tries
   * again), `ConfigError` when the driver is not installed.
   */
  open(): Promise<this> {
    return this.ops.run('open', null, async () => {
      await this.connection.open();
      return this;
    });
  }

  private opened(): Promise<OpenMongo> {
    return this.connection.open();
  }

  /**
   * A KV backend on this store's connection, database and collection prefix,
   * for `createKvStore` (its collections are `<prefix>kv_*`).
   */
  kvBackend(options: Omit<MongoKvOptions, 'collectionPrefix'> = {}): MongoKvBackend {
    return new MongoKvBackend(() => this.connection.open(), {
      readOnly: this.readOnly,
      leaseMs: this.options.lockLeaseMs,
      lockWaitTimeoutMs: this.options.lockWaitTimeoutMs,
      ...options,
      collectionPrefix: this.options.collectionPrefix,
    });
  }

  /**
   * Encodes a value and refuses it (before anything is written) when the
   * document holding it would not fit in MongoDB; `document` builds that
   * document from the text.
   */
  private encode(
    value: unknown,
    mode: EncodeMode,
    operation: string,
    agentId: string,
    what: string,
    document: (json: string) => object = (json) => ({ _id: agentId, json }),
  ): string {
    const json = this.codec.value(value, mode, operation, agentId, what);
    assertFitsInDocument(json, what, { backend: BACKEND, operation, agentId }, () => document(json));
    return json;
  }

  private encodeList<T>(
    list: T[],
    operation: string,
    agentId: string,
    what: string,
    document: (json: string, index: number, item: T) => object,
  ): string[] {
    const items = this.codec.list(list, operation, agentId, what);
    for (const [i, json] of items.entries()) {
      assertFitsInDocument(json, `${what}[${i}]`, { backend: BACKEND, operation, agentId }, () =>
        document(json, i, list[i] as T),
      );
    }
    return items;
  }

  private encodeTimeline(timeline: Timeline, agentId: string): string {
    const json = this.codec.timeline(timeline, 'appendEvent', agentId);
    assertFitsInDocument(json, 'timeline', { backend: BACKEND, operation: 'appendEvent', agentId }, () =>
      toEventDocument(agentId, 0, json, timeline),
    );
    return json;
  }

  private assertObject(value: unknown, what: string, operation: string, agentId: string): void {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ValidationError(`${what} must be an object`, { backend: BACKEND, operation, agentId });
    }
  }

  /** Makes sure the agent has its registry document (what `exists` and `list` read), ending any tombstone. */
  private async register(open: OpenMongo, session: MongoSession | undefined, agentId: string): Promise<void> {
    await open.collections.agents.updateOne(
      { _id: agentId },
      registration(),
      withSession(session, { upsert: true }),
    );
  }

  /**
   * Hybrid mode: records (and registers) that the agent has an event file,
   * for checkConsistency; false when the agent was deleted meanwhile (a live
   * tombstone), and the log then removes the file.
   */
  private async markEventFile(agentId: string): Promise<boolean> {
    const open = await this.opened();
    return (
      (await registerForEvents(open.collections.agents, agentId, { $set: { eventFiles: true } })) !==
      undefined
    );
  }

  /** Hybrid mode: a deleted agent's late events never create its event file again. */
  private async admitEventFile(agentId: string): Promise<boolean> {
    const open = await this.opened();
    const registry = await open.collections.agents.findOne(
      { _id: agentId },
      { projection: { deletedAt: 1 } },
    );
    return !isLiveTombstone(registry);
  }

  /** Reserves the agent's next counter value (registering it), for positions of appended documents. */
  private async reservePosition(
    open: OpenMongo,
    session: MongoSession | undefined,
    agentId: string,
  ): Promise<number> {
    const agent = await open.collections.agents.findOneAndUpdate(
      { _id: agentId },
      { $inc: { seq: 1 }, ...registration() },
      withSession(session, { upsert: true, returnDocument: 'after', projection: { seq: 1 } }),
    );
    if (!agent) throw new KodeStoreError('the server returned no agent document for the position counter');
    return counterValue(agent.seq);
  }

  private async loadJsonList<T>(
    role: AgentCollectionRole,
    agentId: string,
    order: string,
    operation: string,
  ) {
    const open = await this.opened();
    const docs = await open.collections[role]
      .find({ agentId }, { projection: { json: 1 } })
      .sort({ [order]: 1 })
      .toArray();
    return docs.map((doc) => readJson<T>(doc, { backend: BACKEND, operation, agentId }));
  }

  // ---- runtime state ---------------------------------------------------

  async saveMessages(agentId: string, messages: Message[]): Promise<void> {
    return this.ops.runForAgent('saveMessages', 'save', agentId, () => {
      const texts = this.encodeList(messages, 'saveMessages', agentId, 'messages', (json, i, message) =>
        toMessageDocument(agentId, i, json, message, 0),
      );
      return this.writes.run(agentId, async () =>
        this.messageLists.save(await this.opened(), agentId, texts, messages),
      );
    });
  }

  async loadMessages(agentId: string): Promise<Message[]> {
    return this.ops.runForAgent('loadMessages', 'load', agentId, () =>
      this.loadJsonList<Message>('messages', agentId, 'index', 'loadMessages'),
    );
  }

  async saveToolCallRecords(agentId: string, records: ToolCallRecord[]): Promise<void> {
    return this.ops.runForAgent('saveToolCallRecords', 'save', agentId, () => {
      const texts = this.encodeList(records, 'saveToolCallRecords', agentId, 'records', (json, i, record) =>
        toToolCallDocument(agentId, i, json, record),
      );
      return this.writes.run(agentId, async () =>
        this.toolCallLists.save(await this.opened(), agentId, texts, records),
      );
    });
  }

  async loadToolCallRecords(agentId: string): Promise<ToolCallRecord[]> {
    return this.ops.runForAgent('loadToolCallRecords', 'load', agentId, () =>
      this.loadJsonList<ToolCallRecord>('tool_calls', agentId, 'index', 'loadToolCallRecords'),
    );
  }

  async saveTodos(agentId: string, snapshot: TodoSnapshot): Promise<void> {
    return this.ops.runForAgent('saveTodos', 'save', agentId, () => {
      const json = this.encode(snapshot, 'strict', 'saveTodos', agentId, 'snapshot');
      return this.writes.run(agentId, async () => {
        const open = await this.opened();
        await runAtomically(open, async (session) => {
          await this.register(open, session, agentId);
          await open.collections.todos.replaceOne(
            { _id: agentId },
            { _id: agentId, json },
            withSession(session, { upsert: true }),
          );
        });
      });
    });
  }

  async loadTodos(agentId: string): Promise<TodoSnapshot | undefined> {
    return this.ops.runForAgent('loadTodos', 'load', agentId, async () => {
      const doc = await (await this.opened()).collections.todos.findOne({ _id: agentId });
      return doc
        ? readJson<TodoSnapshot>(doc, { backend: BACKEND, operation: 'loadTodos', agentId })
        : undefined;
    });
  }

  // ---- events ----------------------------------------------------------

  async appendEvent(agentId: string, timeline: Timeline): Promise<void> {
    // The body runs synchronously up to the enqueue (StoreOperations.run calls
    // it before its first await), so un-awaited appends keep their call order.
    return this.ops.runForAgent('appendEvent', 'save', agentId, () => {
      this.assertObject(timeline, 'timeline', 'appendEvent', agentId);
      const json = this.encodeTimeline(timeline, agentId);
      return this.events.append(agentId, json, timeline);
    });
  }

  readEvents(agentId: string, opts: ReadEventsOptions = {}): AsyncIterable<Timeline> {
    const store = this;
    return {
      async *[Symbol.asyncIterator]() {
        const filter = await store.ops.runForAgent('readEvents', 'load', agentId, () =>
          eventFilter(opts, agentId),
        );
        const entries = store.events.read(agentId, filter)[Symbol.asyncIterator]();
        try {
          for (;;) {
            let step: IteratorResult<Timeline>;
            try {
              store.ops.assertOpen('readEvents');
              step = await entries.next();
            } catch (error) {
              throw store.ops.wrap(error, { operation: 'readEvents', agentId });
            }
            if (step.done) return;
            yield step.value;
          }
        } finally {
          await entries.return?.();
        }
      },
    };
  }

  // ---- history & compression -------------------------------------------

  private appendPositioned(role: PositionedRole, agentId: string, json: string): Promise<void> {
    return this.writes.run(agentId, async () => {
      const open = await this.opened();
      await runAtomically(open, async (session) => {
        const position = await this.reservePosition(open, session, agentId);
        await open.collections[role].insertOne(
          toPositionedDocument(agentId, position, json) as unknown as MongoDocument,
          withSession(session),
        );
      });
    });
  }

  async saveHistoryWindow(agentId: string, window: HistoryWindow): Promise<void> {
    return this.ops.runForAgent('saveHistoryWindow', 'save', agentId, () =>
      this.appendPositioned(
        'history_windows',
        agentId,
        this.encode(window, 'strict', 'saveHistoryWindow', agentId, 'window', positioned(agentId)),
      ),
    );
  }

  async loadHistoryWindows(agentId: string): Promise<HistoryWindow[]> {
    return this.ops.runForAgent('loadHistoryWindows', 'load', agentId, () =>
      this.loadJsonList<HistoryWindow>('history_windows', agentId, 'position', 'loadHistoryWindows'),
    );
  }

  async saveCompressionRecord(agentId: string, record: CompressionRecord): Promise<void> {
    return this.ops.runForAgent('saveCompressionRecord', 'save', agentId, () =>
      this.appendPositioned(
        'compression_records',
        agentId,
        this.encode(record, 'strict', 'saveCompressionRecord', agentId, 'record', positioned(agentId)),
      ),
    );
  }

  async loadCompressionRecords(agentId: string): Promise<CompressionRecord[]> {
    return this.ops.runForAgent('loadCompressionRecords', 'load', agentId, () =>
      this.loadJsonList<CompressionRecord>(
        'compression_records',
        agentId,
        'position',
        'loadCompressionRecords',
      ),
    );
  }

  async saveRecoveredFile(agentId: string, file: RecoveredFile): Promise<void> {
    return this.ops.runForAgent('saveRecoveredFile', 'save', agentId, () =>
      this.appendPositioned(
        'recovered_files',
        agentId,
        this.encode(file, 'strict', 'saveRecoveredFile', agentId, 'file', positioned(agentId)),
      ),
    );
  }

  async loadRecoveredFiles(agentId: string): Promise<RecoveredFile[]> {
    return this.ops.runForAgent('loadRecoveredFiles', 'load', agentId, () =>
      this.loadJsonList<RecoveredFile>('recovered_files', agentId, 'position', 'loadRecoveredFiles'),
    );
  }

  // ---- media cache -----------------------------------------------------

  async saveMediaCache(agentId: string, records: MediaCacheRecord[]): Promise<void> {
    return this.ops.runForAgent('saveMediaCache', 'save', agentId, () => {
      const texts = this.encodeList(records, 'saveMediaCache', agentId, 'records', (json, i) =>
        toMediaCacheDocument(agentId, i, json),
      );
      return this.writes.run(agentId, async () => {
        const open = await this.opened();
        await runAtomically(open, async (session) => {
          await this.register(open, session, agentId);
          const operations: MongoDocument[] = [{ deleteMany: { filter: { agentId } } }];
          texts.forEach((json, index) => {
            operations.push({ insertOne: { document: toMediaCacheDocument(agentId, index, json) } });
          });
          await open.collections.media_cache.bulkWrite(operations, withSession(session, { ordered: true }));
        });
      });
    });
  }

  async loadMediaCache(agentId: string): Promise<MediaCacheRecord[]> {
    return this.ops.runForAgent('loadMediaCache', 'load', agentId, () =>
      this.loadJsonList<MediaCacheRecord>('media_cache', agentId, 'index', 'loadMediaCache'),
    );
  }

  // ---- snapshots -------------------------------------------------------

  async saveSnapshot(agentId: string, snapshot: Snapshot): Promise<void> {
    return this.ops.runForAgent('saveSnapshot', 'save', agentId, () => {
      this.assertObject(snapshot, 'snapshot', 'saveSnapshot', agentId);
      if (typeof snapshot.id !== 'string') {
        throw new ValidationError('snapshot.id must be a string', {
          backend: BACKEND,
          operation: 'saveSnapshot',
          agentId,
        });
      }
      const json = this.encode(snapshot, 'strict', 'saveSnapshot', agentId, 'snapshot', (text) => ({
        ...toSnapshotDocument(agentId, text, snapshot),
        position: 0,
      }));
      const { snapshotId } = toSnapshotDocument(agentId, json, snapshot);
      return this.writes.run(agentId, async () => {
        const open = await this.opened();
        await runAtomically(open, async (session) => {
          // A re-saved snapshot keeps its first position: listSnapshots is oldest first.
          const position = await this.reservePosition(open, session, agentId);
          await open.collections.snapshots.updateOne(
            { agentId, snapshotId },
            { $set: { json }, $setOnInsert: { position } },
            withSession(session, { upsert: true }),
          );
        });
      });
    });
  }

  async loadSnapshot(agentId: string, snapshotId: string): Promise<Snapshot | undefined> {
    return this.ops.runForAgent('loadSnapshot', 'load', agentId, async () => {
      // Checked before it reaches a filter: an object here would be read as query operators.
      if (typeof snapshotId !== 'string') {
        throw new ValidationError('snapshotId must be a string', {
          backend: BACKEND,
          operation: 'loadSnapshot',
          agentId,
        });
      }
      const doc = await (await this.opened()).collections.snapshots.findOne(
        { agentId, snapshotId },
        { projection: { json: 1 } },
      );
      return doc
        ? readJson<Snapshot>(doc, { backend: BACKEND, operation: 'loadSnapshot', agentId })
        : undefined;
    });
  }

  async listSnapshots(agentId: string): Promise<Snapshot[]> {
    return this.ops.runForAgent('listSnapshots', 'load', agentId, () =>
      this.loadJsonList<Snapshot>('snapshots', agentId, 'position', 'listSnapshots'),
    );
  }

  // ---- metadata --------------------------------------------------------

  async saveInfo(agentId: string, info: AgentInfo): Promise<void> {
    return this.ops.runForAgent('saveInfo', 'save', agentId, () => {
      this.assertObject(info, 'info', 'saveInfo', agentId);
      const json = this.encode(info, 'strict', 'saveInfo', agentId, 'info', (text) =>
        toInfoDocument(agentId, text, info, 0),
      );
      return this.writes.run(agentId, async () => {
        const open = await this.opened();
        await runAtomically(open, async (session) => {
          await this.register(open, session, agentId);
          await open.collections.infos.replaceOne(
            { _id: agentId },
            toInfoDocument(agentId, json, info, Date.now()) as unknown as MongoDocument,
            withSession(session, { upsert: true }),
          );
        });
      });
    });
  }

  async loadInfo(agentId: string): Promise<AgentInfo | undefined> {
    return this.ops.runForAgent('loadInfo', 'load', agentId, async () => {
      const doc = await (await this.opened()).collections.infos.findOne(
        { _id: agentId },
        { projection: { json: 1 } },
      );
      return doc ? readJson<AgentInfo>(doc, { backend: BACKEND, operation: 'loadInfo', agentId }) : undefined;
    });
  }

  // ---- lifecycle -------------------------------------------------------

  /** A registry document that is no tombstone, or (hybrid mode) an event file of an id never deleted. */
  private async agentExists(open: OpenMongo, agentId: string): Promise<boolean> {
    const registry = await open.collections.agents.findOne(
      { _id: agentId },
      { projection: { deletedAt: 1 } },
    );
    if (registry) return registry.deletedAt === undefined || registry.deletedAt === null;
    return this.events.hasOutsideDatabase(agentId);
  }

  async exists(agentId: string): Promise<boolean> {
    return this.ops.runForAgent('exists', 'load', agentId, async () =>
      this.agentExists(await this.opened(), agentId),
    );
  }

  async delete(agentId: string): Promise<void> {
    return this.ops.runForAgent('delete', 'delete', agentId, () =>
      this.writes.run(agentId, async () => {
        await this.events.idle();
        const open = await this.opened();
        // The tombstone first: from here on the agent does not exist, its
        // late events are discarded, and an append that raced this delete
        // removes what it wrote (mongo-registry.ts). Expired tombstones go.
        const now = Date.now();
        await open.collections.agents.updateOne({ _id: agentId }, tombstone(now), { upsert: true });
        await open.collections.agents.deleteMany(expiredTombstones(now));
        // An event stream has no size bound, so it is not deleted inside the
        // transaction (which has a time and size limit); a failure part-way is
        // safe to retry with another delete.
        if (this.events.kind === 'database') await this.events.delete(agentId);
        await this.deleteAgentDocuments(open, agentId);
        if (this.events.kind === 'file') await this.events.delete(agentId);
        this.messageLists.forget(agentId);
        this.toolCallLists.forget(agentId);
      }),
    );
  }

  /** Every document of the agent except its events and its registry document (a tombstone by now, or a fork's). */
  private deleteAgentDocuments(open: OpenMongo, agentId: string): Promise<void> {
    return runAtomically(open, async (session) => {
      for (const role of PER_ITEM_COLLECTIONS) {
        await open.collections[role].deleteMany({ agentId }, withSession(session));
      }
      await open.collections.infos.deleteOne({ _id: agentId }, withSession(session));
      await open.collections.todos.deleteOne({ _id: agentId }, withSession(session));
    });
  }

  async list(prefix?: string): Promise<string[]> {
    return this.ops.run('list', 'load', async () => {
      const filter = agentIdPrefixFilter(prefix);
      if (filter === null) return [];
      const open = await this.opened();
      // `_id` strings sort by UTF-8 bytes (simple binary comparison), which is code point order.
      const docs = await open.collections.agents
        .find({ ...filter, ...LIVE_AGENT }, { projection: { _id: 1 } })
        .sort({ _id: 1 })
        .toArray();
      const ids = docs.map((doc) => String(doc._id));
      if (this.events.kind === 'database') return ids;
      const fromFiles = (await this.events.listOutsideDatabase()).filter(
        (id) => prefix === undefined || id.startsWith(prefix),
      );
      // A file left behind by a deleted agent does not make it exist.
      const deleted = new Set(
        (
          await open.collections.agents
            .find({ _id: { $in: fromFiles }, deletedAt: { $ne: null } }, { projection: { _id: 1 } })
            .toArray()
        ).map((doc) => String(doc._id)),
      );
      const listed = fromFiles.filter((id) => !deleted.has(id));
      return [...new Set([...ids, ...listed])].sort(compareCodePoints);
    });
  }

  // ---- queries ---------------------------------------------------------

  async querySessions(filters: SessionFilters): Promise<SessionInfo[]> {
    return this.ops.run('querySessions', 'query', async () => {
      const plan = sessionQueryPlan(normalizeSessionFilters(filters));
      if (!plan) return [];
      const docs = await (await this.opened()).collections.infos
        .find(plan.filter, { projection: { json: 1 } })
        .sort(plan.sort)
        .skip(plan.skip)
        .limit(plan.limit)
        .toArray();
      return docs.map((doc) => {
        const agentId = String(doc._id);
        return toSessionInfo(
          agentId,
          readJson<AgentInfo>(doc, { backend: BACKEND, operation: 'querySessions', agentId }),
        );
      });
    });
  }

  async queryMessages(filters: MessageFilters): Promise<Message[]> {
    return this.ops.run('queryMessages', 'query', async () => {
      const plan = messageQueryPlan(normalizeMessageFilters(filters));
      if (!plan) return [];
      const docs = await (await this.opened()).collections.messages
        .find(plan.filter, { projection: { json: 1, agentId: 1 } })
        .sort(plan.sort)
        .skip(plan.skip)
        .limit(plan.limit)
        .toArray();
      return docs.map((doc) =>
        readJson<Message>(doc, {
          backend: BACKEND,
          operation: 'queryMessages',
          agentId: String(doc.agentId),
        }),
      );
    });
  }

  async queryToolCalls(filters: ToolCallFilters): Promise<ToolCallRecord[]> {
    return this.ops.run('queryToolCalls', 'query', async () => {
      const plan = toolCallQueryPlan(normalizeToolCallFilters(filters));
      if (!plan) return [];
      const docs = await (await this.opened()).collections.tool_calls
        .find(plan.filter, { projection: { json: 1, agentId: 1 } })
        .sort(plan.sort)
        .skip(plan.skip)
        .limit(plan.limit)
        .toArray();
      return docs.map((doc) =>
        readJson<ToolCallRecord>(doc, {
          backend: BACKEND,
          operation: 'queryToolCalls',
          agentId: String(doc.agentId),
        }),
      );
    });
  }

  async aggregateStats(agentId: string): Promise<AgentStats> {
    return this.ops.runForAgent('aggregateStats', 'query', agentId, async () => {
      const { collections } = await this.opened();
      const [totalMessages, totalToolCalls, totalSnapshots, groups] = await Promise.all([
        collections.messages.countDocuments({ agentId }),
        collections.tool_calls.countDocuments({ agentId }),
        collections.snapshots.countDocuments({ agentId }),
        collections.tool_calls.aggregate(toolCallStatsPipeline(agentId)).toArray(),
      ]);
      return {
        totalMessages,
        totalToolCalls,
        totalSnapshots,
        // One agent is one session, as in the SDK's own stores.
        avgMessagesPerSession: totalMessages,
        ...toolCallStatsFromGroups(groups),
      };
    });
  }

  // ---- extended --------------------------------------------------------

  async healthCheck(): Promise<StoreHealthStatus> {
    return this.ops.run('healthCheck', null, async () => {
      const started = performance.now();
      let database: StoreHealthStatus['database'];
      try {
        const open = await this.opened();
        await open.db.command({ ping: 1 });
        database = { connected: true, latencyMs: performance.now() - started };
      } catch (error) {
        database = {
          connected: false,
          error: redactSecrets(error instanceof Error ? error.message : String(error)),
        };
      }
      const fileSystem = await this.fileSystemHealth();
      return {
        healthy: database.connected && fileSystem.writable,
        database,
        fileSystem,
        checkedAt: Date.now(),
      };
    });
  }

  /**
   * Whether the event files' directory can be written, without creating it
   * (it is created on the first append): the directory itself when it
   * exists, else its nearest existing ancestor. Nothing to check when events
   * live in the database.
   */
  private async fileSystemHealth(): Promise<StoreHealthStatus['fileSystem']> {
    if (this.options.eventStorage !== 'file') return { writable: true };
    return checkDirectoryWritable(this.options.fileStoreBaseDir as string, { probe: !this.readOnly });
  }

  async checkConsistency(agentId: string): Promise<ConsistencyCheckResult> {
    return this.ops.runForAgent('checkConsistency', 'query', agentId, async () => {
      const open = await this.opened();
      const issues: string[] = [];
      if (!(await this.agentExists(open, agentId))) {
        issues.push(`agent ${JSON.stringify(agentId)} does not exist`);
        return { consistent: false, issues, checkedAt: Date.now() };
      }
      const ctx = { backend: BACKEND, operation: 'checkConsistency', agentId };
      if (this.events.kind === 'file') {
        await this.events.idle();
        const registry = await open.collections.agents.findOne(
          { _id: agentId },
          { projection: { eventFiles: 1 } },
        );
        if (registry?.eventFiles === true && !(await this.events.hasOutsideDatabase(agentId))) {
          issues.push('events were written to an event file, but the file is missing');
        }
      }
      let info: Partial<AgentInfo> | undefined;
      const infoDoc = await open.collections.infos.findOne({ _id: agentId });
      try {
        info = infoDoc ? readJson<Partial<AgentInfo>>(infoDoc, ctx) : undefined;
      } catch (error) {
        issues.push(`info is unreadable: ${(error as Error).message}`);
      }
      const messageCount = await this.checkList(open, 'messages', agentId, issues, (value, i) => {
        if (typeof (value as Message | null)?.role !== 'string') issues.push(`message ${i} has no role`);
      });
      if (typeof info?.messageCount === 'number' && info.messageCount !== messageCount) {
        issues.push(`info.messageCount is ${info.messageCount} but ${messageCount} messages are stored`);
      }
      await this.checkList(open, 'tool_calls', agentId, issues, (value, i) => {
        const record = value as Partial<ToolCallRecord> | null;
        if (typeof record?.id !== 'string' || typeof record.name !== 'string') {
          issues.push(`tool call record ${i} lacks its id or name`);
        }
      });
      const todos = await open.collections.todos.findOne({ _id: agentId });
      if (todos) {
        try {
          readJson(todos, ctx);
        } catch (error) {
          issues.push(`todos are unreadable: ${(error as Error).message}`);
        }
      }
      issues.push(...(await this.events.check(agentId)));
      return { consistent: issues.length === 0, issues, checkedAt: Date.now() };
    });
  }

  /** Reads a stored list in order, reporting gaps (an interrupted save) and unreadable items; returns its length. */
  private async checkList(
    open: OpenMongo,
    role: 'messages' | 'tool_calls',
    agentId: string,
    issues: string[],
    checkItem: (value: unknown, index: number) => void,
  ): Promise<number> {
    const what = role === 'messages' ? 'message' : 'tool call record';
    let count = 0;
    const cursor = open.collections[role]
      .find({ agentId }, { projection: { index: 1, json: 1 } })
      .sort({ index: 1 })
      .batchSize(500);
    for await (const doc of cursor) {
      if (doc.index !== count) {
        issues.push(`${role} has a gap: position ${count} is missing (found ${String(doc.index)})`);
        count = Number(doc.index);
      }
      try {
        checkItem(decodeJson(String(doc.json), { backend: BACKEND, agentId }), count);
      } catch (error) {
        issues.push(`${what} ${count} is unreadable: ${(error as Error).message}`);
      }
      count++;
    }
    return count;
  }

  async getMetrics(): Promise<StoreMetrics> {
    return this.ops.run('getMetrics', null, async () => {
      const open = await this.opened();
      const { collections } = open;
      // Collection metadata counts: exact after normal operation, and they
      // do not scan millions of documents the way countDocuments({}) would.
      // Agents are counted without their tombstones (one small document each).
      const [totalAgents, totalMessages, totalToolCalls, totalEvents, dbStats] = await Promise.all([
        collections.agents.countDocuments(LIVE_AGENT),
        collections.messages.estimatedDocumentCount(),
        collections.tool_calls.estimatedDocumentCount(),
        this.events.count(),
        open.db.command({ dbStats: 1 }).catch(() => undefined),
      ]);
      const storage: StoreMetrics['storage'] = { totalAgents, totalMessages, totalToolCalls };
      if (totalEvents !== undefined) storage.totalEvents = totalEvents;
      const size = Number(dbStats?.storageSize ?? Number.NaN) + Number(dbStats?.indexSize ?? 0);
      if (Number.isFinite(size)) storage.dbSizeBytes = size;
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

  async batchFork(agentId: string, count: number): Promise<string[]> {
    return this.ops.runForAgent('batchFork', 'save', agentId, async () => {
      assertForkCount(count, { backend: BACKEND, operation: 'batchFork', agentId });
      // Queued behind the source's pending writes, so the forks copy what was saved before the call.
      return this.writes.run(agentId, async () => {
        const open = await this.opened();
        if (!(await this.agentExists(open, agentId))) {
          throw new NotFoundError('no agent to fork', { backend: BACKEND, operation: 'batchFork', agentId });
        }
        const ids = Array.from({ length: count }, () => newForkId(agentId));
        if (ids.length === 0) return ids;
        if (open.deployment.transactions) {
          await runAtomically(open, async (session) => {
            const source = await this.readForkSource(open, session, agentId, ids);
            for (const forkId of ids) await this.writeFork(open, session, source, forkId);
          });
        } else {
          await this.forkWithoutTransaction(open, agentId, ids);
        }
        return ids;
      });
    });
  }

  /**
   * Standalone server: each fork is written registry-last (so it does not
   * exist for `exists`/`list` until complete); if anything fails, every fork
   * of this call is deleted again before the error is reported, and if even
   * that fails the error names the ids to delete.
   */
  private async forkWithoutTransaction(open: OpenMongo, agentId: string, ids: string[]): Promise<void> {
    const source = await this.readForkSource(open, undefined, agentId, ids);
    try {
      for (const forkId of ids) await this.writeFork(open, undefined, source, forkId);
    } catch (error) {
      const cleanup = await Promise.allSettled(ids.map((id) => this.deleteAgentDocuments(open, id)));
      if (cleanup.every((result) => result.status === 'fulfilled')) throw error;
      throw new KodeStoreError(
        `fork failed and its partial copies could not be removed; delete these agents: ${JSON.stringify(ids)}`,
        { backend: BACKEND, operation: 'batchFork', agentId, cause: error },
      );
    }
  }

  /** What every fork copies, with each fork's info already encoded: a fork that cannot be stored fails before any write. */
  private async readForkSource(
    open: OpenMongo,
    session: MongoSession | undefined,
    agentId: string,
    forkIds: readonly string[],
  ) {
    const { collections } = open;
    const options = withSession(session);
    const byIndex = { sort: { index: 1 } };
    const registry = await collections.agents.findOne({ _id: agentId }, options);
    const info = await collections.infos.findOne({ _id: agentId }, options);
    const todos = await collections.todos.findOne({ _id: agentId }, options);
    const messages = await collections.messages.find({ agentId }, withSession(session, byIndex)).toArray();
    const toolCalls = await collections.tool_calls.find({ agentId }, withSession(session, byIndex)).toArray();
    const snapshots = await collections.snapshots
      .find({ agentId }, withSession(session, { sort: { position: 1 } }))
      .toArray();
    const infos = new Map<string, MongoDocument>();
    if (info) {
      const ctx = { backend: BACKEND, operation: 'batchFork', agentId };
      const stored = readJson<Partial<AgentInfo>>(info, ctx);
      const lineage = Array.isArray(stored.lineage) ? stored.lineage : [];
      for (const forkId of forkIds) {
        const forkInfo = { ...stored, agentId: forkId, lineage: [...lineage, agentId] };
        const toDocument = (json: string) => toInfoDocument(forkId, json, forkInfo, Date.now());
        const json = this.encode(forkInfo, 'strict', 'batchFork', agentId, 'info', toDocument);
        infos.set(forkId, toDocument(json) as unknown as MongoDocument);
      }
    }
    return { agentId, registry, todos, messages, toolCalls, snapshots, infos };
  }

  private async writeFork(
    open: OpenMongo,
    session: MongoSession | undefined,
    source: Awaited<ReturnType<MongoStore['readForkSource']>>,
    forkId: string,
  ): Promise<void> {
    const { collections } = open;
    const options = withSession(session, { ordered: true });
    const copy = (docs: MongoDocument[]) => docs.map(({ _id, ...doc }) => ({ ...doc, agentId: forkId }));
    // Messages keep their first-saved time and positions; tool-call ids stay
    // unchanged so the copied tool_use blocks still match their records.
    if (source.messages.length > 0) await collections.messages.insertMany(copy(source.messages), options);
    if (source.toolCalls.length > 0) await collections.tool_calls.insertMany(copy(source.toolCalls), options);
    if (source.snapshots.length > 0) await collections.snapshots.insertMany(copy(source.snapshots), options);
    if (source.todos) {
      await collections.todos.insertOne({ _id: forkId, json: source.todos.json }, withSession(session));
    }
    const info = source.infos.get(forkId);
    if (info) await collections.infos.insertOne(info, withSession(session));
    // The counter continues from the source's, so the copied snapshots keep
    // sorting before the fork's own later ones.
    await collections.agents.insertOne(
      { _id: forkId, registeredAt: Date.now(), seq: counterValue(source.registry?.seq) },
      withSession(session),
    );
  }

  /**
   * Waits for pending appends, releases this store's locks, closes the
   * event files and the client the store made (an injected client stays
   * open). Idempotent; later calls reject with `StoreClosedError`.
   */
  close(): Promise<void> {
    if (!this.ops.markClosed()) return this.closing ?? Promise.resolve();
    this.closing = (async () => {
      await this.writes.idle();
      await this.events.idle().catch(() => undefined);
      await this.locks.releaseAll();
      await this.events.close().catch(() => undefined);
      await this.connection.close();
    })();
    return this.closing;
  }
}

/** The document of an appended history entry, for measuring before its position is known. */
function positioned(agentId: string): (json: string) => object {
  return (json) => toPositionedDocument(agentId, 0, json);
}

/** Validates `readEvents` options; a bad `since` or `channel` would otherwise silently match nothing. */
function eventFilter(opts: ReadEventsOptions, agentId: string): EventFilter {
  const ctx = { backend: BACKEND, operation: 'readEvents', agentId };
  if (typeof opts !== 'object' || opts === null) throw new ValidationError('options must be an object', ctx);
  const filter: EventFilter = {};
  if (opts.since !== undefined && opts.since !== null) {
    if (typeof opts.since.seq !== 'number' || !Number.isFinite(opts.since.seq)) {
      throw new ValidationError('since.seq must be a number', ctx);
    }
    filter.since = opts.since;
  }
  if (opts.channel !== undefined && opts.channel !== null) {
    if (typeof opts.channel !== 'string') throw new ValidationError('channel must be a string', ctx);
    filter.channel = opts.channel;
  }
  return filter;
}
