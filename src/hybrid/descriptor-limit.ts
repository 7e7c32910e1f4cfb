/**
 * A bound on the file descriptors one owner (a `FileEventLog`) holds open at
 * once, idle ones included. Every descriptor takes one slot: `acquire()`
 * before opening it, `release()` once it is closed. When every slot is taken,
 * callers wait in call order, and the owner is asked to close descriptors it
 * keeps open only to reuse them (idle append files) so that they can go on.
 *
 * Waiting cannot deadlock as long as the owner keeps one rule: whatever
 * holds a slot opens at most one descriptor under it at a time and never
 * waits for a second slot. (p-limit bounds running functions; this bound has
 * to cover descriptors that stay open between them, and to reclaim those.)
 */
export class DescriptorLimit {
  private used = 0;
  /** Idle descriptors being closed for waiters; each one's slot goes to a waiter once it is closed. */
  private reclaiming = 0;
  private readonly waiters: Array<() => void> = [];

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

  /** Resolves once the caller may open one descriptor. */
  acquire(): Promise<void> {
    // While anyone waits, every slot is taken (a released slot goes straight to a waiter).
    if (this.waiters.length === 0 && this.used < this.max) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      this.reclaim();
    });
  }

  /** Gives back a slot taken by `acquire`, once its descriptor is closed (or was never opened). */
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.used--;
  }

  /** Closes idle descriptors until every waiter has a slot coming. */
  reclaim(): void {
    while (this.reclaiming < this.waiters.length) {
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
