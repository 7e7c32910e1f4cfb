import { UnsupportedError } from '../errors.js';
import { type AgentBackend, hasRetention, type RetentionBackend } from './agent-backend.js';
import type { PruneOptions, PrunePolicy, PruneResult } from './retention.js';
import {
  RETENTION_LEASE_KEY,
  type RetentionSchedule,
  type RetentionScheduleOptions,
  startRetentionSchedule,
} from './retention-schedule.js';

/**
 * AgentStore's retention wiring (agent-store.ts keeps the public methods and
 * their frame): the backend's retention part, and a schedule whose rounds
 * are the store's own `prune`, under a lease in the backend's lock table.
 */

/** The backend's retention, or `UnsupportedError` for a backend without it. */
export function retentionOf(backend: AgentBackend, operation: string): AgentBackend & RetentionBackend {
  if (hasRetention(backend)) return backend;
  throw new UnsupportedError(`${backend.name} has no ${operation}() yet`, {
    backend: backend.name,
    operation,
  });
}

/** Starts `options.policy` on a schedule: each round runs `prune`, by the holder of the fleet's lease. */
export function schedulePrune(
  backend: AgentBackend & RetentionBackend,
  options: RetentionScheduleOptions,
  prune: (policy: PrunePolicy, options: PruneOptions) => Promise<PruneResult>,
): RetentionSchedule {
  return startRetentionSchedule(
    {
      backendName: backend.name,
      prune: (policy, batchSize) => prune(policy, batchSize === undefined ? {} : { batchSize }),
      takeLease: () => backend.acquireLock(RETENTION_LEASE_KEY, 0),
    },
    options,
  );
}
