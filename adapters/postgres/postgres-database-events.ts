import type { EventFields } from '../../src/agent/agent-backend.js';
import { AppendBatcher, type BatchRefusals } from '../../src/agent/append-batcher.js';
import { DELETED_AGENT_RETENTION_MS } from '../../src/agent/deleted-agents.js';
import type { EventStorage, PendingEvent } from '../../src/agent/event-storage.js';
import {
  BUFFERED_PAGE_BYTES,
  BYTE_CUT_PAGE_SIZE,
  EventPageSizer,
  JsonPageWriter,
  type Page,
} from '../../src/agent/paged-iterable.js';
import { eventModeMismatch, eventModeProblem } from '../../src/hybrid/event-modes.js';
import type { ReadEventsOptions, Timeline } from '../../src/types.js';
import { columnKey } from './postgres-column-keys.js';
import type { PostgresConnection, Statement } from './postgres-connection.js';

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
  private readonly batcher: AppendBatcher<PendingEvent>;
  private readonly insertSql: Statement;
  private readonly fileEventsSql: Statement;
  private readonly events: string;

  constructor(
    private readonly db: PostgresConnection,
    private readonly pageSize = BYTE_CUT_PAGE_SIZE,
    private readonly pageBytes = BUFFERED_PAGE_BYTES,
  ) {
    this.events = db.table('kode_events');
    const agents = db.table('kode_agents');
    this.insertSql = db.statement(`
      WITH registered AS (
        INSERT INTO ${agents} AS a (agent_id)
        SELECT DISTINCT id FROM unnest($1::text[]) AS id ORDER BY id
        ON CONFLICT (agent_id) DO UPDATE
          SET deleted_at_ms = CASE WHEN a.deleted_at_ms > $5 THEN a.deleted_at_ms END,
            last_write_ms = excluded.last_write_ms
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

  append(agentId: string, json: string, fields: EventFields): Promise<void> {
    return this.batcher.enqueue({ agentId, json, fields });
  }

  private async write(batch: PendingEvent[]): Promise<BatchRefusals<PendingEvent> | undefined> {
    // Not retried: if the connection dies during the INSERT, whether it
    // committed is unknown, and a second INSERT could store the batch twice.
    const refused = await this.db.query<{ agent_id: string }>(this.insertSql, [
      batch.map((p) => p.agentId),
      batch.map((p) => p.fields.seq),
      batch.map((p) => (p.fields.channel === null ? null : columnKey(p.fields.channel))),
      batch.map((p) => p.json),
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

  async *readPages(agentId: string, opts: ReadEventsOptions): AsyncGenerator<Page<Timeline>> {
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
    // The frame is ROWS, not the default RANGE: ids are unique, and without
    // peers to look for, the window node took a fifth less time (EXPLAIN
    // ANALYZE, 680 rows of ~1.5 KB: 0.36-0.37 ms against 0.43-0.48 ms).
    // The next page asks for as many rows as fit at the largest event of the
    // one before (src/agent/paged-iterable.ts).
    //
    // A page is at most BUFFERED_PAGE_BYTES of JSON, since the driver
    // hands it over only whole, and its events are parsed one at a time as
    // they are handed out (JsonPage).
    const pageSql = this.db.statement(`SELECT id, timeline_json, size FROM (
        SELECT id, timeline_json, octet_length(timeline_json) AS size,
          sum(octet_length(timeline_json)) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS running
        FROM ${this.events}
        WHERE ${where} AND id > $${cursorParam} ORDER BY id LIMIT (SELECT $${cursorParam + 1}::int)
      ) AS page
      WHERE running - size < $${cursorParam + 2} ORDER BY id`);
    const context = { backend: 'postgres', operation: 'readEvents', agentId } as const;
    const sizer = new EventPageSizer(this.pageSize, this.pageBytes);
    const pages = new JsonPageWriter<Timeline>(context);
    for (;;) {
      const limit = sizer.start();
      let last: number | undefined;
      await this.db.eachRow(pageSql, [...params, lastId, limit, this.pageBytes], () => {
        // A retried page starts again (the limit is the same: it depends only on the page before).
        sizer.start();
        pages.start();
        last = undefined;
        return (row) => {
          pages.add(row[1] as string);
          last = row[0] as number;
          sizer.add(row[2] as number);
        };
      });
      const more = sizer.end();
      if (pages.length === 0 || last === undefined) return;
      lastId = last;
      yield pages.finish();
      if (!more) return;
    }
  }

  idle(): Promise<void> {
    return this.batcher.idle();
  }

  async agentIdsOutsideDatabase(): Promise<string[]> {
    return [];
  }

  async hasOutsideDatabase(): Promise<boolean> {
    // Appends register their agent in the same statement.
    return false;
  }

  async deleteOutsideDatabase(): Promise<void> {}

  async lastWriteOutsideDatabase(): Promise<undefined> {
    return undefined;
  }

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
