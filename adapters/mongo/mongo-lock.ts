import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { LockTimeoutError } from '../../src/errors.js';
import type { LockReleaseFn } from '../../src/types.js';
import type { MongoCollection, MongoDocument } from './mongo-config.js';
import { nextBackoff, sleep } from './mongo-connection.js';
import { isDuplicateKey } from './mongo-errors.js';

/**
 * Agent locks as lease documents in `<prefix>locks`:
 * `{ _id: agentId, owner, expiresAt }`.
 *
 * - Taking a lock is one atomic `findOneAndUpdate` with `upsert` on `_id`: an
 *   update pipeline claims the document only if its lease has expired (or it
 *   did not exist), comparing `expiresAt` with the *server's* clock (`$$NOW`),
 *   so clock skew between application hosts cannot let two holders in. The
 *   caller holds the lock when the returned document names it as owner. Two
 *   processes upserting a missing document at once can make one of them fail
 *   with a duplicate-key error; that one simply did not get the lock.
 * - A held lock is renewed every third of the lease, so a live holder keeps
 *   it indefinitely and a dead one (process killed) loses it one lease later.
 * - The TTL index on `expiresAt` only removes old documents; correctness never
 *   depends on its 60-second sweep.
 * - Waiting polls with backoff; no connection is held while waiting or holding.
 */

/** Update pipeline that claims the lease for `owner` if it is free, and leaves it alone otherwise. */
export function claimLeasePipeline(owner: string, leaseMs: number): MongoDocument[] {
  // A missing document (fresh upsert) has no expiresAt: treat it as expired long ago.
  const free = { $lte: [{ $ifNull: ['$expiresAt', new Date(0)] }, '$$NOW'] };
  return [
    {
      $set: {
        // $literal: a string starting with "$" would otherwise be read as a field path.
        owner: { $cond: [free, { $literal: owner }, '$owner'] },
        expiresAt: { $cond: [free, { $add: ['$$NOW', leaseMs] }, '$expiresAt'] },
      },
    },
  ];
}

/** Update pipeline that extends the lease by `leaseMs` from the server's now. */
export function renewLeasePipeline(leaseMs: number): MongoDocument[] {
  return [{ $set: { expiresAt: { $add: ['$$NOW', leaseMs] } } }];
}

interface HeldLease {
  agentId: string;
  owner: string;
  renewal: ReturnType<typeof setInterval>;
  /** Set once the lease document is gone, so that every later release is a no-op. */
  released: boolean;
}

/** Lease-based agent locks of one store object. */
export class MongoLeaseLocks {
  private readonly held = new Set<HeldLease>();

  constructor(
    private readonly locks: () => Promise<MongoCollection>,
    private readonly leaseMs: number,
    private readonly ctx: { backend: string },
  ) {}

  /** Waits until the agent's lease is free and takes it; `LockTimeoutError` after `timeoutMs`. */
  async acquire(agentId: string, timeoutMs: number): Promise<LockReleaseFn> {
    const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
    const deadline = performance.now() + timeoutMs;
    let wait = 10;
    for (;;) {
      if (await this.tryClaim(agentId, owner)) break;
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        throw new LockTimeoutError(`agent lock still held by another owner after ${timeoutMs} ms`, {
          backend: this.ctx.backend,
          operation: 'acquireAgentLock',
          agentId,
          timeoutMs,
        });
      }
      wait = nextBackoff(wait, remaining);
      await sleep(wait);
    }
    return this.hold(agentId, owner);
  }

  private async tryClaim(agentId: string, owner: string): Promise<boolean> {
    const locks = await this.locks();
    try {
      const doc = await locks.findOneAndUpdate({ _id: agentId }, claimLeasePipeline(owner, this.leaseMs), {
        upsert: true,
        returnDocument: 'after',
      });
      return doc?.owner === owner;
    } catch (error) {
      if (isDuplicateKey(error)) return false;
      throw error;
    }
  }

  private hold(agentId: string, owner: string): LockReleaseFn {
    const lease: HeldLease = {
      agentId,
      owner,
      renewal: setInterval(
        () => {
          // A failed renewal (server briefly away) is retried on the next tick;
          // it must never surface as an unhandled rejection.
          this.renew(lease).catch(() => undefined);
        },
        Math.max(50, Math.floor(this.leaseMs / 3)),
      ),
      released: false,
    };
    // Renewal must not keep an otherwise finished process alive.
    lease.renewal.unref?.();
    this.held.add(lease);
    let releasing: Promise<void> | undefined;
    return () => {
      // Idempotent: concurrent calls share one attempt; a failed attempt may be retried.
      releasing ??= this.release(lease).catch((error: unknown) => {
        releasing = undefined;
        throw error;
      });
      return releasing;
    };
  }

  private async renew(lease: HeldLease): Promise<void> {
    const locks = await this.locks();
    await locks.updateOne({ _id: lease.agentId, owner: lease.owner }, renewLeasePipeline(this.leaseMs));
  }

  private async release(lease: HeldLease): Promise<void> {
    if (lease.released) return;
    clearInterval(lease.renewal);
    const locks = await this.locks();
    // Only our own lease: if it expired and someone else took it, theirs stays.
    await locks.deleteOne({ _id: lease.agentId, owner: lease.owner });
    lease.released = true;
    this.held.delete(lease);
  }

  /** Releases every lock this store holds (on close); failures are left to lease expiry. */
  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.held].map((lease) => this.release(lease)));
  }
}
