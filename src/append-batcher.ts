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

  /**
   * @param write writes a batch, in order; it must be all or nothing.
   * @param maxBatch the largest batch handed to `write` at once.
   */
  constructor(
    private readonly write: (items: T[]) => Promise<void> | void,
    private readonly maxBatch = 1000,
  ) {}

  /** Queues an item; resolves once it has been written. */
  enqueue(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.flushing) this.flushing = this.drain();
    });
  }

  /** Number of items waiting to be written. */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves when everything queued so far has been written (or failed). */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    // Let the rest of the current tick enqueue too, so that a burst of
    // un-awaited calls shares one batch.
    await Promise.resolve();
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          await this.write(batch.map((entry) => entry.item));
          for (const entry of batch) entry.resolve();
        } catch (error) {
          for (const entry of batch) entry.reject(error);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }
}
