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
import { type AnyKodeStoreError, type ErrorContext, redactSecrets } from '../../src/errors.js';
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
import { columnKey, optionalColumnKey } from './postgres-column-keys.js';
import type { ResolvedPostgresSettings } from './postgres-config.js';
import type { PostgresConnection, Statement } from './postgres-connection.js';
import { DatabaseEventStorage } from './postgres-database-events.js';
import { PostgresListSaver } from './postgres-list-saver.js';
import { PostgresAgentLocks } from './postgres-lock.js';
import { messagesQuery, sessionsQuery, toolCallsQuery } from './postgres-queries.js';
import { LIVE_AGENT, postgresFileEventRegistry, prefixConditions } from './postgres-registry.js';
import { PostgresRetention, removeAgentRows } from './postgres-retention.js';
import { AGENT_TABLES } from './postgres-schema.js';
import { buildStatements } from './postgres-statements.js';

/** Kinds of rows in `kode_agent_documents` (one replaceable document each). */
const DOCUMENT_KIND = { todos: 'todos', mediaCache: 'media_cache' } as const;

/** PostgreSQL's foreign_key_violation: the agent row vanished under a write (a concurrent delete). */
const FOREIGN_KEY_VIOLATION = '23503';

/** The inverse of `columnKey`, for keys returned to callers (tool names and states in stats). */
function fromColumnKey(key: string): string {
  return key.startsWith('"') ? (JSON.parse(key) as string) : key;
}

/**
 * The agent store's data in PostgreSQL. Values are the exact JSON text the
 * store encoded (never jsonb, which reorders keys and refuses `\u0000`),
 * with the fields queries filter on in indexed columns; times are epoch
 * milliseconds. Writes of one agent run in call order (`AgentWriteQueue`:
 * pool connections would otherwise race), and reads wait for the writes
 * queued before them. The SDK's hot paths cost one round trip each.
 */
export class PostgresAgentBackend implements AgentBackend, RetentionBackend {
  readonly name = 'postgres';
  readonly capabilities: StoreCapabilities;
  readonly readOnly: boolean;
  private readonly writes = new AgentWriteQueue();
  private readonly events: EventStorage;
  private readonly locks: PostgresAgentLocks;
  private readonly messages: PostgresListSaver;
  private readonly toolCalls: PostgresListSaver;
  private readonly sql: ReturnType<typeof buildStatements>;
  private readonly retention: PostgresRetention;

  constructor(
    private readonly settings: ResolvedPostgresSettings,
    private readonly db: PostgresConnection,
  ) {
    this.readOnly = settings.readOnly;
    const fileEvents = settings.eventStorage === 'file';
    this.events = fileEvents
      ? new FileEventStorage(
          postgresFileEventRegistry(db),
          'postgres',
          settings.fileStoreBaseDir as string,
          settings.fsync,
          settings.readOnly,
        )
      : new DatabaseEventStorage(db);
    this.locks = new PostgresAgentLocks(db, settings.lockLeaseMs);
    const agents = db.table('kode_agents');
    const revisions = db.table('kode_revision_seq');
    this.messages = new PostgresListSaver(
      db,
      this.writes,
      {
        table: db.table('kode_messages'),
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
    this.toolCalls = new PostgresListSaver(
      db,
      this.writes,
      {
        table: db.table('kode_tool_calls'),
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
    this.sql = buildStatements(db);
    this.retention = new PostgresRetention({
      db,
      sql: this.sql,
      events: this.events,
      writes: this.writes,
      forgetLists: (agentId) => {
        this.messages.forget(agentId);
        this.toolCalls.forget(agentId);
      },
    });
    // Unsynced event files survive a crash of the process but not of the machine.
    const durable = !fileEvents || settings.fsync;
    this.capabilities = describeCapabilities({
      crossInstanceLocks: true,
      crossProcessLocks: true,
      transactions: true,
      durable: durable || 'event files are not fsynced (fsync: false)',
      fileEvents: fileEvents || "events are rows in PostgreSQL (eventStorage: 'database')",
    });
  }

  async open(): Promise<void> {
    await this.db.ready();
  }

  classifyError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined {
    return this.db.classifyError(error, ctx);
  }

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

  /** A read of one agent, after the writes of that agent queued before it (read-your-writes). */
  private async readAfterWrites<T>(agentId: string, statement: Statement, values: unknown[]): Promise<T[]> {
    await this.writes.settled(agentId);
    return this.db.query<T>(statement, values, true);
  }

  // ---- lists -------------------------------------------------------------

  saveMessages(agentId: string, messages: EncodedList<MessageFields>): Promise<void> {
    const savedAt = Date.now();
    return this.messages.save(agentId, {
      texts: messages.texts as string[],
      valuesAt: (i) => {
        const fields = messages.fields(i);
        return [columnKey(fields.role), JSON.stringify(fields.contentTypes.map(columnKey)), savedAt];
      },
    });
  }

  saveToolCalls(agentId: string, records: EncodedList<ToolCallRowFields>): Promise<void> {
    return this.toolCalls.save(agentId, {
      texts: records.texts as string[],
      valuesAt: (i) => {
        const f = records.fields(i);
        return [
          columnKey(f.id),
          columnKey(f.name),
          columnKey(f.state),
          f.isError,
          f.hasApproval,
          f.createdAt,
          f.updatedAt,
        ];
      },
    });
  }

  loadList(agentId: string, list: AgentList): Promise<string[]> {
    return (list === 'messages' ? this.messages : this.toolCalls).load(agentId);
  }

  // ---- documents, records, snapshots ------------------------------------

  saveDocument(agentId: string, document: Exclude<AgentDocument, 'info'>, json: string): Promise<void> {
    return this.writes.write(agentId, () =>
      this.registeredWrite(this.sql.saveDocument, [agentId, DOCUMENT_KIND[document], json], true),
    );
  }

  async loadDocument(agentId: string, document: AgentDocument): Promise<string | undefined> {
    const rows =
      document === 'info'
        ? await this.readAfterWrites<{ json: string | null }>(agentId, this.sql.loadInfo, [agentId])
        : await this.readAfterWrites<{ json: string }>(agentId, this.sql.loadDocument, [
            agentId,
            DOCUMENT_KIND[document],
          ]);
    return rows[0]?.json ?? undefined;
  }

  saveInfo(agentId: string, json: string, fields: SessionFields): Promise<void> {
    const values = [
      agentId,
      json,
      columnKey(fields.templateId),
      optionalColumnKey(fields.userId),
      fields.createdAtMs,
      Date.now(),
      fields.messageCount,
      fields.sessionJson,
    ];
    return this.writes.write(agentId, async () => {
      await this.db.query(this.sql.saveInfo, values, true);
    });
  }

  appendRecord(agentId: string, kind: AgentRecordKind, json: string): Promise<void> {
    // Not idempotent: a retry after an unknown outcome could store the record twice.
    return this.writes.write(agentId, () =>
      this.registeredWrite(this.sql.appendRecord, [agentId, kind, json], false),
    );
  }

  async loadRecords(agentId: string, kind: AgentRecordKind): Promise<string[]> {
    const rows = await this.readAfterWrites<{ json: string }>(agentId, this.sql.loadRecords, [agentId, kind]);
    return rows.map((row) => row.json);
  }

  saveSnapshot(agentId: string, snapshotId: string, json: string): Promise<void> {
    return this.writes.write(agentId, () =>
      this.registeredWrite(this.sql.saveSnapshot, [agentId, columnKey(snapshotId), json], true),
    );
  }

  async loadSnapshot(agentId: string, snapshotId: string): Promise<string | undefined> {
    const rows = await this.readAfterWrites<{ json: string }>(agentId, this.sql.loadSnapshot, [
      agentId,
      columnKey(snapshotId),
    ]);
    return rows[0]?.json;
  }

  async listSnapshots(agentId: string): Promise<string[]> {
    const rows = await this.readAfterWrites<{ json: string }>(agentId, this.sql.listSnapshots, [agentId]);
    return rows.map((row) => row.json);
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
    const rows = await this.readAfterWrites<{ live: boolean | null }>(agentId, this.sql.exists, [agentId]);
    const live = rows[0]?.live;
    if (live !== null && live !== undefined) return live;
    // An agent whose registration failed is seen through its event file; a deleted one's never is.
    await this.events.idle();
    return this.events.hasOutsideDatabase(agentId);
  }

  delete(agentId: string): Promise<void> {
    // Writes and appends made before the delete land first, then go with the rest.
    return this.writes.write(agentId, async () => {
      await this.events.idle();
      // Event files this store cannot reach would outlive the agent.
      if (this.events instanceof DatabaseEventStorage && (await this.events.hasFileEvents(agentId))) {
        throw eventModeMismatch('file', { backend: this.name, operation: 'delete', agentId });
      }
      this.messages.forget(agentId);
      this.toolCalls.forget(agentId);
      await this.db.transaction((tx) => removeAgentRows(tx, this.sql, agentId));
      this.messages.forget(agentId);
      this.toolCalls.forget(agentId);
      await this.events.deleteOutsideDatabase(agentId);
    });
  }

  // ---- retention (postgres-retention.ts) ---------------------------------

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

  // ---- registry ------------------------------------------------------------

  async list(prefix: string | undefined): Promise<string[]> {
    const values: unknown[] = [];
    const conditions = prefixConditions(prefix, values);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    // Tombstones come too: hybrid mode's list leaves out their files.
    const rows = await this.db.query<{ agent_id: string; live: boolean }>(
      `SELECT agent_id, ${LIVE_AGENT} AS live FROM ${this.db.table('kode_agents')} ${where} ORDER BY agent_id`,
      values,
      true,
    );
    const ids = rows.filter((row) => row.live).map((row) => row.agent_id);
    await this.events.idle();
    const fromFiles = await this.events.agentIdsOutsideDatabase(prefix || undefined);
    if (fromFiles.length === 0) return ids;
    // An agent whose registration failed is listed through its event file; a deleted one's never is.
    const registered = new Set(rows.map((row) => row.agent_id));
    return [...ids, ...fromFiles.filter((id) => !registered.has(id))].sort(compareCodePoints);
  }

  // ---- queries -------------------------------------------------------------

  async querySessions(query: NormalizedSessionQuery): Promise<Array<Required<StoredRow>>> {
    const { text, values } = sessionsQuery(this.db.table('kode_agents'), query);
    const rows = await this.db.read<{ agent_id: string; session_json: string }>(text, values);
    return rows.map((row) => ({ agentId: row.agent_id, json: row.session_json }));
  }

  async queryMessages(query: NormalizedMessageQuery): Promise<StoredRow[]> {
    const { text, values } = messagesQuery(this.db.table('kode_messages'), query);
    const rows = await this.db.read<{ agent_id: string; message_json: string }>(text, values);
    return rows.map((row) => ({ agentId: row.agent_id, json: row.message_json }));
  }

  async queryToolCalls(query: NormalizedToolCallQuery): Promise<StoredRow[]> {
    const { text, values } = toolCallsQuery(this.db.table('kode_tool_calls'), query);
    const rows = await this.db.read<{ agent_id: string; record_json: string }>(text, values);
    return rows.map((row) => ({ agentId: row.agent_id, json: row.record_json }));
  }

  async aggregateStats(agentId: string): Promise<Omit<AgentStats, 'avgMessagesPerSession'>> {
    // A query API: a replica may answer it (PostgresStoreOptions.replicas).
    await this.writes.settled(agentId);
    const [row] = await this.db.read<{
      messages: number;
      snapshots: number;
      by_name: string | null;
      by_state: string | null;
    }>(this.sql.aggregateStats, [agentId]);
    const groups = (json: string | null | undefined) =>
      new Map(
        (JSON.parse(json ?? '[]') as Array<[string, number]>).map(([key, n]) => [fromColumnKey(key), n]),
      );
    const byName = groups(row?.by_name);
    let totalToolCalls = 0;
    for (const n of byName.values()) totalToolCalls += n;
    return {
      totalMessages: row?.messages ?? 0,
      totalToolCalls,
      totalSnapshots: row?.snapshots ?? 0,
      toolCallsByName: Object.fromEntries(byName),
      toolCallsByState: Object.fromEntries(groups(row?.by_state)),
    };
  }

  /**
   * One transaction: the source row is read FOR SHARE (its saves wait until
   * the copies are made, so all copies are of one state), then one set-based
   * INSERT ... SELECT statement copies every table.
   */
  fork(agentId: string, forkIds: readonly string[], forkInfo: ForkInfoMaker): Promise<boolean> {
    return this.writes.write(agentId, () =>
      this.db.transaction(async (tx) => {
        const [found] = await tx.query<{ info_json: string | null }>(this.sql.lockSource, [agentId]);
        if (!found && !(await this.events.hasOutsideDatabase(agentId))) return false;
        if (forkIds.length === 0) return true;
        const infos = forkIds.map((forkId) => (found?.info_json ? forkInfo(forkId, found.info_json) : null));
        const now = Date.now();
        await tx.query(this.sql.fork, [
          agentId,
          forkIds,
          infos.map((info) => info?.json ?? null),
          infos.map((info) => (info ? columnKey(info.fields.templateId) : null)),
          infos.map((info) => (info ? optionalColumnKey(info.fields.userId) : null)),
          infos.map((info) => info?.fields.createdAtMs ?? null),
          infos.map((info) => (info ? now : null)),
          infos.map((info) => info?.fields.messageCount ?? null),
          infos.map((info) => info?.fields.sessionJson ?? null),
        ]);
        return true;
      }),
    );
  }

  acquireLock(agentId: string, timeoutMs: number): Promise<LockReleaseFn> {
    return this.locks.acquire(agentId, timeoutMs);
  }

  // ---- observation -----------------------------------------------------------

  async ping(): Promise<string | undefined> {
    await this.db.ping();
    try {
      await this.db.ready();
      // Migrations ran once per store; a schema dropped since then is only seen by looking.
      const [tables] = await this.db.query<{ present: boolean }>(
        'SELECT to_regclass($1) IS NOT NULL AS present',
        [this.db.table('kode_agents')],
        true,
      );
      if (!tables?.present)
        return `the store's tables are missing from schema ${JSON.stringify(this.settings.schema)}`;
      return undefined;
    } catch (error) {
      // The server answered; what failed is the schema (a migration, a permission).
      return redactSecrets(error instanceof Error ? error.message : String(error));
    }
  }

  async fileSystem(): Promise<StoreHealthStatus['fileSystem']> {
    // Only hybrid mode writes files; the database mode has nothing to check.
    if (this.events.mode !== 'file' || !this.settings.fileStoreBaseDir) return { writable: true };
    return checkDirectoryWritable(this.settings.fileStoreBaseDir, { probe: !this.readOnly });
  }

  async inspect(agentId: string): Promise<AgentInspection> {
    await this.writes.settled(agentId);
    await this.events.idle();
    const [row] = await this.db.query<{
      registered: boolean;
      info_json: string | null;
      messages: number;
      max_position: number | null;
      duplicate_tool_calls: number;
    }>(this.sql.consistency, [agentId], true);
    const eventsOutside = await this.events.hasOutsideDatabase(agentId);
    if (row?.registered !== true && !eventsOutside) return { exists: false, messages: 0, issues: [] };
    const messages = row?.messages ?? 0;
    const issues: string[] = [];
    if (row?.max_position !== null && row?.max_position !== undefined && row.max_position + 1 !== messages) {
      issues.push(`message positions have gaps: ${messages} messages, highest position ${row.max_position}`);
    }
    if (row && row.duplicate_tool_calls > 0) {
      issues.push(`${row.duplicate_tool_calls} tool-call ids are stored more than once`);
    }
    issues.push(...(await this.events.check(agentId)));
    return { exists: true, infoJson: row?.info_json ?? undefined, messages, issues };
  }

  async storage(): Promise<StoreMetrics['storage']> {
    await this.events.idle();
    const [rows, totalEvents, fileAgents] = await Promise.all([
      this.db.query<{ agents: number; messages: number; tool_calls: number; size: number | null }>(
        this.sql.metrics,
        [this.settings.schema, [...AGENT_TABLES]],
        true,
      ),
      this.events.count(),
      this.events.agentIdsOutsideDatabase(undefined),
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
    return storage;
  }

  /** Waits for pending writes and appends, releases held locks, closes the event files and the pool it opened. */
  async close(): Promise<void> {
    await this.writes.settledAll();
    await this.events.idle();
    await this.locks.releaseAll();
    await this.events.close().catch(() => undefined);
    await this.db.close();
  }
}
