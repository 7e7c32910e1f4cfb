import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockTimeoutError, StoreClosedError } from '../../src/errors.js';
import type { LockReleaseFn } from '../../src/types.js';
import type { SqliteConnection } from './sqlite-connection.js';

/** First and largest pause between two attempts to take a held lock. */
const FIRST_POLL_MS = 2;
const MAX_POLL_MS = 25;

interface HeldLease {
  agentId: string;
  owner: string;
  renewal: ReturnType<typeof setInterval>;
  renewing: boolean;
}

/**
 * Agent locks shared by every connection to one database file, across store
 * objects and processes: a row in `agent_locks` names the owner (a random
 * token per grant) and when its lease runs out. The owner renews the lease
 * while it holds the lock; if its process dies, the row simply expires and
 * the next caller takes it over. A lock is a row, not an open transaction,
 * so holding one never blocks the store's other operations.
 */
export class SqliteAgentLocks {
  private readonly held = new Map<string, HeldLease>();
  private closed = false;

  constructor(
    private readonly connection: SqliteConnection,
    private readonly leaseMs: number,
  ) {}

  /** Waits until the agent's lock is free (or its lease expired) and takes it; `LockTimeoutError` after `timeoutMs`. */
  async acquire(agentId: string, timeoutMs: number): Promise<LockReleaseFn> {
    const owner = randomUUID();
    const deadline = Date.now() + timeoutMs;
    let pause = FIRST_POLL_MS;
    for (;;) {
      this.assertOpen();
      if (await this.tryTake(agentId, owner, deadline)) break;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new LockTimeoutError(`the lock was still held after ${timeoutMs} ms`, {
          backend: 'sqlite',
          operation: 'acquireAgentLock',
          agentId,
          timeoutMs,
        });
      }
      // Jitter keeps waiting processes from polling in lockstep.
      await sleep(Math.min(remaining, pause * (0.5 + Math.random())));
      pause = Math.min(pause * 2, MAX_POLL_MS);
    }
    const lease: HeldLease = {
      agentId,
      owner,
      renewing: false,
      renewal: setInterval(() => this.renew(lease), Math.max(1, Math.floor(this.leaseMs / 3))),
    };
    // A held lock must not keep the process alive on its own.
    lease.renewal.unref();
    this.held.set(owner, lease);
    return () => this.release(owner);
  }

  /** Releases every lock this object holds (the store is closing). */
  async releaseAll(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.held.keys()].map((owner) => this.release(owner)));
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new StoreClosedError('the store is closed', { backend: 'sqlite', operation: 'acquireAgentLock' });
    }
  }

  private async tryTake(agentId: string, owner: string, deadline: number): Promise<boolean> {
    const { connection } = this;
    const select = 'SELECT expires_at_ms FROM agent_locks WHERE agent_id = ?';
    // A plain read first: waiting callers poll without taking the write lock.
    const current = (await connection.read(() => connection.statement(select).get(agentId))) as
      | { expires_at_ms: number }
      | undefined;
    if (current && current.expires_at_ms > Date.now()) return false;
    return connection.write(
      () => {
        const now = Date.now();
        const row = connection.statement(select).get(agentId) as { expires_at_ms: number } | undefined;
        if (row && row.expires_at_ms > now) return false;
        connection
          .statement(
            'INSERT INTO agent_locks (agent_id, owner, expires_at_ms) VALUES (?, ?, ?) ' +
              'ON CONFLICT (agent_id) DO UPDATE SET owner = excluded.owner, expires_at_ms = excluded.expires_at_ms',
          )
          .run(agentId, owner, now + this.leaseMs);
        return true;
      },
      { busyTimeoutMs: Math.max(0, deadline - Date.now()) },
    );
  }

  private renew(lease: HeldLease): void {
    if (lease.renewing || this.held.get(lease.owner) !== lease) return;
    lease.renewing = true;
    this.connection
      .write(
        () =>
          this.connection
            .statement('UPDATE agent_locks SET expires_at_ms = ? WHERE agent_id = ? AND owner = ?')
            .run(Date.now() + this.leaseMs, lease.agentId, lease.owner).changes,
        { busyTimeoutMs: Math.floor(this.leaseMs / 3) },
      )
      // A failed renewal is retried at the next tick; the lease outlives two missed ones.
      .catch(() => undefined)
      .finally(() => {
        lease.renewing = false;
      });
  }

  private async release(owner: string): Promise<void> {
    const lease = this.held.get(owner);
    // Release is idempotent: a second call, or one after close, finds nothing to do.
    if (!lease) return;
    this.held.delete(owner);
    clearInterval(lease.renewal);
    await this.connection.write(() =>
      this.connection
        .statement('DELETE FROM agent_locks WHERE agent_id = ? AND owner = ?')
        .run(lease.agentId, owner),
    );
  }
}
