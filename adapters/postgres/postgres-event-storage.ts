import { AppendBatcher, type BatchRefusals } from '../../src/append-batcher.js';
import { DELETED_AGENT_RETENTION_MS, tombstoneLive } from '../../src/deleted-agents.js';
import { eventModeMismatch, eventModeProblem } from '../../src/event-modes.js';
import { FileEventLog } from '../../src/file-event-log.js';
import { decodeJson } from '../../src/json-codec.js';
import { EVENT_PAGE_BYTES, EVENT_PAGE_SIZE, EventPageSizer } from '../../src/paged-iterable.js';
import type { ReadEventsOptions, Timeline } from '../../src/types.js';
import { columnKey } from './postgres-column-keys.js';
import type { PostgresDatabase, Statement, Transaction } from './postgres-database.js';

/**
 * Where a `PostgresStore` keeps its event stream: rows in PostgreSQL
 * (`DatabaseEventStorage`) or append-only files (`FileEventStorage`, hybrid
 * mode). The store talks to this one small interface and never to either
 * implementation directly.
 */

/** A timeline already encoded by the store, with the fields reads filter on. */
export interface EncodedTimeline {
  json: string;
  /** `bookmark.seq` when it is a number. */
  seq: number | null;
  /** `event.channel` when it is a string. */
  channel: string | null;
}

export interface EventStorage {
  readonly mode: 'database' | 'file';
  /** Appends in call order; resolves once durable. Must be called synchronously in call order. */
  append(agentId: string, event: EncodedTimeline): Promise<void>;
  /**
   * The agent's entries in append order, filtered, a page at a time (no page
   * is empty): the store hands them out through `pagedIterable` (one resolved
   * promise per entry instead of a generator step in each layer). Waits for
   * the agent's appends made so far.
   */
  readPages(agentId: string, opts: ReadEventsOptions): AsyncGenerator<Timeline[]>;
  /** Resolves when every append made so far has settled (read-your-writes, delete, close). */
  idle(): Promise<void>;
  /** Agents with events this storage knows of that the database registry may not (hybrid mode). */
  agentIds(prefix: string | undefined): Promise<string[]>;
  /** True if the agent has events kept outside the database registry. */
  hasOutsideRegistry(agentId: string): Promise<boolean>;
  /** Removes the agent's events inside the store's delete transaction. */
  deleteWithin(tx: Transaction, agentId: string): Promise<void>;
  /** Removes the agent's events after that transaction committed. */
  deleteAfterCommit(agentId: string): Promise<void>;
  /** Total number of stored events, when cheap to know. */
  count(): Promise<number | undefined>;
  /** Problems with the agent's stored events. */
  check(agentId: string): Promise<string[]>;
  close(): Promise<void>;
}

interface PendingAppend {
  agentId: string;
  event: EncodedTimeline;
}

/**
 * Events as rows of `kode_events`, ordered by a bigserial id (append order;
 * `bookmark.seq` is not unique). Un-awaited appends are batched: everything
 * queued while one INSERT runs goes out as the next one, a single
 * `INSERT ... SELECT FROM unnest(...) WITH ORDINALITY ORDER BY` whose ids
 * are drawn in call order, which also registers (and row-locks) the agents
 * so that a concurrent `delete` cannot leave events of a deleted agent, and
 * which stores nothing for an agent whose row is a live tombstone (a late
 * event of a deleted agent: postgres-registry.ts).
 */
export class DatabaseEventStorage implements EventStorage {
  readonly mode = 'database' as const;
  private readonly batcher: AppendBatcher<PendingAppend>;
  private readonly insertSql: Statement;
  private readonly fileEventsSql: Statement;
  private readonly events: string;

  constructor(
    private readonly db: PostgresDatabase,
    private readonly pageSize = EVENT_PAGE_SIZE,
    private readonly pageBytes = EVENT_PAGE_BYTES,
  ) {
    this.events = db.table('kode_events');
    const agents = db.table('kode_agents');
    this.insertSql = db.statement(`
      WITH registered AS (
        INSERT INTO ${agents} AS a (agent_id)
        SELECT DISTINCT id FROM unnest($1::text[]) AS id ORDER BY id
        ON CONFLICT (agent_id) DO UPDATE
          SET deleted_at_ms = CASE WHEN a.deleted_at_ms > $5 THEN a.deleted_at_ms END
        RETURNING agent_id, deleted_at_ms, event_files
      ),
      appended AS (
        INSERT INTO ${this.events} (agent_id, seq, channel_key, timeline_json)
        SELECT e.agent_id, e.seq, e.channel_key, e.timeline_json
        FROM unnest($1::text[], $2::float8[], $3::text[], $4::text[])
          WITH ORDINALITY AS e(agent_id, seq, channel_key, timeline_json, n)
        JOIN registered AS r ON r.agent_id = e.agent_id AND r.deleted_at_ms IS NULL AND NOT r.event_files
        ORDER BY e.n
      )
      -- Agents whose events live in files (hybrid mode): refused, not split across two places.
      SELECT agent_id FROM registered WHERE deleted_at_ms IS NULL AND event_files`);
    this.fileEventsSql = db.statement(
      `SELECT EXISTS (SELECT 1 FROM ${agents} WHERE agent_id = $1 AND event_files AND deleted_at_ms IS NULL) AS files`,
    );
    this.batcher = new AppendBatcher(
      (batch) => this.write(batch),
      undefined,
      (error, { agentId }) => db.wrapError(error, { backend: 'postgres', operation: 'appendEvent', agentId }),
    );
  }

  append(agentId: string, event: EncodedTimeline): Promise<void> {
    return this.batcher.enqueue({ agentId, event });
  }

  private async write(batch: PendingAppend[]): Promise<BatchRefusals<PendingAppend> | undefined> {
    // Not retried: if the connection dies during the INSERT, whether it
    // committed is unknown, and a second INSERT could store the batch twice.
    const refused = await this.db.query<{ agent_id: string }>(this.insertSql, [
      batch.map((p) => p.agentId),
      batch.map((p) => p.event.seq),
      batch.map((p) => (p.event.channel === null ? null : columnKey(p.event.channel))),
      batch.map((p) => p.event.json),
      Date.now() - DELETED_AGENT_RETENTION_MS,
    ]);
    if (refused.length === 0) return undefined;
    const elsewhere = new Set(refused.map((row) => row.agent_id));
    return ({ agentId }) =>
      elsewhere.has(agentId)
        ? eventModeMismatch('file', { backend: 'postgres', operation: 'appendEvent', agentId })
        : undefined;
  }

  /** True when the registry records that the agent's events are in files (hybrid mode). */
  async hasFileEvents(agentId: string): Promise<boolean> {
    const rows = await this.db.query<{ files: boolean }>(this.fileEventsSql, [agentId], true);
    return rows[0]?.files === true;
  }

  async *readPages(agentId: string, opts: ReadEventsOptions): AsyncGenerator<Timeline[]> {
    await this.idle();
    if (await this.hasFileEvents(agentId)) {
      throw eventModeMismatch('file', { backend: 'postgres', operation: 'readEvents', agentId });
    }
    const since = typeof opts.since?.seq === 'number' ? opts.since.seq : undefined;
    // Options were checked by the store (eventFilter); null means "no filter", as everywhere.
    const channel = opts.channel ?? undefined;
    const filters: string[] = [];
    const params: unknown[] = [agentId];
    if (since !== undefined) {
      params.push(since);
      filters.push(`seq > $${params.length}`);
    }
    if (channel !== undefined) {
      params.push(columnKey(channel));
      filters.push(`channel_key = $${params.length}`);
    }
    const where = ['agent_id = $1', ...filters].join(' AND ');
    let lastId = 0;
    if (since !== undefined) {
      // Seqs mostly grow with ids: start the keyset walk at the first entry
      // after `since` instead of filtering the agent's whole stream from its
      // beginning. The subquery (OFFSET 0 keeps it one) finds that entry
      // through the (agent_id, seq) index, visiting only the entries after
      // `since`: as a bare min(id) the planner may instead walk the primary
      // key from the stream's start, which on a table without statistics it
      // prices as cheap (a resume near the end would then read everything).
      const start = await this.db.query<{ id: number | null }>(
        `SELECT min(id) AS id FROM (SELECT id FROM ${this.events} WHERE ${where} OFFSET 0) AS after_since`,
        params,
        true,
      );
      const first = start[0]?.id;
      if (first === null || first === undefined) return;
      lastId = first - 1;
    }
    const cursorParam = params.length + 1;
    // The limit is a sub-select, which the planner cannot read: it then
    // plans for a fraction of the rows, where the walk of the index in id
    // order, which stops at the limit, is cheapest whatever the statistics
    // say. With a literal limit on a table not yet analysed (a burst appended
    // and read at once), it estimates a handful of rows per agent and picks
    // a bitmap scan plus a sort, which reads and sorts the agent's whole
    // remaining stream for every page.
    //
    // A page also ends at the event that brings it to `pageBytes` of JSON:
    // the running sum over the page's rows is taken by the server (from the
    // stored size, without reading the values), so no more than that is sent.
    // The next page asks for as many rows as fit at the largest event of the
    // one before (src/paged-iterable.ts).
    const pageSql = this.db.statement(`SELECT id, timeline_json, size FROM (
        SELECT id, timeline_json, octet_length(timeline_json) AS size,
          sum(octet_length(timeline_json)) OVER (ORDER BY id) AS running
        FROM ${this.events}
        WHERE ${where} AND id > $${cursorParam} ORDER BY id LIMIT (SELECT $${cursorParam + 1}::int)
      ) AS page
      WHERE running - size < $${cursorParam + 2} ORDER BY id`);
    const context = { backend: 'postgres', operation: 'readEvents', agentId } as const;
    const sizer = new EventPageSizer(this.pageSize, this.pageBytes);
    for (;;) {
      const rows = await this.db.query<{ id: number; timeline_json: string; size: number }>(
        pageSql,
        [...params, lastId, sizer.start(), this.pageBytes],
        true,
      );
      for (const row of rows) sizer.add(row.size);
      const more = sizer.end();
      if (rows.length === 0) return;
      lastId = (rows[rows.length - 1] as { id: number }).id;
      yield rows.map((row) => decodeJson<Timeline>(row.timeline_json, context));
      if (!more) return;
    }
  }

  idle(): Promise<void> {
    return this.batcher.idle();
  }

  async agentIds(): Promise<string[]> {
    return [];
  }

  async hasOutsideRegistry(): Promise<boolean> {
    // Appends register their agent in the same statement.
    return false;
  }

  async deleteWithin(tx: Transaction, agentId: string): Promise<void> {
    await tx.query(`DELETE FROM ${this.events} WHERE agent_id = $1`, [agentId]);
  }

  async deleteAfterCommit(): Promise<void> {}

  async count(): Promise<number> {
    const rows = await this.db.query<{ n: number }>(`SELECT count(*) AS n FROM ${this.events}`, [], true);
    return rows[0]?.n ?? 0;
  }

  async check(agentId: string): Promise<string[]> {
    if (await this.hasFileEvents(agentId)) {
      return [eventModeProblem('file')];
    }
    const rows = await this.db.query<{ id: number }>(
      // Stored text that does not parse as JSON: cheap to find server-side
      // without shipping the stream (pg_input_is_valid needs PostgreSQL 16).
      `SELECT id FROM ${this.events} WHERE agent_id = $1 AND timeline_json !~ '^\\s*\\{.*\\}\\s*$' ORDER BY id LIMIT 20`,
      [agentId],
      true,
    );
    return rows.map((row) => `event row ${row.id} does not hold a JSON object`);
  }

  async close(): Promise<void> {
    await this.batcher.idle();
  }
}

/**
 * Hybrid mode: events in per-agent append-only files (`FileEventLog`), which
 * batches concurrent appends into one write and one fsync per agent.
 *
 * The agent is also registered in the database with `event_files` set, so
 * that `checkConsistency` can tell a missing file from an agent that never
 * had one; the log does it after the agent's first written batch, and a
 * failed registration neither rejects the appends nor hides the agent
 * (`list`/`exists` read the files too). See `FileEventLog`.
 */
export class FileEventStorage implements EventStorage {
  readonly mode = 'file' as const;
  private readonly log: FileEventLog;
  private readonly markSql: Statement;
  private readonly admitSql: Statement;
  private readonly rowsSql: Statement;
  private readonly deleteRowsSql: Statement;

  constructor(
    private readonly db: PostgresDatabase,
    baseDir: string,
    fsync: boolean,
  ) {
    this.log = new FileEventLog({
      baseDir,
      fsync,
      // The log types errors generically; pg's are typed here first (a lost
      // connection has shapes only the pg reading knows).
      admitAgent: (agentId) =>
        this.admit(agentId).catch((error: unknown) => {
          throw db.wrapError(error, { backend: 'postgres', operation: 'appendEvent', agentId });
        }),
      registerAgent: (agentId) =>
        this.mark(agentId).catch((error: unknown) => {
          throw db.wrapError(error, { backend: 'postgres', operation: 'appendEvent', agentId });
        }),
    });
    const agents = db.table('kode_agents');
    const events = db.table('kode_events');
    // Records the event file; a live tombstone (a delete by another store
    // after `admit`) stays, and is reported so that the log removes the file.
    this.markSql = db.statement(`INSERT INTO ${agents} AS a (agent_id, event_files) VALUES ($1, true)
      ON CONFLICT (agent_id) DO UPDATE
        SET event_files = a.event_files OR a.deleted_at_ms IS NULL OR a.deleted_at_ms <= $2,
          deleted_at_ms = CASE WHEN a.deleted_at_ms > $2 THEN a.deleted_at_ms END
      RETURNING deleted_at_ms`);
    this.admitSql =
      db.statement(`SELECT (SELECT deleted_at_ms FROM ${agents} WHERE agent_id = $1) AS deleted_at_ms,
      EXISTS (SELECT 1 FROM ${events} WHERE agent_id = $1) AS in_database`);
    this.rowsSql = db.statement(`SELECT EXISTS (SELECT 1 FROM ${events} WHERE agent_id = $1) AS in_database`);
    this.deleteRowsSql = db.statement(`DELETE FROM ${events} WHERE agent_id = $1`);
  }

  /**
   * Before the agent's file is created: a deleted agent's late events are
   * discarded, and an agent whose events are in the database is refused (its
   * stream must not be split across two places).
   */
  private async admit(agentId: string): Promise<boolean> {
    const [row] = await this.db.query<{ deleted_at_ms: number | null; in_database: boolean }>(
      this.admitSql,
      [agentId],
      true,
    );
    if (tombstoneLive(row?.deleted_at_ms, Date.now())) return false;
    if (row?.in_database) {
      throw eventModeMismatch('database', { backend: 'postgres', operation: 'appendEvent', agentId });
    }
    return true;
  }

  /** Records that the agent's events are in files; false when it is a live tombstone. */
  private async mark(agentId: string): Promise<boolean> {
    const [row] = await this.db.query<{ deleted_at_ms: number | null }>(
      this.markSql,
      [agentId, Date.now() - DELETED_AGENT_RETENTION_MS],
      true,
    );
    return row?.deleted_at_ms === null;
  }

  /** True when the agent has rows in the events table (database mode). */
  private async hasDatabaseEvents(agentId: string): Promise<boolean> {
    const [row] = await this.db.query<{ in_database: boolean }>(this.rowsSql, [agentId], true);
    return row?.in_database === true;
  }

  append(agentId: string, event: EncodedTimeline): Promise<void> {
    return this.log.appendEncoded(agentId, event.json);
  }

  async *readPages(agentId: string, opts: ReadEventsOptions): AsyncGenerator<Timeline[]> {
    if (await this.hasDatabaseEvents(agentId)) {
      throw eventModeMismatch('database', { backend: 'postgres', operation: 'readEvents', agentId });
    }
    // The log waits for this agent's appends made so far (their registration included).
    yield* this.log.readPages(agentId, opts);
  }

  idle(): Promise<void> {
    return this.log.idle();
  }

  async agentIds(prefix: string | undefined): Promise<string[]> {
    const ids = await this.log.listAgentIds();
    return prefix === undefined ? ids : ids.filter((id) => id.startsWith(prefix));
  }

  hasOutsideRegistry(agentId: string): Promise<boolean> {
    return this.log.has(agentId);
  }

  /** Rows an agent kept from database mode go with it too (this store refuses to read them). */
  async deleteWithin(tx: Transaction, agentId: string): Promise<void> {
    await tx.query(this.deleteRowsSql, [agentId]);
  }

  deleteAfterCommit(agentId: string): Promise<void> {
    return this.log.delete(agentId);
  }

  async count(): Promise<undefined> {
    return undefined;
  }

  async check(agentId: string): Promise<string[]> {
    const issues = await this.log.check(agentId);
    if (await this.hasDatabaseEvents(agentId)) {
      issues.push(eventModeProblem('database'));
    }
    return issues;
  }

  async close(): Promise<void> {
    await this.idle();
    await this.log.close();
  }
}
