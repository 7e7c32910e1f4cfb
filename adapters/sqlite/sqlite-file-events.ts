import { FileEventLog } from '../../src/file-event-log.js';
import type { Timeline } from '../../src/types.js';
import type { SqliteConnection } from './sqlite-connection.js';
import type { AgentEventStorage, EventFilter } from './sqlite-event-storage.js';

/**
 * Hybrid mode: events in `FileEventLog` files under `fileStoreBaseDir`,
 * everything else in SQLite. The database still records that the agent
 * exists and that it has an event file, so `exists`/`list` see an agent
 * that has only events, and `checkConsistency` can tell a missing file from
 * an agent that never had events.
 */
export class FileEventStorage implements AgentEventStorage {
  readonly kind = 'file' as const;
  private readonly log: FileEventLog;
  /**
   * Agents this object has already recorded in the database: the record is
   * written once per agent and store object, not per append. (An agent
   * deleted through another store object and then appended to through this
   * one keeps its file but misses the record until this object is reopened;
   * `exists` still finds it through the file.)
   */
  private readonly recorded = new Set<string>();
  /**
   * The record being written, per agent: a burst of appends to a new agent
   * (the SDK fires them without awaiting) shares one write transaction
   * instead of queueing one per append.
   */
  private readonly recording = new Map<string, Promise<void>>();

  constructor(
    private readonly connection: SqliteConnection,
    baseDir: string,
    fsync: boolean,
  ) {
    // The database record follows the first successful write of an agent's
    // entries (an entry the log refused must not leave an agent behind that
    // has nothing) and comes before those appends resolve. It runs inside the
    // log's batch, so `idle()` (which `delete` waits for) covers it too: a
    // record still in flight could otherwise resurrect a deleted agent.
    this.log = new FileEventLog({
      baseDir,
      fsync,
      afterWrite: (agentId) => (this.recorded.has(agentId) ? undefined : this.record(agentId)),
    });
  }

  append(agentId: string, encodedTimeline: string): Promise<void> {
    // Issued synchronously, so file order is call order.
    return this.log.appendEncoded(agentId, encodedTimeline);
  }

  private record(agentId: string): Promise<void> {
    if (this.recorded.has(agentId)) return Promise.resolve();
    const pending = this.recording.get(agentId);
    if (pending) return pending;
    const recording: Promise<void> = this.connection
      .write(() =>
        this.connection
          .statement(
            'INSERT INTO agents (agent_id, has_file_events) VALUES (?, 1) ' +
              'ON CONFLICT (agent_id) DO UPDATE SET has_file_events = 1',
          )
          .run(agentId),
      )
      .then(() => {
        this.recorded.add(agentId);
      })
      .finally(() => {
        // A failed record is retried by the next append; a delete may have started a new one meanwhile.
        if (this.recording.get(agentId) === recording) this.recording.delete(agentId);
      });
    this.recording.set(agentId, recording);
    return recording;
  }

  readPages(agentId: string, filter: EventFilter): AsyncGenerator<Timeline[]> {
    return this.log.readPages(agentId, filter);
  }

  hasOutsideDatabase(agentId: string): Promise<boolean> {
    return this.log.has(agentId);
  }

  async deleteOutsideDatabase(agentId: string): Promise<void> {
    this.recorded.delete(agentId);
    this.recording.delete(agentId);
    await this.log.delete(agentId);
  }

  async check(agentId: string): Promise<string[]> {
    const issues = await this.log.check(agentId);
    const row = (await this.connection.read(() =>
      this.connection.statement('SELECT has_file_events FROM agents WHERE agent_id = ?').get(agentId),
    )) as { has_file_events: number } | undefined;
    if (row?.has_file_events === 1 && !(await this.log.has(agentId))) {
      issues.push(`the agent's event file is missing under ${this.log.baseDir}`);
    }
    return issues;
  }

  async count(): Promise<undefined> {
    // Counting would mean reading every file; metrics leave the total out instead.
    return undefined;
  }

  idle(): Promise<void> {
    return this.log.idle();
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
