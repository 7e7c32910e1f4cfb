import type { EventMode } from '../hybrid/event-modes.js';
import type { ReadEventsOptions, Timeline } from '../types.js';
import type { EventFields, EventPruneRule, PrunedRows } from './agent-backend.js';
import type { Page } from './paged-iterable.js';

/** One `append` of an `EventStorage` in the database, waiting for its batch. */
export interface PendingEvent {
  agentId: string;
  json: string;
  fields: EventFields;
}

/**
 * Where a backend keeps the event stream: in its database, or in append-only
 * files (hybrid mode, `FileEventStorage`). The backend's registry decides
 * whether an agent exists; events kept outside it are also seen, so an agent
 * whose registration could not be written is never lost from sight.
 */
export interface EventStorage {
  readonly mode: EventMode;
  /**
   * Appends one encoded timeline. Called synchronously in the order of the
   * store's `appendEvent` calls, which must be the stored order; resolves
   * once the entry is durable, rejects with typed errors.
   */
  append(agentId: string, json: string, fields: EventFields): Promise<void>;
  /** The agent's entries in append order, filtered, a page at a time (see `AgentBackend.readEventPages`). */
  readPages(agentId: string, filter: ReadEventsOptions): AsyncIterator<Page<Timeline>>;
  /** Resolves when every append made so far has settled (read-your-writes, delete, close). */
  idle(): Promise<void>;
  /** Agents (with `prefix`, when given) whose events are kept outside the database, in code-point order. */
  agentIdsOutsideDatabase(prefix: string | undefined): Promise<string[]>;
  hasOutsideDatabase(agentId: string): Promise<boolean>;
  /**
   * Removes what is kept outside the database, once the delete's transaction
   * (which removes the agent's rows, event rows included) has committed.
   */
  deleteOutsideDatabase(agentId: string): Promise<void>;
  /**
   * A time no earlier than the last write of events kept outside the
   * database (`FileEventLog.lastWriteBound`), undefined when there are none:
   * appends to a file do not touch the registry, so retention reads their
   * time here.
   */
  lastWriteOutsideDatabase(agentId: string): Promise<number | undefined>;
  /**
   * Prunes events kept outside the database (`RetentionBackend.pruneEvents`
   * for a store whose events live there); absent where events are rows,
   * which the backend prunes itself.
   */
  pruneEvents?(agentId: string, rule: EventPruneRule, dryRun: boolean): Promise<PrunedRows>;
  /** Total number of stored events, when cheap to know. */
  count(): Promise<number | undefined>;
  /** Problems found in the agent's stored events (torn or missing files, events in the other place). */
  check(agentId: string): Promise<string[]>;
  close(): Promise<void>;
}
