/** The error of each item a batch write refused, undefined for those it wrote. */
export type BatchRefusals<T> = (item: T) => unknown;

/**
 * Gathers items handed in one after another (the SDK fires `appendEvent`
 * without awaiting it, many in flight at once) and writes them in batches: one
 * transaction, round trip or fsync for everything queued while the previous
 * batch was being written. Items are written in exactly the order they were
 * enqueued, and each promise resolves only after its batch was written.
 */
export class AppendBatcher<T> {
  private queue: Array<{ item: T; resolve: () => void; reject: (error: unknown) => void }> = [];
  private flushing: Promise<void> | undefined;
  /** Items enqueued, and items whose batch has been written or has failed, since the start. */
  private enqueued = 0;
  private settled = 0;
  /** `idle()` calls waiting for `settled` to reach their `upTo`. */
  private waiters: Array<{ upTo: number; resolve: () => void }> = [];

  /**
   * @param write writes a batch, in order; it must be all or nothing. It may
   *   refuse single items instead of failing the batch: it then returns a
   *   function giving the error of each refused item (undefined for the
   *   items it wrote).
   * @param maxBatch the largest batch handed to `write` at once.
   * @param mapError the error each item of a failed batch is rejected with
   *   (a typed error naming its agent), so callers need no handler of their own.
   */
  constructor(
    // biome-ignore lint/suspicious/noConfusingVoidType: a writer that never refuses is a plain async function returning void
    private readonly write: (items: T[]) => Promise<BatchRefusals<T> | void> | BatchRefusals<T> | void,
    private readonly maxBatch = 1000,
    private readonly mapError: (error: unknown, item: T) => unknown = (error) => error,
  ) {}

  /** Queues an item; resolves once it has been written. */
  enqueue(item: T): Promise<void> {
    this.enqueued++;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.flushing) this.flushing = this.drain();
    });
  }

  /** Number of items waiting to be written. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Resolves when everything queued so far has been written (or failed).
   * Items queued later are not waited for: a reader or a delete must not
   * starve while other callers keep streaming into the same batcher.
   */
  idle(): Promise<void> {
    if (this.settled >= this.enqueued) return Promise.resolve();
    const upTo = this.enqueued;
    return new Promise<void>((resolve) => this.waiters.push({ upTo, resolve }));
  }

  private async drain(): Promise<void> {
    // Let the rest of the current tick enqueue too, so that a burst of
    // un-awaited calls shares one batch.
    await Promise.resolve();
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const refused = await this.write(batch.map((entry) => entry.item));
          for (const entry of batch) {
            const error = refused ? refused(entry.item) : undefined;
            if (error === undefined) entry.resolve();
            else entry.reject(this.mapError(error, entry.item));
          }
        } catch (error) {
          for (const entry of batch) entry.reject(this.mapError(error, entry.item));
        }
        this.settled += batch.length;
        this.wakeWaiters();
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return;
    // Waiters are in enqueue order, so their thresholds only grow.
    let woken = 0;
    while (woken < this.waiters.length && (this.waiters[woken] as { upTo: number }).upTo <= this.settled) {
      (this.waiters[woken] as { resolve: () => void }).resolve();
      woken++;
    }
    if (woken > 0) this.waiters = this.waiters.slice(woken);
  }
}
