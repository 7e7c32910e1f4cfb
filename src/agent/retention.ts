import { ValidationError } from '../errors.js';

/**
 * Retention (issue 17): what `store.prune(policy)` removes, what it reports,
 * and what `store.compact()` gives back. The rules are applied by
 * `AgentStore` (src/agent/agent-prune.ts), once for every backend.
 */

/**
 * What to remove. Every rule is optional; a policy without any rule removes
 * nothing. `templateId` and `prefix` narrow every rule to the agents they
 * name.
 *
 * @example
 * const day = 24 * 60 * 60 * 1000;
 * await store.prune({
 *   inactiveBefore: Date.now() - 90 * day,
 *   events: { olderThan: Date.now() - 30 * day, keepNewest: 1000 },
 *   snapshots: { keepNewest: 5 },
 * });
 */
export interface PrunePolicy {
  /**
   * Deletes agents whose last write of any kind (info, messages, tool calls,
   * events, snapshots, history, todos, media cache) was before this time, as
   * `delete` does (a tombstone is left, see src/agent/deleted-agents.ts). A fork is
   * judged by its own writes. Epoch milliseconds or a `Date`.
   */
  inactiveBefore?: number | Date;
  /** Only agents whose info has this `templateId` (an agent without info never matches). */
  templateId?: string;
  /** Only agents whose id starts with this prefix. */
  prefix?: string;
  /** Events of the agents that stay. */
  events?: EventRetention;
  /** Snapshots of the agents that stay. */
  snapshots?: SnapshotRetention;
}

/**
 * Which events of an agent go. With both `olderThan` and `keepNewest`, an
 * event goes when it is older than the time *and* not among the newest N
 * (the newest N are always kept).
 */
export interface EventRetention {
  /**
   * Events stored before this time (epoch milliseconds or a `Date`). Hybrid
   * mode's event files record no time per line: there an event's time is its
   * `bookmark.timestamp`, and an event without one is never older.
   */
  olderThan?: number | Date;
  /** All but the newest N events of the agent (in append order, within `channels` when given). */
  keepNewest?: number;
  /** Only events of these channels are considered (and counted for `keepNewest`). */
  channels?: string[];
}

/** Which snapshots of an agent go. */
export interface SnapshotRetention {
  /** All but the newest N snapshots (in first-save order). */
  keepNewest: number;
}

/** Options of `store.prune`. */
export interface PruneOptions {
  /** Counts what would be removed and removes nothing. */
  dryRun?: boolean;
  /**
   * Called twice per batch of agents: once it was scanned (its removals are
   * about to be made), once they are done. A returned promise is awaited
   * before the prune goes on, so a caller can slow it down.
   */
  onProgress?: (progress: PruneProgress) => void | Promise<void>;
  /**
   * Stops the prune between two steps (each step is one short transaction);
   * it then rejects with a `KodeStoreError` whose `cause` is the signal's reason. What was removed stays
   * removed, and running the same policy again finishes the work.
   */
  signal?: AbortSignal;
  /** Agents looked at per batch, and events removed per transaction (default 500). */
  batchSize?: number;
  /**
   * Agents of a batch pruned at the same time, each still in its own
   * transaction (default 8, at most 64): concurrent transactions share their
   * durable commits. 1 prunes one agent after another.
   */
  concurrency?: number;
}

/** What a prune removed (or, in a dry run, would remove). */
export interface PruneCounts {
  agents: number;
  messages: number;
  toolCalls: number;
  /** Events removed, those of deleted agents included (hybrid mode: only those pruned from kept agents). */
  events: number;
  snapshots: number;
  /** Event files removed (hybrid mode: one per deleted agent that had one). */
  files: number;
  /**
   * UTF-8 bytes of the stored JSON texts removed (what the rows held, and
   * the lines pruned from hybrid-mode event files; the database's own
   * overhead and the event files of deleted agents are not counted).
   */
  bytes: number;
}

/** Progress of a running prune. */
export interface PruneProgress {
  /** `scanned`: a batch of agents was read and is about to be pruned; `removed`: its removals are done. */
  phase: 'scanned' | 'removed';
  /** Agents looked at so far. */
  scannedAgents: number;
  /** Removed so far. */
  removed: PruneCounts;
}

/** The outcome of `store.prune`. */
export interface PruneResult extends PruneCounts {
  dryRun: boolean;
  /** Agents looked at (those the policy's `templateId` and `prefix` select). */
  scannedAgents: number;
  /** Agents that matched `inactiveBefore` when scanned but were written again before their delete, and kept. */
  keptActive: number;
}

/** Options of `store.compact`. */
export interface CompactOptions {
  /**
   * SQLite: converts a file created without incremental auto-vacuum (every
   * file made before kode-store set it) with one `VACUUM`, which rewrites
   * the whole file and blocks writers while it runs. Never done otherwise.
   */
  full?: boolean;
}

/** The outcome of `store.compact`. */
export interface CompactResult {
  /** Size of the database (SQLite file, PostgreSQL tables) before, when measurable. */
  bytesBefore?: number;
  /** Size after. */
  bytesAfter?: number;
  /** Space the database holds free that its own maintenance can reuse or give back, when known. */
  reclaimableBytes?: number;
  /** What was done, in words. */
  action: string;
}

/** A store that offers retention (every `AgentStore`; a user's own store may not). */
export interface RetentionStore {
  prune(policy: PrunePolicy, options?: PruneOptions): Promise<PruneResult>;
  compact(options?: CompactOptions): Promise<CompactResult>;
}

/** True when `store` offers `prune` and `compact`. */
export function supportsRetention<T extends object>(store: T): store is T & RetentionStore {
  const s = store as Partial<RetentionStore> & { capabilities?: { retention?: boolean } };
  return (
    typeof s.prune === 'function' && typeof s.compact === 'function' && s.capabilities?.retention !== false
  );
}

/** A policy after validation: times as epoch milliseconds. */
export interface NormalizedPrunePolicy {
  inactiveBefore?: number;
  templateId?: string;
  prefix?: string;
  events?: { olderThan?: number; keepNewest?: number; channels?: string[] };
  snapshots?: { keepNewest: number };
}

/** Checks a policy and its options; throws `ValidationError` naming the bad field. */
export function normalizePrunePolicy(policy: PrunePolicy, backend: string): NormalizedPrunePolicy {
  const fail = (message: string): never => {
    throw new ValidationError(message, { backend, operation: 'prune' });
  };
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy))
    fail('policy must be an object');
  const time = (value: unknown, field: string): number | undefined => {
    if (value === undefined) return undefined;
    const ms = value instanceof Date ? value.getTime() : value;
    if (typeof ms !== 'number' || !Number.isFinite(ms))
      fail(`${field} must be a Date or finite epoch milliseconds`);
    return ms as number;
  };
  const count = (value: unknown, field: string): number | undefined => {
    if (value === undefined) return undefined;
    if (!Number.isSafeInteger(value) || (value as number) < 0)
      fail(`${field} must be a non-negative integer`);
    return value as number;
  };
  const text = (value: unknown, field: string): string | undefined => {
    if (value === undefined) return undefined;
    if (typeof value !== 'string') fail(`${field} must be a string`);
    return value as string;
  };
  const normalized: NormalizedPrunePolicy = {};
  const inactiveBefore = time(policy.inactiveBefore, 'inactiveBefore');
  if (inactiveBefore !== undefined) normalized.inactiveBefore = inactiveBefore;
  const templateId = text(policy.templateId, 'templateId');
  if (templateId !== undefined) normalized.templateId = templateId;
  const prefix = text(policy.prefix, 'prefix');
  if (prefix !== undefined) normalized.prefix = prefix;
  if (policy.events !== undefined) {
    const events = policy.events as EventRetention;
    if (typeof events !== 'object' || events === null) fail('events must be an object');
    const olderThan = time(events.olderThan, 'events.olderThan');
    const keepNewest = count(events.keepNewest, 'events.keepNewest');
    if (olderThan === undefined && keepNewest === undefined) {
      fail('events needs olderThan or keepNewest');
    }
    let channels: string[] | undefined;
    if (events.channels !== undefined) {
      if (!Array.isArray(events.channels) || events.channels.some((c) => typeof c !== 'string')) {
        fail('events.channels must be an array of strings');
      }
      if (events.channels.length === 0) fail('events.channels must name at least one channel');
      channels = [...new Set(events.channels)];
    }
    normalized.events = {
      ...(olderThan === undefined ? {} : { olderThan }),
      ...(keepNewest === undefined ? {} : { keepNewest }),
      ...(channels === undefined ? {} : { channels }),
    };
  }
  if (policy.snapshots !== undefined) {
    const snapshots = policy.snapshots as SnapshotRetention;
    if (typeof snapshots !== 'object' || snapshots === null) fail('snapshots must be an object');
    const keepNewest = count(snapshots.keepNewest, 'snapshots.keepNewest');
    if (keepNewest === undefined) fail('snapshots.keepNewest is required');
    normalized.snapshots = { keepNewest: keepNewest as number };
  }
  return normalized;
}

/** Zero counts. */
export function noPruneCounts(): PruneCounts {
  return { agents: 0, messages: 0, toolCalls: 0, events: 0, snapshots: 0, files: 0, bytes: 0 };
}
