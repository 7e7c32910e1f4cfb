import { NotFoundError, ValidationError } from '../errors.js';
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
} from '../types.js';
import type { AgentBackend, AgentRecordKind } from './agent-backend.js';
import { newForkId, possibleAgentId } from './agent-id.js';
import type { OperationKind } from './operation-metrics.js';
import { type Page, pagedIterable } from './paged-iterable.js';
import {
  normalizeMessageFilters,
  normalizeSessionFilters,
  normalizeToolCallFilters,
} from './query-filters.js';
import { messageFields, sessionFields, toolCallRowFields, toSessionInfo } from './record-fields.js';
import type { CompactOptions, CompactResult, PruneOptions, PrunePolicy, PruneResult } from './retention.js';
import type { RetentionSchedule, RetentionScheduleOptions } from './retention-schedule.js';
import { assertForkCount, assertLockTimeout } from './store-arguments.js';
import { storeCapabilities } from './store-capabilities.js';
import { eventFields, eventFilter, StoreCodec } from './store-codec.js';
import { StoreOperations } from './store-operations.js';
import { checkAgentConsistency, checkHealth, collectMetrics, statsOf } from './store-reports.js';
import { StoreRetention } from './store-retention.js';

/** Options of `AgentStore`. */
export interface AgentStoreOptions {
  /**
   * Set when the backend's options were invalid: every operation rejects
   * with it (a store's constructor never throws).
   */
  configError?: unknown;
  /**
   * Runs a prune policy in the background, by one process of a fleet at a
   * time (see `RetentionScheduleOptions`); `close()` stops it.
   */
  retention?: RetentionScheduleOptions;
}

/**
 * The SDK's `ExtendedStore`, written once over an `AgentBackend`: the
 * operation frame (closed store, agent ids, read-only mode, metrics, typed
 * errors), every argument check, the JSON codec, query normalisation,
 * `readEvents` paging, fork info, the assembly of health, consistency and
 * metrics (store-reports.ts), retention (store-retention.ts), capabilities
 * (store-capabilities.ts), and the close order. Each backend's store class
 * is this over its backend, plus what only that backend offers.
 */
export class AgentStore implements ExtendedStore {
  /** The frame every operation runs in; the KV API of the store shares it. */
  protected readonly ops: StoreOperations;
  protected readonly codec: StoreCodec;
  private configError: unknown;
  /** Operations still running; `close()` lets them finish before the backend closes. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;
  private readonly retention: StoreRetention;

  constructor(
    protected readonly backend: AgentBackend,
    options: AgentStoreOptions = {},
  ) {
    this.configError = options.configError;
    this.ops = new StoreOperations(backend.name, {
      readOnly: backend.readOnly,
      classifyError: backend.classifyError?.bind(backend),
    });
    this.codec = new StoreCodec(backend.name);
    this.retention = new StoreRetention(backend, this.ops);
    if (options.retention !== undefined && this.configError === undefined) {
      // A store's constructor never throws: bad schedule options fail every operation instead.
      try {
        this.scheduleRetention(options.retention);
      } catch (error) {
        this.configError = error;
      }
    }
  }

  /**
   * What this store guarantees; see `StoreCapabilities`. Read from the
   * backend each time (some are known only once it has connected: MongoDB's
   * transactions), with
   * `retention` saying whether `prune` and `compact` work.
   */
  get capabilities(): StoreCapabilities {
    return storeCapabilities(this.backend);
  }

  /** Operations running now (the backend's idle connections may close under none). @internal */
  get runningOperations(): number {
    return this.inFlight.size;
  }

  /**
   * Connects and creates or upgrades the schema now rather than at the first
   * operation (optional: every operation opens on first use).
   */
  open(): Promise<this> {
    return this.runOperation('open', null, async () => {
      await this.backend.open();
      return this;
    });
  }

  // ---- the frame -------------------------------------------------------

  /** Runs one public operation that takes no agent id. */
  protected runOperation<T>(
    operation: string,
    kind: OperationKind | null,
    body: () => Promise<T> | T,
  ): Promise<T> {
    return this.track(this.ops.run(operation, kind, () => this.configured(body)));
  }

  /** Runs one public operation on an agent. */
  protected runForAgent<T>(
    operation: string,
    kind: OperationKind | null,
    agentId: string,
    body: () => Promise<T> | T,
  ): Promise<T> {
    return this.track(this.ops.runForAgent(operation, kind, agentId, () => this.configured(body)));
  }

  private configured<T>(body: () => Promise<T> | T): Promise<T> | T {
    if (this.configError !== undefined) throw this.configError;
    return body();
  }

  private track<T>(result: Promise<T>): Promise<T> {
    this.inFlight.add(result);
    const forget = () => this.inFlight.delete(result);
    result.then(forget, forget);
    return result;
  }

  private fail(message: string, operation: string, agentId?: string): never {
    throw new ValidationError(message, { backend: this.backend.name, operation, agentId });
  }

  private requireObject(value: unknown, what: string, operation: string, agentId: string): void {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(`${what} must be an object`, operation, agentId);
    }
  }

  private decodeAll<T>(texts: readonly string[], operation: string, agentId: string): T[] {
    return texts.map((json) => this.codec.decode<T>(json, operation, agentId));
  }

  private decodeOptional<T>(json: string | undefined, operation: string, agentId: string): T | undefined {
    return json === undefined ? undefined : this.codec.decode<T>(json, operation, agentId);
  }

  // ---- runtime state ---------------------------------------------------

  saveMessages(agentId: string, messages: Message[]): Promise<void> {
    return this.runForAgent('saveMessages', 'save', agentId, () => {
      const texts = this.codec.list(messages, 'saveMessages', agentId, 'messages');
      return this.backend.saveMessages(agentId, { texts, fields: (i) => messageFields(messages[i]) });
    });
  }

  loadMessages(agentId: string): Promise<Message[]> {
    return this.runForAgent('loadMessages', 'load', agentId, async () =>
      this.decodeAll<Message>(await this.backend.loadList(agentId, 'messages'), 'loadMessages', agentId),
    );
  }

  saveToolCallRecords(agentId: string, records: ToolCallRecord[]): Promise<void> {
    return this.runForAgent('saveToolCallRecords', 'save', agentId, () => {
      const texts = this.codec.list(records, 'saveToolCallRecords', agentId, 'records');
      // Every item is checked (a cheap test), though fields are taken only from those written.
      for (const [i, record] of records.entries()) {
        this.requireObject(record, `records[${i}]`, 'saveToolCallRecords', agentId);
      }
      return this.backend.saveToolCalls(agentId, {
        texts,
        fields: (i) => toolCallRowFields(records[i] as ToolCallRecord),
      });
    });
  }

  loadToolCallRecords(agentId: string): Promise<ToolCallRecord[]> {
    return this.runForAgent('loadToolCallRecords', 'load', agentId, async () =>
      this.decodeAll<ToolCallRecord>(
        await this.backend.loadList(agentId, 'toolCalls'),
        'loadToolCallRecords',
        agentId,
      ),
    );
  }

  saveTodos(agentId: string, snapshot: TodoSnapshot): Promise<void> {
    return this.runForAgent('saveTodos', 'save', agentId, () =>
      this.backend.saveDocument(
        agentId,
        'todos',
        this.codec.value(snapshot, 'strict', 'saveTodos', agentId, 'snapshot'),
      ),
    );
  }

  loadTodos(agentId: string): Promise<TodoSnapshot | undefined> {
    return this.runForAgent('loadTodos', 'load', agentId, async () =>
      this.decodeOptional<TodoSnapshot>(
        await this.backend.loadDocument(agentId, 'todos'),
        'loadTodos',
        agentId,
      ),
    );
  }

  // ---- events ----------------------------------------------------------

  appendEvent(agentId: string, timeline: Timeline): Promise<void> {
    // The SDK's hottest call: one per streamed chunk, fired without awaiting.
    // Checks and encoding run synchronously, so un-awaited appends reach the
    // backend in exactly their call order; the backend's promise already
    // rejects with typed errors.
    return this.ops.append('appendEvent', agentId, () => {
      if (this.configError !== undefined) throw this.configError;
      this.requireObject(timeline, 'timeline', 'appendEvent', agentId);
      const json = this.codec.timeline(timeline, 'appendEvent', agentId);
      return this.backend.appendEvent(agentId, json, eventFields(timeline));
    });
  }

  readEvents(agentId: string, opts: ReadEventsOptions = {}): AsyncIterable<Timeline> {
    const store = this;
    async function* pages(): AsyncGenerator<Page<Timeline>> {
      const filter = await store.runForAgent('readEvents', 'load', agentId, () => {
        const checked = eventFilter(opts, { backend: store.backend.name, operation: 'readEvents', agentId });
        const filter: ReadEventsOptions = {};
        if (checked.sinceSeq !== undefined) filter.since = { ...opts.since, seq: checked.sinceSeq } as never;
        if (checked.channel !== undefined) filter.channel = checked.channel as ReadEventsOptions['channel'];
        return filter;
      });
      const source = store.backend.readEventPages(agentId, filter);
      try {
        for (;;) {
          const step = await source.next();
          if (step.done) return;
          yield step.value;
        }
      } finally {
        await source.return?.();
      }
    }
    return pagedIterable(pages, {
      // A per-entry closed check, not a whole operation frame per entry:
      // reading is as hot as appending, and the frame ran once above.
      beforeEach: () => store.ops.assertOpen('readEvents'),
      mapError: (error) => store.ops.wrap(error, { operation: 'readEvents', agentId }),
    });
  }

  // ---- history & compression -------------------------------------------

  private appendRecord(
    operation: string,
    kind: AgentRecordKind,
    agentId: string,
    value: unknown,
    what: string,
  ): Promise<void> {
    return this.runForAgent(operation, 'save', agentId, () =>
      this.backend.appendRecord(agentId, kind, this.codec.value(value, 'strict', operation, agentId, what)),
    );
  }

  private loadRecords<T>(operation: string, kind: AgentRecordKind, agentId: string): Promise<T[]> {
    return this.runForAgent(operation, 'load', agentId, async () =>
      this.decodeAll<T>(await this.backend.loadRecords(agentId, kind), operation, agentId),
    );
  }

  saveHistoryWindow(agentId: string, window: HistoryWindow): Promise<void> {
    return this.appendRecord('saveHistoryWindow', 'history_window', agentId, window, 'window');
  }

  loadHistoryWindows(agentId: string): Promise<HistoryWindow[]> {
    return this.loadRecords('loadHistoryWindows', 'history_window', agentId);
  }

  saveCompressionRecord(agentId: string, record: CompressionRecord): Promise<void> {
    return this.appendRecord('saveCompressionRecord', 'compression_record', agentId, record, 'record');
  }

  loadCompressionRecords(agentId: string): Promise<CompressionRecord[]> {
    return this.loadRecords('loadCompressionRecords', 'compression_record', agentId);
  }

  saveRecoveredFile(agentId: string, file: RecoveredFile): Promise<void> {
    return this.appendRecord('saveRecoveredFile', 'recovered_file', agentId, file, 'file');
  }

  loadRecoveredFiles(agentId: string): Promise<RecoveredFile[]> {
    return this.loadRecords('loadRecoveredFiles', 'recovered_file', agentId);
  }

  // ---- media cache -----------------------------------------------------

  saveMediaCache(agentId: string, records: MediaCacheRecord[]): Promise<void> {
    return this.runForAgent('saveMediaCache', 'save', agentId, () => {
      const texts = this.codec.list(records, 'saveMediaCache', agentId, 'records');
      return this.backend.saveDocument(agentId, 'mediaCache', `[${texts.join(',')}]`);
    });
  }

  loadMediaCache(agentId: string): Promise<MediaCacheRecord[]> {
    return this.runForAgent('loadMediaCache', 'load', agentId, async () => {
      const json = await this.backend.loadDocument(agentId, 'mediaCache');
      return this.decodeOptional<MediaCacheRecord[]>(json, 'loadMediaCache', agentId) ?? [];
    });
  }

  // ---- snapshots -------------------------------------------------------

  saveSnapshot(agentId: string, snapshot: Snapshot): Promise<void> {
    return this.runForAgent('saveSnapshot', 'save', agentId, () => {
      const json = this.codec.value(snapshot, 'strict', 'saveSnapshot', agentId, 'snapshot');
      if (typeof snapshot.id !== 'string') this.fail('snapshot.id must be a string', 'saveSnapshot', agentId);
      return this.backend.saveSnapshot(agentId, snapshot.id, json);
    });
  }

  loadSnapshot(agentId: string, snapshotId: string): Promise<Snapshot | undefined> {
    return this.runForAgent('loadSnapshot', 'load', agentId, async () => {
      if (typeof snapshotId !== 'string') return undefined;
      return this.decodeOptional<Snapshot>(
        await this.backend.loadSnapshot(agentId, snapshotId),
        'loadSnapshot',
        agentId,
      );
    });
  }

  listSnapshots(agentId: string): Promise<Snapshot[]> {
    return this.runForAgent('listSnapshots', 'load', agentId, async () =>
      this.decodeAll<Snapshot>(await this.backend.listSnapshots(agentId), 'listSnapshots', agentId),
    );
  }

  // ---- metadata --------------------------------------------------------

  saveInfo(agentId: string, info: AgentInfo): Promise<void> {
    return this.runForAgent('saveInfo', 'save', agentId, () => {
      const json = this.codec.value(info, 'strict', 'saveInfo', agentId, 'info');
      this.requireObject(info, 'info', 'saveInfo', agentId);
      return this.backend.saveInfo(agentId, json, sessionFields(info));
    });
  }

  loadInfo(agentId: string): Promise<AgentInfo | undefined> {
    return this.runForAgent('loadInfo', 'load', agentId, async () =>
      this.decodeOptional<AgentInfo>(await this.backend.loadDocument(agentId, 'info'), 'loadInfo', agentId),
    );
  }

  // ---- lifecycle -------------------------------------------------------

  exists(agentId: string): Promise<boolean> {
    return this.runForAgent('exists', 'load', agentId, () => this.backend.exists(agentId));
  }

  delete(agentId: string): Promise<void> {
    return this.runForAgent('delete', 'delete', agentId, () => this.backend.delete(agentId));
  }

  list(prefix?: string): Promise<string[]> {
    return this.runOperation('list', 'load', async () => {
      if (prefix !== undefined && typeof prefix !== 'string') this.fail('prefix must be a string', 'list');
      if (!possibleAgentId(prefix)) return [];
      return this.backend.list(prefix);
    });
  }

  // ---- queries ---------------------------------------------------------

  querySessions(filters: SessionFilters): Promise<SessionInfo[]> {
    return this.runOperation('querySessions', 'query', async () => {
      const query = normalizeSessionFilters(filters);
      if (query.limit === 0 || !possibleAgentId(query.agentId)) return [];
      return (await this.backend.querySessions(query)).map((row) =>
        toSessionInfo(row.agentId, this.codec.decode<AgentInfo>(row.json, 'querySessions', row.agentId)),
      );
    });
  }

  queryMessages(filters: MessageFilters): Promise<Message[]> {
    return this.runOperation('queryMessages', 'query', async () => {
      const query = normalizeMessageFilters(filters);
      if (query.limit === 0 || !possibleAgentId(query.agentId)) return [];
      return (await this.backend.queryMessages(query)).map((row) =>
        this.codec.decode<Message>(row.json, 'queryMessages', row.agentId),
      );
    });
  }

  queryToolCalls(filters: ToolCallFilters): Promise<ToolCallRecord[]> {
    return this.runOperation('queryToolCalls', 'query', async () => {
      const query = normalizeToolCallFilters(filters);
      if (query.limit === 0 || !possibleAgentId(query.agentId)) return [];
      return (await this.backend.queryToolCalls(query)).map((row) =>
        this.codec.decode<ToolCallRecord>(row.json, 'queryToolCalls', row.agentId),
      );
    });
  }

  aggregateStats(agentId: string): Promise<AgentStats> {
    return this.runForAgent('aggregateStats', 'query', agentId, async () =>
      statsOf(await this.backend.aggregateStats(agentId)),
    );
  }

  // ---- extended --------------------------------------------------------

  healthCheck(): Promise<StoreHealthStatus> {
    return this.runOperation('healthCheck', null, () => checkHealth(this.backend));
  }

  checkConsistency(agentId: string): Promise<ConsistencyCheckResult> {
    return this.runForAgent('checkConsistency', 'query', agentId, () =>
      checkAgentConsistency(this.backend, agentId),
    );
  }

  getMetrics(): Promise<StoreMetrics> {
    return this.runOperation('getMetrics', null, () => collectMetrics(this.backend, this.ops.metrics));
  }

  acquireAgentLock(agentId: string, timeoutMs = 30000): Promise<LockReleaseFn> {
    // Not tracked as in flight: `close()` must not wait for a caller that waits for a lock.
    return this.ops.runForAgent('acquireAgentLock', null, agentId, () => {
      if (this.configError !== undefined) throw this.configError;
      assertLockTimeout(timeoutMs, { backend: this.backend.name, operation: 'acquireAgentLock', agentId });
      this.ops.assertWritable('acquireAgentLock', agentId);
      return this.backend.acquireLock(agentId, timeoutMs);
    });
  }

  batchFork(agentId: string, count: number): Promise<string[]> {
    return this.runForAgent('batchFork', 'save', agentId, async () => {
      assertForkCount(count, { backend: this.backend.name, operation: 'batchFork', agentId });
      const forkIds = Array.from({ length: count }, () => newForkId(agentId));
      const forked = await this.backend.fork(agentId, forkIds, (forkId, sourceJson) => {
        const source = this.codec.decode<Partial<AgentInfo>>(sourceJson, 'batchFork', agentId);
        const lineage = Array.isArray(source.lineage) ? source.lineage : [];
        const info = { ...source, agentId: forkId, lineage: [...lineage, agentId] };
        return {
          json: this.codec.value(info, 'strict', 'batchFork', agentId, 'info'),
          fields: sessionFields(info),
        };
      });
      if (!forked) {
        throw new NotFoundError('no agent to fork', {
          backend: this.backend.name,
          operation: 'batchFork',
          agentId,
        });
      }
      return forkIds;
    });
  }

  // ---- retention -------------------------------------------------------

  /**
   * Removes what `policy` names: inactive agents (as `delete` does), old
   * events and snapshots of the agents that stay; see `PrunePolicy`. Works
   * in short transactions, can be stopped (`signal`) and run again, never
   * removes what was written after it started, and with `dryRun` only
   * counts. Resolves with what was (or would be) removed.
   *
   * @example
   * const result = await store.prune({ inactiveBefore: Date.now() - 90 * 86_400_000 }, { dryRun: true });
   */
  prune(policy: PrunePolicy, options: PruneOptions = {}): Promise<PruneResult> {
    return this.runOperation('prune', null, () => this.retention.prune(policy, options));
  }

  /**
   * Gives freed space back where the backend can: SQLite returns free pages
   * to the file system (files made before incremental auto-vacuum need
   * `{ full: true }` once), PostgreSQL vacuums the store's tables, memory
   * does nothing. Resolves with the sizes before and after, where known.
   */
  compact(options: CompactOptions = {}): Promise<CompactResult> {
    return this.runOperation('compact', null, () => this.retention.compact(options));
  }

  /**
   * Runs `options.policy` every `options.intervalMs` in the background, by one
   * process of those sharing the database at a time (a lease under a lock key
   * no agent id can be). A failing round goes to `onError` and the schedule's
   * metrics, never to the process. The schedule keeps the process alive until
   * it is stopped or the store is closed. Throws `ValidationError` for bad
   * options, `UnsupportedError` on a read-only store or one without
   * retention, `StoreClosedError` once closed.
   *
   * @example
   * const schedule = store.scheduleRetention({
   *   policy: { inactiveBefore: Date.now() - 90 * 86_400_000, events: { keepNewest: 1000 } },
   *   intervalMs: 15 * 60_000,
   *   onError: (error) => console.error('retention failed', error),
   * });
   */
  scheduleRetention(options: RetentionScheduleOptions): RetentionSchedule {
    this.ops.assertOpen('scheduleRetention');
    if (this.configError !== undefined) throw this.configError;
    return this.retention.schedule(options, (policy, pruneOptions) => this.prune(policy, pruneOptions));
  }

  /**
   * Lets running operations and pending appends finish, releases the locks
   * this object holds and closes what the backend opened. Later calls reject
   * with `StoreClosedError`. Idempotent.
   */
  close(): Promise<void> {
    if (!this.ops.markClosed()) return this.closing ?? Promise.resolve();
    this.closing = (async () => {
      if (this.configError !== undefined) return;
      // Before the backend closes: a running round finishes and the lease is given back.
      await this.retention.stopSchedules();
      await Promise.allSettled([...this.inFlight]);
      await this.backend.close();
    })();
    return this.closing;
  }
}
