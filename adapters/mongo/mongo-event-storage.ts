import type { EventFields } from '../../src/agent/agent-backend.js';
import type { AgentChannel, Bookmark, Timeline } from '../../src/types.js';

/**
 * Where a `MongoAgentBackend` keeps the event streams: in the
 * `<prefix>events` collection (default, mongo-database-events.ts) or in
 * append-only files (hybrid mode, mongo-file-events.ts). `AgentStore`
 * validates, encodes and frames every call; an implementation only stores
 * and reads.
 */
export interface MongoEventStorage {
  readonly kind: 'database' | 'file';
  /**
   * Appends one encoded timeline. Called synchronously in the order of the
   * store's `appendEvent` calls, which is the stored order; resolves once the
   * entry is stored, rejects if it is not (nothing of a rejected append stays).
   */
  append(agentId: string, encodedTimeline: string, fields: EventFields): Promise<void>;
  /**
   * The agent's entries in append order, filtered, a page at a time (no page
   * is empty), decoded. Waits for pending appends first.
   */
  readPages(agentId: string, filter: EventFilter): AsyncGenerator<Timeline[]>;
  /** True when the agent has events kept outside the database (hybrid mode). */
  hasOutsideDatabase(agentId: string): Promise<boolean>;
  /** Agents with events kept outside the database, for `list()`. */
  listOutsideDatabase(): Promise<string[]>;
  /** Removes the agent's events. */
  delete(agentId: string): Promise<void>;
  /** Problems found in the agent's stored events (torn or unreadable files). */
  check(agentId: string): Promise<string[]>;
  /** Number of stored events across all agents, when it can be counted cheaply. */
  count(): Promise<number | undefined>;
  /** Resolves when every append made so far has been written. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** `readEvents` options after `AgentStore` checked them. */
export interface EventFilter {
  since?: Bookmark;
  channel?: AgentChannel;
}

/** Reads a counter the server returned (a number; a `Long` if it ever passed 2^31 with promoteLongs off). */
export function counterValue(value: unknown): number {
  if (typeof value === 'number') return value;
  const toNumber = (value as { toNumber?: () => number } | null)?.toNumber;
  if (typeof toNumber === 'function') return toNumber.call(value);
  return 0;
}
