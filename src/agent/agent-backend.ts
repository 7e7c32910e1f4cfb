import type { AnyKodeStoreError, ErrorContext } from '../errors.js';
import type {
  AgentStats,
  LockReleaseFn,
  ReadEventsOptions,
  StoreCapabilities,
  StoreHealthStatus,
  StoreMetrics,
  Timeline,
} from '../types.js';
import type { Page } from './paged-iterable.js';
import type {
  NormalizedMessageQuery,
  NormalizedSessionQuery,
  NormalizedToolCallQuery,
} from './query-filters.js';
import type { SessionFields, ToolCallFields } from './record-fields.js';
import type { CompactOptions, CompactResult } from './retention.js';

/**
 * The port between `AgentStore` (every rule of the SDK's `ExtendedStore`
 * that does not depend on where data lives) and one backend (how it is
 * stored). `AgentStore` has already checked the store is open, the agent id,
 * read-only mode and every argument, and encoded every value as JSON text
 * with `StoreCodec`; a backend stores those texts and hands them back as
 * they were saved. It decodes nothing but event pages, and throws its
 * driver's errors as they are (`classifyError` reads them).
 *
 * Every method may be called before `open()` has resolved: a backend opens
 * (connects, creates or upgrades its schema) on first use.
 */
export interface AgentBackend {
  /** The backend's name in errors and metrics (`sqlite`, `postgres`, ...). */
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  /** True when opened read-only: `AgentStore` refuses every write before it reaches the backend. */
  readonly readOnly: boolean;
  /** The backend's reading of its driver's errors; `undefined` leaves an error to the generic wrapping. */
  classifyError?(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined;

  /** Connects and creates or upgrades the schema. */
  open(): Promise<void>;

  // ---- lists: the whole list is saved every time ----------------------
  /**
   * Replaces the agent's messages. A message whose text was stored before at
   * a position that changes keeps the time it was first saved (see
   * `pairFirstSavedTimes`); every other message written now is stamped now.
   * That time is what `queryMessages` filters and sorts on.
   */
  saveMessages(agentId: string, messages: EncodedList<MessageFields>): Promise<void>;
  saveToolCalls(agentId: string, records: EncodedList<ToolCallRowFields>): Promise<void>;
  /** The list's texts in order; empty when nothing was saved. */
  loadList(agentId: string, list: AgentList): Promise<string[]>;

  // ---- documents: one value per agent, replaced on save -----------------
  saveDocument(agentId: string, document: Exclude<AgentDocument, 'info'>, json: string): Promise<void>;
  loadDocument(agentId: string, document: AgentDocument): Promise<string | undefined>;
  /** Saves the info with the fields queries filter on; the store time of the save is `updatedAt`. */
  saveInfo(agentId: string, json: string, fields: SessionFields): Promise<void>;

  // ---- records: appended, read back in order ----------------------------
  appendRecord(agentId: string, kind: AgentRecordKind, json: string): Promise<void>;
  loadRecords(agentId: string, kind: AgentRecordKind): Promise<string[]>;

  // ---- snapshots: by id, listed in first-save order ---------------------
  saveSnapshot(agentId: string, snapshotId: string, json: string): Promise<void>;
  loadSnapshot(agentId: string, snapshotId: string): Promise<string | undefined>;
  listSnapshots(agentId: string): Promise<string[]>;

  // ---- events -----------------------------------------------------------
  /**
   * Appends one encoded timeline. Called synchronously in the order of the
   * store's `appendEvent` calls, which must be the stored order; the promise
   * resolves once the entry is durable and rejects with typed errors. A late
   * event of a deleted agent is acknowledged and not stored (deleted-agents.ts).
   */
  appendEvent(agentId: string, json: string, fields: EventFields): Promise<void>;
  /**
   * The agent's entries in append order, filtered, a page at a time (no
   * page is empty; a `Page` may decode each entry only when it is read).
   * Entries appended while reading are seen, none twice. `filter` is
   * checked: `since.seq` is a finite number, `channel` a string.
   */
  readEventPages(agentId: string, filter: ReadEventsOptions): AsyncIterator<Page<Timeline>>;

  // ---- registry ---------------------------------------------------------
  exists(agentId: string): Promise<boolean>;
  /** Removes everything of the agent and leaves a tombstone (deleted-agents.ts). */
  delete(agentId: string): Promise<void>;
  /**
   * Ids in code-point order, those starting with `prefix` when given. The
   * prefix is a string an id can start with (no NUL, no lone surrogate).
   */
  list(prefix: string | undefined): Promise<string[]>;

  // ---- queries: rows of stored text, sorted and paged as asked ----------
  // A query's `agentId` is one an id can be (no NUL, no lone surrogate); the store answers the others.
  /**
   * Each row's text is the `sessionJson` saved with the agent's info, so a
   * page parses no agent's whole configuration. An info saved before the
   * backend stored that text comes as the stored info, or as a JSON object
   * of only the info fields `toSessionInfo` reads: `toSessionInfo` gives the
   * same session from any of the three.
   */
  querySessions(query: NormalizedSessionQuery): Promise<Array<Required<StoredRow>>>;
  queryMessages(query: NormalizedMessageQuery): Promise<StoredRow[]>;
  queryToolCalls(query: NormalizedToolCallQuery): Promise<StoredRow[]>;
  /** Counts of one agent (`avgMessagesPerSession` is filled in by the store). */
  aggregateStats(agentId: string): Promise<Omit<AgentStats, 'avgMessagesPerSession'>>;

  /**
   * Copies the agent to each of `forkIds` in one atomic write: info (the
   * text `forkInfo` makes from the source's, read in the same write),
   * messages with their saved times, tool calls, todos and snapshots; events,
   * history and media cache are not copied. Returns false, writing nothing,
   * when the source does not exist.
   */
  fork(agentId: string, forkIds: readonly string[], forkInfo: ForkInfoMaker): Promise<boolean>;

  /** Takes the agent's lock (see `ExtendedStore.acquireAgentLock`). */
  acquireLock(agentId: string, timeoutMs: number): Promise<LockReleaseFn>;

  // ---- observation --------------------------------------------------------
  /**
   * A round trip to the database; throws when it cannot be made. Resolves
   * with what makes a reachable database unusable (its tables are gone), or
   * undefined when it is sound.
   */
  ping(): Promise<string | undefined>;
  /** Whether the directories the backend writes (database file, event files) can be written. */
  fileSystem(): Promise<StoreHealthStatus['fileSystem']>;
  /** What the store needs to judge one agent's consistency. */
  inspect(agentId: string): Promise<AgentInspection>;
  /** Totals across the store. */
  storage(): Promise<StoreMetrics['storage']>;

  /**
   * Called once every operation of the store has settled: finishes pending
   * appends, releases the locks this store holds, and closes what it opened.
   */
  close(): Promise<void>;
}

/**
 * What a backend offers for retention (`store.prune`, `store.compact`;
 * src/agent/retention.ts, with the rules applied once by agent-prune.ts). Optional:
 * a backend without it gives a store whose `capabilities.retention` is false.
 */
export interface RetentionBackend {
  /**
   * Live agents (no tombstones) in code-point order of id, those after
   * `after`, at most `limit`, with the time of their last write of any kind:
   * every write sets it (an event append once per batch), and hybrid mode
   * also reads the event file's modification time.
   */
  scanAgents(query: AgentScanQuery): Promise<AgentActivity[]>;
  /**
   * Deletes the agent exactly as `delete` does (tombstone included), but only
   * if its last write is still before `before`, checked inside the delete's
   * own transaction (an agent written since is kept). With `dryRun`, counts
   * what the delete would remove and changes nothing. Returns what was (or
   * would be) removed, or undefined when the agent was kept or is gone.
   */
  deleteIfInactive(agentId: string, before: number, dryRun: boolean): Promise<RemovedAgent | undefined>;
  /**
   * Removes, in one short transaction, at most `limit` of the agent's events
   * that `rule` names (oldest first) and returns how many; with `dryRun`,
   * counts every event it names and removes nothing. An event's time is
   * when it was stored (for events stored before the store recorded that:
   * its `bookmark.timestamp`, and none when it has none). Returns how many
   * went and their stored JSON's UTF-8 bytes. Hybrid mode: the backend
   * hands the call to its `EventStorage.pruneEvents` (the file is rewritten
   * whole, `done` set).
   */
  pruneEvents(agentId: string, rule: EventPruneRule, dryRun: boolean): Promise<PrunedRows>;
  /** Removes all but the newest `keepNewest` snapshots (first-save order); returns what went (or would). */
  pruneSnapshots(agentId: string, keepNewest: number, dryRun: boolean): Promise<PrunedRows>;
  /** Gives space back to the file system where the backend can (see `CompactOptions`). */
  compact(options: CompactOptions): Promise<CompactResult>;
}

/** True when the backend offers retention. */
export function hasRetention(backend: AgentBackend): backend is AgentBackend & RetentionBackend {
  const b = backend as Partial<RetentionBackend>;
  return (
    typeof b.scanAgents === 'function' &&
    typeof b.deleteIfInactive === 'function' &&
    typeof b.pruneEvents === 'function' &&
    typeof b.pruneSnapshots === 'function' &&
    typeof b.compact === 'function'
  );
}

/**
 * A list as the store hands it to a backend: each item's text, and the
 * fields of an item, computed when asked (a save usually writes only the
 * few items that changed).
 */
export interface EncodedList<F> {
  texts: readonly string[];
  fields(index: number): F;
}

/** The fields queries filter messages on. */
export interface MessageFields {
  /** `message.role` when a string, else ''. */
  role: string;
  contentTypes: string[];
}

/** The fields queries filter tool calls on, with the call's id (`String(record.id)`). */
export interface ToolCallRowFields extends ToolCallFields {
  id: string;
}

/** Lists an agent keeps, each saved whole. */
export type AgentList = 'messages' | 'toolCalls';

/** Values an agent keeps one of: the todo snapshot, the media cache (a JSON array) and the info (saved by `saveInfo`). */
export type AgentDocument = 'todos' | 'mediaCache' | 'info';

/** Records appended to an agent's history. */
export type AgentRecordKind = 'history_window' | 'compression_record' | 'recovered_file';

/** The fields the database filters events on. */
export interface EventFields {
  channel: string | null;
  seq: number | null;
}

/** One row of a query: its stored text and, where the backend read it, the agent it belongs to (for errors). */
export interface StoredRow {
  agentId?: string;
  json: string;
}

/** Makes a fork's info from the source's stored info text. */
export type ForkInfoMaker = (
  forkId: string,
  sourceInfoJson: string,
) => { json: string; fields: SessionFields };

/** One agent's stored shape, for `checkConsistency`. */
export interface AgentInspection {
  exists: boolean;
  /** The stored info text, when there is one. */
  infoJson?: string;
  /** Number of stored messages. */
  messages: number;
  /** Problems the backend found in how the agent is stored (gaps, unreadable rows, torn event files). */
  issues: string[];
}

/** `scanAgents`'s question. */
export interface AgentScanQuery {
  /** Only ids starting with it (a string an id can start with). */
  prefix?: string;
  /** Only agents whose info has this template id. */
  templateId?: string;
  /** Only ids after this one (the last id of the previous page). */
  after?: string;
  limit: number;
}

/** One agent as `scanAgents` sees it. */
export interface AgentActivity {
  agentId: string;
  /** Epoch ms of the agent's last write; null when not known (the agent is then never judged inactive). */
  lastWriteMs: number | null;
}

/** What deleting one agent removed. */
export interface RemovedAgent {
  messages: number;
  toolCalls: number;
  /** Events in the database (events in a hybrid mode file are not counted). */
  events: number;
  snapshots: number;
  /** Event files removed (hybrid mode). */
  files: number;
  /**
   * UTF-8 bytes of the stored JSON texts removed: info, messages, tool calls,
   * events, snapshots, history records (not an event file's size).
   */
  bytes: number;
}

/** What one `pruneEvents` or `pruneSnapshots` call removed. */
export interface PrunedRows {
  count: number;
  /** UTF-8 bytes of their stored JSON texts. */
  bytes: number;
  /**
   * True when nothing the rule names is left, whatever `count` says (an
   * event file is rewritten whole, so its prune may go past `limit`); when
   * absent, a `count` below `limit` means the same.
   */
  done?: boolean;
}

/** Which of an agent's events `pruneEvents` removes: those matching every given field. */
export interface EventPruneRule {
  /** Events stored before this time (epoch ms). */
  olderThan?: number;
  /** Events that are not among the newest N (append order, within `channels`). */
  keepNewest?: number;
  /** Only events of these channels. */
  channels?: string[];
  /** At most this many per call (ignored by a dry run). */
  limit: number;
}
