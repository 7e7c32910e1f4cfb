/**
 * Items fetched a page at a time (rows of a query page, lines of a file
 * chunk), handed out one by one. `readEvents` is as hot as `appendEvent`: an
 * async generator per layer costs several promise hops per item, while here
 * an item of a page already fetched costs one resolved promise, and the
 * source's generator only runs once per page.
 */
export interface PagedIterableOptions {
  /** Runs before every item is handed out (a closed-store check); a throw ends the iteration with that error. */
  beforeEach?: () => void;
  /** Turns an error of the source into the error the caller sees. */
  mapError?: (error: unknown) => unknown;
}

/** An iterable over the items of the pages `openPages()` yields; each iteration opens the source again. */
export function pagedIterable<T>(
  openPages: () => AsyncIterator<readonly T[]>,
  options: PagedIterableOptions = {},
): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => new PagedIterator(openPages(), options) };
}

class PagedIterator<T> implements AsyncIterator<T> {
  private page: readonly T[] = [];
  private index = 0;
  private finished = false;
  /** Set while the next page is being fetched: calls made meanwhile wait for it, in order. */
  private fetching: Promise<unknown> | undefined;

  constructor(
    private readonly pages: AsyncIterator<readonly T[]>,
    private readonly options: PagedIterableOptions,
  ) {}

  next(): Promise<IteratorResult<T>> {
    if (this.fetching) {
      const after = () => this.next();
      return this.fetching.then(after, after);
    }
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    try {
      this.options.beforeEach?.();
    } catch (error) {
      return this.fail(error, false);
    }
    if (this.index < this.page.length) {
      return Promise.resolve({ value: this.page[this.index++] as T, done: false });
    }
    const fetched = this.fetch();
    this.fetching = fetched;
    const clear = () => {
      if (this.fetching === fetched) this.fetching = undefined;
    };
    fetched.then(clear, clear);
    return fetched;
  }

  async return(value?: unknown): Promise<IteratorResult<T>> {
    if (!this.finished) {
      this.finished = true;
      this.page = [];
      await this.pages.return?.();
    }
    return { value: value as T, done: true };
  }

  private async fetch(): Promise<IteratorResult<T>> {
    for (;;) {
      let step: IteratorResult<readonly T[]>;
      try {
        step = await this.pages.next();
      } catch (error) {
        // A source that threw is finished (a generator's own `finally` has run).
        return this.fail(error, true);
      }
      if (step.done) {
        this.finished = true;
        this.page = [];
        return { value: undefined, done: true };
      }
      if (step.value.length === 0) continue;
      this.page = step.value;
      this.index = 1;
      return { value: step.value[0] as T, done: false };
    }
  }

  private async fail(error: unknown, sourceFinished: boolean): Promise<never> {
    this.finished = true;
    this.page = [];
    // Closing the source (its file, its cursor) must not hide the error that ended the iteration.
    if (!sourceFinished) await Promise.resolve(this.pages.return?.()).catch(() => undefined);
    throw this.options.mapError ? this.options.mapError(error) : error;
  }
}
