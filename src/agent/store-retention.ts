import { UnsupportedError, ValidationError } from '../errors.js';
import { type AgentBackend, hasRetention, type RetentionBackend } from './agent-backend.js';
import { possibleAgentId } from './agent-id.js';
import { pruneAgents } from './agent-prune.js';
import {
  type CompactOptions,
  type CompactResult,
  noPruneCounts,
  normalizePrunePolicy,
  type PruneOptions,
  type PrunePolicy,
  type PruneResult,
} from './retention.js';
import {
  checkRetentionScheduleOptions,
  RETENTION_LEASE_KEY,
  type RetentionSchedule,
  type RetentionScheduleOptions,
  startRetentionSchedule,
} from './retention-schedule.js';
import type { StoreOperations } from './store-operations.js';

/**
 * AgentStore's retention (agent-store.ts keeps the public methods, their
 * documentation and the operation frame they run in): the checks of
 * `prune`, `compact` and `scheduleRetention`, the backend's retention part,
 * and the schedules a store has started, which `close()` stops.
 */
export class StoreRetention {
  private readonly schedules = new Set<RetentionSchedule>();

  constructor(
    private readonly backend: AgentBackend,
    private readonly ops: StoreOperations,
  ) {}

  /** The body of `store.prune`, inside its operation frame. */
  prune(policy: PrunePolicy, options: PruneOptions): Promise<PruneResult> {
    const normalized = normalizePrunePolicy(policy, this.backend.name);
    this.checkOptions(options, 'prune');
    if (!options.dryRun) this.ops.assertWritable('prune');
    if (normalized.prefix !== undefined && !possibleAgentId(normalized.prefix)) {
      return Promise.resolve({
        ...noPruneCounts(),
        dryRun: options.dryRun === true,
        scannedAgents: 0,
        keptActive: 0,
      });
    }
    return pruneAgents(this.retentionOf('prune'), normalized, options);
  }

  /** The body of `store.compact`, inside its operation frame. */
  compact(options: CompactOptions): Promise<CompactResult> {
    this.checkOptions(options, 'compact');
    this.ops.assertWritable('compact');
    return this.retentionOf('compact').compact({ full: options.full === true });
  }

  /**
   * Starts `options.policy` on a schedule whose rounds are `prune` (the
   * store's own, so each round runs in its frame), taken by the holder of the
   * fleet's lease in the backend's lock table.
   */
  schedule(
    options: RetentionScheduleOptions,
    prune: (policy: PrunePolicy, options: PruneOptions) => Promise<PruneResult>,
  ): RetentionSchedule {
    checkRetentionScheduleOptions(options, this.backend.name);
    this.ops.assertWritable('scheduleRetention');
    const backend = this.retentionOf('scheduleRetention');
    const schedule = startRetentionSchedule(
      {
        backendName: backend.name,
        prune: (policy, batchSize) => prune(policy, batchSize === undefined ? {} : { batchSize }),
        takeLease: () => backend.acquireLock(RETENTION_LEASE_KEY, 0),
      },
      options,
    );
    const tracked: RetentionSchedule = {
      stop: () => schedule.stop().finally(() => this.schedules.delete(tracked)),
      metrics: schedule.metrics,
    };
    this.schedules.add(tracked);
    return tracked;
  }

  /** Stops every schedule still running: a running round finishes and the lease is given back. */
  async stopSchedules(): Promise<void> {
    await Promise.allSettled([...this.schedules].map((schedule) => schedule.stop()));
  }

  /** The backend's retention, or `UnsupportedError` for a backend without it. */
  private retentionOf(operation: string): AgentBackend & RetentionBackend {
    if (hasRetention(this.backend)) return this.backend;
    throw new UnsupportedError(`${this.backend.name} has no ${operation}() yet`, {
      backend: this.backend.name,
      operation,
    });
  }

  private checkOptions(options: unknown, operation: string): void {
    if (options === null || typeof options !== 'object') {
      throw new ValidationError('options must be an object', { backend: this.backend.name, operation });
    }
  }
}
