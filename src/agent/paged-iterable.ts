import type { ErrorContext } from '../errors.js';
import { decodeJson } from '../json-codec.js';

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

/**
 * One page of a paged read, read by index: an array, or a page that holds
 * its items encoded and decodes each when it is read (a PostgreSQL page is
 * UTF-8 bytes: postgres-database-events.ts), so that what stays in memory
 * while a page is handed out is its text, not every item parsed at once.
 * `at` is called once per item, in order; it may throw (a corrupt item),
 * which ends the iteration with that error after the items before it.
 */
export interface Page<T> {
  readonly length: number;
  at(index: number): T | undefined;
}

const NO_PAGE: Page<never> = [];

/** An iterable over the items of the pages `openPages()` yields; each iteration opens the source again. */
export function pagedIterable<T>(
  openPages: () => AsyncIterator<Page<T>>,
  options: PagedIterableOptions = {},
): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => new PagedIterator(openPages(), options) };
}

class PagedIterator<T> implements AsyncIterator<T> {
  private page: Page<T> = NO_PAGE;
  private index = 0;
  private finished = false;
  /** Set while the next page is being fetched: calls made meanwhile wait for it, in order. */
  private fetching: Promise<unknown> | undefined;

  constructor(
    private readonly pages: AsyncIterator<Page<T>>,
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
      try {
        return Promise.resolve({ value: this.page.at(this.index++) as T, done: false });
      } catch (error) {
        return this.fail(error, false);
      }
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
      this.page = NO_PAGE;
      await this.pages.return?.();
    }
    return { value: value as T, done: true };
  }

  private async fetch(): Promise<IteratorResult<T>> {
    // Every item of the page was handed out: let it go before the next one
    // arrives, so that two pages are never alive at once.
    this.page = NO_PAGE;
    this.index = 0;
    for (;;) {
      let step: IteratorResult<Page<T>>;
      try {
        step = await this.pages.next();
      } catch (error) {
        // A source that threw is finished (a generator's own `finally` has run).
        return this.fail(error, true);
      }
      if (step.done) {
        this.finished = true;
        return { value: undefined, done: true };
      }
      if (step.value.length === 0) continue;
      this.page = step.value;
      this.index = 1;
      try {
        return { value: step.value.at(0) as T, done: false };
      } catch (error) {
        return this.fail(error, false);
      }
    }
  }

  private async fail(error: unknown, sourceFinished: boolean): Promise<never> {
    this.finished = true;
    this.page = NO_PAGE;
    // Closing the source (its file, its cursor) must not hide the error that ended the iteration.
    if (!sourceFinished) await Promise.resolve(this.pages.return?.()).catch(() => undefined);
    throw this.options.mapError ? this.options.mapError(error) : error;
  }
}

/**
 * Writes the pages of one paged read of JSON texts (a stream's events as the
 * driver hands them over) as UTF-8 bytes into one buffer outside the
 * JavaScript heap, grown to fit the largest page, and hands each page out
 * parsing each text only when it is read. Held as strings until handed out,
 * a page's texts lived long enough to be moved into V8's old generation,
 * where they stayed until a full collection: a PostgreSQL reader of
 * 1,000,000 events of ~1.5 KB grew by 74-102 MiB with pages of strings and
 * by 34 MiB with pages of bytes, a SQLite reader by 192-206 MiB and 42 MiB
 * (bench h-event-memory's reader); a buffer of its own per page, freed only
 * by the collector, made the allocator keep freed pages resident (71 MiB).
 * A driver that can hand a text over as its bytes (SQLite, a blob) spares
 * making a string and encoding it again. Small texts may be held as the
 * strings they came as (`hold`): copying them costs more than holding them.
 *
 * A page is readable until the next one is started: reading it afterwards
 * throws instead of handing out another page's texts.
 */
export class JsonPageWriter<T> {
  private bytes = Buffer.allocUnsafe(64 * 1024);
  private ends: number[] = [];
  /** Texts held as strings, by their index in the page. */
  private held: string[] | undefined;
  private used = 0;
  private handedOut: JsonPage<T> | undefined;

  constructor(private readonly context: ErrorContext) {}

  /** Begins a page (again, for one retried from its start). */
  start(): void {
    this.handedOut?.retire();
    this.handedOut = undefined;
    this.ends = [];
    this.held = undefined;
    this.used = 0;
  }

  /** Adds one text to the page as the string it is, without copying it into the buffer. */
  hold(text: string): void {
    this.held ??= [];
    this.held[this.ends.length] = text;
    this.ends.push(this.used);
  }

  /** Adds one text to the page: a string, or its UTF-8 bytes. */
  add(text: string | Uint8Array): void {
    // Room for the worst case of a string (3 bytes per UTF-16 unit): the
    // caller's measure of a text may be another encoding's.
    const room = typeof text === 'string' ? 3 * text.length : text.length;
    if (this.used + room > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.used + room, 2 * this.bytes.length));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    if (typeof text === 'string') {
      this.used += this.bytes.write(text, this.used, 'utf8');
    } else {
      this.bytes.set(text, this.used);
      this.used += text.length;
    }
    this.ends.push(this.used);
  }

  /** Texts added since `start()`. */
  get length(): number {
    return this.ends.length;
  }

  /** The page written since `start()`. */
  finish(): Page<T> {
    this.handedOut = new JsonPage<T>(this.bytes, this.ends, this.held, this.context);
    return this.handedOut;
  }
}

class JsonPage<T> implements Page<T> {
  private bytes: Buffer | undefined;

  constructor(
    bytes: Buffer,
    private readonly ends: readonly number[],
    private held: readonly string[] | undefined,
    private readonly context: ErrorContext,
  ) {
    this.bytes = bytes;
  }

  get length(): number {
    return this.ends.length;
  }

  at(index: number): T | undefined {
    const end = this.ends[index];
    if (end === undefined) return undefined;
    if (this.bytes === undefined)
      throw new Error('a page was read after the next one was started in its buffer');
    const held = this.held?.[index];
    if (held !== undefined) return decodeJson<T>(held, this.context);
    const start = index === 0 ? 0 : (this.ends[index - 1] as number);
    return decodeJson<T>(this.bytes.toString('utf8', start, end), this.context);
  }

  retire(): void {
    this.bytes = undefined;
    this.held = undefined;
  }
}

/** Most events one `readEvents` page holds: enough to amortise a round trip. */
export const EVENT_PAGE_SIZE = 500;
/**
 * Most events a page holds on a backend that stops reading at the byte bound
 * itself (PostgreSQL cuts the page on the server, SQLite reads row by row):
 * memory is bounded by bytes whatever the count, so the count only has to
 * amortise round trips over a stream of small events.
 */
export const BYTE_CUT_PAGE_SIZE = 4096;
/**
 * The JSON a `readEvents` page may hold (in string length or bytes, as the
 * backend measures it), so that memory stays bounded whatever the size of
 * the events: a page ends at this much or `EVENT_PAGE_SIZE` events,
 * whichever comes first.
 *
 * Not smaller: a page after the first is sized at the largest event seen,
 * so in a stream that mixes small and large events smaller pages are more
 * round trips (256 KiB pages made PostgreSQL's readEvents 2-3x slower,
 * bench b-events, same-run ratios).
 */
export const EVENT_PAGE_BYTES = 4 * 1024 * 1024;
/**
 * `EVENT_PAGE_BYTES` for a backend whose driver hands a page over only
 * whole (PostgreSQL): the reader keeps the page's JSON as bytes, in a buffer
 * it holds for the whole read and grows to fit the largest page. With
 * pages of strings, a PostgreSQL reader of 1,000,000 events of ~1.5 KB grew
 * by 148 MiB at 4 MiB pages parsed whole and 77-102 MiB at 1 MiB pages
 * parsed one event at a time; with bytes, by 34 MiB at 1 MiB pages (bench
 * h-event-memory's reader). Pages are sized at the largest event of the page
 * before, so in the bench's mixed stream (events of 0.2-2.5 KB) 1 MiB pages
 * held ~400 events: a read of one channel of 20,000 events took 16 round
 * trips, and was 18% faster at 2 MiB (since the middle: 7%; 4 MiB added
 * little more); 256 KiB was 1.3-3x slower (same-process interleaved runs).
 */
export const BUFFERED_PAGE_BYTES = 2 * 1024 * 1024;
/** Events asked for by the first page, before any event's size is known (a resume often wants only the tail). */
const FIRST_PAGE_SIZE = 16;

/** What one page held, for sizing the next. */
export interface PageMeasure {
  events: number;
  largest: number;
}

/**
 * How many events the next page asks for: as many as fit in `pageBytes` at
 * the largest size of the page before (the sizes nearest in the stream; the
 * largest, so that a page that met bigger events is not followed by one that
 * fetches many of them), at least 1 and at most `pageSize`.
 */
export function nextPageLimit(
  previous: PageMeasure | undefined,
  pageSize: number = EVENT_PAGE_SIZE,
  pageBytes: number = EVENT_PAGE_BYTES,
): number {
  if (!previous || previous.events === 0) return Math.min(FIRST_PAGE_SIZE, pageSize);
  return Math.max(1, Math.min(pageSize, Math.floor(pageBytes / Math.max(1, previous.largest))));
}

/**
 * The sizing of a stream read in keyset pages bounded by count and by bytes,
 * the same on every backend: `start()` gives the number of events to ask
 * for, `add(size)` measures each event read and says when the page is full
 * by bytes (stop reading; the event that filled it is part of the page), and
 * `end()` says whether another page may follow.
 */
export class EventPageSizer {
  private previous: PageMeasure | undefined;
  private limit = 0;
  private events = 0;
  private bytes = 0;
  private largest = 0;
  private bytesBefore = 0;

  constructor(
    readonly pageSize: number = EVENT_PAGE_SIZE,
    readonly pageBytes: number = EVENT_PAGE_BYTES,
  ) {}

  /** Begins a page; the number of events to ask for. */
  start(): number {
    this.limit = nextPageLimit(this.previous, this.pageSize, this.pageBytes);
    this.events = 0;
    this.bytes = 0;
    this.largest = 0;
    return this.limit;
  }

  /** Counts one event of `size`; true when the page is full by bytes. */
  add(size: number): boolean {
    this.events++;
    this.bytes += size;
    if (size > this.largest) this.largest = size;
    return this.bytes >= this.pageBytes;
  }

  /** The average size of the events of the page before (0 before the first page ends). */
  get averageBefore(): number {
    return this.previous === undefined || this.previous.events === 0
      ? 0
      : this.bytesBefore / this.previous.events;
  }

  /** Ends the page; true when the stream may hold more (the page was full by count or by bytes). */
  end(): boolean {
    this.previous = { events: this.events, largest: this.largest };
    this.bytesBefore = this.bytes;
    return this.events >= this.limit || this.bytes >= this.pageBytes;
  }
}
