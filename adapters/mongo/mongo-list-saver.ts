import { randomUUID } from 'node:crypto';
import {
  commonPrefixLength,
  pairFirstSavedTimes,
  type SavedTailItem,
} from '../../src/agent/record-fields.js';
import type { MongoDocument, MongoSession } from './mongo-config.js';
import { type OpenMongo, runAtomically, withSession } from './mongo-connection.js';
import { registration } from './mongo-registry.js';

/**
 * Incremental saves of the lists the SDK re-saves whole after every step
 * (messages, tool-call records), so that a save costs O(new items):
 *
 * 1. In the agent's `<prefix>agents` document, swap the list's revision for a
 *    fresh random one, getting the previous one back (`findOneAndUpdate`,
 *    `returnDocument: 'before'`). This also registers the agent.
 * 2. If the previous revision is the one this store object wrote last, the
 *    stored list is the one it remembers; otherwise (another store object or
 *    process wrote since, or it was never cached) read the stored texts.
 *    Revisions are random, never counters, so a list deleted and written
 *    again elsewhere can never be mistaken for the cached one.
 * 3. One ordered `bulkWrite`: delete the stored items from the first that
 *    differs, then insert the new ones; items of the common prefix are not
 *    touched and keep their `createdAt`. When the stored list had items past
 *    the prefix (an insert in the middle, a summary replacing the head), their
 *    first-saved times are read first, and each new item equal to one of them
 *    keeps its time (`pairFirstSavedTimes`); an append reads nothing more.
 *
 * With transactions all of it is one transaction. Without (standalone server)
 * the order makes failures safe: the revision changes *before* the items, so
 * no cache anywhere trusts a list that a failed save left half-written, and
 * an ordered bulkWrite stopped part-way leaves a prefix of the old or of the
 * new list (never a mix with gaps), which the next save, or a retry,
 * completes. The store queues the saves of one agent (AgentWriteQueue), so
 * one saver never runs two saves of the same agent at once.
 */

/** How one list maps onto its collection; `F` is the fields of an item (`EncodedList`). */
export interface ListSpec<F> {
  collection: 'messages' | 'tool_calls';
  /** Field of the agent document holding the list's revision. */
  revisionField: string;
  /**
   * Field of the item documents holding when the item was first saved, for
   * lists stamped with the save time (messages); `toDocument` gets that time
   * as `savedAt`. Without it `savedAt` is always the time of this save.
   */
  firstSavedField?: string;
  toDocument(agentId: string, index: number, json: string, fields: F, savedAt: number): MongoDocument;
}

interface CachedList {
  revision: string;
  texts: readonly string[];
  chars: number;
}

/**
 * The last list each agent saved through this store object, least recently
 * used first out, bounded by agent count and by total characters so that a
 * store serving many agents does not hold all their conversations.
 */
export class SavedListCache {
  private readonly entries = new Map<string, CachedList>();
  private chars = 0;

  constructor(
    private readonly maxAgents = 256,
    private readonly maxChars = 64 * 1024 * 1024,
  ) {}

  get(agentId: string): CachedList | undefined {
    const entry = this.entries.get(agentId);
    if (entry) {
      // Re-inserting moves it to the most recently used end.
      this.entries.delete(agentId);
      this.entries.set(agentId, entry);
    }
    return entry;
  }

  set(agentId: string, revision: string, texts: readonly string[]): void {
    this.delete(agentId);
    const chars = texts.reduce((sum, text) => sum + text.length, 0);
    if (chars > this.maxChars) return;
    this.entries.set(agentId, { revision, texts, chars });
    this.chars += chars;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxAgents && this.chars <= this.maxChars) break;
      this.entries.delete(oldest);
      this.chars -= entry.chars;
    }
  }

  delete(agentId: string): void {
    const entry = this.entries.get(agentId);
    if (!entry) return;
    this.entries.delete(agentId);
    this.chars -= entry.chars;
  }

  get size(): number {
    return this.entries.size;
  }

  get totalChars(): number {
    return this.chars;
  }
}

/** Saves one kind of list incrementally; see the module comment. */
export class MongoListSaver<F> {
  readonly cache = new SavedListCache();

  constructor(private readonly spec: ListSpec<F>) {}

  /** Replaces the agent's stored list with `texts`; `fields(i)` is asked only for the items written. */
  async save(
    open: OpenMongo,
    agentId: string,
    texts: readonly string[],
    fields: (index: number) => F,
  ): Promise<void> {
    try {
      const revision = await runAtomically(open, (session) =>
        this.write(open, session, agentId, texts, fields),
      );
      this.cache.set(agentId, revision, texts);
    } catch (error) {
      this.cache.delete(agentId);
      throw error;
    }
  }

  /** Drops what this object remembers of the agent (after `delete`). */
  forget(agentId: string): void {
    this.cache.delete(agentId);
  }

  private async write(
    open: OpenMongo,
    session: MongoSession | undefined,
    agentId: string,
    texts: readonly string[],
    fields: (index: number) => F,
  ): Promise<string> {
    const { revisionField } = this.spec;
    const collection = open.collections[this.spec.collection];
    const revision = randomUUID();
    const before = await open.collections.agents.findOneAndUpdate(
      { _id: agentId },
      { $set: { [revisionField]: revision }, ...registration() },
      withSession(session, { upsert: true, returnDocument: 'before', projection: { [revisionField]: 1 } }),
    );
    const cached = this.cache.get(agentId);
    const previous = before?.[revisionField];
    const stored =
      cached && typeof previous === 'string' && previous === cached.revision
        ? cached.texts
        : await this.storedTexts(open, session, agentId);
    const keep = commonPrefixLength(stored, texts);
    const savedTimes = pairFirstSavedTimes(
      await this.storedTail(open, session, agentId, stored, keep),
      texts.slice(keep),
      Date.now(),
    );
    // The delete is sent even when nothing follows the prefix: an empty
    // index range costs nothing, and it guarantees that the inserts below
    // never meet a leftover item, whatever was believed stored.
    const operations: MongoDocument[] = [{ deleteMany: { filter: { agentId, index: { $gte: keep } } } }];
    for (let i = keep; i < texts.length; i++) {
      const savedAt = savedTimes[i - keep] as number;
      const document = this.spec.toDocument(agentId, i, texts[i] as string, fields(i), savedAt);
      operations.push({ insertOne: { document } });
    }
    await collection.bulkWrite(operations, withSession(session, { ordered: true }));
    return revision;
  }

  /**
   * The stored items past the common prefix with their first-saved times;
   * empty (and nothing read) when the list has no such field or the stored
   * list ends at the prefix, which is the common append.
   */
  private async storedTail(
    open: OpenMongo,
    session: MongoSession | undefined,
    agentId: string,
    stored: readonly string[],
    keep: number,
  ): Promise<SavedTailItem[]> {
    const field = this.spec.firstSavedField;
    if (field === undefined || keep >= stored.length) return [];
    const docs = await open.collections[this.spec.collection]
      .find(
        { agentId, index: { $gte: keep, $lt: stored.length } },
        withSession(session, { projection: { index: 1, [field]: 1 } }),
      )
      .sort({ index: 1 })
      .toArray();
    return savedTailItems(stored, docs, field);
  }

  /** The stored texts in order, up to the first gap (a gap can only follow an interrupted write). */
  private async storedTexts(
    open: OpenMongo,
    session: MongoSession | undefined,
    agentId: string,
  ): Promise<string[]> {
    const docs = await open.collections[this.spec.collection]
      .find({ agentId }, withSession(session, { projection: { index: 1, json: 1 } }))
      .sort({ index: 1 })
      .toArray();
    const texts: string[] = [];
    for (const doc of docs) {
      if (doc.index !== texts.length || typeof doc.json !== 'string') break;
      texts.push(doc.json);
    }
    return texts;
  }
}

/**
 * The stored tail as `pairFirstSavedTimes` takes it: each item document's
 * first-saved time (`field`) with the stored text at its index. Documents
 * without a finite time, or with an index outside `stored`, are left out
 * (such an item is simply not paired, so it is stamped with the save time).
 */
export function savedTailItems(
  stored: readonly string[],
  docs: readonly MongoDocument[],
  field: string,
): SavedTailItem[] {
  const tail: SavedTailItem[] = [];
  for (const doc of docs) {
    const index = doc.index;
    const savedAt = doc[field];
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= stored.length)
      continue;
    if (typeof savedAt !== 'number' || !Number.isFinite(savedAt)) continue;
    tail.push({ json: stored[index] as string, savedAt });
  }
  return tail;
}
