import type { EventFields } from '../../src/agent/agent-backend.js';
import { AppendBatcher, type BatchRefusals } from '../../src/agent/append-batcher.js';
import type { EventStorage, PendingEvent } from '../../src/agent/event-storage.js';
import {
  EVENT_PAGE_BYTES,
  EVENT_PAGE_SIZE,
  EventPageSizer,
  JsonPageWriter,
  type Page,
} from '../../src/agent/paged-iterable.js';
import type { AnyKodeStoreError, ErrorContext } from '../../src/errors.js';
import { eventModeMismatch, eventModeProblem } from '../../src/hybrid/event-modes.js';
import type { ReadEventsOptions, Timeline } from '../../src/types.js';
import type { MongoDocument } from './mongo-config.js';
import type { OpenMongo } from './mongo-connection.js';
import { jsonText, toEventDocument } from './mongo-documents.js';
import { EVENT_SORT, eventPageFilter } from './mongo-queries.js';
import { counterValue, isLiveTombstone, LIVE_AGENT, registerForEvents } from './mongo-registry.js';

/** Appends written by one `insertMany` at most. */
const MAX_EVENT_BATCH = 1000;

/** A block of insertion counters reserved for one agent in one batch: `from` ..= `to`. */
interface ReservedBlock {
  agentId: string;
  from: number;
  to: number;
  /** The server's time of the registration that reserved it (the events' `appendedAt`). */
  at: Date | undefined;
}

/**
 * Events as documents in `<prefix>events`, ordered by a per-agent insertion
 * counter kept in the agent's `<prefix>agents` document (`seq`).
 *
 * Un-awaited appends go through one `AppendBatcher`: each batch reserves one
 * block of counter values per agent with a single `findOneAndUpdate` `$inc`
 * (which also registers the agent, for `exists` and `list`), numbers its
 * events in call order, and writes them with one ordered `insertMany`. The
 * counter is unique across processes because the server applies each `$inc`
 * atomically; client clocks and ObjectIds play no part in the order (an
 * ObjectId's counter wraps and its timestamp follows the wall clock, neither
 * of which is an order).
 *
 * A batch is all or nothing: if `insertMany` fails part-way, the documents it
 * did insert are deleted again (they are exactly the reserved counter values),
 * so no rejected append stays stored. This needs no transaction, so appends
 * never contend with the transactions of other writes.
 */
export class DatabaseEventStorage implements EventStorage {
  readonly mode = 'database' as const;
  private readonly batcher: AppendBatcher<PendingEvent>;

  /**
   * `wrapError` types the driver's errors of a rejected append (the store's
   * frame does not wrap what an append's promise rejects with); `pageSize`
   * stays `EVENT_PAGE_SIZE`: a page is fetched whole before it is measured.
   */
  constructor(
    private readonly connection: () => Promise<OpenMongo>,
    private readonly wrapError: (error: unknown, ctx: Omit<ErrorContext, 'cause'>) => AnyKodeStoreError,
    private readonly pageSize = EVENT_PAGE_SIZE,
    private readonly pageBytes = EVENT_PAGE_BYTES,
  ) {
    this.batcher = new AppendBatcher((batch) => this.writeBatch(batch), MAX_EVENT_BATCH);
  }

  append(agentId: string, json: string, fields: EventFields): Promise<void> {
    return this.batcher.enqueue({ agentId, json, fields }).catch((error: unknown) => {
      throw this.wrapError(error, { backend: 'mongo', operation: 'appendEvent', agentId });
    });
  }

  private async writeBatch(batch: PendingEvent[]): Promise<BatchRefusals<PendingEvent> | undefined> {
    const { collections } = await this.connection();
    const perAgent = new Map<string, number>();
    for (const item of batch) perAgent.set(item.agentId, (perAgent.get(item.agentId) ?? 0) + 1);
    const blocks: ReservedBlock[] = [];
    const inFiles = new Set<string>();
    // Outside any transaction, so these may run side by side. A deleted
    // agent's late events get no block: they are acknowledged and discarded.
    // An agent whose events are in files (hybrid mode) gets none either: its
    // events are refused, never split across two places (the counter values
    // it reserved are a gap, which keyset reads step over).
    await Promise.all(
      [...perAgent].map(async ([agentId, count]) => {
        const agent = await registerForEvents(
          collections.agents,
          agentId,
          { $inc: { seq: count } },
          { projection: { seq: 1, eventFiles: 1, lastWriteAt: 1 } },
        );
        if (!agent) return;
        if (agent.eventFiles === true) {
          inFiles.add(agentId);
          return;
        }
        const to = counterValue(agent.seq);
        const at = agent.lastWriteAt instanceof Date ? agent.lastWriteAt : undefined;
        blocks.push({ agentId, from: to - count + 1, to, at });
      }),
    );
    const refusals: BatchRefusals<PendingEvent> | undefined =
      inFiles.size === 0
        ? undefined
        : ({ agentId }) =>
            inFiles.has(agentId)
              ? eventModeMismatch('file', { backend: 'mongo', operation: 'appendEvent', agentId })
              : undefined;
    if (blocks.length === 0) return refusals;
    const next = new Map(blocks.map((block) => [block.agentId, block.from]));
    const appendedAt = new Map(blocks.map((block) => [block.agentId, block.at]));
    const documents = batch.flatMap((item) => {
      const seq = next.get(item.agentId);
      if (seq === undefined) return [];
      next.set(item.agentId, seq + 1);
      const doc = toEventDocument(item.agentId, seq, item.json, item.fields, appendedAt.get(item.agentId));
      return [doc as unknown as MongoDocument];
    });
    const removeBlocks = (of: readonly ReservedBlock[]) =>
      Promise.allSettled(
        of.map((block) =>
          collections.events.deleteMany({
            agentId: block.agentId,
            seq: { $gte: block.from, $lte: block.to },
          }),
        ),
      );
    try {
      await collections.events.insertMany(documents, { ordered: true });
    } catch (error) {
      await removeBlocks(blocks);
      throw error;
    }
    // A delete that came between the registration and the insert: its
    // tombstone is there now, and what this batch wrote for the agent goes.
    const deleted = await collections.agents
      .find(
        { _id: { $in: blocks.map((block) => block.agentId) }, deletedAt: { $ne: null } },
        {
          projection: { deletedAt: 1 },
        },
      )
      .toArray();
    const gone = new Set(deleted.filter((doc) => isLiveTombstone(doc)).map((doc) => String(doc._id)));
    if (gone.size > 0) await removeBlocks(blocks.filter((block) => gone.has(block.agentId)));
    return refusals;
  }

  /** True when the registry records that the (live) agent's events are in files (hybrid mode). */
  async hasFileEvents(agentId: string): Promise<boolean> {
    const { collections } = await this.connection();
    const doc = await collections.agents.findOne(
      { _id: agentId, eventFiles: true, ...LIVE_AGENT },
      { projection: { _id: 1 } },
    );
    return doc !== null;
  }

  async *readPages(agentId: string, filter: ReadEventsOptions): AsyncGenerator<Page<Timeline>> {
    await this.idle();
    const { collections } = await this.connection();
    const ctx = { backend: 'mongo', operation: 'readEvents', agentId };
    if (await this.hasFileEvents(agentId)) throw eventModeMismatch('file', ctx);
    // Keyset paging on the insertion counter: each page is a fresh, short
    // query, so a slow consumer never holds a server cursor (which would time
    // out after ten idle minutes), and entries appended meanwhile are seen once.
    // A page ends at `pageSize` events or `pageBytes` of JSON, and the next
    // one asks for as many events as fit at the previous page's largest, so a
    // stream of large events never brings much more than one page into memory
    // (where sizes jump, the driver's batch of one page may hold more, never
    // past the server's 16 MiB per batch). The page handed out holds its
    // JSON as bytes, each event parsed when it is read (JsonPageWriter).
    let after = 0;
    const sizer = new EventPageSizer(this.pageSize, this.pageBytes);
    const pages = new JsonPageWriter<Timeline>(ctx);
    for (;;) {
      const limit = sizer.start();
      pages.start();
      let last: MongoDocument | undefined;
      const cursor = collections.events
        .find(eventPageFilter(agentId, after, { sinceSeq: filter.since?.seq, channel: filter.channel }), {
          projection: { seq: 1, json: 1 },
        })
        .sort(EVENT_SORT)
        .limit(limit)
        .batchSize(limit);
      try {
        for await (const doc of cursor) {
          const json = jsonText(doc, ctx);
          pages.add(json);
          last = doc;
          if (sizer.add(json.length)) break;
        }
      } finally {
        await cursor.close();
      }
      const more = sizer.end();
      if (last === undefined) return;
      after = counterValue(last.seq);
      yield pages.finish();
      if (!more) return;
    }
  }

  async agentIdsOutsideDatabase(): Promise<string[]> {
    return [];
  }

  async lastWriteOutsideDatabase(): Promise<undefined> {
    return undefined;
  }

  async hasOutsideDatabase(): Promise<boolean> {
    return false;
  }

  async deleteOutsideDatabase(): Promise<void> {
    // The delete removes the event documents with the agent's others.
  }

  async check(agentId: string): Promise<string[]> {
    return (await this.hasFileEvents(agentId)) ? [eventModeProblem('file')] : [];
  }

  async count(): Promise<number | undefined> {
    const { collections } = await this.connection();
    return collections.events.estimatedDocumentCount();
  }

  idle(): Promise<void> {
    return this.batcher.idle();
  }

  async close(): Promise<void> {
    await this.idle();
  }
}
