import type { AgentChannel, AgentInfo, Message, Timeline, ToolCallRecord } from '../../src/types.js';

/**
 * What a store is measured against: the raw driver doing the same bytes on
 * the same machine in the same run, with nothing a store adds (validation,
 * incremental diffing, query columns, metrics, error wrapping). Each
 * implementation serialises with `JSON.stringify` and parses with
 * `JSON.parse` itself, as part of the timed work, and commits at the same
 * durability as the store it is compared with.
 *
 * The interfaces are split by what each raw driver can stand in for: the
 * agent tables (SQLite, PostgreSQL), the event stream (SQLite, PostgreSQL,
 * append-only files for the hybrid mode) and KV records.
 */

/**
 * One conversation step as a hand-written append-only store writes it: only
 * the new messages, the tool-call records that changed, and the info row.
 */
export interface RawStep {
  /** Position of the first new message. */
  firstPosition: number;
  messages: readonly Message[];
  info: AgentInfo;
  /** Tool-call records written at `firstPosition`.. (insert or replace). */
  toolCalls?: { firstPosition: number; records: readonly ToolCallRecord[] };
}

/** Conversation, info, tool calls and forks as plain rows. */
export interface RawAgentTables {
  /** Inserts messages at `firstPosition`.. in one transaction: the append-only conversation. */
  insertMessages(agentId: string, firstPosition: number, messages: readonly Message[]): Promise<void>;
  /** Writes one conversation step (new messages, changed tool calls, info row) in one transaction: one commit. */
  appendStep(agentId: string, step: RawStep): Promise<void>;
  /** Upserts the agent's info row (one commit). */
  upsertInfo(agentId: string, info: AgentInfo): Promise<void>;
  /** Writes tool-call records at `firstPosition`.. (insert or replace) in one transaction. */
  upsertToolCalls(agentId: string, firstPosition: number, records: readonly ToolCallRecord[]): Promise<void>;
  /** The agent's messages, parsed, in order. */
  loadMessages(agentId: string): Promise<Message[]>;
  /** The agent's tool-call records, parsed, in order. */
  loadToolCalls(agentId: string): Promise<ToolCallRecord[]>;
  /** Copies the agent's messages, tool calls and info to each fork id with set-based statements, in one transaction. */
  copyAgent(sourceId: string, forkIds: readonly string[]): Promise<void>;
}

/** Which events a raw read keeps: the same filters as `readEvents`. */
export interface RawEventFilter {
  sinceSeq?: number;
  channel?: AgentChannel;
}

/** An agent's event stream as rows or lines. */
export interface RawEventLog {
  /** Appends every event in one transaction (one commit, one fsync). */
  appendAllAtOnce(agentId: string, events: readonly Timeline[]): Promise<void>;
  /** Appends one event in its own commit (awaited one by one by the workload). */
  appendOne(agentId: string, event: Timeline): Promise<void>;
  /** Reads and parses the agent's events in append order; returns how many matched. */
  read(agentId: string, filter: RawEventFilter): Promise<number>;
  /**
   * Reads and parses all the agent's events in append order without ever
   * holding more than a page of them (rows streamed, pages of `pageSize`
   * rows, or chunks of a file): a stream too long to load at once, as
   * `readEvents` reads it. Returns how many there were. With `limit`, stops
   * at the first row, page or chunk that reaches it (a warm-up).
   */
  readStreaming(agentId: string, pageSize: number, limit?: number): Promise<number>;
}

/** KV records as rows keyed by (instance, namespace, key). */
export interface RawKv {
  /** Upserts one value in its own commit. */
  set(instance: string, namespace: string, key: string, value: unknown): Promise<void>;
  /** Reads and parses one value. */
  get(instance: string, namespace: string, key: string): Promise<unknown>;
  /** Upserts many values in one transaction (filling a namespace, untimed). */
  setMany(
    instance: string,
    items: ReadonlyArray<{ namespace: string; key: string; value: unknown }>,
  ): Promise<void>;
}

/** The raw baselines of one backend; a part is absent where the backend has no raw counterpart. */
/** Where a raw event baseline keeps its data. */
export type RawEventsLocation =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; url: string; schema: string }
  | { kind: 'files'; dir: string };

export interface RawBaselines {
  /** Describes the baseline and its durability in the report, e.g. `better-sqlite3 (WAL, synchronous=FULL)`. */
  readonly label: string;
  readonly tables?: RawAgentTables;
  readonly events?: RawEventLog;
  /** Label of the event baseline when it differs from `label` (hybrid mode: files). */
  readonly eventsLabel?: string;
  /** Where `events` keeps its data, for reading it from another process (`openRawEvents`). */
  readonly eventsLocation?: RawEventsLocation;
  readonly kv?: RawKv;
  close(): Promise<void>;
}
