import { DELETED_AGENT_RETENTION_MS, tombstoneLive } from '../../src/deleted-agents.js';
import { eventModeMismatch, eventModeProblem } from '../../src/event-modes.js';
import { FileEventLog } from '../../src/file-event-log.js';
import type { Timeline } from '../../src/types.js';
import type { SqliteConnection } from './sqlite-connection.js';
import type { AgentEventStorage, EventFilter } from './sqlite-event-storage.js';
import { hasDatabaseEvents } from './sqlite-registry.js';

/**
 * Hybrid mode: events in `FileEventLog` files under `fileStoreBaseDir`,
 * everything else in SQLite. The database also records that the agent has
 * an event file (`has_file_events`), so that `checkConsistency` can tell a
 * missing file from an agent that never had events. `list`/`exists` read the
 * files too, so an agent whose record could not be written (the database
 * stayed locked) is still seen; see `FileEventLog` for when it is written.
 */
export class FileEventStorage implements AgentEventStorage {
  readonly kind = 'file' as const;
  private readonly log: FileEventLog;

  constructor(
    private readonly connection: SqliteConnection,
    baseDir: string,
    fsync: boolean,
  ) {
    this.log = new FileEventLog({
      baseDir,
      fsync,
      admitAgent: (agentId) => this.admit(agentId),
      registerAgent: (agentId) => this.record(agentId),
    });
  }

  append(agentId: string, encodedTimeline: string): Promise<void> {
    // Issued synchronously, so file order is call order.
    return this.log.appendEncoded(agentId, encodedTimeline);
  }

  /**
   * Before the agent's file is created: a deleted agent's late events are
   * discarded, and an agent whose events are in the database is refused
   * (its stream must not be split across two places).
   */
  private async admit(agentId: string): Promise<boolean> {
    const { deleted, inDatabase } = await this.connection.read(() => ({
      deleted: (
        this.connection.statement('SELECT deleted_at_ms FROM agents WHERE agent_id = ?').get(agentId) as
          | { deleted_at_ms: number | null }
          | undefined
      )?.deleted_at_ms,
      inDatabase: hasDatabaseEvents(this.connection, agentId),
    }));
    if (tombstoneLive(deleted, Date.now())) return false;
    if (inDatabase)
      throw eventModeMismatch('database', { backend: 'sqlite', operation: 'appendEvent', agentId });
    return true;
  }

  /**
   * Records that the agent's events are in files; false when the agent is a
   * live tombstone (another store deleted it after `admit`), so that the log
   * removes the file it just wrote. An expired tombstone ends here.
   */
  private record(agentId: string): Promise<boolean> {
    const cutoff = Date.now() - DELETED_AGENT_RETENTION_MS;
    return this.connection.write(() => {
      const row = this.connection
        .statement(
          'INSERT INTO agents (agent_id, has_file_events) VALUES (?, 1) ' +
            'ON CONFLICT (agent_id) DO UPDATE SET has_file_events = 1, ' +
            'deleted_at_ms = CASE WHEN deleted_at_ms > ? THEN deleted_at_ms END ' +
            'RETURNING deleted_at_ms',
        )
        .get(agentId, cutoff) as { deleted_at_ms: number | null };
      return row.deleted_at_ms === null;
    });
  }

  async *readPages(agentId: string, filter: EventFilter): AsyncGenerator<Timeline[]> {
    if (await this.connection.read(() => hasDatabaseEvents(this.connection, agentId))) {
      throw eventModeMismatch('database', { backend: 'sqlite', operation: 'readEvents', agentId });
    }
    yield* this.log.readPages(agentId, filter);
  }

  hasOutsideDatabase(agentId: string): Promise<boolean> {
    return this.log.has(agentId);
  }

  deleteOutsideDatabase(agentId: string): Promise<void> {
    return this.log.delete(agentId);
  }

  async agentIdsOutsideDatabase(prefix: string | undefined): Promise<string[]> {
    const ids = await this.log.listAgentIds();
    return prefix === undefined ? ids : ids.filter((id) => id.startsWith(prefix));
  }

  async check(agentId: string): Promise<string[]> {
    const issues = await this.log.check(agentId);
    if (await this.connection.read(() => hasDatabaseEvents(this.connection, agentId))) {
      issues.push(eventModeProblem('database'));
    }
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
