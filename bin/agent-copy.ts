import {
  AGENT_COUNT_KINDS,
  type AgentCounts,
  emptyAgentCounts,
  type ReadableAgentStore,
} from '../src/transfer/export-format.js';
import type { Store, Timeline } from '../src/types.js';

/** Events appended per batch when copying; the appends of a batch are in flight together. */
export const DEFAULT_EVENT_BATCH_SIZE = 500;

/** How many records of each kind `agentId` holds in `store` (events are streamed and counted). */
export async function countAgent(store: ReadableAgentStore, agentId: string): Promise<AgentCounts> {
  const counts = emptyAgentCounts();
  counts.info = (await store.loadInfo(agentId)) === undefined ? 0 : 1;
  counts.messages = (await store.loadMessages(agentId)).length;
  counts.toolCalls = (await store.loadToolCallRecords(agentId)).length;
  counts.todos = (await store.loadTodos(agentId)) === undefined ? 0 : 1;
  counts.historyWindows = (await store.loadHistoryWindows(agentId)).length;
  counts.compressionRecords = (await store.loadCompressionRecords(agentId)).length;
  counts.recoveredFiles = (await store.loadRecoveredFiles(agentId)).length;
  counts.mediaCache = (await store.loadMediaCache(agentId)).length;
  counts.snapshots = (await store.listSnapshots(agentId)).length;
  for await (const _ of store.readEvents(agentId)) counts.events++;
  return counts;
}

/** One line per kind whose counts differ: `events: source 295, destination 120`. */
export function diffCounts(source: AgentCounts, destination: AgentCounts): string[] {
  return AGENT_COUNT_KINDS.filter((kind) => source[kind] !== destination[kind]).map(
    (kind) => `${kind}: source ${source[kind]}, destination ${destination[kind]}`,
  );
}

function isEmpty(counts: AgentCounts): boolean {
  return AGENT_COUNT_KINDS.every((kind) => counts[kind] === 0);
}

/**
 * What happened to one agent:
 * - `copied`: it was not in the destination and now is;
 * - `replaced`: the destination held a different (e.g. half-copied) version, which was deleted first;
 * - `unchanged`: the destination already held the same counts of everything (an earlier run copied it).
 */
export type CopyOutcome = 'copied' | 'replaced' | 'unchanged';

/** Options of `copyAgent`. */
export interface CopyAgentOptions {
  /** Events appended per batch (default 500). */
  eventBatchSize?: number;
  /** The source's counts, when the caller already has them. */
  sourceCounts?: AgentCounts;
  /** Called after each batch of events is appended, with the batch size. */
  onEvents?: (count: number) => void;
}

/** Appends events in batches: the appends of one batch are in flight together (stores keep their call order). */
async function copyEvents(
  source: ReadableAgentStore,
  destination: Store,
  agentId: string,
  batchSize: number,
  onEvents: ((count: number) => void) | undefined,
): Promise<void> {
  let batch: Timeline[] = [];
  const flush = async () => {
    await Promise.all(batch.map((event) => destination.appendEvent(agentId, event)));
    onEvents?.(batch.length);
    batch = [];
  };
  for await (const event of source.readEvents(agentId)) {
    batch.push(event);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
}

/**
 * Copies one agent so that running it again, after any interruption, ends
 * with exactly one copy. The destination's counts are compared with the
 * source's: equal means an earlier run finished this agent (`unchanged`);
 * anything else in the destination is a partial or different copy, deleted
 * before the agent is written again. The list-valued parts (messages, tool
 * calls, media cache) replace what is there; history windows, compression
 * records, recovered files and events append, which is why a partial copy is
 * deleted rather than resumed: appending again would double them. `info` is
 * written last, so an agent whose info arrived was copied whole.
 */
export async function copyAgent(
  source: ReadableAgentStore,
  destination: Store,
  agentId: string,
  options: CopyAgentOptions = {},
): Promise<{ outcome: CopyOutcome; counts: AgentCounts }> {
  const sourceCounts = options.sourceCounts ?? (await countAgent(source, agentId));
  const existing = await countAgent(destination, agentId);
  if (diffCounts(sourceCounts, existing).length === 0 && !isEmpty(existing)) {
    return { outcome: 'unchanged', counts: sourceCounts };
  }
  const replacing = !isEmpty(existing) || (await destination.exists(agentId));
  if (replacing) await destination.delete(agentId);

  const messages = await source.loadMessages(agentId);
  if (messages.length > 0) await destination.saveMessages(agentId, messages);
  const toolCalls = await source.loadToolCallRecords(agentId);
  if (toolCalls.length > 0) await destination.saveToolCallRecords(agentId, toolCalls);
  const todos = await source.loadTodos(agentId);
  if (todos !== undefined) await destination.saveTodos(agentId, todos);
  for (const window of await source.loadHistoryWindows(agentId))
    await destination.saveHistoryWindow(agentId, window);
  for (const record of await source.loadCompressionRecords(agentId)) {
    await destination.saveCompressionRecord(agentId, record);
  }
  for (const file of await source.loadRecoveredFiles(agentId))
    await destination.saveRecoveredFile(agentId, file);
  const media = await source.loadMediaCache(agentId);
  if (media.length > 0) await destination.saveMediaCache(agentId, media);
  for (const snapshot of await source.listSnapshots(agentId))
    await destination.saveSnapshot(agentId, snapshot);
  await copyEvents(
    source,
    destination,
    agentId,
    options.eventBatchSize ?? DEFAULT_EVENT_BATCH_SIZE,
    options.onEvents,
  );
  const info = await source.loadInfo(agentId);
  if (info !== undefined) await destination.saveInfo(agentId, info);
  return { outcome: replacing ? 'replaced' : 'copied', counts: sourceCounts };
}

function firstDifference(kind: string, source: unknown[], destination: unknown[]): string | undefined {
  if (source.length !== destination.length) {
    return `${kind}: source has ${source.length}, destination ${destination.length}`;
  }
  for (let i = 0; i < source.length; i++) {
    // Stored values are JSON; comparing their text also checks key order,
    // which providers' prompt caches depend on.
    if (JSON.stringify(source[i]) !== JSON.stringify(destination[i])) return `${kind}[${i}] differs`;
  }
  return undefined;
}

async function firstEventDifference(
  source: ReadableAgentStore,
  destination: ReadableAgentStore,
  agentId: string,
): Promise<string | undefined> {
  const a = source.readEvents(agentId)[Symbol.asyncIterator]();
  const b = destination.readEvents(agentId)[Symbol.asyncIterator]();
  try {
    for (let i = 0; ; i++) {
      const [x, y] = await Promise.all([a.next(), b.next()]);
      if (x.done && y.done) return undefined;
      if (x.done || y.done) return `events: ${x.done ? 'source' : 'destination'} ends after ${i} entries`;
      if (JSON.stringify(x.value) !== JSON.stringify(y.value)) return `events[${i}] differs`;
    }
  } finally {
    await a.return?.();
    await b.return?.();
  }
}

/**
 * Deep comparison of one agent in two stores: every record, in order, with
 * its exact JSON text. Returns the differences found (at most one per kind).
 */
export async function compareAgents(
  source: ReadableAgentStore,
  destination: ReadableAgentStore,
  agentId: string,
): Promise<string[]> {
  const differences: string[] = [];
  const add = (difference: string | undefined) => {
    if (difference) differences.push(difference);
  };
  const optional = async <T>(load: (s: ReadableAgentStore) => Promise<T | undefined>) =>
    [await load(source), await load(destination)].map((value) => (value === undefined ? [] : [value]));
  const pair = async <T>(load: (s: ReadableAgentStore) => Promise<T[]>) => [
    await load(source),
    await load(destination),
  ];

  const [infoA, infoB] = await optional((s) => s.loadInfo(agentId));
  add(firstDifference('info', infoA!, infoB!));
  const [msgA, msgB] = await pair((s) => s.loadMessages(agentId));
  add(firstDifference('messages', msgA!, msgB!));
  const [toolA, toolB] = await pair((s) => s.loadToolCallRecords(agentId));
  add(firstDifference('toolCalls', toolA!, toolB!));
  const [todoA, todoB] = await optional((s) => s.loadTodos(agentId));
  add(firstDifference('todos', todoA!, todoB!));
  const [winA, winB] = await pair((s) => s.loadHistoryWindows(agentId));
  add(firstDifference('historyWindows', winA!, winB!));
  const [compA, compB] = await pair((s) => s.loadCompressionRecords(agentId));
  add(firstDifference('compressionRecords', compA!, compB!));
  const [recA, recB] = await pair((s) => s.loadRecoveredFiles(agentId));
  add(firstDifference('recoveredFiles', recA!, recB!));
  const [mediaA, mediaB] = await pair((s) => s.loadMediaCache(agentId));
  add(firstDifference('mediaCache', mediaA!, mediaB!));
  const [snapA, snapB] = await pair((s) => s.listSnapshots(agentId));
  add(firstDifference('snapshots', snapA!, snapB!));
  add(await firstEventDifference(source, destination, agentId));
  return differences;
}
