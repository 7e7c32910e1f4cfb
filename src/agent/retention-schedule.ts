import { LockTimeoutError, StoreClosedError, ValidationError } from '../errors.js';
import type { LockReleaseFn } from '../types.js';
import { normalizePrunePolicy, type PrunePolicy, type PruneResult } from './retention.js';

/**
 * Scheduled retention: a store's prune policy run in the background every
 * `intervalMs`, by one process of a fleet sharing the database at a time.
 *
 * The turn is a lease taken with the backend's agent locks (the same rows or
 * documents that `acquireAgentLock` uses, renewed while held, freed one
 * lease after a holder dies) under {@link RETENTION_LEASE_KEY}, a key no
 * agent id can be. A schedule that gets the lease keeps it, and runs every
 * round, until it is stopped or its store closes; the others try at each of
 * their rounds and skip it while the lease is held. Should a holder lose the
 * lease without knowing (its renewals failed for a whole lease), two
 * processes may prune at once for a while, which is safe (a prune removes
 * only what its policy names) and only wasted work.
 *
 * A round never overlaps the previous one: the next is timed from the end of
 * the last. A failing round does not stop the schedule or the process: its
 * error goes to `onError` and the counters of `metrics()`.
 */

/**
 * The lock key of the retention lease. The empty string: `assertAgentId`
 * refuses it, so no agent's lock can ever be this one, and every backend's
 * lock table takes it as it takes any id (it is never an agent row, so
 * `list` and `checkConsistency` never see it).
 */
export const RETENTION_LEASE_KEY = '';

/** Options of scheduled retention (`store.scheduleRetention`). */
export interface RetentionScheduleOptions {
  /**
   * The policy each round runs, as `store.prune(policy)`. A fixed policy's
   * times stay where they were; a function is called at the start of each
   * round with its start time (epoch ms), so its times can be relative.
   * @example { policy: (now) => ({ inactiveBefore: now - 90 * day }), intervalMs: 3_600_000 }
   */
  policy: PrunePolicy | ((roundStartedAt: number) => PrunePolicy);
  /**
   * Time between the end of one round and the start of the next, in
   * milliseconds (the first round starts one interval after the schedule).
   * @example { policy, intervalMs: 15 * 60_000 } // every 15 minutes
   */
  intervalMs: number;
  /** Agents looked at per batch and events removed per transaction (`PruneOptions.batchSize`). */
  batchSize?: number;
  /** Called after each round: whether this process ran it (it held the lease) and, if so, what it removed. */
  onRun?: (round: RetentionRound) => void;
  /** Called with the error of a round that failed; the schedule goes on. */
  onError?: (error: unknown) => void;
}

/**
 * The `retention` option of the stores' constructors (`SqliteStore`,
 * `PostgresStore`, `MongoStore`): the schedule starts with the store, and
 * bad schedule options reject the store's first operation instead of
 * throwing from the constructor.
 */
export interface StoreRetentionOption {
  retention?: RetentionScheduleOptions;
}

/** One round of a schedule, as `onRun` sees it. */
export interface RetentionRound {
  /** False when another process held the lease: this one skipped the round. */
  ran: boolean;
  /** What the prune removed, when this process ran it. */
  result?: PruneResult;
  /** Epoch ms when the round started. */
  startedAt: number;
}

/** Counters of a schedule since it started. */
export interface RetentionScheduleMetrics {
  /** Rounds this process ran (it held the lease) and that succeeded. */
  runs: number;
  /** Rounds skipped because another process held the lease. */
  skipped: number;
  /** Rounds that failed (their errors went to `onError`). */
  failures: number;
  /** The error of the last failed round, if any. */
  lastError?: unknown;
  /** Epoch ms when the last round ended. */
  lastRoundAt?: number;
  /** True while this process holds the lease. */
  holdsLease: boolean;
}

/** A running schedule; `stop()` ends it (the store's `close()` does too). */
export interface RetentionSchedule {
  /** Stops the schedule: waits for a running round, then gives the lease back. Idempotent. */
  stop(): Promise<void>;
  metrics(): RetentionScheduleMetrics;
}

/** What a schedule needs from its store. */
export interface ScheduledPruner {
  readonly backendName: string;
  prune(policy: PrunePolicy, batchSize: number | undefined): Promise<PruneResult>;
  /** Tries once for the lease (`acquireLock(RETENTION_LEASE_KEY, 0)`); `LockTimeoutError` when held elsewhere. */
  takeLease(): Promise<LockReleaseFn>;
}

/** Checks the options; throws `ValidationError` naming the bad one. */
export function checkRetentionScheduleOptions(options: RetentionScheduleOptions, backend: string): void {
  const fail = (message: string): never => {
    throw new ValidationError(message, { backend, operation: 'scheduleRetention' });
  };
  if (typeof options !== 'object' || options === null) fail('options must be an object');
  const { intervalMs, batchSize, onRun, onError } = options;
  // At most what setTimeout can wait (about 24.8 days); more would fire at once.
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 1 || intervalMs > 2 ** 31 - 1) {
    fail(`intervalMs must be an integer from 1 to ${2 ** 31 - 1}, got ${String(intervalMs)}`);
  }
  if (batchSize !== undefined && (!Number.isSafeInteger(batchSize) || batchSize < 1)) {
    fail('batchSize must be a positive integer');
  }
  if (onRun !== undefined && typeof onRun !== 'function') fail('onRun must be a function');
  if (onError !== undefined && typeof onError !== 'function') fail('onError must be a function');
  // A function is checked by what it gives now; a later round's bad policy goes to onError.
  let policy: PrunePolicy;
  try {
    policy = policyAt(options.policy, Date.now());
  } catch (cause) {
    throw new ValidationError('the policy function threw', {
      backend,
      operation: 'scheduleRetention',
      cause,
    });
  }
  normalizePrunePolicy(policy, backend);
}

function policyAt(policy: RetentionScheduleOptions['policy'], startedAt: number): PrunePolicy {
  return typeof policy === 'function' ? policy(startedAt) : policy;
}

/** Starts a schedule over `pruner`; the options were checked. */
export function startRetentionSchedule(
  pruner: ScheduledPruner,
  options: RetentionScheduleOptions,
): RetentionSchedule {
  const counters: RetentionScheduleMetrics = { runs: 0, skipped: 0, failures: 0, holdsLease: false };
  let release: LockReleaseFn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;

  // A callback that throws must not stop the schedule nor crash the process.
  const report = <T>(callback: ((value: T) => void) | undefined, value: T) => {
    try {
      callback?.(value);
    } catch {
      // The caller's own error; nothing of the schedule depends on it.
    }
  };

  const round = async () => {
    const startedAt = Date.now();
    try {
      if (!release) {
        try {
          release = await pruner.takeLease();
          counters.holdsLease = true;
        } catch (error) {
          if (!(error instanceof LockTimeoutError)) throw error;
          counters.skipped++;
          report(options.onRun, { ran: false, startedAt });
          return;
        }
      }
      const result = await pruner.prune(policyAt(options.policy, startedAt), options.batchSize);
      counters.runs++;
      report(options.onRun, { ran: true, result, startedAt });
    } catch (error) {
      // The store closed under a round that had just begun: not a failure.
      if (stopping && error instanceof StoreClosedError) return;
      counters.failures++;
      counters.lastError = error;
      report(options.onError, error);
    } finally {
      counters.lastRoundAt = Date.now();
    }
  };

  const plan = () => {
    timer = setTimeout(() => {
      timer = undefined;
      running = round().finally(() => {
        running = undefined;
        if (!stopping) plan();
      });
    }, options.intervalMs);
  };
  plan();

  return {
    stop() {
      stopping ??= (async () => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        await running;
        const held = release;
        release = undefined;
        counters.holdsLease = false;
        // A lease that cannot be given back (the database is gone) expires on its own.
        await held?.().catch(() => undefined);
      })();
      return stopping;
    },
    metrics: () => ({ ...counters }),
  };
}
