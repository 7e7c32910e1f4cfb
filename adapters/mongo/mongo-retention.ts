import type {
  AgentActivity,
  AgentScanQuery,
  EventPruneRule,
  PrunedRows,
  RemovedAgent,
  RetentionBackend,
} from '../../src/agent/agent-backend.js';
import type { AgentWriteQueue } from '../../src/agent/agent-write-queue.js';
import type { EventStorage } from '../../src/agent/event-storage.js';
import type { CompactResult } from '../../src/agent/retention.js';
import { eventModeMismatch } from '../../src/hybrid/event-modes.js';
import type { MongoCollection, MongoDocument } from './mongo-config.js';
import type { OpenMongo } from './mongo-connection.js';
import { DatabaseEventStorage } from './mongo-database-events.js';
import { agentIdPrefixFilter } from './mongo-queries.js';
import { counterValue, LIVE_AGENT, removeTombstonedAgent, tombstone } from './mongo-registry.js';
import { AGENT_COLLECTIONS, agentCollectionNames } from './mongo-schema.js';

const BACKEND = 'mongo';

/** What the retention of one `MongoAgentBackend` works with. */
export interface MongoRetentionParts {
  opened(): Promise<OpenMongo>;
  events: EventStorage;
  /** The backend's per-agent write order: a prune's removals queue behind the agent's writes. */
  writes: AgentWriteQueue;
  collectionPrefix: string;
  /** Drops what the backend caches of a removed agent (its saved lists). */
  forget(agentId: string): void;
}

/**
 * Retention on MongoDB (`store.prune`, `store.compact`; the rules are
 * applied once for every backend by src/agent/agent-prune.ts).
 *
 * Times: every write sets the registry's `lastWriteAt` to the server's time
 * and every event document its `appendedAt` (mongo-registry.ts), so one
 * clock judges a fleet of hosts. Documents written before the store
 * recorded times: an agent starts at its last `saveInfo` (migration 3), an
 * event is judged by its `bookmark.timestamp`, read here from its text.
 *
 * No long transaction: an inactive agent's delete is decided and made
 * visible in one atomic step, the conditional write of its tombstone
 * (`lastWriteAt` still before the policy's time), so a write that lands
 * first keeps the agent and one that lands later finds it deleted, as with
 * `delete`. Events go a bounded batch at a time, snapshots per agent.
 */
export class MongoRetention implements RetentionBackend {
  constructor(private readonly parts: MongoRetentionParts) {}

  async scanAgents(query: AgentScanQuery): Promise<AgentActivity[]> {
    const { collections } = await this.parts.opened();
    const ids = idRange(query.prefix, query.after);
    const docs =
      query.templateId === undefined
        ? await collections.agents
            .find({ ...ids, ...LIVE_AGENT }, { projection: { lastWriteAt: 1 } })
            .sort({ _id: 1 })
            .limit(query.limit)
            .toArray()
        : await this.scanTemplate(collections.infos, collections.agents, query, ids);
    const activity: AgentActivity[] = [];
    for (const doc of docs) {
      const agentId = String(doc._id);
      const known = doc.lastWriteAt instanceof Date ? doc.lastWriteAt.getTime() : null;
      const inFiles = await this.parts.events.lastWriteOutsideDatabase(agentId);
      activity.push({
        agentId,
        lastWriteMs: inFiles === undefined ? known : known === null ? inFiles : Math.max(known, inFiles),
      });
    }
    return activity;
  }

  /**
   * Live agents whose info has the template, in id order: infos (indexed by
   * template) a page at a time, each page's registry documents read by id,
   * until `limit` are found or the infos end, so that a page of ids without
   * a live registry document never ends the scan early.
   */
  private async scanTemplate(
    infos: MongoCollection,
    agents: MongoCollection,
    query: AgentScanQuery,
    ids: MongoDocument,
  ): Promise<MongoDocument[]> {
    const found: MongoDocument[] = [];
    let range = ids;
    while (found.length < query.limit) {
      const page = await infos
        .find({ ...range, templateId: query.templateId }, { projection: { _id: 1 } })
        .sort({ _id: 1 })
        .limit(query.limit)
        .toArray();
      if (page.length === 0) break;
      const live = await agents
        .find({ _id: { $in: page.map((doc) => doc._id) }, ...LIVE_AGENT }, { projection: { lastWriteAt: 1 } })
        .sort({ _id: 1 })
        .toArray();
      found.push(...live.slice(0, query.limit - found.length));
      if (page.length < query.limit) break;
      range = idRange(query.prefix, String(page[page.length - 1]?._id));
    }
    return found;
  }

  deleteIfInactive(agentId: string, before: number, dryRun: boolean): Promise<RemovedAgent | undefined> {
    const { events, writes } = this.parts;
    // In the agent's write queue, as delete: this store's writes made before land first.
    return writes.write(agentId, async () => {
      await events.idle();
      const fileWrittenAt = await events.lastWriteOutsideDatabase(agentId);
      if (fileWrittenAt !== undefined && fileWrittenAt >= before) return undefined;
      if (events instanceof DatabaseEventStorage && (await events.hasFileEvents(agentId))) {
        throw eventModeMismatch('file', { backend: BACKEND, operation: 'prune', agentId });
      }
      const open = await this.parts.opened();
      // `$lt` never matches a missing time: an agent of unknown activity is kept.
      const inactive = { _id: agentId, ...LIVE_AGENT, lastWriteAt: { $lt: new Date(before) } };
      const files = fileWrittenAt === undefined ? 0 : 1;
      if (dryRun) {
        const found = await open.collections.agents.findOne(inactive, { projection: { _id: 1 } });
        return found ? { ...(await storedOf(open, agentId)), files } : undefined;
      }
      const now = Date.now();
      // The decision and the delete in one atomic step (see the class comment).
      const judged = await open.collections.agents.updateOne(inactive, tombstone(now));
      if (judged.matchedCount === 0) return undefined;
      const removed = { ...(await storedOf(open, agentId)), files };
      await removeTombstonedAgent(open, agentId, now);
      await events.deleteOutsideDatabase(agentId);
      this.parts.forget(agentId);
      return removed;
    });
  }

  async pruneEvents(agentId: string, rule: EventPruneRule, dryRun: boolean): Promise<PrunedRows> {
    const { events } = this.parts;
    // Hybrid mode: the event storage rewrites the agent's file.
    if (events.pruneEvents) return events.pruneEvents(agentId, rule, dryRun);
    await events.idle();
    const collection = (await this.parts.opened()).collections.events;
    const scope: MongoDocument = { agentId };
    if (rule.channels !== undefined) scope.channel = { $in: rule.channels };
    if (rule.keepNewest !== undefined && rule.keepNewest > 0) {
      const newest = await nthNewest(collection, scope, 'seq', rule.keepNewest);
      if (newest === undefined) return { count: 0, bytes: 0 };
      scope.seq = { $lt: newest };
    }
    if (rule.olderThan === undefined) return removeOldest(collection, scope, rule.limit, dryRun);
    // Events from before `appendedAt` was recorded are older than every
    // event that has it: they go first, judged by their bookmark's time.
    const legacy = await this.legacyEventsBefore(collection, scope, rule.olderThan, dryRun, rule.limit);
    const timed = { ...scope, appendedAt: { $lt: new Date(rule.olderThan) } };
    if (dryRun) {
      const rest = await removeOldest(collection, timed, rule.limit, true);
      return { count: legacy.count + rest.count, bytes: legacy.bytes + rest.bytes };
    }
    if (legacy.ids.length > 0) await collection.deleteMany({ _id: { $in: legacy.ids } });
    const rest = await removeOldest(collection, timed, rule.limit - legacy.ids.length, false);
    return { count: legacy.count + rest.count, bytes: legacy.bytes + rest.bytes };
  }

  /**
   * The agent's events in `scope` without `appendedAt` whose
   * `bookmark.timestamp` is before `olderThan` (one without a timestamp is
   * kept): all of them for a dry run, at most `limit` otherwise.
   */
  private async legacyEventsBefore(
    collection: MongoCollection,
    scope: MongoDocument,
    olderThan: number,
    dryRun: boolean,
    limit: number,
  ): Promise<PrunedRows & { ids: unknown[] }> {
    const found = { count: 0, bytes: 0, ids: [] as unknown[] };
    const cursor = collection
      .find({ ...scope, appendedAt: null }, { projection: { json: 1 } })
      .sort({ seq: 1 })
      .batchSize(500);
    try {
      for await (const doc of cursor) {
        if (!dryRun && found.count >= limit) break;
        const json = typeof doc.json === 'string' ? doc.json : '';
        const time = bookmarkTime(json);
        if (time === undefined || time >= olderThan) continue;
        found.count++;
        found.bytes += Buffer.byteLength(json, 'utf8');
        if (!dryRun) found.ids.push(doc._id);
      }
    } finally {
      await cursor.close();
    }
    return found;
  }

  async pruneSnapshots(agentId: string, keepNewest: number, dryRun: boolean): Promise<PrunedRows> {
    await this.parts.writes.settled(agentId);
    const collection = (await this.parts.opened()).collections.snapshots;
    const scope: MongoDocument = { agentId };
    if (keepNewest > 0) {
      // Positions are fixed at a snapshot's first save: first-save order.
      const newest = await nthNewest(collection, scope, 'position', keepNewest);
      if (newest === undefined) return { count: 0, bytes: 0 };
      scope.position = { $lt: newest };
    }
    // An agent has few snapshots: all of them go in one step.
    return removeOldest(collection, scope, Number.MAX_SAFE_INTEGER, dryRun, 'position');
  }

  /**
   * MongoDB (WiredTiger) reuses the space of removed documents for new ones
   * by itself, and gives it back to the file system only through its
   * `compact` command, which an administrator runs per collection on each
   * member (it needs the `compact` privilege and holds some operations
   * back). So nothing is done here: the sizes say what the store's
   * collections hold and, where the server reports it (`freeStorageSize`,
   * MongoDB 4.4+ on WiredTiger), how much of that is free for reuse.
   */
  async compact(): Promise<CompactResult> {
    await this.parts.events.idle();
    const { db } = await this.parts.opened();
    const names = agentCollectionNames(this.parts.collectionPrefix);
    let size = 0;
    let free: number | undefined;
    for (const role of AGENT_COLLECTIONS) {
      const stats = await db.command({ collStats: names[role] });
      size += Number(stats.storageSize ?? 0) + Number(stats.totalIndexSize ?? 0);
      if (typeof stats.freeStorageSize === 'number') free = (free ?? 0) + stats.freeStorageSize;
    }
    return {
      bytesBefore: size,
      bytesAfter: size,
      ...(free === undefined ? {} : { reclaimableBytes: free }),
      action:
        'nothing done: MongoDB reuses the space of removed documents itself; its compact command (run by an administrator on each member, per collection) gives free space back to the file system',
    };
  }
}

/** Registry ids starting with `prefix` and after `after`. */
function idRange(prefix: string | undefined, after: string | undefined): MongoDocument {
  const range = agentIdPrefixFilter(prefix);
  if (after === undefined) return range;
  const bounds = (range._id ?? {}) as MongoDocument;
  return { _id: { ...bounds, $gt: after } };
}

/** The value of `field` of the `n`th newest document in `scope` (by `field`); undefined when there are fewer. */
async function nthNewest(
  collection: MongoCollection,
  scope: MongoDocument,
  field: 'seq' | 'position',
  n: number,
): Promise<number | undefined> {
  const [doc] = await collection
    .find(scope, { projection: { [field]: 1 } })
    .sort({ [field]: -1 })
    .skip(n - 1)
    .limit(1)
    .toArray();
  return doc ? counterValue(doc[field]) : undefined;
}

/**
 * Removes the oldest `limit` documents of `filter` (by `order`) and returns
 * how many went and their JSON's UTF-8 bytes, measured by the server; a dry
 * run counts every document of `filter` and removes nothing.
 */
async function removeOldest(
  collection: MongoCollection,
  filter: MongoDocument,
  limit: number,
  dryRun: boolean,
  order: 'seq' | 'position' = 'seq',
): Promise<PrunedRows> {
  if (dryRun) return measure(collection, filter);
  if (limit <= 0) return { count: 0, bytes: 0 };
  const doomed = await collection
    .aggregate([
      { $match: filter },
      { $sort: { [order]: 1 } },
      { $limit: limit },
      { $project: { bytes: { $strLenBytes: '$json' } } },
    ])
    .toArray();
  if (doomed.length === 0) return { count: 0, bytes: 0 };
  const removed = await collection.deleteMany({ _id: { $in: doomed.map((doc) => doc._id) } });
  // Only a delete of the whole agent can remove some of them meanwhile: they are gone either way.
  const bytes = doomed.reduce((sum, doc) => sum + Number(doc.bytes ?? 0), 0);
  return { count: removed.deletedCount, bytes };
}

/** How many documents `filter` names and their JSON's UTF-8 bytes, counted by the server. */
async function measure(collection: MongoCollection, filter: MongoDocument): Promise<PrunedRows> {
  const [total] = await collection
    .aggregate([
      { $match: filter },
      { $group: { _id: null, count: { $sum: 1 }, bytes: { $sum: { $strLenBytes: '$json' } } } },
    ])
    .toArray();
  return { count: Number(total?.count ?? 0), bytes: Number(total?.bytes ?? 0) };
}

/** `bookmark.timestamp` of an event's text, when it is a number. */
function bookmarkTime(json: string): number | undefined {
  try {
    const timestamp = (JSON.parse(json) as { bookmark?: { timestamp?: unknown } } | null)?.bookmark
      ?.timestamp;
    return typeof timestamp === 'number' && Number.isFinite(timestamp) ? timestamp : undefined;
  } catch {
    return undefined;
  }
}

/** What the agent holds that a delete removes (event files aside), counted and measured by the server. */
async function storedOf(open: OpenMongo, agentId: string): Promise<Omit<RemovedAgent, 'files'>> {
  const { collections } = open;
  const byAgent = { agentId };
  const messages = await measure(collections.messages, byAgent);
  const toolCalls = await measure(collections.tool_calls, byAgent);
  const events = await measure(collections.events, byAgent);
  const snapshots = await measure(collections.snapshots, byAgent);
  let bytes = messages.bytes + toolCalls.bytes + events.bytes + snapshots.bytes;
  bytes += (await measure(collections.infos, { _id: agentId })).bytes;
  for (const history of [
    collections.history_windows,
    collections.compression_records,
    collections.recovered_files,
  ]) {
    bytes += (await measure(history, byAgent)).bytes;
  }
  return {
    messages: messages.count,
    toolCalls: toolCalls.count,
    events: events.count,
    snapshots: snapshots.count,
    bytes,
  };
}
