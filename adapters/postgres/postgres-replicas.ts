import { redactSecrets } from '../../src/errors.js';
import type { PostgresPool } from './postgres-config.js';

/**
 * Read replicas (hot standbys) for the query APIs.
 *
 * A replica may answer a read while it is known to hold every write the
 * primary had committed at most `maxReplicaLagMs` ago. That is checked by
 * positions in the WAL, not by clocks: a check reads the primary's current
 * WAL position L (`pg_current_wal_lsn()`) at time t, then asks the replica
 * whether it has replayed up to L (`pg_last_wal_replay_lsn() >= L`). If so,
 * whatever the replica answers from then on holds every write committed
 * before t, and its staleness is at most now - t. An idle primary writes no
 * WAL, so its replicas stay caught up and never look lagging; a replica
 * that falls behind (replay paused, a backlog, a broken link while the
 * primary keeps writing) stops being caught up, and once its last good
 * check is older than the bound, reads go to the primary.
 * `now() - pg_last_xact_replay_timestamp()` would not do: it is the age of
 * the last replayed commit, NULL before any, and on an idle primary it
 * grows without bound although nothing is missing.
 *
 * Checks run when reads need them, at most once per check interval and one
 * at a time per replica, never awaited by a read: a stopped replica's check
 * that hangs only keeps its good-check time from moving, so the bound still
 * ends its use. A replica that fails a check or a read (refused, ended, a
 * recovery conflict, anything) is skipped until a later check succeeds; the
 * read it failed runs again on the primary.
 */

/** Default of `maxReplicaLagMs`. */
export const DEFAULT_MAX_REPLICA_LAG_MS = 5_000;

/** How often a replica in use is checked: a quarter of the bound, between 50 ms and 1 s. */
export function replicaCheckIntervalMs(maxLagMs: number): number {
  return Math.max(50, Math.min(1_000, Math.floor(maxLagMs / 4)));
}

/** What health and metrics report of one replica. */
export interface PostgresReplicaStatus {
  /** host:port/database (no credentials), or `replica <n>` for a pool handed in. */
  name: string;
  /** Whether reads go there now. */
  usable: boolean;
  /** How stale its answers may be (ms since the primary position it was last seen to have replayed); absent before a good check. */
  lagMs?: number;
  /** Why it is not used, when it is not. */
  error?: string;
}

/** Asks the primary for its current WAL position. */
export type PrimaryPosition = () => Promise<string>;

/** One replica: its pool and what the checks found. */
class Replica {
  /** When the primary position it was last seen to have replayed was read (performance.now()). */
  private freshAt: number | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private checking = false;
  private problem: string | undefined = 'not checked yet';

  constructor(
    readonly name: string,
    readonly pool: PostgresPool,
  ) {}

  usable(now: number, maxLagMs: number): boolean {
    return this.problem === undefined && this.freshAt !== undefined && now - this.freshAt <= maxLagMs;
  }

  /** Marks the replica unusable until a later check succeeds. */
  failed(error: unknown): void {
    this.problem = redactSecrets(error instanceof Error ? error.message : String(error));
    this.freshAt = undefined;
  }

  /** Starts a check when the last one is old enough and none is running; never awaited by reads. */
  checkSoon(now: number, intervalMs: number, primaryPosition: PrimaryPosition): void {
    if (this.checking || now - this.checkedAt < intervalMs) return;
    this.checking = true;
    this.checkedAt = now;
    void this.check(primaryPosition).finally(() => {
      this.checking = false;
    });
  }

  private async check(primaryPosition: PrimaryPosition): Promise<void> {
    const startedAt = performance.now();
    try {
      const position = await primaryPosition();
      const { rows } = await this.pool.query<{ standby: boolean; caught_up: boolean | null }>({
        text: 'SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn() >= $1::pg_lsn AS caught_up',
        values: [position],
      });
      const row = rows[0];
      if (!row?.standby) {
        // A promoted (or misconfigured) server has a history of its own: reading it could miss writes.
        this.failed(new Error('the server is not a standby (pg_is_in_recovery() is false)'));
        return;
      }
      this.problem = undefined;
      if (row.caught_up === true) this.freshAt = startedAt;
    } catch (error) {
      this.failed(error);
    }
  }

  status(now: number, maxLagMs: number): PostgresReplicaStatus {
    const status: PostgresReplicaStatus = { name: this.name, usable: this.usable(now, maxLagMs) };
    if (this.freshAt !== undefined) status.lagMs = Math.round(now - this.freshAt);
    if (this.problem !== undefined) status.error = this.problem;
    else if (!status.usable)
      status.error = `behind the primary by more than ${maxLagMs} ms (maxReplicaLagMs)`;
    return status;
  }
}

/** The replicas of one store or KV backend; `pick()` answers where a read may go. */
export class ReplicaSet {
  private readonly replicas: Replica[];
  private readonly intervalMs: number;
  private next = 0;

  constructor(
    replicas: ReadonlyArray<{ name: string; pool: PostgresPool }>,
    private readonly maxLagMs: number,
    private readonly primaryPosition: PrimaryPosition,
  ) {
    this.replicas = replicas.map(({ name, pool }) => new Replica(name, pool));
    this.intervalMs = replicaCheckIntervalMs(maxLagMs);
  }

  /** A usable replica (in turn, when there are several), or undefined: read on the primary. */
  pick(): Replica | undefined {
    const now = performance.now();
    for (const replica of this.replicas) replica.checkSoon(now, this.intervalMs, this.primaryPosition);
    for (let i = 0; i < this.replicas.length; i++) {
      const replica = this.replicas[(this.next + i) % this.replicas.length] as Replica;
      if (replica.usable(now, this.maxLagMs)) {
        this.next = (this.next + i + 1) % this.replicas.length;
        return replica;
      }
    }
    return undefined;
  }

  status(): PostgresReplicaStatus[] {
    const now = performance.now();
    for (const replica of this.replicas) replica.checkSoon(now, this.intervalMs, this.primaryPosition);
    return this.replicas.map((replica) => replica.status(now, this.maxLagMs));
  }

  pools(): PostgresPool[] {
    return this.replicas.map((replica) => replica.pool);
  }
}

export type { Replica };
