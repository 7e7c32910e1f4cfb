import type { AgentInspection } from '../../src/agent/agent-backend.js';
import type { EventStorage } from '../../src/agent/event-storage.js';
import { decodeJson } from '../../src/json-codec.js';
import type { StoreMetrics } from '../../src/types.js';
import type { MongoDocument } from './mongo-config.js';
import type { OpenMongo } from './mongo-connection.js';
import { jsonText } from './mongo-documents.js';
import { LIVE_AGENT } from './mongo-registry.js';
import { agentCollectionNames } from './mongo-schema.js';

/**
 * Observation: `ping` and `storage` for health and metrics, and what
 * `checkConsistency` reads of one agent.
 */

/**
 * The server answers, and the store's collections are there: they are
 * created once per connection, so a database dropped since then is only
 * seen by looking (one `listCollections` of names). Resolves with what is
 * missing, or undefined.
 */
export async function pingStore(open: OpenMongo, collectionPrefix: string): Promise<string | undefined> {
  const { db } = open;
  await db.command({ ping: 1 });
  const expected = Object.values(agentCollectionNames(collectionPrefix));
  // A dozen names: they all come in the first batch.
  const reply = await db.command({
    listCollections: 1,
    filter: { name: { $in: expected } },
    nameOnly: true,
  });
  const batch = (reply.cursor as { firstBatch?: MongoDocument[] } | undefined)?.firstBatch ?? [];
  const present = new Set(batch.map((collection) => String(collection.name)));
  const missing = expected.filter((name) => !present.has(name));
  if (missing.length === 0) return undefined;
  return `the store's collections are missing from database ${JSON.stringify(db.databaseName)}: ${missing.join(', ')}`;
}

/** Totals across the store, for `getMetrics`. */
export async function storageTotals(open: OpenMongo, events: EventStorage): Promise<StoreMetrics['storage']> {
  const { collections } = open;
  // Collection metadata counts: exact after normal operation, and they
  // do not scan millions of documents the way countDocuments({}) would.
  // Agents are counted without their tombstones (one small document each).
  const [totalAgents, totalMessages, totalToolCalls, totalEvents, dbStats] = await Promise.all([
    collections.agents.countDocuments(LIVE_AGENT),
    collections.messages.estimatedDocumentCount(),
    collections.tool_calls.estimatedDocumentCount(),
    events.count(),
    open.db.command({ dbStats: 1 }).catch(() => undefined),
  ]);
  const storage: StoreMetrics['storage'] = { totalAgents, totalMessages, totalToolCalls };
  if (totalEvents !== undefined) storage.totalEvents = totalEvents;
  const size = Number(dbStats?.storageSize ?? Number.NaN) + Number(dbStats?.indexSize ?? 0);
  if (Number.isFinite(size)) storage.dbSizeBytes = size;
  return storage;
}

/**
 * What `checkConsistency` needs of an agent that exists, read from its
 * documents: the info's text, the number of messages, and the problems
 * found in how it is stored (gaps in a list an interrupted save left,
 * unreadable items; a missing event file, which the event storage checks).
 */
export async function inspectStoredAgent(
  open: OpenMongo,
  agentId: string,
  events: EventStorage,
): Promise<Omit<AgentInspection, 'exists'>> {
  const issues: string[] = [];
  // Waits for the agent's appends (and the registration of its event file).
  await events.idle();
  const infoJson = await readableText(open, 'infos', agentId, issues);
  const messages = await checkList(open, 'messages', agentId, issues, (value, i) => {
    if (typeof (value as { role?: unknown } | null)?.role !== 'string')
      issues.push(`message ${i} has no role`);
  });
  await checkList(open, 'tool_calls', agentId, issues, (value, i) => {
    const record = value as { id?: unknown; name?: unknown } | null;
    if (typeof record?.id !== 'string' || typeof record.name !== 'string') {
      issues.push(`tool call record ${i} lacks its id or name`);
    }
  });
  await readableText(open, 'todos', agentId, issues);
  issues.push(...(await events.check(agentId)));
  return { infoJson, messages, issues };
}

/**
 * The text of the agent's info or todos. The info's is handed to the store
 * as it is (the store reports one that does not parse); a document without
 * its text, or todos that do not parse, are an issue here.
 */
async function readableText(
  open: OpenMongo,
  role: 'infos' | 'todos',
  agentId: string,
  issues: string[],
): Promise<string | undefined> {
  const doc = await open.collections[role].findOne({ _id: agentId });
  if (!doc) return undefined;
  const ctx = { backend: 'mongo', operation: 'checkConsistency', agentId };
  try {
    const json = jsonText(doc, ctx);
    if (role === 'todos') decodeJson(json, ctx);
    return json;
  } catch (error) {
    const what = role === 'infos' ? 'info is' : 'todos are';
    issues.push(`${what} unreadable: ${(error as Error).message}`);
    return undefined;
  }
}

/** Reads a stored list in order, reporting gaps (an interrupted save) and unreadable items; returns its length. */
async function checkList(
  open: OpenMongo,
  role: 'messages' | 'tool_calls',
  agentId: string,
  issues: string[],
  checkItem: (value: unknown, index: number) => void,
): Promise<number> {
  const what = role === 'messages' ? 'message' : 'tool call record';
  let count = 0;
  const cursor = open.collections[role]
    .find({ agentId }, { projection: { index: 1, json: 1 } })
    .sort({ index: 1 })
    .batchSize(500);
  for await (const doc of cursor) {
    if (doc.index !== count) {
      issues.push(`${role} has a gap: position ${count} is missing (found ${String(doc.index)})`);
      count = Number(doc.index);
    }
    try {
      checkItem(decodeJson(String(doc.json), { backend: 'mongo', agentId }), count);
    } catch (error) {
      issues.push(`${what} ${count} is unreadable: ${(error as Error).message}`);
    }
    count++;
  }
  return count;
}
