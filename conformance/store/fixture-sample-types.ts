import type {
  AgentInfo,
  CompressionRecord,
  HistoryWindow,
  MediaCacheRecord,
  Message,
  RecoveredFile,
  Snapshot,
  Timeline,
  TodoSnapshot,
  ToolCallRecord,
} from '../../src/types.js';

/** One agent of the SDK-written fixture, as its JSONStore left it. */
export interface FixtureAgent {
  agentId: string;
  info: AgentInfo;
  messages: Message[];
  toolCalls: ToolCallRecord[];
  todos?: TodoSnapshot;
  mediaCache?: MediaCacheRecord[];
  /** Every channel's event lines, ordered by seq; duplicates and reused seqs kept. */
  events: Timeline[];
}

/** The shape of `fixtureSample`. */
export interface FixtureSample {
  agents: FixtureAgent[];
  /** A fork of a fork: `lineage` holds two ancestors. */
  forkOfForkInfo: AgentInfo;
  /** The AgentPool's bookkeeping record: a partial, extended AgentInfo. */
  poolMetaInfo: Record<string, unknown>;
  snapshot: Snapshot;
  historyWindow: HistoryWindow;
  compressionRecord: CompressionRecord;
  recoveredFile: RecoveredFile;
}
