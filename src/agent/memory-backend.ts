import { StoreClosedError } from '../errors.js';
import { decodeJson } from '../json-codec.js';
import { MemoryKvBackend } from '../kv/memory-kv.js';
import { compareCodePoints } from '../strings.js';
import type {
  AgentStats,
  LockReleaseFn,
  ReadEventsOptions,
  StoreCapabilities,
  StoreHealthStatus,
  StoreMetrics,
  Timeline,
} from '../types.js';
import type {
  AgentActivity,
  AgentBackend,
  AgentDocument,
  AgentInspection,
  AgentList,
  AgentRecordKind,
  AgentScanQuery,
  EncodedList,
  EventFields,
  EventPruneRule,
  ForkInfoMaker,
  MessageFields,
  PrunedRows,
  RemovedAgent,
  RetentionBackend,
  StoredRow,
  ToolCallRowFields,
} from './agent-backend.js';
import { AgentLockTable } from './agent-lock-table.js';
import { tombstoneLive } from './deleted-agents.js';
import {
  type NormalizedMessageQuery,
  type NormalizedSessionQuery,
  type NormalizedToolCallQuery,
  type SortOrder,
  withinTimeBounds,
} from './query-filters.js';
import { commonPrefixLength, pairFirstSavedTimes, type SessionFields } from './record-fields.js';
import type { CompactResult } from './retention.js';
import { describeCapabilities } from './store-capabilities.js';

/**
 * Everything is kept as the JSON text the store encoded and decoded on every
 * load: callers can never mutate stored state through an object they saved
 * or loaded, and the round trip is exactly the one every other backend makes.
 */
interface StoredMessage extends MessageFields {
  json: string;
  /** When this message was first saved (epoch ms); re-saving the conversation keeps it. */
  savedAt: number;
}

interface StoredToolCall {
  json: string;
  fields: ToolCallRowFields;
}

interface StoredEvent extends EventFields {
  json: string;
  /** When it was appended (epoch ms): what `events.olderThan` compares. */
  at: number;
}

interface StoredInfo {
  json: string;
  fields: SessionFields;
  /** Store time of the last `saveInfo` (the `updated_at` sort key). */
  savedAt: number;
}

/** All data of one agent. */
interface MemoryAgent {
  info?: StoredInfo;
  messages: StoredMessage[];
  toolCalls: StoredToolCall[];
  documents: Map<Exclude<AgentDocument, 'info'>, string>;
  events: StoredEvent[];
  records: Record<AgentRecordKind, string[]>;
  /** Map keeps first-insertion order, so snapshots list oldest first and an upsert keeps its place. */
  snapshots: Map<string, string>;
  /** Time of the agent's last write of any kind (epoch ms). */
  lastWriteMs: number;
}

function emptyAgent(): MemoryAgent {
  return {
    lastWriteMs: Date.now(),
    messages: [],
    toolCalls: [],
    documents: new Map(),
    events: [],
    records: { history_window: [], compression_record: [], recovered_file: [] },
    snapshots: new Map(),
  };
}

/**
 * The data behind one or more `MemoryStore` objects. Stores built on the same
 * database see each other's writes and exclude each other's locks, like two
 * connections to one server.
 */
export class MemoryDatabase {
  readonly agents = new Map<string, MemoryAgent>();
  /** Tombstones of deleted agents: id → deletion time (see deleted-agents.ts). */
  readonly deleted = new Map<string, number>();
  readonly locks = new AgentLockTable();
  /** KV data, shared by every store object over this database. */
  readonly kv = new MemoryKvBackend();
}

const NAME = 'memory';

/** Entries handed out per page of `readEventPages`. */
const EVENT_PAGE = 256;

/** UTF-8 bytes of texts, as a database stores them. */
function utf8Bytes(texts: readonly string[]): number {
  let bytes = 0;
  for (const text of texts) bytes += Buffer.byteLength(text, 'utf8');
  return bytes;
}

/** Compares two sort keys field by field; strings by code point. */
function compareKeys(a: ReadonlyArray<number | string>, b: ReadonlyArray<number | string>): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number | string;
    const y = b[i] as number | string;
    const c = typeof x === 'string' ? compareCodePoints(x, y as string) : (x as number) - (y as number);
    if (c !== 0) return c;
  }
  return 0;
}

/** Sorts by `key` in `order` (tie-breakers included in the key go the same way), then applies offset and limit. */
function page<T>(
  rows: T[],
  key: (row: T) => ReadonlyArray<number | string>,
  query: { order: SortOrder; offset: number; limit: number },
): T[] {
  const sign = query.order === 'asc' ? 1 : -1;
  const sorted = rows.map((row) => ({ row, key: key(row) }));
  sorted.sort((a, b) => sign * compareKeys(a.key, b.key));
  return sorted.slice(query.offset, query.offset + query.limit).map((entry) => entry.row);
}

/**
 * The reference backend: every rule of the port as plainly as possible, in
 * this process's memory. Every method does its work synchronously, so
 * operations land in call order.
 */
export class MemoryBackend implements AgentBackend, RetentionBackend {
  readonly name = NAME;
  readonly readOnly = false;
  readonly capabilities: StoreCapabilities = describeCapabilities({
    crossInstanceLocks: true,
    crossProcessLocks: 'MemoryStore keeps its data and its locks inside one process',
    transactions: true,
    durable: 'MemoryStore keeps its data in memory; nothing survives the process',
    fileEvents: 'MemoryStore keeps events in memory, not in files',
  });

  constructor(readonly database: MemoryDatabase) {}

  async open(): Promise<void> {}

  /** The agent's data, or undefined when nothing was saved for it. */
  private agent(agentId: string): MemoryAgent | undefined {
    return this.database.agents.get(agentId);
  }

  /** The agent's data, created empty on first write (a write other than an event ends a tombstone). */
  private agentForWrite(agentId: string): MemoryAgent {
    let agent = this.database.agents.get(agentId);
    if (!agent) {
      agent = emptyAgent();
      this.database.agents.set(agentId, agent);
      this.database.deleted.delete(agentId);
    }
    agent.lastWriteMs = Date.now();
    return agent;
  }

  async saveMessages(agentId: string, messages: EncodedList<MessageFields>): Promise<void> {
    const agent = this.agentForWrite(agentId);
    const kept = commonPrefixLength(
      agent.messages.map((m) => m.json),
      messages.texts,
    );
    const tail = messages.texts.slice(kept);
    const times = pairFirstSavedTimes(agent.messages.slice(kept), tail, Date.now());
    const added = tail.map(
      (json, i): StoredMessage => ({ json, ...messages.fields(kept + i), savedAt: times[i] as number }),
    );
    agent.messages = [...agent.messages.slice(0, kept), ...added];
  }

  async saveToolCalls(agentId: string, records: EncodedList<ToolCallRowFields>): Promise<void> {
    this.agentForWrite(agentId).toolCalls = records.texts.map((json, i) => ({
      json,
      fields: records.fields(i),
    }));
  }

  async loadList(agentId: string, list: AgentList): Promise<string[]> {
    const agent = this.agent(agentId);
    if (!agent) return [];
    return (list === 'messages' ? agent.messages : agent.toolCalls).map((item) => item.json);
  }

  async saveDocument(agentId: string, document: Exclude<AgentDocument, 'info'>, json: string): Promise<void> {
    this.agentForWrite(agentId).documents.set(document, json);
  }

  async loadDocument(agentId: string, document: AgentDocument): Promise<string | undefined> {
    const agent = this.agent(agentId);
    return document === 'info' ? agent?.info?.json : agent?.documents.get(document);
  }

  async saveInfo(agentId: string, json: string, fields: SessionFields): Promise<void> {
    this.agentForWrite(agentId).info = { json, fields, savedAt: Date.now() };
  }

  async appendRecord(agentId: string, kind: AgentRecordKind, json: string): Promise<void> {
    this.agentForWrite(agentId).records[kind].push(json);
  }

  async loadRecords(agentId: string, kind: AgentRecordKind): Promise<string[]> {
    return [...(this.agent(agentId)?.records[kind] ?? [])];
  }

  async saveSnapshot(agentId: string, snapshotId: string, json: string): Promise<void> {
    this.agentForWrite(agentId).snapshots.set(snapshotId, json);
  }

  async loadSnapshot(agentId: string, snapshotId: string): Promise<string | undefined> {
    return this.agent(agentId)?.snapshots.get(snapshotId);
  }

  async listSnapshots(agentId: string): Promise<string[]> {
    return [...(this.agent(agentId)?.snapshots.values() ?? [])];
  }

  appendEvent(agentId: string, json: string, fields: EventFields): Promise<void> {
    let agent = this.agent(agentId);
    if (!agent) {
      // A late event of a deleted agent: acknowledged, not stored.
      if (tombstoneLive(this.database.deleted.get(agentId), Date.now())) return Promise.resolve();
      agent = this.agentForWrite(agentId);
    }
    const now = Date.now();
    agent.lastWriteMs = now;
    agent.events.push({ json, ...fields, at: now });
    return Promise.resolve();
  }

  async *readEventPages(agentId: string, filter: ReadEventsOptions): AsyncGenerator<Timeline[]> {
    const since = filter.since?.seq;
    const channel = filter.channel;
    // Walks the live list by position, like a keyset page over an
    // autoincrement id: entries appended while reading are seen, nothing twice.
    for (let next = 0; ; ) {
      const events = this.agent(agentId)?.events ?? [];
      if (next >= events.length) return;
      const page: Timeline[] = [];
      for (; next < events.length && page.length < EVENT_PAGE; next++) {
        const entry = events[next] as StoredEvent;
        if (since !== undefined && !(entry.seq !== null && entry.seq > since)) continue;
        if (channel !== undefined && entry.channel !== channel) continue;
        page.push(decodeJson(entry.json) as Timeline);
      }
      if (page.length > 0) yield page;
    }
  }

  async exists(agentId: string): Promise<boolean> {
    return this.database.agents.has(agentId);
  }

  async delete(agentId: string): Promise<void> {
    const { agents, deleted } = this.database;
    agents.delete(agentId);
    const now = Date.now();
    // The map is in deletion order, so expired tombstones are at its head.
    for (const [id, at] of deleted) {
      if (tombstoneLive(at, now)) break;
      deleted.delete(id);
    }
    deleted.delete(agentId);
    deleted.set(agentId, now);
  }

  async list(prefix: string | undefined): Promise<string[]> {
    return [...this.database.agents.keys()]
      .filter((id) => prefix === undefined || id.startsWith(prefix))
      .sort(compareCodePoints);
  }

  async querySessions(query: NormalizedSessionQuery): Promise<Array<Required<StoredRow>>> {
    const rows: Array<{ agentId: string; info: StoredInfo }> = [];
    for (const [agentId, agent] of this.database.agents) {
      const info = agent.info;
      if (!info) continue;
      if (query.agentId !== undefined && agentId !== query.agentId) continue;
      if (query.templateId !== undefined && info.fields.templateId !== query.templateId) continue;
      if (query.userId !== undefined && info.fields.userId !== query.userId) continue;
      if (!withinTimeBounds(info.fields.createdAtMs, query)) continue;
      rows.push({ agentId, info });
    }
    const sortValue = {
      createdAt: (info: StoredInfo) => info.fields.createdAtMs,
      updatedAt: (info: StoredInfo) => info.savedAt,
      messageCount: (info: StoredInfo) => info.fields.messageCount,
    }[query.sortBy];
    return page(rows, (row) => [sortValue(row.info), row.agentId], query).map((row) => ({
      agentId: row.agentId,
      json: row.info.fields.sessionJson,
    }));
  }

  async queryMessages(query: NormalizedMessageQuery): Promise<StoredRow[]> {
    const rows: Array<{ agentId: string; position: number; message: StoredMessage }> = [];
    for (const [agentId, agent] of this.database.agents) {
      if (query.agentId !== undefined && agentId !== query.agentId) continue;
      agent.messages.forEach((message, position) => {
        if (query.role !== undefined && message.role !== query.role) return;
        if (query.contentType !== undefined && !message.contentTypes.includes(query.contentType)) return;
        if (!withinTimeBounds(message.savedAt, query)) return;
        rows.push({ agentId, position, message });
      });
    }
    return page(rows, (row) => [row.message.savedAt, row.agentId, row.position], query).map((row) => ({
      agentId: row.agentId,
      json: row.message.json,
    }));
  }

  async queryToolCalls(query: NormalizedToolCallQuery): Promise<StoredRow[]> {
    const rows: Array<{ agentId: string; record: StoredToolCall }> = [];
    for (const [agentId, agent] of this.database.agents) {
      if (query.agentId !== undefined && agentId !== query.agentId) continue;
      for (const record of agent.toolCalls) {
        const f = record.fields;
        if (query.toolName !== undefined && f.name !== query.toolName) continue;
        if (query.state !== undefined && f.state !== query.state) continue;
        if (query.isError !== undefined && f.isError !== query.isError) continue;
        if (query.hasApproval !== undefined && f.hasApproval !== query.hasApproval) continue;
        if (!withinTimeBounds(f.createdAt, query)) continue;
        rows.push({ agentId, record });
      }
    }
    const sortField = query.sortBy;
    return page(rows, (row) => [row.record.fields[sortField], row.agentId, row.record.fields.id], query).map(
      (row) => ({ agentId: row.agentId, json: row.record.json }),
    );
  }

  async aggregateStats(agentId: string): Promise<Omit<AgentStats, 'avgMessagesPerSession'>> {
    const agent = this.agent(agentId);
    const toolCallsByName = new Map<string, number>();
    const toolCallsByState = new Map<string, number>();
    for (const { fields } of agent?.toolCalls ?? []) {
      toolCallsByName.set(fields.name, (toolCallsByName.get(fields.name) ?? 0) + 1);
      toolCallsByState.set(fields.state, (toolCallsByState.get(fields.state) ?? 0) + 1);
    }
    return {
      totalMessages: agent?.messages.length ?? 0,
      totalToolCalls: agent?.toolCalls.length ?? 0,
      totalSnapshots: agent?.snapshots.size ?? 0,
      toolCallsByName: Object.fromEntries(toolCallsByName),
      toolCallsByState: Object.fromEntries(toolCallsByState),
    };
  }

  async fork(agentId: string, forkIds: readonly string[], forkInfo: ForkInfoMaker): Promise<boolean> {
    const source = this.agent(agentId);
    if (!source) return false;
    // Every fork is built before the first is stored, so a failure leaves no partial fork behind.
    const forks = forkIds.map((forkId) => {
      const fork = emptyAgent();
      if (source.info) fork.info = { ...forkInfo(forkId, source.info.json), savedAt: Date.now() };
      fork.messages = source.messages.map((m) => ({ ...m, contentTypes: [...m.contentTypes] }));
      fork.toolCalls = source.toolCalls.map((r) => ({ ...r, fields: { ...r.fields } }));
      const todos = source.documents.get('todos');
      if (todos !== undefined) fork.documents.set('todos', todos);
      fork.snapshots = new Map(source.snapshots);
      return [forkId, fork] as const;
    });
    for (const [forkId, fork] of forks) this.database.agents.set(forkId, fork);
    return true;
  }

  // ---- retention -----------------------------------------------------------

  async scanAgents(query: AgentScanQuery): Promise<AgentActivity[]> {
    const rows: AgentActivity[] = [];
    for (const [agentId, agent] of this.database.agents) {
      if (query.prefix !== undefined && !agentId.startsWith(query.prefix)) continue;
      if (query.after !== undefined && compareCodePoints(agentId, query.after) <= 0) continue;
      if (query.templateId !== undefined && agent.info?.fields.templateId !== query.templateId) continue;
      rows.push({ agentId, lastWriteMs: agent.lastWriteMs });
    }
    return rows.sort((a, b) => compareCodePoints(a.agentId, b.agentId)).slice(0, query.limit);
  }

  async deleteIfInactive(
    agentId: string,
    before: number,
    dryRun: boolean,
  ): Promise<RemovedAgent | undefined> {
    const agent = this.agent(agentId);
    if (!agent || agent.lastWriteMs >= before) return undefined;
    const texts = [
      agent.info?.json ?? '',
      ...agent.messages.map((m) => m.json),
      ...agent.toolCalls.map((t) => t.json),
      ...agent.events.map((e) => e.json),
      ...agent.snapshots.values(),
      ...Object.values(agent.records).flat(),
    ];
    const removed = {
      messages: agent.messages.length,
      toolCalls: agent.toolCalls.length,
      events: agent.events.length,
      snapshots: agent.snapshots.size,
      files: 0,
      bytes: utf8Bytes(texts),
    };
    if (!dryRun) await this.delete(agentId);
    return removed;
  }

  async pruneEvents(agentId: string, rule: EventPruneRule, dryRun: boolean): Promise<PrunedRows> {
    const agent = this.agent(agentId);
    if (!agent) return { count: 0, bytes: 0 };
    const inChannels = (event: StoredEvent) =>
      rule.channels === undefined || (event.channel !== null && rule.channels.includes(event.channel));
    // Positions of the events the rule considers, oldest first; the newest N of them are kept.
    const considered: number[] = [];
    agent.events.forEach((event, i) => {
      if (inChannels(event)) considered.push(i);
    });
    const candidates = considered.slice(0, Math.max(0, considered.length - (rule.keepNewest ?? 0)));
    const doomed = candidates.filter((i) => {
      if (rule.olderThan === undefined) return true;
      const at = (agent.events[i] as StoredEvent).at;
      return at < rule.olderThan;
    });
    const taken = dryRun ? doomed : doomed.slice(0, rule.limit);
    const bytes = utf8Bytes(taken.map((i) => (agent.events[i] as StoredEvent).json));
    if (!dryRun) {
      const removed = new Set(taken);
      agent.events = agent.events.filter((_, i) => !removed.has(i));
    }
    return { count: taken.length, bytes };
  }

  async pruneSnapshots(agentId: string, keepNewest: number, dryRun: boolean): Promise<PrunedRows> {
    const agent = this.agent(agentId);
    if (!agent) return { count: 0, bytes: 0 };
    const ids = [...agent.snapshots.keys()];
    const doomed = ids.slice(0, Math.max(0, ids.length - keepNewest));
    const bytes = utf8Bytes(doomed.map((id) => agent.snapshots.get(id) as string));
    if (!dryRun) for (const id of doomed) agent.snapshots.delete(id);
    return { count: doomed.length, bytes };
  }

  async compact(): Promise<CompactResult> {
    return { action: 'nothing to do: memory is freed as data is removed' };
  }

  acquireLock(agentId: string, timeoutMs: number): Promise<LockReleaseFn> {
    return this.database.locks.acquire(agentId, timeoutMs, this, {
      backend: NAME,
      operation: 'acquireAgentLock',
    });
  }

  async ping(): Promise<undefined> {
    return undefined;
  }

  async fileSystem(): Promise<StoreHealthStatus['fileSystem']> {
    return { writable: true };
  }

  async inspect(agentId: string): Promise<AgentInspection> {
    const agent = this.agent(agentId);
    return {
      exists: agent !== undefined,
      infoJson: agent?.info?.json,
      messages: agent?.messages.length ?? 0,
      issues: [],
    };
  }

  async storage(): Promise<StoreMetrics['storage']> {
    let totalMessages = 0;
    let totalToolCalls = 0;
    let totalEvents = 0;
    for (const agent of this.database.agents.values()) {
      totalMessages += agent.messages.length;
      totalToolCalls += agent.toolCalls.length;
      totalEvents += agent.events.length;
    }
    return { totalAgents: this.database.agents.size, totalMessages, totalToolCalls, totalEvents };
  }

  async close(): Promise<void> {
    this.database.locks.releaseAllOf(
      this,
      new StoreClosedError('the store was closed while waiting for a lock', {
        backend: NAME,
        operation: 'acquireAgentLock',
      }),
    );
  }
}
