import type {
  AgentActivity,
  AgentBackend,
  AgentDocument,
  AgentInspection,
  AgentList,
  AgentRecordKind,
  AgentScanQuery,
  EncodedList,
  EventFields,
  EventPruneRule,
  ForkInfoMaker,
  MessageFields,
  PrunedRows,
  RemovedAgent,
  RetentionBackend,
  StoredRow,
  ToolCallRowFields,
} from '../../src/agent/agent-backend.js';
import { AgentWriteQueue } from '../../src/agent/agent-write-queue.js';
import type { EventStorage } from '../../src/agent/event-storage.js';
import type { Page } from '../../src/agent/paged-iterable.js';
import type {
  NormalizedMessageQuery,
  NormalizedSessionQuery,
  NormalizedToolCallQuery,
} from '../../src/agent/query-filters.js';
import type { SessionFields } from '../../src/agent/record-fields.js';
import type { CompactResult } from '../../src/agent/retention.js';
import { describeCapabilities } from '../../src/agent/store-capabilities.js';
import { type AnyKodeStoreError, type ErrorContext, KodeStoreError } from '../../src/errors.js';
import { checkDirectoryWritable } from '../../src/hybrid/directory-health.js';
import { eventModeMismatch } from '../../src/hybrid/event-modes.js';
import { FileEventStorage } from '../../src/hybrid/file-event-storage.js';
import type {
  AgentStats,
  LockReleaseFn,
  ReadEventsOptions,
  StoreCapabilities,
  StoreHealthStatus,
  StoreMetrics,
  Timeline,
} from '../../src/types.js';
import type { MongoDocument, MongoSession, ResolvedMongoStoreOptions } from './mongo-config.js';
import { type MongoConnection, type OpenMongo, runAtomically, withSession } from './mongo-connection.js';
import { DatabaseEventStorage } from './mongo-database-events.js';
import {
  assertFitsInDocument,
  jsonArrayItems,
  jsonText,
  toEventDocument,
  toInfoDocument,
  toMediaCacheDocument,
  toMessageDocument,
  toPositionedDocument,
  toSnapshotDocument,
  toToolCallDocument,
} from './mongo-documents.js';
import { classifyMongoError, wrapMongoError } from './mongo-errors.js';
import { writeForks } from './mongo-fork.js';
import { inspectStoredAgent, pingStore, storageTotals } from './mongo-inspect.js';
import { MongoListSaver } from './mongo-list-saver.js';
import { MongoLeaseLocks } from './mongo-lock.js';
import {
  type FindPlan,
  messageQueryPlan,
  sessionQueryPlan,
  toolCallQueryPlan,
  toolCallStatsFromGroups,
  toolCallStatsPipeline,
} from './mongo-queries.js';
import {
  counterValue,
  deleteAgentDocuments,
  listAgents,
  mongoFileEventRegistry,
  registration,
  removeTombstonedAgent,
  tombstone,
} from './mongo-registry.js';
import { MongoRetention } from './mongo-retention.js';
import type { AgentCollectionRole } from './mongo-schema.js';

const BACKEND = 'mongo';

/** Appended lists read back by `position`. */
type PositionedRole = 'history_windows' | 'compression_records' | 'recovered_files';

/** Collection of each appended record kind, and the operation and argument that name a value too large. */
const RECORDS: Readonly<Record<AgentRecordKind, { role: PositionedRole; operation: string; what: string }>> =
  {
    history_window: { role: 'history_windows', operation: 'saveHistoryWindow', what: 'window' },
    compression_record: { role: 'compression_records', operation: 'saveCompressionRecord', what: 'record' },
    recovered_file: { role: 'recovered_files', operation: 'saveRecoveredFile', what: 'file' },
  };

/** Collection of each list. */
const LISTS = { messages: 'messages', toolCalls: 'tool_calls' } as const;

/** Where the size check of a write names it. */
function where(operation: string, agentId: string): ErrorContext {
  return { backend: BACKEND, operation, agentId };
}

/**
 * The agent store's data in MongoDB, with the official `mongodb` driver.
 *
 * Every value is stored as the JSON text `AgentStore` encoded, beside the
 * fields queries use (see `mongo-documents.ts`), one document per message,
 * tool call, event, snapshot, history entry and media-cache entry; a value
 * whose document would pass MongoDB's 16 MiB limit is refused before
 * anything is written. Collections and indexes are created on first connect
 * and versioned in `<prefix>schema_version`.
 *
 * On a replica set or sharded cluster every multi-document write runs in a
 * transaction (`capabilities.transactions`). On a standalone server there are
 * none; writes are then ordered so that a failure leaves nothing half-visible
 * that a retry would not repair (see the README's MongoDB section). The
 * writes of one agent run in call order (`AgentWriteQueue`).
 */
export class MongoAgentBackend implements AgentBackend, RetentionBackend {
  readonly name = BACKEND;
  readonly readOnly: boolean;
  private readonly events: EventStorage;
  private readonly locks: MongoLeaseLocks;
  private readonly messageLists = new MongoListSaver<MessageFields>({
    collection: 'messages',
    revisionField: 'messagesRevision',
    firstSavedField: 'createdAt',
    toDocument: (agentId, index, json, fields, savedAt) =>
      toMessageDocument(agentId, index, json, fields, savedAt) as unknown as MongoDocument,
  });
  private readonly toolCallLists = new MongoListSaver<ToolCallRowFields>({
    collection: 'tool_calls',
    revisionField: 'toolCallsRevision',
    toDocument: (agentId, index, json, fields) =>
      toToolCallDocument(agentId, index, json, fields) as unknown as MongoDocument,
  });
  /** Writes of one agent run in call order (see AgentWriteQueue). */
  private readonly writes = new AgentWriteQueue();
  private readonly retention: MongoRetention;

  constructor(
    private readonly options: ResolvedMongoStoreOptions,
    readonly connection: MongoConnection,
  ) {
    this.readOnly = options.readOnly;
    const wrapError = (error: unknown, ctx: Omit<ErrorContext, 'cause'>) =>
      wrapMongoError(error, ctx, this.options);
    // Hybrid mode: the registry records each agent's event file (eventFiles),
    // so that checkConsistency tells a missing file from an agent that never
    // had events; its tombstones keep a deleted agent's late events out.
    this.events =
      options.eventStorage === 'file'
        ? new FileEventStorage(
            mongoFileEventRegistry(() => this.opened(), wrapError),
            BACKEND,
            options.fileStoreBaseDir as string,
            true,
            options.readOnly,
          )
        : new DatabaseEventStorage(() => this.opened(), wrapError);
    this.retention = new MongoRetention({
      opened: () => this.opened(),
      events: this.events,
      writes: this.writes,
      collectionPrefix: options.collectionPrefix,
      forget: (agentId) => {
        this.messageLists.forget(agentId);
        this.toolCallLists.forget(agentId);
      },
    });
    this.locks = new MongoLeaseLocks(
      async () => (await this.opened()).collections.locks,
      options.lockLeaseMs,
      {
        backend: BACKEND,
      },
    );
  }

  /**
   * Transactions depend on the deployment, known once the store has
   * connected (`await store.open()`); before that they are reported missing.
   */
  get capabilities(): StoreCapabilities {
    const deployment = this.connection.current?.deployment;
    const transactions = deployment?.transactions ?? false;
    const fileEvents = this.options.eventStorage === 'file';
    return describeCapabilities({
      crossInstanceLocks: true,
      crossProcessLocks: true,
      transactions:
        transactions ||
        (deployment
          ? `${deployment.reason}; multi-document writes are ordered so that a failure is safe to retry instead`
          : 'not known until the store has connected (await store.open())'),
      // A write resolves once the server acknowledged it; how many members
      // must have it on disk is the connection string's write concern.
      durable: true,
      fileEvents: fileEvents || "events are stored in the database (eventStorage: 'database')",
    });
  }

  /** The driver's errors (mongo-errors.ts): a bound running out, an unreachable server, a lost connection. */
  classifyError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined {
    return classifyMongoError(error, ctx, this.options);
  }

  async open(): Promise<void> {
    await this.connection.open();
  }

  private opened(): Promise<OpenMongo> {
    return this.connection.open();
  }

  /** Runs `body` after the agent's queued writes, with the connection open. */
  private write<T>(agentId: string, body: (open: OpenMongo) => Promise<T>): Promise<T> {
    return this.writes.write(agentId, async () => body(await this.opened()));
  }

  /** Makes sure the agent has its registry document (what `exists` and `list` read), ending any tombstone. */
  private async register(open: OpenMongo, session: MongoSession | undefined, agentId: string): Promise<void> {
    await open.collections.agents.updateOne(
      { _id: agentId },
      registration(),
      withSession(session, { upsert: true }),
    );
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

  /** The stored texts of the agent's documents in `role`, in `order`. */
  private async loadTexts(
    role: AgentCollectionRole,
    agentId: string,
    order: string,
    operation: string,
  ): Promise<string[]> {
    const open = await this.opened();
    const docs = await open.collections[role]
      .find({ agentId }, { projection: { json: 1 } })
      .sort({ [order]: 1 })
      .toArray();
    return docs.map((doc) => jsonText(doc, where(operation, agentId)));
  }

  // ---- lists -------------------------------------------------------------

  async saveMessages(agentId: string, messages: EncodedList<MessageFields>): Promise<void> {
    const ctx = where('saveMessages', agentId);
    for (const [i, json] of messages.texts.entries()) {
      assertFitsInDocument(json, `messages[${i}]`, ctx, () =>
        toMessageDocument(agentId, i, json, messages.fields(i), 0),
      );
    }
    await this.write(agentId, (open) =>
      this.messageLists.save(open, agentId, messages.texts, messages.fields),
    );
  }

  async saveToolCalls(agentId: string, records: EncodedList<ToolCallRowFields>): Promise<void> {
    const ctx = where('saveToolCallRecords', agentId);
    for (const [i, json] of records.texts.entries()) {
      assertFitsInDocument(json, `records[${i}]`, ctx, () =>
        toToolCallDocument(agentId, i, json, records.fields(i)),
      );
    }
    await this.write(agentId, (open) =>
      this.toolCallLists.save(open, agentId, records.texts, records.fields),
    );
  }

  loadList(agentId: string, list: AgentList): Promise<string[]> {
    const operation = list === 'messages' ? 'loadMessages' : 'loadToolCallRecords';
    return this.loadTexts(LISTS[list], agentId, 'index', operation);
  }

  // ---- documents, records, snapshots --------------------------------------

  async saveDocument(agentId: string, document: 'todos' | 'mediaCache', json: string): Promise<void> {
    if (document === 'mediaCache') return this.saveMediaCache(agentId, json);
    assertFitsInDocument(json, 'snapshot', where('saveTodos', agentId), () => ({ _id: agentId, json }));
    await this.write(agentId, (open) =>
      runAtomically(open, async (session) => {
        await this.register(open, session, agentId);
        await open.collections.todos.replaceOne(
          { _id: agentId },
          { _id: agentId, json },
          withSession(session, { upsert: true }),
        );
      }),
    );
  }

  /** The media cache is stored one document per entry, each within the document limit on its own. */
  private async saveMediaCache(agentId: string, json: string): Promise<void> {
    const texts = jsonArrayItems(json);
    const ctx = where('saveMediaCache', agentId);
    for (const [i, text] of texts.entries()) {
      assertFitsInDocument(text, `records[${i}]`, ctx, () => toMediaCacheDocument(agentId, i, text));
    }
    await this.write(agentId, (open) =>
      runAtomically(open, async (session) => {
        await this.register(open, session, agentId);
        const operations: MongoDocument[] = [{ deleteMany: { filter: { agentId } } }];
        texts.forEach((text, index) => {
          operations.push({ insertOne: { document: toMediaCacheDocument(agentId, index, text) } });
        });
        await open.collections.media_cache.bulkWrite(operations, withSession(session, { ordered: true }));
      }),
    );
  }

  async loadDocument(agentId: string, document: AgentDocument): Promise<string | undefined> {
    if (document === 'mediaCache') {
      const texts = await this.loadTexts('media_cache', agentId, 'index', 'loadMediaCache');
      return texts.length === 0 ? undefined : `[${texts.join(',')}]`;
    }
    const open = await this.opened();
    const collection = document === 'info' ? open.collections.infos : open.collections.todos;
    const doc = await collection.findOne({ _id: agentId }, { projection: { json: 1 } });
    const operation = document === 'info' ? 'loadInfo' : 'loadTodos';
    return doc ? jsonText(doc, where(operation, agentId)) : undefined;
  }

  async saveInfo(agentId: string, json: string, fields: SessionFields): Promise<void> {
    assertFitsInDocument(json, 'info', where('saveInfo', agentId), () =>
      toInfoDocument(agentId, json, fields, 0),
    );
    await this.write(agentId, (open) =>
      runAtomically(open, async (session) => {
        await this.register(open, session, agentId);
        await open.collections.infos.replaceOne(
          { _id: agentId },
          toInfoDocument(agentId, json, fields, Date.now()) as unknown as MongoDocument,
          withSession(session, { upsert: true }),
        );
      }),
    );
  }

  async appendRecord(agentId: string, kind: AgentRecordKind, json: string): Promise<void> {
    const { role, operation, what } = RECORDS[kind];
    assertFitsInDocument(json, what, where(operation, agentId), () => toPositionedDocument(agentId, 0, json));
    await this.write(agentId, (open) =>
      runAtomically(open, async (session) => {
        const position = await this.reservePosition(open, session, agentId);
        await open.collections[role].insertOne(
          toPositionedDocument(agentId, position, json) as unknown as MongoDocument,
          withSession(session),
        );
      }),
    );
  }

  loadRecords(agentId: string, kind: AgentRecordKind): Promise<string[]> {
    const { role, operation } = RECORDS[kind];
    return this.loadTexts(role, agentId, 'position', operation.replace(/^save/, 'load'));
  }

  async saveSnapshot(agentId: string, snapshotId: string, json: string): Promise<void> {
    assertFitsInDocument(json, 'snapshot', where('saveSnapshot', agentId), () => ({
      ...toSnapshotDocument(agentId, snapshotId, json),
      position: 0,
    }));
    await this.write(agentId, (open) =>
      runAtomically(open, async (session) => {
        // A re-saved snapshot keeps its first position: listSnapshots is oldest first.
        const position = await this.reservePosition(open, session, agentId);
        await open.collections.snapshots.updateOne(
          { agentId, snapshotId },
          { $set: { json }, $setOnInsert: { position } },
          withSession(session, { upsert: true }),
        );
      }),
    );
  }

  async loadSnapshot(agentId: string, snapshotId: string): Promise<string | undefined> {
    const doc = await (await this.opened()).collections.snapshots.findOne(
      { agentId, snapshotId },
      { projection: { json: 1 } },
    );
    return doc ? jsonText(doc, where('loadSnapshot', agentId)) : undefined;
  }

  listSnapshots(agentId: string): Promise<string[]> {
    return this.loadTexts('snapshots', agentId, 'position', 'listSnapshots');
  }

  // ---- events --------------------------------------------------------------

  appendEvent(agentId: string, json: string, fields: EventFields): Promise<void> {
    // Thrown, not returned: the store's frame turns it into the append's rejection, and nothing is queued.
    assertFitsInDocument(json, 'timeline', where('appendEvent', agentId), () =>
      toEventDocument(agentId, 0, json, fields, new Date(0)),
    );
    // The event storage types what a rejected append's promise rejects with (the frame does not).
    return this.events.append(agentId, json, fields);
  }

  readEventPages(agentId: string, filter: ReadEventsOptions): AsyncIterator<Page<Timeline>> {
    return this.events.readPages(agentId, filter);
  }

  // ---- registry --------------------------------------------------------------

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
    return this.agentExists(await this.opened(), agentId);
  }

  delete(agentId: string): Promise<void> {
    return this.writes.write(agentId, async () => {
      await this.events.idle();
      // Event files this store cannot reach would outlive the agent.
      if (this.events instanceof DatabaseEventStorage && (await this.events.hasFileEvents(agentId))) {
        throw eventModeMismatch('file', { backend: BACKEND, operation: 'delete', agentId });
      }
      const open = await this.opened();
      // The tombstone first: from here on the agent does not exist, its
      // late events are discarded, and an append that raced this delete
      // removes what it wrote (mongo-registry.ts).
      const now = Date.now();
      await open.collections.agents.updateOne({ _id: agentId }, tombstone(now), { upsert: true });
      await removeTombstonedAgent(open, agentId, now);
      await this.events.deleteOutsideDatabase(agentId);
      this.messageLists.forget(agentId);
      this.toolCallLists.forget(agentId);
    });
  }

  // ---- retention (mongo-retention.ts) ------------------------------------------

  scanAgents(query: AgentScanQuery): Promise<AgentActivity[]> {
    return this.retention.scanAgents(query);
  }

  deleteIfInactive(agentId: string, before: number, dryRun: boolean): Promise<RemovedAgent | undefined> {
    return this.retention.deleteIfInactive(agentId, before, dryRun);
  }

  pruneEvents(agentId: string, rule: EventPruneRule, dryRun: boolean): Promise<PrunedRows> {
    return this.retention.pruneEvents(agentId, rule, dryRun);
  }

  pruneSnapshots(agentId: string, keepNewest: number, dryRun: boolean): Promise<PrunedRows> {
    return this.retention.pruneSnapshots(agentId, keepNewest, dryRun);
  }

  compact(): Promise<CompactResult> {
    return this.retention.compact();
  }

  async list(prefix: string | undefined): Promise<string[]> {
    const open = await this.opened();
    const fromFiles = await this.events.agentIdsOutsideDatabase(prefix);
    return listAgents(open.collections.agents, prefix, fromFiles);
  }

  // ---- queries ---------------------------------------------------------------

  /** One page of a query: each document's text, with the agent it belongs to. */
  private async findRows(
    role: 'messages' | 'tool_calls',
    plan: FindPlan,
    operation: string,
  ): Promise<Array<Required<StoredRow>>> {
    const docs = await (await this.opened()).collections[role]
      .find(plan.filter, { projection: { json: 1, agentId: 1 } })
      .sort(plan.sort)
      .skip(plan.skip)
      .limit(plan.limit)
      .toArray();
    return docs.map((doc) => {
      const agentId = String(doc.agentId);
      return { agentId, json: jsonText(doc, where(operation, agentId)) };
    });
  }

  /**
   * An aggregation rather than a `find`: its `$project` takes the session,
   * or the whole info of a document saved before the session was stored,
   * on the server (a `find` projection can compute only on MongoDB 4.4+, and
   * the project's test server ignores it). A leading `$match`, `$sort`,
   * `$skip` and `$limit` use the indexes as that `find` would.
   */
  async querySessions(query: NormalizedSessionQuery): Promise<Array<Required<StoredRow>>> {
    const plan = sessionQueryPlan(query);
    const docs = await (await this.opened()).collections.infos
      .aggregate([
        { $match: plan.filter },
        { $sort: plan.sort },
        { $skip: plan.skip },
        { $limit: plan.limit },
        { $project: { json: { $ifNull: ['$sessionJson', '$json'] } } },
      ])
      .toArray();
    return docs.map((doc) => {
      const agentId = String(doc._id);
      return { agentId, json: jsonText(doc, where('querySessions', agentId)) };
    });
  }

  queryMessages(query: NormalizedMessageQuery): Promise<StoredRow[]> {
    return this.findRows('messages', messageQueryPlan(query), 'queryMessages');
  }

  queryToolCalls(query: NormalizedToolCallQuery): Promise<StoredRow[]> {
    return this.findRows('tool_calls', toolCallQueryPlan(query), 'queryToolCalls');
  }

  async aggregateStats(agentId: string): Promise<Omit<AgentStats, 'avgMessagesPerSession'>> {
    const { collections } = await this.opened();
    const [totalMessages, totalToolCalls, totalSnapshots, groups] = await Promise.all([
      collections.messages.countDocuments({ agentId }),
      collections.tool_calls.countDocuments({ agentId }),
      collections.snapshots.countDocuments({ agentId }),
      collections.tool_calls.aggregate(toolCallStatsPipeline(agentId)).toArray(),
    ]);
    return { totalMessages, totalToolCalls, totalSnapshots, ...toolCallStatsFromGroups(groups) };
  }

  fork(agentId: string, forkIds: readonly string[], forkInfo: ForkInfoMaker): Promise<boolean> {
    // Queued behind the source's pending writes, so the forks copy what was saved before the call.
    return this.write(agentId, async (open) => {
      if (!(await this.agentExists(open, agentId))) return false;
      await writeForks(open, agentId, forkIds, forkInfo, (forkId) => deleteAgentDocuments(open, forkId));
      return true;
    });
  }

  acquireLock(agentId: string, timeoutMs: number): Promise<LockReleaseFn> {
    return this.locks.acquire(agentId, timeoutMs);
  }

  // ---- observation -------------------------------------------------------------

  ping(): Promise<string | undefined> {
    return this.opened().then((open) => pingStore(open, this.options.collectionPrefix));
  }

  /**
   * Whether the event files' directory can be written, without creating it
   * (it is created on the first append): the directory itself when it
   * exists, else its nearest existing ancestor. Nothing to check when events
   * live in the database.
   */
  async fileSystem(): Promise<StoreHealthStatus['fileSystem']> {
    if (this.options.eventStorage !== 'file') return { writable: true };
    return checkDirectoryWritable(this.options.fileStoreBaseDir as string, { probe: !this.readOnly });
  }

  async inspect(agentId: string): Promise<AgentInspection> {
    const open = await this.opened();
    if (!(await this.agentExists(open, agentId))) return { exists: false, messages: 0, issues: [] };
    return { exists: true, ...(await inspectStoredAgent(open, agentId, this.events)) };
  }

  async storage(): Promise<StoreMetrics['storage']> {
    return storageTotals(await this.opened(), this.events);
  }

  /**
   * Waits for queued writes and pending appends, releases this store's
   * locks, closes the event files and the client the store made (an
   * injected client stays open).
   */
  async close(): Promise<void> {
    await this.writes.settledAll();
    await this.events.idle().catch(() => undefined);
    await this.locks.releaseAll();
    await this.events.close().catch(() => undefined);
    await this.connection.close();
  }
}
