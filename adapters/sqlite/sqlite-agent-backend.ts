import { dirname, resolve } from 'node:path';
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
import type { EventStorage } from '../../src/agent/event-storage.js';
import type { Page } from '../../src/agent/paged-iterable.js';
import type {
  NormalizedMessageQuery,
  NormalizedSessionQuery,
  NormalizedToolCallQuery,
} from '../../src/agent/query-filters.js';
import type { SessionFields } from '../../src/agent/record-fields.js';
import type { CompactOptions, CompactResult } from '../../src/agent/retention.js';
import { describeCapabilities } from '../../src/agent/store-capabilities.js';
import type { AnyKodeStoreError, ErrorContext } from '../../src/errors.js';
import { checkDirectoryWritable } from '../../src/hybrid/directory-health.js';
import { eventModeMismatch } from '../../src/hybrid/event-modes.js';
import { FileEventStorage } from '../../src/hybrid/file-event-storage.js';
import { compareCodePoints } from '../../src/strings.js';
import type {
  AgentStats,
  LockReleaseFn,
  ReadEventsOptions,
  StoreCapabilities,
  StoreHealthStatus,
  StoreMetrics,
  Timeline,
} from '../../src/types.js';
import type { ResolvedSqliteOptions } from './sqlite-config.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { DatabaseEventStorage } from './sqlite-database-events.js';
import { classifySqliteError } from './sqlite-errors.js';
import { copyAgentRows } from './sqlite-fork.js';
import {
  type IncrementalListSaver,
  messageListSaver,
  storedList,
  toolCallListSaver,
} from './sqlite-list-saver.js';
import { SqliteAgentLocks } from './sqlite-lock.js';
import {
  type BuiltQuery,
  listAgentsQuery,
  messageQuery,
  sessionQuery,
  toolCallQuery,
} from './sqlite-queries.js';
import {
  hasFileEvents,
  LIVE_AGENT,
  REGISTER_AGENT,
  sqliteFileEventRegistry,
  writeTombstone,
} from './sqlite-registry.js';
import { SqliteRetention } from './sqlite-retention.js';

/** Tables holding rows of one agent, all deleted together (the registry row `agents` stays as a tombstone). */
export const AGENT_TABLES = [
  'agent_info',
  'messages',
  'message_content_types',
  'tool_calls',
  'events',
  'snapshots',
  'agent_history',
] as const;

/** Column of `agents` holding each document. */
const DOCUMENT_COLUMN = { todos: 'todos_json', mediaCache: 'media_cache_json' } as const;

/**
 * The agent store's data in one SQLite file (better-sqlite3), through one
 * connection (`SqliteConnection`): writes are short transactions queued in
 * call order; events in the `events` table or, in hybrid mode, in files.
 */
export class SqliteAgentBackend implements AgentBackend, RetentionBackend {
  readonly name = 'sqlite';
  readonly capabilities: StoreCapabilities;
  readonly readOnly: boolean;
  private readonly events: EventStorage;
  private readonly locks: SqliteAgentLocks;
  private readonly messages: IncrementalListSaver<MessageFields>;
  private readonly toolCalls: IncrementalListSaver<ToolCallRowFields>;
  private readonly retention: SqliteRetention;

  constructor(
    private readonly options: ResolvedSqliteOptions,
    readonly connection: SqliteConnection,
  ) {
    this.readOnly = options.readOnly;
    this.events =
      options.eventStorage === 'file' && options.fileStoreBaseDir !== undefined
        ? new FileEventStorage(
            sqliteFileEventRegistry(connection),
            'sqlite',
            options.fileStoreBaseDir,
            options.durability === 'full',
            options.readOnly,
          )
        : new DatabaseEventStorage(connection);
    this.locks = new SqliteAgentLocks(connection, options.lockLeaseMs);
    this.messages = messageListSaver(connection);
    this.toolCalls = toolCallListSaver(connection);
    this.retention = new SqliteRetention(connection, this.events, {
      removeRows: (agentId) => this.removeAgentRows(agentId),
      removed: (agentId) => this.agentRemoved(agentId),
    });
    const inMemory = connection.inMemory;
    const onlyThisConnection = 'an in-memory SQLite database belongs to one connection';
    this.capabilities = describeCapabilities({
      crossInstanceLocks: !inMemory || onlyThisConnection,
      crossProcessLocks: !inMemory || onlyThisConnection,
      transactions: true,
      durable: !inMemory || 'an in-memory SQLite database is lost when it is closed',
      fileEvents:
        options.eventStorage === 'file' || "events are kept in the database (eventStorage: 'database')",
    });
  }

  async open(): Promise<void> {
    await this.connection.database();
  }

  classifyError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined {
    return classifySqliteError(error, ctx);
  }

  // ---- statements --------------------------------------------------------

  private read<T>(body: () => T, snapshot = false): Promise<T> {
    return this.connection.read(body, { snapshot });
  }

  private rows<T>(query: BuiltQuery): Promise<T[]> {
    return this.read(() => this.connection.all<T>(query.sql, ...query.parameters));
  }

  /** Runs `body` in a write transaction that first records that the agent exists (ending a tombstone). */
  private writeForAgent(agentId: string, body: () => void): Promise<void> {
    return this.connection.write(() => {
      this.connection.run(REGISTER_AGENT, agentId, Date.now());
      body();
    });
  }

  // ---- lists -------------------------------------------------------------

  async saveMessages(agentId: string, messages: EncodedList<MessageFields>): Promise<void> {
    await this.messages.save(agentId, messages.texts, messages.fields);
  }

  async saveToolCalls(agentId: string, records: EncodedList<ToolCallRowFields>): Promise<void> {
    await this.toolCalls.save(agentId, records.texts, records.fields);
  }

  loadList(agentId: string, list: AgentList): Promise<string[]> {
    return this.read(() => storedList(this.connection, list, agentId));
  }

  // ---- documents, records, snapshots ------------------------------------

  saveDocument(agentId: string, document: Exclude<AgentDocument, 'info'>, json: string): Promise<void> {
    const column = DOCUMENT_COLUMN[document];
    return this.connection.write(() => {
      this.connection.run(
        `INSERT INTO agents (agent_id, ${column}, last_write_ms) VALUES (?, ?, ?) ` +
          `ON CONFLICT (agent_id) DO UPDATE SET ${column} = excluded.${column}, deleted_at_ms = NULL, ` +
          'last_write_ms = excluded.last_write_ms',
        agentId,
        json,
        Date.now(),
      );
    });
  }

  async loadDocument(agentId: string, document: AgentDocument): Promise<string | undefined> {
    const row = await this.read(() =>
      document === 'info'
        ? this.connection.get<{ json: string }>(
            'SELECT info_json AS json FROM agent_info WHERE agent_id = ?',
            agentId,
          )
        : this.connection.get<{ json: string | null }>(
            `SELECT ${DOCUMENT_COLUMN[document]} AS json FROM agents WHERE agent_id = ?`,
            agentId,
          ),
    );
    return row?.json ?? undefined;
  }

  saveInfo(agentId: string, json: string, fields: SessionFields): Promise<void> {
    return this.writeForAgent(agentId, () => {
      this.connection.run(
        'INSERT INTO agent_info (agent_id, info_json, template_id, user_id, created_at_ms, updated_at_ms, message_count, session_json) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET info_json = excluded.info_json, ' +
          'template_id = excluded.template_id, user_id = excluded.user_id, created_at_ms = excluded.created_at_ms, ' +
          'updated_at_ms = excluded.updated_at_ms, message_count = excluded.message_count, ' +
          'session_json = excluded.session_json',
        agentId,
        json,
        fields.templateId,
        fields.userId,
        fields.createdAtMs,
        Date.now(),
        fields.messageCount,
        fields.sessionJson,
      );
    });
  }

  appendRecord(agentId: string, kind: AgentRecordKind, json: string): Promise<void> {
    return this.writeForAgent(agentId, () => {
      this.connection.run(
        'INSERT INTO agent_history (agent_id, kind, record_json) VALUES (?, ?, ?)',
        agentId,
        kind,
        json,
      );
    });
  }

  loadRecords(agentId: string, kind: AgentRecordKind): Promise<string[]> {
    return this.read(() =>
      this.connection
        .all<{ json: string }>(
          'SELECT record_json AS json FROM agent_history WHERE agent_id = ? AND kind = ? ORDER BY row_id',
          agentId,
          kind,
        )
        .map((row) => row.json),
    );
  }

  saveSnapshot(agentId: string, snapshotId: string, json: string): Promise<void> {
    return this.writeForAgent(agentId, () => {
      this.connection.run(
        'INSERT INTO snapshots (agent_id, snapshot_id, snapshot_json) VALUES (?, ?, ?) ' +
          'ON CONFLICT (agent_id, snapshot_id) DO UPDATE SET snapshot_json = excluded.snapshot_json',
        agentId,
        snapshotId,
        json,
      );
    });
  }

  async loadSnapshot(agentId: string, snapshotId: string): Promise<string | undefined> {
    const row = await this.read(() =>
      this.connection.get<{ json: string }>(
        'SELECT snapshot_json AS json FROM snapshots WHERE agent_id = ? AND snapshot_id = ?',
        agentId,
        snapshotId,
      ),
    );
    return row?.json;
  }

  listSnapshots(agentId: string): Promise<string[]> {
    return this.read(() =>
      this.connection
        .all<{ json: string }>(
          'SELECT snapshot_json AS json FROM snapshots WHERE agent_id = ? ORDER BY row_id',
          agentId,
        )
        .map((row) => row.json),
    );
  }

  // ---- events --------------------------------------------------------------

  appendEvent(agentId: string, json: string, fields: EventFields): Promise<void> {
    return this.events.append(agentId, json, fields);
  }

  readEventPages(agentId: string, filter: ReadEventsOptions): AsyncIterator<Page<Timeline>> {
    return this.events.readPages(agentId, filter);
  }

  // ---- registry ------------------------------------------------------------

  async exists(agentId: string): Promise<boolean> {
    const row = await this.read(() =>
      this.connection.get<{ deleted: number }>(
        `SELECT NOT (${LIVE_AGENT}) AS deleted FROM agents WHERE agent_id = ?`,
        agentId,
      ),
    );
    if (row !== undefined) return row.deleted === 0;
    // An agent whose registration failed is seen through its event file; a deleted one's never is.
    return this.events.hasOutsideDatabase(agentId);
  }

  async delete(agentId: string): Promise<void> {
    // Appends made before the delete are written first, then removed with the rest.
    await this.events.idle();
    // Event files this store cannot reach would outlive the agent.
    if (this.events.mode === 'database' && (await this.read(() => hasFileEvents(this.connection, agentId)))) {
      throw eventModeMismatch('file', { backend: this.name, operation: 'delete', agentId });
    }
    await this.connection.write(() => this.removeAgentRows(agentId));
    await this.agentRemoved(agentId);
  }

  /** After a delete committed: the cached lists and the event file go too. */
  private async agentRemoved(agentId: string): Promise<void> {
    this.messages.forget(agentId);
    this.toolCalls.forget(agentId);
    await this.events.deleteOutsideDatabase(agentId);
  }

  /** The delete's transaction body: every row of the agent, then the tombstone. */
  private removeAgentRows(agentId: string): void {
    for (const table of AGENT_TABLES) this.connection.run(`DELETE FROM ${table} WHERE agent_id = ?`, agentId);
    writeTombstone(this.connection, agentId, Date.now());
    // A lock row is the holder's, not the agent's data; only a dead holder's expired row goes.
    this.connection.run(
      'DELETE FROM agent_locks WHERE agent_id = ? AND expires_at_ms <= ?',
      agentId,
      Date.now(),
    );
  }

  // ---- retention (sqlite-retention.ts) -----------------------------------------

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

  compact(options: CompactOptions): Promise<CompactResult> {
    return this.retention.compact(options);
  }

  // ---- registry listing ------------------------------------------------------

  async list(prefix: string | undefined): Promise<string[]> {
    const rows = await this.rows<{ agent_id: string; deleted: number }>(listAgentsQuery(prefix));
    const ids = rows.filter((row) => row.deleted === 0).map((row) => row.agent_id);
    const fromFiles = await this.events.agentIdsOutsideDatabase(prefix);
    if (fromFiles.length === 0) return ids;
    // An agent whose registration failed is listed through its event file; a deleted one's never is.
    const registered = new Set(rows.map((row) => row.agent_id));
    return [...ids, ...fromFiles.filter((id) => !registered.has(id))].sort(compareCodePoints);
  }

  // ---- queries -------------------------------------------------------------

  async querySessions(query: NormalizedSessionQuery): Promise<Array<Required<StoredRow>>> {
    const rows = await this.rows<{ agent_id: string; session_json: string }>(sessionQuery(query));
    return rows.map((row) => ({ agentId: row.agent_id, json: row.session_json }));
  }

  async queryMessages(query: NormalizedMessageQuery): Promise<StoredRow[]> {
    const rows = await this.rows<{ message_json: string }>(messageQuery(query));
    return rows.map((row) => ({ agentId: query.agentId, json: row.message_json }));
  }

  async queryToolCalls(query: NormalizedToolCallQuery): Promise<StoredRow[]> {
    const rows = await this.rows<{ record_json: string }>(toolCallQuery(query));
    return rows.map((row) => ({ agentId: query.agentId, json: row.record_json }));
  }

  aggregateStats(agentId: string): Promise<Omit<AgentStats, 'avgMessagesPerSession'>> {
    return this.read(() => {
      const count = (table: string) =>
        this.connection.get<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE agent_id = ?`, agentId)!
          .n;
      const groups = (column: 'name' | 'state') =>
        new Map(
          this.connection
            .all<{ key: string; n: number }>(
              `SELECT ${column} AS key, count(*) AS n FROM tool_calls WHERE agent_id = ? GROUP BY ${column}`,
              agentId,
            )
            .map((row) => [row.key, row.n]),
        );
      return {
        totalMessages: count('messages'),
        totalToolCalls: count('tool_calls'),
        totalSnapshots: count('snapshots'),
        toolCallsByName: Object.fromEntries(groups('name')),
        toolCallsByState: Object.fromEntries(groups('state')),
      };
    }, true);
  }

  async fork(agentId: string, forkIds: readonly string[], forkInfo: ForkInfoMaker): Promise<boolean> {
    let found = false;
    await this.connection.write(() => {
      if (
        this.connection.get(`SELECT 1 AS found FROM agents WHERE agent_id = ? AND ${LIVE_AGENT}`, agentId) ===
        undefined
      ) {
        return;
      }
      found = true;
      const info = this.connection.get<{ info_json: string }>(
        'SELECT info_json FROM agent_info WHERE agent_id = ?',
        agentId,
      );
      copyAgentRows(
        this.connection,
        agentId,
        forkIds.map((forkId) => {
          if (info === undefined) return { forkId, info: undefined };
          const { json, fields } = forkInfo(forkId, info.info_json);
          return { forkId, info: { json, ...fields } };
        }),
        Date.now(),
      );
    });
    return found;
  }

  acquireLock(agentId: string, timeoutMs: number): Promise<LockReleaseFn> {
    return this.locks.acquire(agentId, timeoutMs);
  }

  // ---- observation -----------------------------------------------------------

  async ping(): Promise<undefined> {
    await this.read(() => this.connection.get('SELECT 1 AS ok'));
    return undefined;
  }

  /** Whether the database's directory (and the event files' base directory) can be written. */
  async fileSystem(): Promise<StoreHealthStatus['fileSystem']> {
    const dirs: string[] = [];
    if (!this.connection.inMemory) dirs.push(dirname(resolve(this.options.path)));
    if (this.options.eventStorage === 'file' && this.options.fileStoreBaseDir !== undefined)
      dirs.push(this.options.fileStoreBaseDir);
    for (const dir of dirs) {
      const health = await checkDirectoryWritable(dir, { probe: !this.readOnly });
      if (!health.writable) return health;
    }
    return { writable: true };
  }

  async inspect(agentId: string): Promise<AgentInspection> {
    if (!(await this.exists(agentId))) return { exists: false, messages: 0, issues: [] };
    const issues: string[] = [];
    const found = await this.read(() => {
      const info = this.connection.get<{ info_json: string }>(
        'SELECT info_json FROM agent_info WHERE agent_id = ?',
        agentId,
      );
      const messages = this.listShape('messages', 'message_json', agentId, issues);
      this.listShape('tool_calls', 'record_json', agentId, issues);
      return { infoJson: info?.info_json, messages };
    }, true);
    issues.push(...(await this.events.check(agentId)));
    return { exists: true, ...found, issues };
  }

  /** Counts a list's rows and reports gaps in its positions or rows whose JSON does not parse. */
  private listShape(table: string, column: string, agentId: string, issues: string[]): number {
    const shape = this.connection.get<{ n: number; last: number | null }>(
      `SELECT count(*) AS n, max(position) AS last FROM ${table} WHERE agent_id = ?`,
      agentId,
    )!;
    if (shape.n > 0 && shape.last !== shape.n - 1) {
      issues.push(`${table}: ${shape.n} rows but positions run to ${shape.last}`);
    }
    // json_valid finds the suspects without shipping every row, but it also
    // says no to valid JSON nested deeper than SQLite's JSON functions read
    // (1,000 levels): each suspect is judged by the parser loads use.
    const suspects = this.connection.all<{ json: string }>(
      `SELECT ${column} AS json FROM ${table} WHERE agent_id = ? AND NOT json_valid(${column})`,
      agentId,
    );
    const invalid = suspects.filter((row) => !parsesAsJson(row.json)).length;
    if (invalid > 0) issues.push(`${table}: ${invalid} rows hold JSON that does not parse`);
    return shape.n;
  }

  async storage(): Promise<StoreMetrics['storage']> {
    const storage = await this.read(() => {
      const count = (table: string) =>
        this.connection.get<{ n: number }>(`SELECT count(*) AS n FROM ${table}`)!.n;
      const pages = this.connection.get<{ bytes: number }>(
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
    return totalEvents === undefined ? storage : { ...storage, totalEvents };
  }

  /**
   * SQLite's own check of the file (`PRAGMA integrity_check`), at most
   * `maxProblems` lines; empty when the file is sound.
   */
  async integrityProblems(maxProblems: number): Promise<string[]> {
    const lines = await this.read(() =>
      this.connection
        .all<{ integrity_check: string }>(`PRAGMA integrity_check(${maxProblems})`)
        .map((row) => row.integrity_check),
    );
    return lines.length === 1 && lines[0] === 'ok' ? [] : lines;
  }

  async close(): Promise<void> {
    try {
      await this.locks.releaseAll();
      await this.events.close();
    } finally {
      this.messages.clear();
      this.toolCalls.clear();
      await this.connection.close();
    }
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
