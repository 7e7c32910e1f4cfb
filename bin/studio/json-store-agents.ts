import { MemoryStore } from '../../src/agent/memory-store.js';
import { QueryError } from '../../src/errors.js';
import type { JsonStoreReader } from '../../src/transfer/json-store-reader.js';
import type {
  AgentStats,
  ReadEventsOptions,
  SessionFilters,
  SessionInfo,
  Timeline,
} from '../../src/types.js';
import type { SessionSort, StudioAgents } from './studio-source.js';

/**
 * A `json:` directory as `StudioAgents`: the reader answers everything about
 * one agent; the two queries across agents it lacks are answered here.
 * `querySessions` runs on a `MemoryStore` holding only each agent's
 * `meta.json` (read once, on first use), so filters, orders and paging mean
 * exactly what they mean on every backend. A JSONStore keeps no time of the
 * last `saveInfo`, so ordering by `updated_at` is refused rather than faked.
 */
export class JsonStoreAgents implements StudioAgents {
  readonly sessionSorts: readonly SessionSort[] = ['created_at', 'message_count'];
  private sessions: Promise<MemoryStore> | undefined;

  constructor(private readonly reader: JsonStoreReader) {}

  list(prefix?: string) {
    return this.reader.list(prefix);
  }
  exists(agentId: string) {
    return this.reader.exists(agentId);
  }
  loadInfo(agentId: string) {
    return this.reader.loadInfo(agentId);
  }
  loadMessages(agentId: string) {
    return this.reader.loadMessages(agentId);
  }
  loadToolCallRecords(agentId: string) {
    return this.reader.loadToolCallRecords(agentId);
  }
  loadTodos(agentId: string) {
    return this.reader.loadTodos(agentId);
  }
  readEvents(agentId: string, opts?: ReadEventsOptions): AsyncIterable<Timeline> {
    return this.reader.readEvents(agentId, opts);
  }
  listSnapshots(agentId: string) {
    return this.reader.listSnapshots(agentId);
  }
  loadSnapshot(agentId: string, snapshotId: string) {
    return this.reader.loadSnapshot(agentId, snapshotId);
  }

  async querySessions(filters: SessionFilters): Promise<SessionInfo[]> {
    if (filters.sortBy !== undefined && !this.sessionSorts.includes(filters.sortBy)) {
      throw new QueryError(
        `a json: location cannot be ordered by ${filters.sortBy}: a JSONStore keeps no update time`,
        { backend: 'json', operation: 'querySessions' },
      );
    }
    return (await this.sessionIndex()).querySessions(filters);
  }

  /** Counted from the agent's files, as every backend counts its rows. */
  async aggregateStats(agentId: string): Promise<AgentStats> {
    const [messages, toolCalls, snapshots] = await Promise.all([
      this.reader.loadMessages(agentId),
      this.reader.loadToolCallRecords(agentId),
      this.reader.listSnapshots(agentId),
    ]);
    // Tool names are stored data: `__proto__` must count as a name, not reach the prototype.
    const toolCallsByName: Record<string, number> = Object.create(null);
    const toolCallsByState: Record<string, number> = Object.create(null);
    for (const record of toolCalls) {
      toolCallsByName[record.name] = (toolCallsByName[record.name] ?? 0) + 1;
      toolCallsByState[record.state] = (toolCallsByState[record.state] ?? 0) + 1;
    }
    return {
      totalMessages: messages.length,
      totalToolCalls: toolCalls.length,
      totalSnapshots: snapshots.length,
      avgMessagesPerSession: messages.length,
      toolCallsByName,
      toolCallsByState,
    };
  }

  private sessionIndex(): Promise<MemoryStore> {
    this.sessions ??= (async () => {
      const index = new MemoryStore();
      for (const agentId of await this.reader.list()) {
        const info = await this.reader.loadInfo(agentId);
        if (info) await index.saveInfo(agentId, info);
      }
      return index;
    })();
    // A failed read (a corrupt meta.json) is not remembered: the next request reads again.
    this.sessions.catch(() => {
      this.sessions = undefined;
    });
    return this.sessions;
  }
}
