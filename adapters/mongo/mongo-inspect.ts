import type { AgentInspection } from '../../src/agent/agent-backend.js';
import type { EventStorage } from '../../src/agent/event-storage.js';
import { decodeJson } from '../../src/json-codec.js';
import type { OpenMongo } from './mongo-connection.js';
import { jsonText } from './mongo-documents.js';

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
