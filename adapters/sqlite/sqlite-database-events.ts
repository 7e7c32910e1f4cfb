import type { EventFields } from '../../src/agent/agent-backend.js';
import { AppendBatcher, type BatchRefusals } from '../../src/agent/append-batcher.js';
import type { EventStorage, PendingEvent } from '../../src/agent/event-storage.js';
import {
  BYTE_CUT_PAGE_SIZE,
  EVENT_PAGE_BYTES,
  EventPageSizer,
  JsonPageWriter,
  type Page,
} from '../../src/agent/paged-iterable.js';
import { eventModeMismatch, eventModeProblem } from '../../src/hybrid/event-modes.js';
import type { ReadEventsOptions, Timeline } from '../../src/types.js';
import type { SqliteStatement } from './sqlite-config.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { wrapSqliteError } from './sqlite-errors.js';
import { eventPageQuery } from './sqlite-queries.js';
import { admitEvents, type EventAdmission, hasFileEvents } from './sqlite-registry.js';

/**
 * The average event size (of the page before) from which a page's texts are
 * copied into the page's buffer, read as blobs where the file keeps UTF-8;
 * below it, the page holds the strings SQLite's texts come as. A blob comes
 * as a Buffer that better-sqlite3 allocates for each value, and a text
 * copied into the buffer is encoded and later decoded again: fixed costs
 * that small events do not repay, while the strings of a page of small
 * events are few bytes to hold. Measured on one file, CPU time, interleaved:
 * 20,000 events of ~250 B read ~20% faster as text than as blobs, and
 * copying those strings into the page cost ~13% of the read (a profile);
 * 1,000,000 events of ~1.5 KB read ~35% faster as blobs than as text.
 */
const COPY_FROM_BYTES = 768;

/** A row of an event page. */
interface EventRow {
  id: number;
  /** Its UTF-8 bytes when read as a blob (`eventPageQuery`). */
  timeline_json: string | Uint8Array;
}

/**
 * Reads one page into `pages`, rows one at a time until they hold
 * `pageBytes` of JSON (all of them without `iterate`), measuring each with
 * `sizer`; the id of the last row read, if any. With `copy` every text goes
 * into the page's buffer (a blob as it is, a string encoded), else each
 * string is held as it came (`COPY_FROM_BYTES`).
 */
function readEventPage(
  statement: SqliteStatement,
  parameters: unknown[],
  sizer: EventPageSizer,
  pages: JsonPageWriter<Timeline>,
  copy: boolean,
): number | undefined {
  // A busy database runs the read again: the page starts over.
  sizer.start();
  pages.start();
  const rows = statement.iterate
    ? (statement.iterate(...parameters) as IterableIterator<EventRow>)
    : (statement.all(...parameters) as EventRow[]);
  let last: number | undefined;
  for (const row of rows) {
    const text = row.timeline_json;
    if (copy || typeof text !== 'string') pages.add(text);
    else pages.hold(text);
    last = row.id;
    // Leaving the loop resets the statement: SQLite reads no further.
    if (sizer.add(text.length)) break;
  }
  return last;
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
  /**
   * Whether the database keeps text as UTF-8 (read once; fixed when the
   * file was made): only then are event texts read as their bytes.
   */
  private utf8: boolean | undefined;

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

  async *readPages(agentId: string, filter: ReadEventsOptions): AsyncGenerator<Page<Timeline>> {
    await this.batcher.idle();
    if (await this.connection.read(() => hasFileEvents(this.connection, agentId))) {
      throw eventModeMismatch('file', { backend: 'sqlite', operation: 'readEvents', agentId });
    }
    this.utf8 ??= await this.connection.read(
      () => (this.connection.statement('PRAGMA encoding').get() as { encoding: string }).encoding === 'UTF-8',
    );
    let lastId = 0;
    // Keyset paging: each page is its own short read, so writers are never
    // held up by a slow consumer. A page ends at `pageSize` events or
    // `pageBytes` of JSON (rows are read one at a time and the read stops
    // there), and the next asks for as many as fit at the largest event of
    // the page before (src/agent/paged-iterable.ts), so memory stays bounded
    // whatever the size of the events.
    const sizer = new EventPageSizer(this.pageSize, this.pageBytes);
    const pages = new JsonPageWriter<Timeline>({ backend: 'sqlite', operation: 'readEvents', agentId });
    for (;;) {
      const copy = sizer.averageBefore >= COPY_FROM_BYTES;
      const page = eventPageQuery(agentId, lastId, filter, sizer.start(), copy && this.utf8);
      const last = await this.connection.read(() =>
        readEventPage(this.connection.statement(page.sql), page.parameters, sizer, pages, copy),
      );
      const more = sizer.end();
      if (last === undefined) return;
      lastId = last;
      yield pages.finish();
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
