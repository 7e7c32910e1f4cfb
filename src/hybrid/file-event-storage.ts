import type { EventFields, EventPruneRule, PrunedRows } from '../agent/agent-backend.js';
import { tombstoneLive } from '../agent/deleted-agents.js';
import type { EventStorage } from '../agent/event-storage.js';
import type { AnyKodeStoreError, ErrorContext } from '../errors.js';
import type { ReadEventsOptions, Timeline } from '../types.js';
import { eventModeMismatch, eventModeProblem } from './event-modes.js';
import { FileEventLog } from './file-event-log.js';

/**
 * What hybrid mode asks of a backend's registry, the one rule for every
 * backend: before an agent's file is created, a deleted agent's late events
 * are discarded and an agent whose events are database rows is refused (a
 * stream is never split across two places); after its first batch is
 * written, the registry records the file, and a delete that came in between
 * makes the log remove the file again.
 */
export interface FileEventRegistry {
  /** The agent's tombstone time (undefined/null: none) and whether it has event rows in the database. */
  admission(agentId: string): Promise<{ deletedAtMs: number | null | undefined; inDatabase: boolean }>;
  /** Records that the agent's events are in files; false when the agent is a live tombstone. */
  recordFile(agentId: string): Promise<boolean>;
  /** True when the agent has event rows in the database. */
  hasDatabaseEvents(agentId: string): Promise<boolean>;
  /** True when the registry records an event file for the (live) agent. */
  recordsFile(agentId: string): Promise<boolean>;
  /** The backend's typing of its driver's errors (the log types only file-system errors). */
  wrapError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError;
}

/**
 * Hybrid mode: events in per-agent append-only files (`FileEventLog`, which
 * batches concurrent appends into one write and one fsync per agent),
 * everything else in the backend's database.
 */
export class FileEventStorage implements EventStorage {
  readonly mode = 'file' as const;
  private readonly log: FileEventLog;

  constructor(
    private readonly registry: FileEventRegistry,
    private readonly backend: string,
    readonly baseDir: string,
    fsync: boolean,
    /** A read-only store: the log writes nothing, not even the channel index its reads keep. */
    readOnly = false,
  ) {
    const typed =
      <T>(step: (agentId: string) => Promise<T>) =>
      (agentId: string) =>
        step(agentId).catch((error: unknown) => {
          throw registry.wrapError(error, { backend, operation: 'appendEvent', agentId });
        });
    this.log = new FileEventLog({
      baseDir,
      fsync,
      readOnly,
      admitAgent: typed((agentId) => this.admit(agentId)),
      registerAgent: typed((agentId) => registry.recordFile(agentId)),
    });
  }

  private async admit(agentId: string): Promise<boolean> {
    const { deletedAtMs, inDatabase } = await this.registry.admission(agentId);
    if (tombstoneLive(deletedAtMs, Date.now())) return false;
    if (inDatabase)
      throw eventModeMismatch('database', { backend: this.backend, operation: 'appendEvent', agentId });
    return true;
  }

  append(agentId: string, json: string, _fields: EventFields): Promise<void> {
    // Issued synchronously, so file order is call order.
    return this.log.appendEncoded(agentId, json);
  }

  async *readPages(agentId: string, filter: ReadEventsOptions): AsyncGenerator<Timeline[]> {
    if (await this.registry.hasDatabaseEvents(agentId)) {
      throw eventModeMismatch('database', { backend: this.backend, operation: 'readEvents', agentId });
    }
    // The log waits for this agent's appends made so far (their registration included).
    yield* this.log.readPages(agentId, filter);
  }

  idle(): Promise<void> {
    return this.log.idle();
  }

  async agentIdsOutsideDatabase(prefix: string | undefined): Promise<string[]> {
    const ids = await this.log.listAgentIds();
    return prefix === undefined ? ids : ids.filter((id) => id.startsWith(prefix));
  }

  hasOutsideDatabase(agentId: string): Promise<boolean> {
    return this.log.has(agentId);
  }

  deleteOutsideDatabase(agentId: string): Promise<void> {
    return this.log.delete(agentId);
  }

  lastWriteOutsideDatabase(agentId: string): Promise<number | undefined> {
    return this.log.lastWriteBound(agentId);
  }

  /**
   * Rewrites the agent's event file without the events `rule` names, all in
   * one rewrite (`limit` bounds database transactions, and a file is
   * rewritten whole anyway), so the result is `done`. An event's time is its
   * `bookmark.timestamp` (a line records no time of its own); an event
   * without one is never older than a date.
   */
  async pruneEvents(agentId: string, rule: EventPruneRule, dryRun: boolean): Promise<PrunedRows> {
    const { count, bytes } = await this.log.pruneEvents(
      agentId,
      {
        ...(rule.olderThan === undefined ? {} : { olderThan: rule.olderThan }),
        ...(rule.keepNewest === undefined ? {} : { keepNewest: rule.keepNewest }),
        ...(rule.channels === undefined ? {} : { channels: rule.channels }),
      },
      dryRun,
    );
    return { count, bytes, done: true };
  }

  async count(): Promise<undefined> {
    // Counting would mean reading every file; metrics leave the total out instead.
    return undefined;
  }

  async check(agentId: string): Promise<string[]> {
    const issues = await this.log.check(agentId);
    if (await this.registry.hasDatabaseEvents(agentId)) issues.push(eventModeProblem('database'));
    if ((await this.registry.recordsFile(agentId)) && !(await this.log.hasFile(agentId))) {
      issues.push(`events were written to an event file, but the file is missing under ${this.baseDir}`);
    }
    return issues;
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
