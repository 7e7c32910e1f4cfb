import { DELETED_AGENT_RETENTION_MS, tombstoneLive } from '../../src/agent/deleted-agents.js';
import type { AnyKodeStoreError, ErrorContext } from '../../src/errors.js';
import type { FileEventRegistry } from '../../src/hybrid/file-event-storage.js';
import { compareCodePoints } from '../../src/strings.js';
import type { MongoCollection, MongoDocument, MongoOptions } from './mongo-config.js';
import { type OpenMongo, runAtomically, withSession } from './mongo-connection.js';
import { isDuplicateKey } from './mongo-errors.js';
import { agentIdPrefixFilter } from './mongo-queries.js';
import type { AgentCollectionRole } from './mongo-schema.js';

/**
 * The registry `<prefix>agents`: one document per agent id, what `exists` and
 * `list` read, holding the agent's counters (`seq`), the revisions of its
 * saved lists and, in hybrid mode, `eventFiles`.
 *
 * Deleted stays deleted (src/agent/deleted-agents.ts): `delete` turns the document
 * into a tombstone, `deletedAt` (epoch ms) set and the list revisions and
 * `eventFiles` removed, before it deletes anything else. While the tombstone
 * lives, an event for the id is acknowledged and discarded: the append's
 * registration is an upsert whose filter leaves a live tombstone out, so it
 * fails on the unique `_id` instead of registering the agent, in one atomic
 * step; and after its insert the append looks at the registry again and
 * removes what it wrote if a delete came in between. Any other write
 * registers the agent with `$unset: { deletedAt }`, ending the tombstone.
 *
 * Every write also sets `lastWriteAt` to the server's time (`$currentDate`,
 * one clock for a fleet of hosts): what retention judges an agent by
 * (mongo-retention.ts). An event batch sets it once per agent, in the
 * registration it makes anyway, and its events take that time as their
 * `appendedAt`.
 */

/** Reads a counter the server returned (a number; a `Long` if it ever passed 2^31 with promoteLongs off). */
export function counterValue(value: unknown): number {
  if (typeof value === 'number') return value;
  const toNumber = (value as { toNumber?: () => number } | null)?.toNumber;
  if (typeof toNumber === 'function') return toNumber.call(value);
  return 0;
}

/** The filter of agents that exist: no tombstone (`{ deletedAt: null }` also matches a missing field). */
export const LIVE_AGENT: MongoDocument = { deletedAt: null };

/**
 * The update part that registers an agent (a new agent under a deleted id
 * ends its tombstone) and records the write's server time. Callers add their
 * own `$set` / `$inc`, which these operators leave alone.
 */
export function registration(now = Date.now()): MongoDocument {
  return {
    $unset: { deletedAt: '' },
    $setOnInsert: { registeredAt: now },
    $currentDate: { lastWriteAt: true },
  };
}

/** The update that makes an agent's registry document a tombstone. */
export function tombstone(now = Date.now()): MongoDocument {
  return {
    $set: { deletedAt: now },
    $unset: { eventFiles: '', messagesRevision: '', toolCallsRevision: '' },
  };
}

/** Tombstones old enough to drop: their agent's late events are long over. */
export function expiredTombstones(now = Date.now()): MongoDocument {
  return { deletedAt: { $lte: now - DELETED_AGENT_RETENTION_MS } };
}

/** Whether a registry document is a tombstone that still discards events. */
export function isLiveTombstone(doc: MongoDocument | null | undefined, now = Date.now()): boolean {
  return tombstoneLive(typeof doc?.deletedAt === 'number' ? doc.deletedAt : null, now);
}

/**
 * Registers the agent for an event write with `update` ($inc, $set) and
 * returns its document after the update; `undefined` when a live tombstone
 * says the events are a deleted agent's late ones, to be discarded.
 */
export async function registerForEvents(
  agents: MongoCollection,
  agentId: string,
  update: MongoDocument,
  options: MongoOptions = {},
): Promise<MongoDocument | undefined> {
  for (;;) {
    const now = Date.now();
    try {
      const doc = await agents.findOneAndUpdate(
        { _id: agentId, $or: [LIVE_AGENT, expiredTombstones(now)] },
        { ...update, ...registration(now) },
        { ...options, upsert: true, returnDocument: 'after' },
      );
      if (doc) return doc;
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    // The upsert met an existing document its filter left out (a live
    // tombstone), or lost a race with another writer creating the agent.
    const current = await agents.findOne({ _id: agentId }, { projection: { deletedAt: 1 } });
    if (isLiveTombstone(current)) return undefined;
  }
}

/**
 * The ids `list(prefix)` answers, in code point order: registered agents
 * that are no tombstone, and (hybrid mode) `fromFiles`, the agents with an
 * event file under that prefix, unless deleted.
 */
export async function listAgents(
  agents: MongoCollection,
  prefix: string | undefined,
  fromFiles: readonly string[],
): Promise<string[]> {
  // `_id` strings sort by UTF-8 bytes (simple binary comparison), which is code point order.
  const docs = await agents
    .find({ ...agentIdPrefixFilter(prefix), ...LIVE_AGENT }, { projection: { _id: 1 } })
    .sort({ _id: 1 })
    .toArray();
  const ids = docs.map((doc) => String(doc._id));
  if (fromFiles.length === 0) return ids;
  // A file left behind by a deleted agent does not make it exist.
  const deleted = new Set(
    (
      await agents
        .find({ _id: { $in: [...fromFiles] }, deletedAt: { $ne: null } }, { projection: { _id: 1 } })
        .toArray()
    ).map((doc) => String(doc._id)),
  );
  const listed = fromFiles.filter((id) => !deleted.has(id));
  return [...new Set([...ids, ...listed])].sort(compareCodePoints);
}

/**
 * Hybrid mode's questions to the registry (src/hybrid/file-event-storage.ts),
 * answered by `<prefix>agents` (its tombstones and `eventFiles`) and, for
 * event documents written in database mode, `<prefix>events`.
 */
export function mongoFileEventRegistry(
  opened: () => Promise<OpenMongo>,
  wrapError: (error: unknown, ctx: Omit<ErrorContext, 'cause'>) => AnyKodeStoreError,
): FileEventRegistry {
  const hasDatabaseEvents = async (agentId: string) =>
    (await (await opened()).collections.events.findOne({ agentId }, { projection: { _id: 1 } })) !== null;
  return {
    async admission(agentId) {
      const { collections } = await opened();
      const [registry, inDatabase] = await Promise.all([
        collections.agents.findOne({ _id: agentId }, { projection: { deletedAt: 1 } }),
        hasDatabaseEvents(agentId),
      ]);
      const deletedAt = registry?.deletedAt;
      return { deletedAtMs: typeof deletedAt === 'number' ? deletedAt : null, inDatabase };
    },
    // Registers the agent (an expired tombstone ends); a live tombstone, a
    // delete by another store after admission, stays and is reported, so
    // that the log removes the file.
    async recordFile(agentId) {
      const { collections } = await opened();
      return (
        (await registerForEvents(collections.agents, agentId, { $set: { eventFiles: true } })) !== undefined
      );
    },
    hasDatabaseEvents,
    async recordsFile(agentId) {
      const { collections } = await opened();
      const doc = await collections.agents.findOne(
        { _id: agentId, eventFiles: true, ...LIVE_AGENT },
        { projection: { _id: 1 } },
      );
      return doc !== null;
    },
    wrapError,
  };
}

/** Collections holding one document per item, keyed by `agentId` (deleted and forked per agent). */
export const PER_ITEM_COLLECTIONS = [
  'messages',
  'tool_calls',
  'snapshots',
  'history_windows',
  'compression_records',
  'recovered_files',
  'media_cache',
] as const satisfies readonly AgentCollectionRole[];

/** Every document of the agent except its events and its registry document (a tombstone by now, or a fork's). */
export function deleteAgentDocuments(open: OpenMongo, agentId: string): Promise<void> {
  return runAtomically(open, async (session) => {
    for (const role of PER_ITEM_COLLECTIONS) {
      await open.collections[role].deleteMany({ agentId }, withSession(session));
    }
    await open.collections.infos.deleteOne({ _id: agentId }, withSession(session));
    await open.collections.todos.deleteOne({ _id: agentId }, withSession(session));
  });
}

/**
 * What a delete removes once the agent's tombstone is written (from then on
 * it does not exist and its late events are discarded): expired tombstones,
 * its events, its other documents. An event stream has no size bound, so it
 * is not deleted inside the transaction (which has a time and size limit); a
 * failure part-way is safe to retry with another delete.
 */
export async function removeTombstonedAgent(open: OpenMongo, agentId: string, now: number): Promise<void> {
  await open.collections.agents.deleteMany(expiredTombstones(now));
  await open.collections.events.deleteMany({ agentId });
  await deleteAgentDocuments(open, agentId);
}
