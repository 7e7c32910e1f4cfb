import type { AgentChannel, Bookmark, Timeline } from '../../src/types.js';

/**
 * Where a `SqliteStore` keeps the event stream: in the database (default) or
 * in append-only files (hybrid mode). The store validates, encodes and
 * frames every call; an implementation only stores and reads.
 */
export interface AgentEventStorage {
  readonly kind: 'database' | 'file';
  /**
   * Appends one encoded timeline. Called synchronously in the order of the
   * store's `appendEvent` calls, which must be the stored order; resolves
   * once the entry is durable.
   */
  append(agentId: string, encodedTimeline: string, fields: EventFields): Promise<void>;
  /**
   * The agent's entries in append order, filtered, a page at a time (no
   * page is empty; the store hands entries out through `pagedIterable`).
   * Waits for pending appends first.
   */
  readPages(agentId: string, filter: EventFilter): AsyncGenerator<Timeline[]>;
  /** True when entries of the agent are kept outside the agent tables (hybrid mode's files). */
  hasOutsideDatabase(agentId: string): Promise<boolean>;
  /**
   * Removes what this storage keeps outside the agent tables. Events kept in
   * the database are deleted by the store's own delete transaction, with
   * the agent's other rows.
   */
  deleteOutsideDatabase(agentId: string): Promise<void>;
  /**
   * Agents (with `prefix`, when given) whose entries are kept outside the
   * agent tables, in code-point order: `list` shows them whether or not
   * their database record was written.
   */
  agentIdsOutsideDatabase(prefix: string | undefined): Promise<string[]>;
  /** Problems found in the agent's stored events (missing or torn files). */
  check(agentId: string): Promise<string[]>;
  /** Number of stored events across all agents, when it can be counted cheaply. */
  count(): Promise<number | undefined>;
  /** Resolves when every append made so far has been written. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** The queryable fields of an event, copied into their own columns. */
export interface EventFields {
  channel: string | null;
  seq: number | null;
}

/** `readEvents` options after validation. */
export interface EventFilter {
  since?: Bookmark;
  channel?: AgentChannel;
}

/** Reads the fields the database filters on from a timeline entry. */
export function eventFields(timeline: Timeline): EventFields {
  const channel = (timeline.event as { channel?: unknown } | undefined)?.channel;
  const seq = timeline.bookmark?.seq;
  return {
    channel: typeof channel === 'string' ? channel : null,
    seq: typeof seq === 'number' && Number.isFinite(seq) ? seq : null,
  };
}
