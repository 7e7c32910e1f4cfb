import { LockTimeoutError } from '../errors.js';
import type { LockReleaseFn } from '../types.js';

interface Waiter {
  owner: object;
  grant: (release: LockReleaseFn) => void;
  fail: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface HeldLock {
  owner: object;
  /** Identifies one grant: a stale release from an earlier holder must never free a later holder's lock. */
  grant: object;
  waiters: Waiter[];
}

/**
 * In-process mutual exclusion per agent id, for stores whose data lives in
 * this process (MemoryStore). Waiters are served first come, first served;
 * each gives up with a `LockTimeoutError` after its own timeout. Every store
 * object sharing one table excludes the others, so peers over one in-memory
 * database behave like two connections to one server.
 */
export class AgentLockTable {
  private readonly held = new Map<string, HeldLock>();

  /**
   * Waits until `agentId` is free, then holds it for `owner` (the store
   * object asking, so that `releaseAllOf` can free its locks when it closes).
   */
  acquire(
    agentId: string,
    timeoutMs: number,
    owner: object,
    ctx: { backend: string; operation: string },
  ): Promise<LockReleaseFn> {
    const lock = this.held.get(agentId);
    if (!lock) {
      const fresh: HeldLock = { owner, grant: {}, waiters: [] };
      this.held.set(agentId, fresh);
      return Promise.resolve(this.releaser(agentId, fresh.grant));
    }
    return new Promise<LockReleaseFn>((grant, fail) => {
      const waiter: Waiter = {
        owner,
        grant,
        fail,
        timer: setTimeout(() => {
          lock.waiters.splice(lock.waiters.indexOf(waiter), 1);
          fail(new LockTimeoutError(`lock still held after ${timeoutMs} ms`, { ...ctx, agentId, timeoutMs }));
        }, timeoutMs),
      };
      lock.waiters.push(waiter);
    });
  }

  /** True while some owner holds `agentId`. */
  isHeld(agentId: string): boolean {
    return this.held.has(agentId);
  }

  /**
   * Frees every lock `owner` holds and fails its pending waits with `error`
   * (a closing store lets go of everything it had or was waiting for).
   */
  releaseAllOf(owner: object, error: unknown): void {
    for (const [agentId, lock] of [...this.held]) {
      for (const waiter of lock.waiters.filter((w) => w.owner === owner)) {
        clearTimeout(waiter.timer);
        lock.waiters.splice(lock.waiters.indexOf(waiter), 1);
        waiter.fail(error);
      }
      if (lock.owner === owner) this.handOver(agentId, lock);
    }
  }

  /** A release function that frees the lock once; later calls do nothing (release is idempotent). */
  private releaser(agentId: string, grant: object): LockReleaseFn {
    return async () => {
      const lock = this.held.get(agentId);
      if (lock?.grant === grant) this.handOver(agentId, lock);
    };
  }

  private handOver(agentId: string, lock: HeldLock): void {
    const next = lock.waiters.shift();
    if (!next) {
      this.held.delete(agentId);
      return;
    }
    clearTimeout(next.timer);
    lock.owner = next.owner;
    lock.grant = {};
    next.grant(this.releaser(agentId, lock.grant));
  }
}
