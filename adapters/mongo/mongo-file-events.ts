import type { FileEventLog } from '../../src/file-event-log.js';
import type { Timeline } from '../../src/types.js';
import type { EventFilter, MongoEventStorage } from './mongo-event-storage.js';

/**
 * Hybrid mode: events in the shared `FileEventLog` (one append-only file per
 * agent, fsynced batches). The backend gives the log its `registerAgent`
 * (which marks the agent document `eventFiles: true`), so that
 * `checkConsistency` can tell a missing file from an agent that never had
 * events; the log calls it after the agent's first written batch, and a
 * failed mark neither rejects the appends nor hides the agent (`list` and
 * `exists` read the files too). See `FileEventLog`.
 */
export class FileEventStorage implements MongoEventStorage {
  readonly kind = 'file' as const;

  constructor(private readonly log: FileEventLog) {}

  append(agentId: string, encodedTimeline: string): Promise<void> {
    return this.log.appendEncoded(agentId, encodedTimeline);
  }

  readPages(agentId: string, filter: EventFilter): AsyncGenerator<Timeline[]> {
    return this.log.readPages(agentId, filter);
  }

  hasOutsideDatabase(agentId: string): Promise<boolean> {
    return this.log.has(agentId);
  }

  listOutsideDatabase(): Promise<string[]> {
    return this.log.listAgentIds();
  }

  delete(agentId: string): Promise<void> {
    return this.log.delete(agentId);
  }

  check(agentId: string): Promise<string[]> {
    return this.log.check(agentId);
  }

  async count(): Promise<number | undefined> {
    // The files are not indexed by entry; counting would read them all.
    return undefined;
  }

  idle(): Promise<void> {
    // Covers the marks too: the log makes them inside the agent's batch.
    return this.log.idle();
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
