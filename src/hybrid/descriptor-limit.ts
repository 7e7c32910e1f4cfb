/**
 * A bound on the file descriptors one owner (a `FileEventLog`) holds open at
 * once, idle ones included. Every descriptor takes one slot: `acquire()`
 * before opening it, `release()` once it is closed. When every slot is taken,
 * callers wait in call order, and the owner is asked to close descriptors it
 * keeps open only to reuse them (idle append files) so that they can go on.
 *
 * Waiting cannot deadlock as long as the owner keeps one rule: whatever
 * holds a slot opens at most one descriptor under it at a time and never
 * waits for a second slot. A step that needs two descriptors open together
 * (rewriting a file) asks for both in one `acquire(2)`, which waits in the
 * same queue and never holds one while waiting for the other's turn. (p-limit bounds running functions; this bound has
 * to cover descriptors that stay open between them, and to reclaim those.)
 */
export class DescriptorLimit {
  private used = 0;
  /** Idle descriptors being closed for waiters; each one's slot goes to a waiter once it is closed. */
  private reclaiming = 0;
  /** Callers waiting in call order, each with the slots it needs and those it was given already. */
  private readonly waiters: Array<{ need: number; granted: number; resolve: () => void }> = [];

  /**
   * @param max the most descriptors open at once (at least 1).
   * @param closeIdle closes one idle descriptor, least recently used first,
   *   and returns its closing (which must not reject); `undefined` when none
   *   is idle. The slot of a descriptor closed this way is released here.
   */
  constructor(
    readonly max: number,
    private readonly closeIdle: () => Promise<void> | undefined,
  ) {}

  /** Slots taken: descriptors open, being opened, or being closed. */
  get inUse(): number {
    return this.used;
  }

  /** True while someone waits for a slot: a descriptor that turns idle should then be closed, not kept. */
  get contended(): boolean {
    return this.waiters.length > 0;
  }

  /**
   * Resolves once the caller may open `count` descriptors (1, or at most
   * `max`); each is given back with its own `release()`.
   */
  acquire(count = 1): Promise<void> {
    if (!Number.isSafeInteger(count) || count < 1 || count > this.max) {
      return Promise.reject(new RangeError(`cannot take ${count} of ${this.max} descriptor slots at once`));
    }
    // While anyone waits, every slot is taken (a released slot goes straight to a waiter).
    if (this.waiters.length === 0 && this.used + count <= this.max) {
      this.used += count;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      // The slots free now are this caller's (no one waits before it, or none are free).
      const granted = Math.min(count, this.max - this.used);
      this.used += granted;
      this.waiters.push({ need: count, granted, resolve });
      this.reclaim();
    });
  }

  /** Gives back a slot taken by `acquire`, once its descriptor is closed (or was never opened). */
  release(): void {
    const next = this.waiters[0];
    if (!next) {
      this.used--;
      return;
    }
    next.granted++;
    if (next.granted === next.need) {
      this.waiters.shift();
      next.resolve();
    }
  }

  /** Closes idle descriptors until every waiter has its slots coming. */
  reclaim(): void {
    let outstanding = 0;
    for (const waiter of this.waiters) outstanding += waiter.need - waiter.granted;
    while (this.reclaiming < outstanding) {
      const closing = this.closeIdle();
      if (!closing) return;
      this.reclaiming++;
      void closing.then(() => {
        this.reclaiming--;
        this.release();
      });
    }
  }
}
