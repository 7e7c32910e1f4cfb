import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { LockTimeoutError, StoreClosedError } from '../../src/errors.js';
import type { LockReleaseFn } from '../../src/types.js';
import { isConnectionError, type PostgresConnection } from './postgres-connection.js';

const BACKEND = 'postgres';
const FIRST_RETRY_MS = 2;
const MAX_RETRY_MS = 50;

/** The server's clock in epoch ms: every lease is judged by one clock, whatever the clients' clocks say. */
const SERVER_NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::float8`;

interface HeldLease {
  agentId: string;
  holder: string;
  renewal: ReturnType<typeof setInterval>;
  released?: Promise<void>;
}

/**
 * Agent locks as lease rows: one row per locked agent id in
 * `kode_agent_locks`, keyed by the exact id (two ids can never share a lock,
 * unlike an advisory lock on a hash), taken with one INSERT ... ON CONFLICT
 * that succeeds only when the row is absent or its lease has expired.
 *
 * The holder renews the lease every third of its length, so a holder that
 * dies (process killed, machine gone) frees the lock within one lease.
 * No connection is held while a lock is held or awaited: each attempt,
 * renewal and release is one short statement on any pooled connection, so
 * held locks never starve the store's other operations.
 *
 * A waiter polls with a doubling, jittered back-off (a release in this store
 * object wakes its local waiters at once) until `timeoutMs` has passed.
 */
export class PostgresAgentLocks {
  private readonly held = new Set<HeldLease>();
  private readonly acquiring = new Set<Promise<unknown>>();
  private readonly wakers = new Map<string, Set<() => void>>();
  private readonly owner = `${hostname()}:${process.pid}`;
  private closed = false;
  private readonly takeSql: string;
  private readonly renewSql: string;
  private readonly releaseSql: string;

  constructor(
    private readonly db: PostgresConnection,
    private readonly leaseMs: number,
  ) {
    const locks = db.table('kode_agent_locks');
    this.takeSql = `
      INSERT INTO ${locks} AS l (agent_id, holder, owner, expires_at_ms)
      VALUES ($1, $2, $3, ${SERVER_NOW_MS} + $4)
      ON CONFLICT (agent_id) DO UPDATE
        SET holder = excluded.holder, owner = excluded.owner, expires_at_ms = excluded.expires_at_ms
        WHERE l.expires_at_ms < ${SERVER_NOW_MS} OR l.holder = excluded.holder
      RETURNING holder`;
    this.renewSql = `UPDATE ${locks} SET expires_at_ms = ${SERVER_NOW_MS} + $3 WHERE agent_id = $1 AND holder = $2`;
    this.releaseSql = `DELETE FROM ${locks} WHERE agent_id = $1 AND holder = $2`;
  }

  /** Waits up to `timeoutMs` for `agentId`'s lock; rejects with `LockTimeoutError` after that. */
  acquire(agentId: string, timeoutMs: number): Promise<LockReleaseFn> {
    const attempt = this.poll(agentId, timeoutMs);
    const settled = attempt.then(
      () => undefined,
      () => undefined,
    );
    this.acquiring.add(settled);
    void settled.then(() => this.acquiring.delete(settled));
    return attempt;
  }

  private async poll(agentId: string, timeoutMs: number): Promise<LockReleaseFn> {
    const holder = randomUUID();
    const deadline = performance.now() + timeoutMs;
    let delay = FIRST_RETRY_MS;
    for (;;) {
      this.assertOpen();
      // Retrying is safe: a second attempt with the same holder token takes
      // (or keeps) the row it may already have taken.
      const taken = await this.db
        .query<{ holder: string }>(this.takeSql, [agentId, holder, this.owner, this.leaseMs], true)
        .catch(async (error: unknown) => {
          // The reply was lost, so the row may be ours: give it back (by our
          // token) so that an acquire that rejected holds nothing. Left there,
          // it would shut every holder out until its lease ran out; if this
          // fails too, that is what happens.
          if (isConnectionError(error)) {
            await this.db.query(this.releaseSql, [agentId, holder], true).catch(() => undefined);
          }
          throw error;
        });
      if (taken.length === 1) {
        // The store began closing while this attempt was on its way: give the lease straight back.
        if (this.closed) {
          await this.db.query(this.releaseSql, [agentId, holder], true).catch(() => undefined);
          this.assertOpen();
        }
        return this.hold(agentId, holder);
      }
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        throw new LockTimeoutError(`lock still held by another holder after ${timeoutMs} ms`, {
          backend: BACKEND,
          operation: 'acquireAgentLock',
          agentId,
          timeoutMs,
        });
      }
      await this.pause(agentId, Math.min(remaining, delay * (0.5 + Math.random())));
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    }
  }

  /**
   * On close: waiters give up (with `StoreClosedError`), attempts on their
   * way finish first, then every lock this store object holds is released.
   */
  async releaseAll(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.wakers.values()].flatMap((set) => [...set])) wake();
    await Promise.allSettled([...this.acquiring]);
    await Promise.allSettled([...this.held].map((lease) => this.release(lease)));
  }

  private hold(agentId: string, holder: string): LockReleaseFn {
    const lease: HeldLease = {
      agentId,
      holder,
      renewal: setInterval(() => {
        // A failed renewal is retried at the next tick; if the lease lapsed
        // meanwhile, another holder may take it, which is what a lease means.
        this.db.query(this.renewSql, [agentId, holder, this.leaseMs]).catch(() => undefined);
      }, this.leaseMs / 3),
    };
    // Renewal must not keep a process alive that has nothing else to do.
    lease.renewal.unref();
    this.held.add(lease);
    return () => this.release(lease);
  }

  private release(lease: HeldLease): Promise<void> {
    if (!lease.released) {
      clearInterval(lease.renewal);
      const attempt = this.db.query(this.releaseSql, [lease.agentId, lease.holder], true).then(() => {
        this.held.delete(lease);
        this.wake(lease.agentId);
      });
      // Idempotent once it worked; after a failure (server unreachable) a
      // second call tries again, and the lease expires on its own anyway.
      lease.released = attempt.catch((error) => {
        lease.released = undefined;
        throw error;
      });
    }
    return lease.released;
  }

  private pause(agentId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let wakers = this.wakers.get(agentId);
      if (!wakers) {
        wakers = new Set();
        this.wakers.set(agentId, wakers);
      }
      const set = wakers;
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.wakers.get(agentId) === set) this.wakers.delete(agentId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  private wake(agentId: string): void {
    for (const wake of [...(this.wakers.get(agentId) ?? [])]) wake();
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new StoreClosedError('the store was closed while waiting for a lock', {
        backend: BACKEND,
        operation: 'acquireAgentLock',
      });
    }
  }
}
