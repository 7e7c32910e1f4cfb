import type { ForkInfoMaker } from '../../src/agent/agent-backend.js';
import { KodeStoreError } from '../../src/errors.js';
import type { MongoDocument, MongoSession } from './mongo-config.js';
import { type OpenMongo, runAtomically, withSession } from './mongo-connection.js';
import { assertFitsInDocument, jsonText, toInfoDocument } from './mongo-documents.js';
import { counterValue } from './mongo-registry.js';

/**
 * `batchFork` on MongoDB: every fork gets a copy of the source's info (made
 * by the store's `forkInfo`), messages with their first-saved times, tool
 * calls, todos and snapshots, and its registry document last.
 */

/** What every fork copies, read once, with each fork's info document already made. */
interface ForkSource {
  registry: MongoDocument | null;
  todos: MongoDocument | null;
  messages: MongoDocument[];
  toolCalls: MongoDocument[];
  snapshots: MongoDocument[];
  infos: Map<string, MongoDocument>;
}

/**
 * Writes the forks of an existing agent: in one transaction where the
 * deployment has them, else fork by fork (see `forkWithoutTransaction`).
 * `deleteAgentDocuments` removes what a failed fork wrote.
 */
export async function writeForks(
  open: OpenMongo,
  agentId: string,
  forkIds: readonly string[],
  forkInfo: ForkInfoMaker,
  deleteAgentDocuments: (forkId: string) => Promise<void>,
): Promise<void> {
  if (forkIds.length === 0) return;
  if (open.deployment.transactions) {
    await runAtomically(open, async (session) => {
      const source = await readForkSource(open, session, agentId, forkIds, forkInfo);
      for (const forkId of forkIds) await writeFork(open, session, source, forkId);
    });
    return;
  }
  await forkWithoutTransaction(open, agentId, forkIds, forkInfo, deleteAgentDocuments);
}

/**
 * Standalone server: each fork is written registry-last (so it does not
 * exist for `exists`/`list` until complete); if anything fails, every fork
 * of this call is deleted again before the error is reported, and if even
 * that fails the error names the ids to delete.
 */
async function forkWithoutTransaction(
  open: OpenMongo,
  agentId: string,
  forkIds: readonly string[],
  forkInfo: ForkInfoMaker,
  deleteAgentDocuments: (forkId: string) => Promise<void>,
): Promise<void> {
  const source = await readForkSource(open, undefined, agentId, forkIds, forkInfo);
  try {
    for (const forkId of forkIds) await writeFork(open, undefined, source, forkId);
  } catch (error) {
    const cleanup = await Promise.allSettled(forkIds.map((id) => deleteAgentDocuments(id)));
    if (cleanup.every((result) => result.status === 'fulfilled')) throw error;
    throw new KodeStoreError(
      `fork failed and its partial copies could not be removed; delete these agents: ${JSON.stringify(forkIds)}`,
      { backend: 'mongo', operation: 'batchFork', agentId, cause: error },
    );
  }
}

/** Reads what every fork copies; a fork whose info cannot be stored fails here, before any write. */
async function readForkSource(
  open: OpenMongo,
  session: MongoSession | undefined,
  agentId: string,
  forkIds: readonly string[],
  forkInfo: ForkInfoMaker,
): Promise<ForkSource> {
  const { collections } = open;
  const options = withSession(session);
  const byIndex = { sort: { index: 1 } };
  const registry = await collections.agents.findOne({ _id: agentId }, options);
  const info = await collections.infos.findOne({ _id: agentId }, options);
  const todos = await collections.todos.findOne({ _id: agentId }, options);
  const messages = await collections.messages.find({ agentId }, withSession(session, byIndex)).toArray();
  const toolCalls = await collections.tool_calls.find({ agentId }, withSession(session, byIndex)).toArray();
  const snapshots = await collections.snapshots
    .find({ agentId }, withSession(session, { sort: { position: 1 } }))
    .toArray();
  const infos = new Map<string, MongoDocument>();
  if (info) {
    const ctx = { backend: 'mongo', operation: 'batchFork', agentId };
    const sourceJson = jsonText(info, ctx);
    for (const forkId of forkIds) {
      const { json, fields } = forkInfo(forkId, sourceJson);
      const toDocument = () => toInfoDocument(forkId, json, fields, Date.now()) as unknown as MongoDocument;
      assertFitsInDocument(json, 'info', ctx, toDocument);
      infos.set(forkId, toDocument());
    }
  }
  return { registry, todos, messages, toolCalls, snapshots, infos };
}

async function writeFork(
  open: OpenMongo,
  session: MongoSession | undefined,
  source: ForkSource,
  forkId: string,
): Promise<void> {
  const { collections } = open;
  const options = withSession(session, { ordered: true });
  const copy = (docs: MongoDocument[]) => docs.map(({ _id, ...doc }) => ({ ...doc, agentId: forkId }));
  // Messages keep their first-saved time and positions; tool-call ids stay
  // unchanged so the copied tool_use blocks still match their records.
  if (source.messages.length > 0) await collections.messages.insertMany(copy(source.messages), options);
  if (source.toolCalls.length > 0) await collections.tool_calls.insertMany(copy(source.toolCalls), options);
  if (source.snapshots.length > 0) await collections.snapshots.insertMany(copy(source.snapshots), options);
  if (source.todos) {
    await collections.todos.insertOne({ _id: forkId, json: source.todos.json }, withSession(session));
  }
  const info = source.infos.get(forkId);
  if (info) await collections.infos.insertOne(info, withSession(session));
  // The counter continues from the source's, so the copied snapshots keep
  // sorting before the fork's own later ones.
  await collections.agents.insertOne(
    // A fork is a write of its own (retention judges it by it); an insert
    // cannot take the server's time, so this host's clock stands in.
    {
      _id: forkId,
      registeredAt: Date.now(),
      lastWriteAt: new Date(),
      seq: counterValue(source.registry?.seq),
    },
    withSession(session),
  );
}
