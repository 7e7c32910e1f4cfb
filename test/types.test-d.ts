/**
 * Type-level test, checked by `tsc --noEmit` (it has no runtime part): a
 * MemoryStore is assignable to the SDK's store interfaces written out here
 * literally: `Store` exactly as seed 004 ("Custom Store Implementation")
 * prints it, and `QueryableStore` / `ExtendedStore` with the SDK's own
 * filter and result types (shareAI-lab/kode-agent-sdk, src/infra/store/types.ts).
 * If a method's shape drifts, this file stops compiling.
 */
import { MemoryStore } from '../src/index.js';
import type {
  AgentChannel,
  AgentInfo,
  Bookmark,
  BreakpointState,
  CompressionRecord,
  HistoryWindow,
  MediaCacheRecord,
  Message,
  RecoveredFile,
  Snapshot,
  Timeline,
  TodoSnapshot,
  ToolCallRecord,
  ToolCallState,
} from '../src/types.js';

// ---- seed 004, verbatim --------------------------------------------------

interface Store {
  // Runtime State
  saveMessages(agentId: string, messages: Message[]): Promise<void>;
  loadMessages(agentId: string): Promise<Message[]>;
  saveToolCallRecords(agentId: string, records: ToolCallRecord[]): Promise<void>;
  loadToolCallRecords(agentId: string): Promise<ToolCallRecord[]>;
  saveTodos(agentId: string, snapshot: TodoSnapshot): Promise<void>;
  loadTodos(agentId: string): Promise<TodoSnapshot | undefined>;

  // Events
  appendEvent(agentId: string, timeline: Timeline): Promise<void>;
  readEvents(agentId: string, opts?: { since?: Bookmark; channel?: AgentChannel }): AsyncIterable<Timeline>;

  // History & Compression
  saveHistoryWindow(agentId: string, window: HistoryWindow): Promise<void>;
  loadHistoryWindows(agentId: string): Promise<HistoryWindow[]>;
  saveCompressionRecord(agentId: string, record: CompressionRecord): Promise<void>;
  loadCompressionRecords(agentId: string): Promise<CompressionRecord[]>;
  saveRecoveredFile(agentId: string, file: RecoveredFile): Promise<void>;
  loadRecoveredFiles(agentId: string): Promise<RecoveredFile[]>;

  // Multimodal Cache
  saveMediaCache(agentId: string, records: MediaCacheRecord[]): Promise<void>;
  loadMediaCache(agentId: string): Promise<MediaCacheRecord[]>;

  // Snapshots
  saveSnapshot(agentId: string, snapshot: Snapshot): Promise<void>;
  loadSnapshot(agentId: string, snapshotId: string): Promise<Snapshot | undefined>;
  listSnapshots(agentId: string): Promise<Snapshot[]>;

  // Metadata
  saveInfo(agentId: string, info: AgentInfo): Promise<void>;
  loadInfo(agentId: string): Promise<AgentInfo | undefined>;

  // Lifecycle
  exists(agentId: string): Promise<boolean>;
  delete(agentId: string): Promise<void>;
  list(prefix?: string): Promise<string[]>;
}

// ---- the SDK's query layer (its filter and result types) -------------------

interface SdkSessionFilters {
  agentId?: string;
  templateId?: string;
  userId?: string;
  startDate?: number;
  endDate?: number;
  limit?: number;
  offset?: number;
  sortBy?: 'created_at' | 'updated_at' | 'message_count';
  sortOrder?: 'asc' | 'desc';
}

interface SdkMessageFilters {
  agentId?: string;
  role?: 'user' | 'assistant' | 'system';
  startDate?: number;
  endDate?: number;
  limit?: number;
  offset?: number;
}

interface SdkToolCallFilters {
  agentId?: string;
  toolName?: string;
  state?: ToolCallState;
  startDate?: number;
  endDate?: number;
  limit?: number;
  offset?: number;
}

interface SdkSessionInfo {
  agentId: string;
  templateId: string;
  createdAt: string;
  messageCount: number;
  lastSfpIndex: number;
  breakpoint?: BreakpointState;
}

interface SdkAgentStats {
  totalMessages: number;
  totalToolCalls: number;
  totalSnapshots: number;
  avgMessagesPerSession?: number;
  toolCallsByName?: Record<string, number>;
  toolCallsByState?: Record<string, number>;
}

interface QueryableStore extends Store {
  querySessions(filters: SdkSessionFilters): Promise<SdkSessionInfo[]>;
  queryMessages(filters: SdkMessageFilters): Promise<Message[]>;
  queryToolCalls(filters: SdkToolCallFilters): Promise<ToolCallRecord[]>;
  aggregateStats(agentId: string): Promise<SdkAgentStats>;
}

interface ExtendedStore extends QueryableStore {
  healthCheck(): Promise<{
    healthy: boolean;
    database: { connected: boolean; latencyMs?: number };
    fileSystem: { writable: boolean };
    checkedAt: number;
  }>;
  checkConsistency(agentId: string): Promise<{ consistent: boolean; issues: string[]; checkedAt: number }>;
  getMetrics(): Promise<{
    operations: { saves: number; loads: number; queries: number; deletes: number };
    performance: { avgLatencyMs: number; maxLatencyMs: number; minLatencyMs: number };
    storage: { totalAgents: number; totalMessages: number; totalToolCalls: number; dbSizeBytes?: number };
    collectedAt: number;
  }>;
  acquireAgentLock(agentId: string, timeoutMs?: number): Promise<() => Promise<void>>;
  batchFork(agentId: string, count: number): Promise<string[]>;
  close(): Promise<void>;
}

// ---- the checks ----------------------------------------------------------------

const memory = new MemoryStore();
export const asStore: Store = memory;
export const asQueryable: QueryableStore = memory;
export const asExtended: ExtendedStore = memory;

// A peer is a store too.
export const peerAsExtended: ExtendedStore = memory.peer();

// And the other way round: nothing the SDK could call is missing from MemoryStore.
type Missing = Exclude<keyof ExtendedStore, keyof MemoryStore>;
export const nothingMissing: [Missing] extends [never] ? true : false = true;

// @ts-expect-error a store that lacks a method is not a Store (the check above can fail).
export const notAStore: Store = { saveMessages: memory.saveMessages.bind(memory) };
