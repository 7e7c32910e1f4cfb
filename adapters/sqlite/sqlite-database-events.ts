import type { EventFields } from '../../src/agent/agent-backend.js';
import { AppendBatcher, type BatchRefusals } from '../../src/agent/append-batcher.js';
import type { EventStorage, PendingEvent } from '../../src/agent/event-storage.js';
import { BYTE_CUT_PAGE_SIZE, EVENT_PAGE_BYTES, EventPageSizer } from '../../src/agent/paged-iterable.js';
import { eventModeMismatch, eventModeProblem } from '../../src/hybrid/event-modes.js';
import { decodeJson } from '../../src/json-codec.js';
import type { ReadEventsOptions, Timeline } from '../../src/types.js';
import type { SqliteStatement } from './sqlite-config.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { wrapSqliteError } from './sqlite-errors.js';
import { eventPageQuery } from './sqlite-queries.js';
import { admitEvents, type EventAdmission, hasFileEvents } from './sqlite-registry.js';

/** A row of an event page. */
interface EventRow {
  id: number;
  timeline_json: string;
}

/** The rows of one page, read one at a time until they hold `pageBytes` of JSON (all of them without `iterate`). */
function readEventPage(statement: SqliteStatement, parameters: unknown[], pageBytes: number): EventRow[] {
  if (!statement.iterate) return statement.all(...parameters) as EventRow[];
  const rows: EventRow[] = [];
  let bytes = 0;
  for (const row of statement.iterate(...parameters) as IterableIterator<EventRow>) {
    rows.push(row);
    bytes += row.timeline_json.length;
    // Leaving the loop resets the statement: SQLite reads no further.
    if (bytes >= pageBytes) break;
  }
  return rows;
}

/**
 * Events in the `events` table. Appends fired without awaiting are batched:
 * everything queued while one transaction commits goes into the next, so a
 * burst of streamed chunks costs one commit (and one fsync) rather than one
 * each, and the rowid order is the call order.
 */
export class DatabaseEventStorage implements EventStorage {
  readonly mode = 'database' as const;
  private readonly batcher: AppendBatcher<PendingEvent>;

  constructor(
    private readonly connection: SqliteConnection,
    private readonly pageSize = BYTE_CUT_PAGE_SIZE,
    private readonly pageBytes = EVENT_PAGE_BYTES,
  ) {
    this.batcher = new AppendBatcher(
      (batch) => this.writeBatch(batch),
      undefined,
      (error, { agentId }) =>
        wrapSqliteError(error, { backend: 'sqlite', operation: 'appendEvent', agentId }),
    );
  }

  append(agentId: string, json: string, fields: EventFields): Promise<void> {
    return this.batcher.enqueue({ agentId, json, fields });
  }

  async *readPages(agentId: string, filter: ReadEventsOptions): AsyncGenerator<Timeline[]> {
    await this.batcher.idle();
    if (await this.connection.read(() => hasFileEvents(this.connection, agentId))) {
      throw eventModeMismatch('file', { backend: 'sqlite', operation: 'readEvents', agentId });
    }
    let lastId = 0;
    // Keyset paging: each page is its own short read, so writers are never
    // held up by a slow consumer. A page ends at `pageSize` events or
    // `pageBytes` of JSON (rows are read one at a time and the read stops
    // there), and the next asks for as many as fit at the largest event of
    // the page before (src/agent/paged-iterable.ts), so memory stays bounded
    // whatever the size of the events.
    const sizer = new EventPageSizer(this.pageSize, this.pageBytes);
    for (;;) {
      const page = eventPageQuery(agentId, lastId, filter, sizer.start());
      // Measured after the read: a busy database runs the read again.
      const rows = await this.connection.read(() =>
        readEventPage(this.connection.statement(page.sql), page.parameters, this.pageBytes),
      );
      for (const row of rows) sizer.add(row.timeline_json.length);
      const more = sizer.end();
      if (rows.length === 0) return;
      lastId = rows[rows.length - 1]!.id;
      yield rows.map((row) =>
        decodeJson<Timeline>(row.timeline_json, { backend: 'sqlite', operation: 'readEvents', agentId }),
      );
      if (!more) return;
    }
  }

  async hasOutsideDatabase(): Promise<boolean> {
    return false;
  }

  async deleteOutsideDatabase(): Promise<void> {}

  async lastWriteOutsideDatabase(): Promise<undefined> {
    return undefined;
  }

  async agentIdsOutsideDatabase(): Promise<string[]> {
    return [];
  }

  async check(agentId: string): Promise<string[]> {
    if (!(await this.connection.read(() => hasFileEvents(this.connection, agentId)))) return [];
    return [eventModeProblem('file')];
  }

  async count(): Promise<number> {
    const row = (await this.connection.read(() =>
      this.connection.statement('SELECT count(*) AS n FROM events').get(),
    )) as { n: number };
    return row.n;
  }

  idle(): Promise<void> {
    return this.batcher.idle();
  }

  async close(): Promise<void> {
    await this.batcher.idle();
  }

  private async writeBatch(batch: PendingEvent[]): Promise<BatchRefusals<PendingEvent> | undefined> {
    const { connection } = this;
    const now = Date.now();
    // One registry look-up per agent per batch: it keeps a deleted agent's
    // late events out and refuses agents whose events live in files.
    const admissions = new Map<string, EventAdmission>();
    await connection.write(() => {
      admissions.clear(); // a group commit lost as a whole runs this body again
      const insert = connection.statement(
        'INSERT INTO events (agent_id, channel, seq, timeline_json, appended_at_ms) VALUES (?, ?, ?, ?, ?)',
      );
      for (const { agentId, json, fields } of batch) {
        let admission = admissions.get(agentId);
        if (admission === undefined) {
          admission = admitEvents(connection, agentId, now);
          admissions.set(agentId, admission);
        }
        if (admission === 'append') insert.run(agentId, fields.channel, fields.seq, json, now);
      }
    });
    if (![...admissions.values()].includes('refuse')) return undefined;
    return ({ agentId }) =>
      admissions.get(agentId) === 'refuse'
        ? eventModeMismatch('file', { backend: 'sqlite', operation: 'appendEvent', agentId })
        : undefined;
  }
}
