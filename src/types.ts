/**
 * The KODE SDK's persistence types (v2.7), declared here so that a store from
 * this package type-checks wherever the SDK expects its `Store`, without the
 * SDK being installed. Shapes follow the SDK's `src/core/types.ts`,
 * `src/core/todo.ts` and `src/infra/store/types.ts`; where real data written by
 * the SDK carries more than those declarations (image blocks with `file_id`,
 * `Message.metadata`), the types admit it.
 */

// biome-ignore-all lint/suspicious/noExplicitAny: the SDK declares these fields as `any`; matching it keeps stores assignable both ways.

export type MessageRole = 'user' | 'assistant' | 'system';

export interface ReasoningContentBlock {
  type: 'reasoning';
  reasoning: string;
  meta?: Record<string, any>;
}

export interface ImageContentBlock {
  type: 'image';
  url?: string;
  file_id?: string;
  base64?: string;
  mime_type?: string;
  meta?: Record<string, any>;
}

export interface AudioContentBlock {
  type: 'audio';
  url?: string;
  file_id?: string;
  base64?: string;
  mime_type?: string;
  meta?: Record<string, any>;
}

export interface VideoContentBlock {
  type: 'video';
  url?: string;
  file_id?: string;
  base64?: string;
  mime_type?: string;
  meta?: Record<string, any>;
}

export interface FileContentBlock {
  type: 'file';
  url?: string;
  file_id?: string;
  filename?: string;
  base64?: string;
  mime_type?: string;
  meta?: Record<string, any>;
}

/** One block of a message's content, as the SDK and its providers write it. */
export type ContentBlock =
  | { type: 'text'; text: string; meta?: Record<string, any> }
  | { type: 'image_url'; image_url: { url: string } }
  | { type: 'tool_use'; id: string; name: string; input: any; meta?: Record<string, any> }
  | { type: 'tool_result'; tool_use_id: string; content: any; is_error?: boolean }
  | ReasoningContentBlock
  | ImageContentBlock
  | AudioContentBlock
  | VideoContentBlock
  | FileContentBlock;

export interface MessageMetadata {
  content_blocks?: ContentBlock[];
  transport?: 'provider' | 'text' | 'omit';
}

/** A conversation message. */
export interface Message {
  role: MessageRole;
  content: ContentBlock[];
  metadata?: MessageMetadata;
}

/** A position in an agent's event stream. `seq` is not unique (the SDK reuses it after a crash). */
export interface Bookmark {
  seq: number;
  timestamp: number;
}

export type AgentChannel = 'progress' | 'control' | 'monitor';
export type AgentRuntimeState = 'READY' | 'WORKING' | 'PAUSED';
export type BreakpointState =
  | 'READY'
  | 'PRE_MODEL'
  | 'STREAMING_MODEL'
  | 'TOOL_PENDING'
  | 'AWAITING_APPROVAL'
  | 'PRE_TOOL'
  | 'TOOL_EXECUTING'
  | 'POST_TOOL';

export type ToolCallState =
  | 'PENDING'
  | 'APPROVAL_REQUIRED'
  | 'APPROVED'
  | 'EXECUTING'
  | 'COMPLETED'
  | 'FAILED'
  | 'DENIED'
  | 'SEALED';

export interface ToolCallApproval {
  required: boolean;
  decision?: 'allow' | 'deny';
  decidedBy?: string;
  decidedAt?: number;
  note?: string;
  meta?: Record<string, any>;
}

export interface ToolCallAuditEntry {
  state: ToolCallState;
  timestamp: number;
  note?: string;
}

/** A tool call with its full audit trail. Ids are unique per agent only. */
export interface ToolCallRecord {
  id: string;
  name: string;
  input: any;
  state: ToolCallState;
  approval: ToolCallApproval;
  result?: any;
  error?: string;
  isError?: boolean;
  startedAt?: number;
  completedAt?: number;
  durationMs?: number;
  createdAt: number;
  updatedAt: number;
  auditTrail: ToolCallAuditEntry[];
}

export type ToolCallSnapshot = Pick<
  ToolCallRecord,
  | 'id'
  | 'name'
  | 'state'
  | 'approval'
  | 'result'
  | 'error'
  | 'isError'
  | 'durationMs'
  | 'startedAt'
  | 'completedAt'
> & {
  inputPreview?: any;
  auditTrail?: ToolCallAuditEntry[];
};

type Ev<C extends AgentChannel, T extends string, F = Record<never, never>> = {
  channel: C;
  type: T;
  bookmark?: Bookmark;
} & F;

export type ProgressEvent =
  | Ev<'progress', 'think_chunk_start', { step: number }>
  | Ev<'progress', 'think_chunk', { step: number; delta: string }>
  | Ev<'progress', 'think_chunk_end', { step: number }>
  | Ev<'progress', 'text_chunk_start', { step: number }>
  | Ev<'progress', 'text_chunk', { step: number; delta: string }>
  | Ev<'progress', 'text_chunk_end', { step: number; text: string }>
  | Ev<'progress', 'tool:start', { call: ToolCallSnapshot }>
  | Ev<'progress', 'tool:end', { call: ToolCallSnapshot }>
  | Ev<'progress', 'tool:error', { call: ToolCallSnapshot; error: string }>
  | Ev<'progress', 'done', { step: number; reason: 'completed' | 'interrupted' }>;

export type ControlEvent =
  | Ev<
      'control',
      'permission_required',
      {
        call: ToolCallSnapshot;
        /** A live callback in the SDK; it is never persisted (JSON drops functions). */
        respond(decision: 'allow' | 'deny', opts?: { note?: string }): Promise<void>;
      }
    >
  | Ev<
      'control',
      'permission_decided',
      { callId: string; decision: 'allow' | 'deny'; decidedBy: string; note?: string }
    >;

export type MonitorEvent =
  | Ev<'monitor', 'state_changed', { state: AgentRuntimeState }>
  | (Ev<'monitor', 'step_complete', { step: number; durationMs?: number }> & { bookmark: Bookmark })
  | Ev<
      'monitor',
      'error',
      {
        severity: 'info' | 'warn' | 'error';
        phase: 'model' | 'tool' | 'system' | 'lifecycle';
        message: string;
        detail?: any;
      }
    >
  | Ev<'monitor', 'token_usage', { inputTokens: number; outputTokens: number; totalTokens: number }>
  | Ev<'monitor', 'tool_executed', { call: ToolCallSnapshot }>
  | Ev<'monitor', 'agent_resumed', { strategy: 'crash' | 'manual'; sealed: ToolCallSnapshot[] }>
  | Ev<'monitor', 'todo_changed', { current: TodoItem[]; previous: TodoItem[] }>
  | Ev<'monitor', 'todo_reminder', { todos: TodoItem[]; reason: string }>
  | Ev<'monitor', 'file_changed', { path: string; mtime: number }>
  | Ev<
      'monitor',
      'reminder_sent',
      { category: 'file' | 'todo' | 'security' | 'performance' | 'general'; content: string }
    >
  | Ev<'monitor', 'context_compression', { phase: 'start' | 'end'; summary?: string; ratio?: number }>
  | Ev<
      'monitor',
      'scheduler_triggered',
      { taskId: string; spec: string; kind: 'steps' | 'time' | 'cron'; triggeredAt: number }
    >
  | Ev<
      'monitor',
      'breakpoint_changed',
      { previous: BreakpointState; current: BreakpointState; timestamp: number }
    >
  | Ev<'monitor', 'tool_manual_updated', { tools: string[]; timestamp: number }>
  | Ev<'monitor', 'skills_metadata_updated', { skills: string[]; timestamp: number }>
  | Ev<
      'monitor',
      'tool_custom_event',
      { toolName: string; eventType: string; data?: any; timestamp: number }
    >;

/** An event on one of the three channels; stores keep it as opaque JSON. */
export type AgentEvent = ProgressEvent | ControlEvent | MonitorEvent;

/** One entry of an agent's event stream, as appended and read back. */
export interface Timeline {
  cursor: number;
  bookmark: Bookmark;
  event: AgentEvent;
}

export type SnapshotId = string;

export interface Snapshot {
  id: SnapshotId;
  messages: Message[];
  lastSfpIndex: number;
  lastBookmark: Bookmark;
  createdAt: string;
  metadata?: Record<string, any>;
}

/** Agent metadata. Stores accept partial or extended objects and return them as saved. */
export interface AgentInfo {
  agentId: string;
  templateId: string;
  createdAt: string;
  lineage: string[];
  configVersion: string;
  messageCount: number;
  lastSfpIndex: number;
  lastBookmark?: Bookmark;
  breakpoint?: BreakpointState;
  metadata?: Record<string, any>;
}

export type TodoStatus = 'pending' | 'in_progress' | 'completed';

export interface TodoItem {
  id: string;
  title: string;
  status: TodoStatus;
  assignee?: string;
  notes?: string;
  createdAt: number;
  updatedAt: number;
}

export interface TodoSnapshot {
  todos: TodoItem[];
  version: number;
  updatedAt: number;
}

export interface HistoryWindow {
  id: string;
  messages: Message[];
  events: Timeline[];
  stats: {
    messageCount: number;
    tokenCount: number;
    eventCount: number;
  };
  timestamp: number;
}

export interface CompressionRecord {
  id: string;
  windowId: string;
  config: {
    model: string;
    prompt: string;
    threshold: number;
  };
  summary: string;
  ratio: number;
  recoveredFiles: string[];
  timestamp: number;
}

export interface RecoveredFile {
  path: string;
  content: string;
  mtime: number;
  timestamp: number;
}

export interface MediaCacheRecord {
  key: string;
  provider: string;
  mimeType: string;
  sizeBytes: number;
  fileId?: string;
  fileUri?: string;
  createdAt: number;
}

/** A point in time for a filter: a `Date`, epoch milliseconds, or an ISO-8601 string. */
export type TimeInput = Date | number | string;

/** Shared by every query: paging and ordering. */
export interface PageFilters {
  /** Maximum results; default 100, `0` returns nothing. */
  limit?: number;
  /** Results to skip; honoured with or without `limit`. */
  offset?: number;
  /** `desc` (newest first) by default. Anything else is refused with a `QueryError`. */
  sortOrder?: 'asc' | 'desc';
  /** Inclusive lower bound on the creation time (SDK naming). */
  startDate?: TimeInput;
  /** Inclusive upper bound on the creation time (SDK naming). */
  endDate?: TimeInput;
  /** Exclusive lower bound on the creation time (seed naming). */
  createdAfter?: TimeInput;
  /** Exclusive upper bound on the creation time (seed naming). */
  createdBefore?: TimeInput;
}

export interface SessionFilters extends PageFilters {
  agentId?: string;
  templateId?: string;
  /** Matches `AgentInfo.metadata.userId`. */
  userId?: string;
  sortBy?: 'created_at' | 'updated_at' | 'message_count';
}

export interface MessageFilters extends PageFilters {
  agentId?: string;
  role?: MessageRole;
  /** Keeps messages that contain at least one block of this type. */
  contentType?: string;
  sortBy?: 'created_at';
}

export interface ToolCallFilters extends PageFilters {
  agentId?: string;
  toolName?: string;
  state?: ToolCallState;
  isError?: boolean;
  /** `true`: calls whose approval was required; `false`: calls that needed none. */
  hasApproval?: boolean;
  sortBy?: 'created_at' | 'updated_at';
}

export interface SessionInfo {
  agentId: string;
  templateId: string;
  createdAt: string;
  messageCount: number;
  lastSfpIndex: number;
  breakpoint?: BreakpointState;
}

export interface AgentStats {
  totalMessages: number;
  totalToolCalls: number;
  totalSnapshots: number;
  avgMessagesPerSession?: number;
  toolCallsByName?: Record<string, number>;
  toolCallsByState?: Record<string, number>;
}

export interface StoreHealthStatus {
  healthy: boolean;
  database: {
    connected: boolean;
    latencyMs?: number;
    /** Why the database is not healthy, when it is not. */
    error?: string;
  };
  fileSystem: {
    writable: boolean;
    error?: string;
  };
  checkedAt: number;
}

export interface ConsistencyCheckResult {
  consistent: boolean;
  issues: string[];
  checkedAt: number;
}

/** Latency percentiles over the operations a store has run since it opened. */
export interface LatencySummary {
  avgLatencyMs: number;
  maxLatencyMs: number;
  minLatencyMs: number;
  p50LatencyMs?: number;
  p95LatencyMs?: number;
  p99LatencyMs?: number;
}

export interface StoreMetrics {
  operations: {
    saves: number;
    loads: number;
    queries: number;
    deletes: number;
  };
  performance: LatencySummary;
  storage: {
    totalAgents: number;
    totalMessages: number;
    totalToolCalls: number;
    totalEvents?: number;
    dbSizeBytes?: number;
  };
  collectedAt: number;
}

export type LockReleaseFn = () => Promise<void>;

/** Options of `readEvents`. */
export interface ReadEventsOptions {
  /** Keeps entries whose `bookmark.seq` is greater than `since.seq`. */
  since?: Bookmark;
  /** Keeps entries whose `event.channel` is this channel. */
  channel?: AgentChannel;
}

/** The SDK's base store: everything an `Agent` needs to persist and resume. */
export interface Store {
  saveMessages(agentId: string, messages: Message[]): Promise<void>;
  loadMessages(agentId: string): Promise<Message[]>;
  saveToolCallRecords(agentId: string, records: ToolCallRecord[]): Promise<void>;
  loadToolCallRecords(agentId: string): Promise<ToolCallRecord[]>;
  saveTodos(agentId: string, snapshot: TodoSnapshot): Promise<void>;
  loadTodos(agentId: string): Promise<TodoSnapshot | undefined>;
  appendEvent(agentId: string, timeline: Timeline): Promise<void>;
  readEvents(agentId: string, opts?: ReadEventsOptions): AsyncIterable<Timeline>;
  saveHistoryWindow(agentId: string, window: HistoryWindow): Promise<void>;
  loadHistoryWindows(agentId: string): Promise<HistoryWindow[]>;
  saveCompressionRecord(agentId: string, record: CompressionRecord): Promise<void>;
  loadCompressionRecords(agentId: string): Promise<CompressionRecord[]>;
  saveRecoveredFile(agentId: string, file: RecoveredFile): Promise<void>;
  loadRecoveredFiles(agentId: string): Promise<RecoveredFile[]>;
  saveMediaCache(agentId: string, records: MediaCacheRecord[]): Promise<void>;
  loadMediaCache(agentId: string): Promise<MediaCacheRecord[]>;
  saveSnapshot(agentId: string, snapshot: Snapshot): Promise<void>;
  loadSnapshot(agentId: string, snapshotId: string): Promise<Snapshot | undefined>;
  listSnapshots(agentId: string): Promise<Snapshot[]>;
  saveInfo(agentId: string, info: AgentInfo): Promise<void>;
  loadInfo(agentId: string): Promise<AgentInfo | undefined>;
  exists(agentId: string): Promise<boolean>;
  delete(agentId: string): Promise<void>;
  list(prefix?: string): Promise<string[]>;
}

/** A `Store` that can also be queried across agents. */
export interface QueryableStore extends Store {
  querySessions(filters: SessionFilters): Promise<SessionInfo[]>;
  queryMessages(filters: MessageFilters): Promise<Message[]>;
  queryToolCalls(filters: ToolCallFilters): Promise<ToolCallRecord[]>;
  aggregateStats(agentId: string): Promise<AgentStats>;
}

/** A `QueryableStore` with health, consistency, metrics, locks and forks. */
export interface ExtendedStore extends QueryableStore {
  healthCheck(): Promise<StoreHealthStatus>;
  checkConsistency(agentId: string): Promise<ConsistencyCheckResult>;
  getMetrics(): Promise<StoreMetrics>;
  acquireAgentLock(agentId: string, timeoutMs?: number): Promise<LockReleaseFn>;
  batchFork(agentId: string, count: number): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * What a store can guarantee. Conformance cases that need a capability are
 * reported as skipped, with the reason given here, on a store that lacks it.
 */
export interface StoreCapabilities {
  /** Locks exclude other store instances on the same database (not just this object). */
  crossInstanceLocks: boolean;
  /** Locks exclude other processes, and a dead holder's lock is freed within the lease time. */
  crossProcessLocks: boolean;
  /** Multi-record writes (batchFork, saveMessages) are atomic. */
  transactions: boolean;
  /** A resolved write survives a crash of the process. */
  durable: boolean;
  /** Events live in append-only files (hybrid mode). */
  fileEvents: boolean;
  /** `prune()` and `compact()` work (stores built on `AgentStore`; absent for other stores). */
  retention?: boolean;
  /** Why each missing capability is missing, for skip messages. */
  reasons?: Partial<Record<Exclude<keyof StoreCapabilities, 'reasons'>, string>>;
}
