import { newForkId } from './agent-id.js';
import { AgentLockTable } from './agent-lock-table.js';
import { compareCodePoints } from './code-point-order.js';
import { tombstoneLive } from './deleted-agents.js';
import { NotFoundError, StoreClosedError, ValidationError } from './errors.js';
import { createKvStore } from './kv/kv-store.js';
import type { KvStore } from './kv/kv-types.js';
import { MemoryKvBackend } from './kv/memory-kv.js';
import {
  normalizeMessageFilters,
  normalizeSessionFilters,
  normalizeToolCallFilters,
  type SortOrder,
  withinTimeBounds,
} from './query-filters.js';
import {
  commonPrefixLength,
  messageContentTypes,
  pairFirstSavedTimes,
  type SessionFields,
  sessionFields,
  type ToolCallFields,
  toolCallFields,
  toSessionInfo,
} from './record-fields.js';
import { assertForkCount, assertLockTimeout } from './store-arguments.js';
import { eventFilter, StoreCodec } from './store-codec.js';
import { StoreOperations } from './store-operations.js';
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
} from './types.js';

/**
 * Everything is kept as the JSON text `encodeJson` produced and decoded on
 * every load: callers can never mutate stored state through an object they
 * saved or loaded, and the round trip is exactly the one every other backend
 * makes.
 */
interface StoredMessage {
  json: string;
  role: string;
  contentTypes: string[];
  /** When this message was first saved (epoch ms); re-saving the conversation keeps it. */
  savedAt: number;
}

interface StoredToolCall {
  json: string;
  id: string;
  fields: ToolCallFields;
}

interface StoredEvent {
  json: string;
  seq: number | undefined;
  channel: string | undefined;
}

interface StoredInfo {
  json: string;
  fields: SessionFields;
  /** Store time of the last `saveInfo` (the `updated_at` sort key). */
  savedAt: number;
}

/** All data of one agent. */
interface MemoryAgent {
  info?: StoredInfo;
  messages: StoredMessage[];
  toolCalls: StoredToolCall[];
  todos?: string;
  events: StoredEvent[];
  historyWindows: string[];
  compressionRecords: string[];
  recoveredFiles: string[];
  mediaCache: string[];
  /** Map keeps first-insertion order, so snapshots list oldest first and an upsert keeps its place. */
  snapshots: Map<string, string>;
}

function emptyAgent(): MemoryAgent {
  return {
    messages: [],
    toolCalls: [],
    events: [],
    historyWindows: [],
    compressionRecords: [],
    recoveredFiles: [],
    mediaCache: [],
    snapshots: new Map(),
  };
}

/**
 * The data behind one or more `MemoryStore` objects. Stores built on the same
 * database see each other's writes and exclude each other's locks, like two
 * connections to one server.
 */
export class MemoryDatabase {
  readonly agents = new Map<string, MemoryAgent>();
  /** Tombstones of deleted agents: id → deletion time (see deleted-agents.ts). */
  readonly deleted = new Map<string, number>();
  readonly locks = new AgentLockTable();
  /** KV data, shared by every store object over this database. */
  readonly kv = new MemoryKvBackend();
}

/** Options of `new MemoryStore(options)`. */
export interface MemoryStoreOptions {
  /**
   * The data to work on; a new, empty database when absent. Pass another
   * store's `database` to get a second store object over the same data.
   * @example const peer = new MemoryStore({ database: store.database });
   */
  database?: MemoryDatabase;
}

const BACKEND = 'memory';

/** Compares two sort keys field by field; strings by code point. */
function compareKeys(a: ReadonlyArray<number | string>, b: ReadonlyArray<number | string>): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number | string;
    const y = b[i] as number | string;
    const c = typeof x === 'string' ? compareCodePoints(x, y as string) : (x as number) - (y as number);
    if (c !== 0) return c;
  }
  return 0;
}

/** Sorts by `key` in `order` (tie-breakers included in the key go the same way), then applies offset and limit. */
function page<T>(
  rows: T[],
  key: (row: T) => ReadonlyArray<number | string>,
  query: { order: SortOrder; offset: number; limit: number },
): T[] {
  const sign = query.order === 'asc' ? 1 : -1;
  const sorted = rows.map((row) => ({ row, key: key(row) }));
  sorted.sort((a, b) => sign * compareKeys(a.key, b.key));
  return sorted.slice(query.offset, query.offset + query.limit).map((entry) => entry.row);
}

/**
 * The reference `ExtendedStore`: every rule of the conformance suite,
 * implemented as plainly as possible, in memory. Use it in unit tests of code
 * that takes a store, or as the model when writing a backend.
 *
 * Locks exclude within the process, between every store object over the same
 * `MemoryDatabase` (see `peer()`). Nothing survives the process.
 *
 * @example
 * const store = new MemoryStore();
 * const agent = await Agent.create({ store, ... });
 */
export class MemoryStore implements ExtendedStore {
  /** What this store guarantees; see `StoreCapabilities`. */
  readonly capabilities: StoreCapabilities = {
    crossInstanceLocks: true,
    crossProcessLocks: false,
    transactions: true,
    durable: false,
    fileEvents: false,
    reasons: {
      crossProcessLocks: 'MemoryStore keeps its data and its locks inside one process',
      durable: 'MemoryStore keeps its data in memory; nothing survives the process',
      fileEvents: 'MemoryStore keeps events in memory, not in files',
    },
  };

  /** The data this store works on, shared with its peers. */
  readonly database: MemoryDatabase;

  protected readonly ops = new StoreOperations(BACKEND);
  private readonly codec = new StoreCodec(BACKEND);

  /** The KV namespace API (SPEC §6), over the same in-memory database. */
  readonly kv: KvStore;

  constructor(options: MemoryStoreOptions = {}) {
    this.database = options.database ?? new MemoryDatabase();
    this.kv = createKvStore(this.database.kv, { operations: this.ops });
  }

  /** Nothing to connect or migrate; resolves once it has checked the store is open. */
  open(): Promise<this> {
    return this.ops.run('open', null, () => this);
  }

  /** A second, independent store object over the same data (its own metrics, its own `close`). */
  peer(): MemoryStore {
    return new MemoryStore({ database: this.database });
  }

  // ---- helpers ---------------------------------------------------------

  /** The agent's data, or undefined when nothing was saved for it. */
  protected agent(agentId: string): MemoryAgent | undefined {
    return this.database.agents.get(agentId);
  }

  /** The agent's data, created empty on first write (a write other than an event ends a tombstone). */
  protected agentForWrite(agentId: string): MemoryAgent {
    let agent = this.database.agents.get(agentId);
    if (!agent) {
      agent = emptyAgent();
      this.database.agents.set(agentId, agent);
      this.database.deleted.delete(agentId);
    }
    return agent;
  }

  // ---- runtime state ---------------------------------------------------

  async saveMessages(agentId: string, messages: Message[]): Promise<void> {
    return this.ops.runForAgent('saveMessages', 'save', agentId, () => {
      const encoded = this.codec.list(messages, 'saveMessages', agentId, 'messages');
      const agent = this.agentForWrite(agentId);
      const kept = commonPrefixLength(
        agent.messages.map((m) => m.json),
        encoded,
      );
      const tail = encoded.slice(kept);
      // Messages of the rewritten tail that were stored before (a message
      // inserted in the middle, a summary replacing the head) keep the time
      // they were first saved; only new texts are stamped now.
      const times = pairFirstSavedTimes(agent.messages.slice(kept), tail, Date.now());
      const added = tail.map((json, i): StoredMessage => {
        const message = messages[kept + i] as Message;
        return {
          json,
          role: typeof message.role === 'string' ? message.role : '',
          contentTypes: messageContentTypes(message),
          savedAt: times[i] as number,
        };
      });
      agent.messages = [...agent.messages.slice(0, kept), ...added];
    });
  }

  async loadMessages(agentId: string): Promise<Message[]> {
    return this.ops.runForAgent('loadMessages', 'load', agentId, () =>
      (this.agent(agentId)?.messages ?? []).map((m) =>
        this.codec.decode<Message>(m.json, 'loadMessages', agentId),
      ),
    );
  }

  async saveToolCallRecords(agentId: string, records: ToolCallRecord[]): Promise<void> {
    return this.ops.runForAgent('saveToolCallRecords', 'save', agentId, () => {
      const encoded = this.codec.list(records, 'saveToolCallRecords', agentId, 'records');
      const agent = this.agentForWrite(agentId);
      agent.toolCalls = encoded.map((json, i) => {
        const record = records[i] as ToolCallRecord;
        return { json, id: String(record.id), fields: toolCallFields(record) };
      });
    });
  }

  async loadToolCallRecords(agentId: string): Promise<ToolCallRecord[]> {
    return this.ops.runForAgent('loadToolCallRecords', 'load', agentId, () =>
      (this.agent(agentId)?.toolCalls ?? []).map((r) =>
        this.codec.decode<ToolCallRecord>(r.json, 'loadToolCallRecords', agentId),
      ),
    );
  }

  async saveTodos(agentId: string, snapshot: TodoSnapshot): Promise<void> {
    return this.ops.runForAgent('saveTodos', 'save', agentId, () => {
      const json = this.codec.value(snapshot, 'strict', 'saveTodos', agentId, 'snapshot');
      this.agentForWrite(agentId).todos = json;
    });
  }

  async loadTodos(agentId: string): Promise<TodoSnapshot | undefined> {
    return this.ops.runForAgent('loadTodos', 'load', agentId, () => {
      const json = this.agent(agentId)?.todos;
      return json === undefined ? undefined : this.codec.decode<TodoSnapshot>(json, 'loadTodos', agentId);
    });
  }

  // ---- events ----------------------------------------------------------

  async appendEvent(agentId: string, timeline: Timeline): Promise<void> {
    // The body runs synchronously inside `run` (before its first await), so
    // un-awaited appends land in exactly their call order.
    return this.ops.runForAgent('appendEvent', 'save', agentId, () => {
      if (typeof timeline !== 'object' || timeline === null) {
        throw new ValidationError('timeline must be an object', {
          backend: BACKEND,
          operation: 'appendEvent',
          agentId,
        });
      }
      const json = this.codec.timeline(timeline, 'appendEvent', agentId);
      const seq = timeline.bookmark?.seq;
      const channel = timeline.event?.channel;
      let agent = this.agent(agentId);
      if (!agent) {
        // A late event of a deleted agent: acknowledged, not stored.
        if (tombstoneLive(this.database.deleted.get(agentId), Date.now())) return;
        this.database.deleted.delete(agentId);
        agent = this.agentForWrite(agentId);
      }
      agent.events.push({
        json,
        seq: typeof seq === 'number' ? seq : undefined,
        channel: typeof channel === 'string' ? channel : undefined,
      });
    });
  }

  readEvents(agentId: string, opts: ReadEventsOptions = {}): AsyncIterable<Timeline> {
    const store = this;
    return {
      async *[Symbol.asyncIterator]() {
        const { sinceSeq: since, channel } = await store.ops.runForAgent('readEvents', 'load', agentId, () =>
          eventFilter(opts, { backend: BACKEND, operation: 'readEvents', agentId }),
        );
        // Walks the live list by position, like a keyset page over an
        // autoincrement id: entries appended while reading are seen, nothing twice.
        for (let i = 0; ; i++) {
          store.ops.assertOpen('readEvents');
          const entry = store.agent(agentId)?.events[i];
          if (!entry) return;
          if (since !== undefined && !(entry.seq !== undefined && entry.seq > since)) continue;
          if (channel !== undefined && entry.channel !== channel) continue;
          yield store.codec.decode<Timeline>(entry.json, 'readEvents', agentId);
        }
      },
    };
  }

  // ---- history & compression -------------------------------------------

  async saveHistoryWindow(agentId: string, window: HistoryWindow): Promise<void> {
    return this.ops.runForAgent('saveHistoryWindow', 'save', agentId, () => {
      const json = this.codec.value(window, 'strict', 'saveHistoryWindow', agentId, 'window');
      this.agentForWrite(agentId).historyWindows.push(json);
    });
  }

  async loadHistoryWindows(agentId: string): Promise<HistoryWindow[]> {
    return this.ops.runForAgent('loadHistoryWindows', 'load', agentId, () =>
      (this.agent(agentId)?.historyWindows ?? []).map((json) =>
        this.codec.decode<HistoryWindow>(json, 'loadHistoryWindows', agentId),
      ),
    );
  }

  async saveCompressionRecord(agentId: string, record: CompressionRecord): Promise<void> {
    return this.ops.runForAgent('saveCompressionRecord', 'save', agentId, () => {
      const json = this.codec.value(record, 'strict', 'saveCompressionRecord', agentId, 'record');
      this.agentForWrite(agentId).compressionRecords.push(json);
    });
  }

  async loadCompressionRecords(agentId: string): Promise<CompressionRecord[]> {
    return this.ops.runForAgent('loadCompressionRecords', 'load', agentId, () =>
      (this.agent(agentId)?.compressionRecords ?? []).map((json) =>
        this.codec.decode<CompressionRecord>(json, 'loadCompressionRecords', agentId),
      ),
    );
  }

  async saveRecoveredFile(agentId: string, file: RecoveredFile): Promise<void> {
    return this.ops.runForAgent('saveRecoveredFile', 'save', agentId, () => {
      const json = this.codec.value(file, 'strict', 'saveRecoveredFile', agentId, 'file');
      this.agentForWrite(agentId).recoveredFiles.push(json);
    });
  }

  async loadRecoveredFiles(agentId: string): Promise<RecoveredFile[]> {
    return this.ops.runForAgent('loadRecoveredFiles', 'load', agentId, () =>
      (this.agent(agentId)?.recoveredFiles ?? []).map((json) =>
        this.codec.decode<RecoveredFile>(json, 'loadRecoveredFiles', agentId),
      ),
    );
  }

  // ---- media cache -----------------------------------------------------

  async saveMediaCache(agentId: string, records: MediaCacheRecord[]): Promise<void> {
    return this.ops.runForAgent('saveMediaCache', 'save', agentId, () => {
      const encoded = this.codec.list(records, 'saveMediaCache', agentId, 'records');
      this.agentForWrite(agentId).mediaCache = encoded;
    });
  }

  async loadMediaCache(agentId: string): Promise<MediaCacheRecord[]> {
    return this.ops.runForAgent('loadMediaCache', 'load', agentId, () =>
      (this.agent(agentId)?.mediaCache ?? []).map((json) =>
        this.codec.decode<MediaCacheRecord>(json, 'loadMediaCache', agentId),
      ),
    );
  }

  // ---- snapshots -------------------------------------------------------

  async saveSnapshot(agentId: string, snapshot: Snapshot): Promise<void> {
    return this.ops.runForAgent('saveSnapshot', 'save', agentId, () => {
      const json = this.codec.value(snapshot, 'strict', 'saveSnapshot', agentId, 'snapshot');
      if (typeof snapshot.id !== 'string') {
        throw new ValidationError('snapshot.id must be a string', {
          backend: BACKEND,
          operation: 'saveSnapshot',
          agentId,
        });
      }
      this.agentForWrite(agentId).snapshots.set(snapshot.id, json);
    });
  }

  async loadSnapshot(agentId: string, snapshotId: string): Promise<Snapshot | undefined> {
    return this.ops.runForAgent('loadSnapshot', 'load', agentId, () => {
      const json = this.agent(agentId)?.snapshots.get(snapshotId);
      return json === undefined ? undefined : this.codec.decode<Snapshot>(json, 'loadSnapshot', agentId);
    });
  }

  async listSnapshots(agentId: string): Promise<Snapshot[]> {
    return this.ops.runForAgent('listSnapshots', 'load', agentId, () =>
      [...(this.agent(agentId)?.snapshots.values() ?? [])].map((json) =>
        this.codec.decode<Snapshot>(json, 'listSnapshots', agentId),
      ),
    );
  }

  // ---- metadata --------------------------------------------------------

  async saveInfo(agentId: string, info: AgentInfo): Promise<void> {
    return this.ops.runForAgent('saveInfo', 'save', agentId, () => {
      const json = this.codec.value(info, 'strict', 'saveInfo', agentId, 'info');
      if (typeof info !== 'object' || info === null || Array.isArray(info)) {
        throw new ValidationError('info must be an object', {
          backend: BACKEND,
          operation: 'saveInfo',
          agentId,
        });
      }
      this.agentForWrite(agentId).info = { json, fields: sessionFields(info), savedAt: Date.now() };
    });
  }

  async loadInfo(agentId: string): Promise<AgentInfo | undefined> {
    return this.ops.runForAgent('loadInfo', 'load', agentId, () => {
      const json = this.agent(agentId)?.info?.json;
      return json === undefined ? undefined : this.codec.decode<AgentInfo>(json, 'loadInfo', agentId);
    });
  }

  // ---- lifecycle -------------------------------------------------------

  async exists(agentId: string): Promise<boolean> {
    return this.ops.runForAgent('exists', 'load', agentId, () => this.database.agents.has(agentId));
  }

  async delete(agentId: string): Promise<void> {
    return this.ops.runForAgent('delete', 'delete', agentId, () => {
      const { agents, deleted } = this.database;
      agents.delete(agentId);
      const now = Date.now();
      // The map is in deletion order, so expired tombstones are at its head.
      for (const [id, at] of deleted) {
        if (tombstoneLive(at, now)) break;
        deleted.delete(id);
      }
      deleted.delete(agentId);
      deleted.set(agentId, now);
    });
  }

  async list(prefix?: string): Promise<string[]> {
    return this.ops.run('list', 'load', () => {
      if (prefix !== undefined && typeof prefix !== 'string') {
        throw new ValidationError('prefix must be a string', { backend: BACKEND, operation: 'list' });
      }
      // Ids never hold NUL or lone surrogates, so such a prefix matches nothing (as in the SQL backends,
      // which compare code points, where a lone surrogate is not the start of an emoji).
      if (prefix !== undefined && (prefix.includes('\u0000') || !prefix.isWellFormed())) return [];
      return [...this.database.agents.keys()]
        .filter((id) => prefix === undefined || id.startsWith(prefix))
        .sort(compareCodePoints);
    });
  }

  // ---- queries ---------------------------------------------------------

  async querySessions(filters: SessionFilters): Promise<SessionInfo[]> {
    return this.ops.run('querySessions', 'query', () => {
      const query = normalizeSessionFilters(filters);
      const rows: Array<{ agentId: string; info: StoredInfo }> = [];
      for (const [agentId, agent] of this.database.agents) {
        const info = agent.info;
        if (!info) continue;
        if (query.agentId !== undefined && agentId !== query.agentId) continue;
        if (query.templateId !== undefined && info.fields.templateId !== query.templateId) continue;
        if (query.userId !== undefined && info.fields.userId !== query.userId) continue;
        if (!withinTimeBounds(info.fields.createdAtMs, query)) continue;
        rows.push({ agentId, info });
      }
      const sortValue = {
        createdAt: (info: StoredInfo) => info.fields.createdAtMs,
        updatedAt: (info: StoredInfo) => info.savedAt,
        messageCount: (info: StoredInfo) => info.fields.messageCount,
      }[query.sortBy];
      return page(rows, (row) => [sortValue(row.info), row.agentId], query).map((row) =>
        toSessionInfo(row.agentId, this.codec.decode<AgentInfo>(row.info.json, 'querySessions', row.agentId)),
      );
    });
  }

  async queryMessages(filters: MessageFilters): Promise<Message[]> {
    return this.ops.run('queryMessages', 'query', () => {
      const query = normalizeMessageFilters(filters);
      const rows: Array<{ agentId: string; position: number; message: StoredMessage }> = [];
      for (const [agentId, agent] of this.database.agents) {
        if (query.agentId !== undefined && agentId !== query.agentId) continue;
        agent.messages.forEach((message, position) => {
          if (query.role !== undefined && message.role !== query.role) return;
          if (query.contentType !== undefined && !message.contentTypes.includes(query.contentType)) return;
          if (!withinTimeBounds(message.savedAt, query)) return;
          rows.push({ agentId, position, message });
        });
      }
      return page(rows, (row) => [row.message.savedAt, row.agentId, row.position], query).map((row) =>
        this.codec.decode<Message>(row.message.json, 'queryMessages', row.agentId),
      );
    });
  }

  async queryToolCalls(filters: ToolCallFilters): Promise<ToolCallRecord[]> {
    return this.ops.run('queryToolCalls', 'query', () => {
      const query = normalizeToolCallFilters(filters);
      const rows: Array<{ agentId: string; record: StoredToolCall }> = [];
      for (const [agentId, agent] of this.database.agents) {
        if (query.agentId !== undefined && agentId !== query.agentId) continue;
        for (const record of agent.toolCalls) {
          const f = record.fields;
          if (query.toolName !== undefined && f.name !== query.toolName) continue;
          if (query.state !== undefined && f.state !== query.state) continue;
          if (query.isError !== undefined && f.isError !== query.isError) continue;
          if (query.hasApproval !== undefined && f.hasApproval !== query.hasApproval) continue;
          if (!withinTimeBounds(f.createdAt, query)) continue;
          rows.push({ agentId, record });
        }
      }
      const sortField = query.sortBy;
      return page(rows, (row) => [row.record.fields[sortField], row.agentId, row.record.id], query).map(
        (row) => this.codec.decode<ToolCallRecord>(row.record.json, 'queryToolCalls', row.agentId),
      );
    });
  }

  async aggregateStats(agentId: string): Promise<AgentStats> {
    return this.ops.runForAgent('aggregateStats', 'query', agentId, () => {
      const agent = this.agent(agentId);
      const toolCallsByName: Record<string, number> = {};
      const toolCallsByState: Record<string, number> = {};
      for (const { fields } of agent?.toolCalls ?? []) {
        toolCallsByName[fields.name] = (toolCallsByName[fields.name] ?? 0) + 1;
        toolCallsByState[fields.state] = (toolCallsByState[fields.state] ?? 0) + 1;
      }
      const totalMessages = agent?.messages.length ?? 0;
      return {
        totalMessages,
        totalToolCalls: agent?.toolCalls.length ?? 0,
        totalSnapshots: agent?.snapshots.size ?? 0,
        // One agent is one session, as in the SDK's own stores.
        avgMessagesPerSession: totalMessages,
        toolCallsByName,
        toolCallsByState,
      };
    });
  }

  // ---- extended --------------------------------------------------------

  async healthCheck(): Promise<StoreHealthStatus> {
    return this.ops.run('healthCheck', null, () => {
      const started = performance.now();
      // The "database" is this process's memory: reachable exactly when the
      // map answers, which it always does while the store is open.
      const connected = this.database.agents instanceof Map;
      return {
        healthy: connected,
        database: { connected, latencyMs: performance.now() - started },
        fileSystem: { writable: true },
        checkedAt: Date.now(),
      };
    });
  }

  async checkConsistency(agentId: string): Promise<ConsistencyCheckResult> {
    return this.ops.runForAgent('checkConsistency', 'query', agentId, () => {
      const issues: string[] = [];
      const agent = this.agent(agentId);
      if (!agent) {
        issues.push(`agent ${JSON.stringify(agentId)} does not exist`);
      } else if (agent.info) {
        const info = this.codec.decode<Partial<AgentInfo>>(agent.info.json, 'checkConsistency', agentId);
        if (typeof info.messageCount === 'number' && info.messageCount !== agent.messages.length) {
          issues.push(
            `info.messageCount is ${info.messageCount} but ${agent.messages.length} messages are stored`,
          );
        }
      }
      return { consistent: issues.length === 0, issues, checkedAt: Date.now() };
    });
  }

  async getMetrics(): Promise<StoreMetrics> {
    return this.ops.run('getMetrics', null, () => {
      let totalMessages = 0;
      let totalToolCalls = 0;
      let totalEvents = 0;
      for (const agent of this.database.agents.values()) {
        totalMessages += agent.messages.length;
        totalToolCalls += agent.toolCalls.length;
        totalEvents += agent.events.length;
      }
      return {
        operations: this.ops.metrics.operations(),
        performance: this.ops.metrics.performance(),
        storage: {
          totalAgents: this.database.agents.size,
          totalMessages,
          totalToolCalls,
          totalEvents,
        },
        collectedAt: Date.now(),
      };
    });
  }

  async acquireAgentLock(agentId: string, timeoutMs = 30000): Promise<LockReleaseFn> {
    return this.ops.runForAgent('acquireAgentLock', null, agentId, () => {
      assertLockTimeout(timeoutMs, { backend: BACKEND, operation: 'acquireAgentLock', agentId });
      return this.database.locks.acquire(agentId, timeoutMs, this, {
        backend: BACKEND,
        operation: 'acquireAgentLock',
      });
    });
  }

  async batchFork(agentId: string, count: number): Promise<string[]> {
    return this.ops.runForAgent('batchFork', 'save', agentId, () => {
      assertForkCount(count, { backend: BACKEND, operation: 'batchFork', agentId });
      const source = this.agent(agentId);
      if (!source) {
        throw new NotFoundError('no agent to fork', { backend: BACKEND, operation: 'batchFork', agentId });
      }
      const ids: string[] = [];
      // Everything is computed before the first write, so a failure leaves no partial fork behind.
      const forks = Array.from({ length: count }, () => {
        const forkId = newForkId(agentId);
        ids.push(forkId);
        return [forkId, this.forkOf(source, agentId, forkId)] as const;
      });
      for (const [forkId, fork] of forks) this.database.agents.set(forkId, fork);
      return ids;
    });
  }

  /** A full copy of `source` as agent `forkId`: info (with lineage extended), messages, tool calls, todos, snapshots. */
  private forkOf(source: MemoryAgent, sourceId: string, forkId: string): MemoryAgent {
    const fork = emptyAgent();
    if (source.info) {
      const info = this.codec.decode<Partial<AgentInfo>>(source.info.json, 'batchFork', sourceId);
      const lineage = Array.isArray(info.lineage) ? info.lineage : [];
      const forkInfo = { ...info, agentId: forkId, lineage: [...lineage, sourceId] };
      fork.info = {
        json: this.codec.value(forkInfo, 'strict', 'batchFork', sourceId, 'info'),
        fields: sessionFields(forkInfo),
        savedAt: Date.now(),
      };
    }
    fork.messages = source.messages.map((m) => ({ ...m, contentTypes: [...m.contentTypes] }));
    fork.toolCalls = source.toolCalls.map((r) => ({ ...r, fields: { ...r.fields } }));
    fork.todos = source.todos;
    fork.snapshots = new Map(source.snapshots);
    return fork;
  }

  /** Releases this object's locks; later calls reject with `StoreClosedError`. Idempotent. */
  async close(): Promise<void> {
    if (!this.ops.markClosed()) return;
    this.database.locks.releaseAllOf(
      this,
      new StoreClosedError('the store was closed while waiting for a lock', {
        backend: BACKEND,
        operation: 'acquireAgentLock',
      }),
    );
  }
}
