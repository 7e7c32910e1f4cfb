import { describe, expect, it } from 'vitest';
import {
  EventPageSizer,
  JsonPageWriter,
  nextPageLimit,
  pagedIterable,
} from '../../src/agent/paged-iterable.js';
import { CorruptDataError } from '../../src/errors.js';

/** A page source that records what happened to it. */
function source(pages: number[][], options: { failAt?: number } = {}) {
  const log = { opened: 0, closed: 0, fetched: 0 };
  const open = () => {
    log.opened++;
    return (async function* () {
      try {
        for (let i = 0; i < pages.length; i++) {
          await new Promise((resolve) => setImmediate(resolve));
          if (options.failAt === i) throw new Error(`page ${i} failed`);
          log.fetched++;
          yield pages[i] as number[];
        }
      } finally {
        log.closed++;
      }
    })();
  };
  return { open, log };
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

describe('pagedIterable', () => {
  it('hands out every item of every page in order, skipping empty pages, and opens the source per iteration', async () => {
    const { open, log } = source([[1, 2], [], [3], [4, 5, 6]]);
    const iterable = pagedIterable(open);
    expect(await collect(iterable)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await collect(iterable)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(log).toEqual({ opened: 2, closed: 2, fetched: 8 });
  });

  it('keeps order and loses nothing when next() is called many times without awaiting', async () => {
    const { open } = source([[1, 2], [3], [], [4, 5]]);
    const iterator = pagedIterable(open)[Symbol.asyncIterator]();
    const steps = await Promise.all(Array.from({ length: 8 }, () => iterator.next()));
    expect(steps.map((step) => (step.done ? 'done' : step.value))).toEqual([
      1,
      2,
      3,
      4,
      5,
      'done',
      'done',
      'done',
    ]);
  });

  it('closes the source when the consumer breaks out early', async () => {
    const { open, log } = source([
      [1, 2],
      [3, 4],
    ]);
    for await (const item of pagedIterable(open)) {
      if (item === 2) break;
    }
    expect(log.closed).toBe(1);
    expect(log.fetched).toBe(1);
  });

  it("ends with the source's error, mapped, and does not go on afterwards", async () => {
    const { open, log } = source([[1], [2]], { failAt: 1 });
    const iterator = pagedIterable(open, {
      mapError: (error) => new TypeError(`mapped: ${(error as Error).message}`),
    })[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ value: 1, done: false });
    await expect(iterator.next()).rejects.toThrow('mapped: page 1 failed');
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
    expect(log.closed).toBe(1);
  });

  it('checks beforeEach before every item; a throw ends the iteration with that error and closes the source', async () => {
    const { open, log } = source([[1, 2, 3]]);
    let open_ = true;
    const iterator = pagedIterable(open, {
      beforeEach: () => {
        if (!open_) throw new Error('closed');
      },
    })[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ value: 1, done: false });
    open_ = false;
    await expect(iterator.next()).rejects.toThrow('closed');
    expect(log.closed).toBe(1);
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });
});

describe('event pages bounded by count and bytes', () => {
  it("asks for 16 first, then as many as fit at the previous page's largest event, at least one, at most the page size", () => {
    expect(nextPageLimit(undefined, 500, 4_000_000)).toBe(16);
    expect(nextPageLimit({ events: 0, largest: 0 }, 8, 4_000_000)).toBe(8);
    expect(nextPageLimit({ events: 100, largest: 1_600 }, 500, 4_000_000)).toBe(500);
    expect(nextPageLimit({ events: 10, largest: 1_000_000 }, 500, 4_000_000)).toBe(4);
    expect(nextPageLimit({ events: 1, largest: 16_000_000 }, 500, 4_000_000)).toBe(1);
  });

  it('ends a page at the event that reaches the byte bound, and says whether more may follow', () => {
    const sizer = new EventPageSizer(50, 1_000);
    expect(sizer.start()).toBe(16);
    // Full by bytes at the fourth 300-byte event: that event is the page's last.
    expect([300, 300, 300, 300].map((size) => sizer.add(size))).toEqual([false, false, false, true]);
    expect(sizer.end()).toBe(true);
    expect(sizer.start()).toBe(3);
    sizer.add(10);
    // Fewer than asked for and under the bound: the stream is finished.
    expect(sizer.end()).toBe(false);
    expect(sizer.start()).toBe(50);
    for (let i = 0; i < 50; i++) sizer.add(1);
    // As many as asked for: more may follow.
    expect(sizer.end()).toBe(true);
  });
});

describe('JsonPageWriter', () => {
  const context = { backend: 'test', operation: 'readEvents' };

  it('hands each text back parsed, multi-byte and non-BMP text included, across pages that outgrow the buffer', () => {
    const writer = new JsonPageWriter<{ n: number; text: string }>(context);
    for (const [page, count] of [
      [0, 3],
      [1, 200],
      [2, 1],
    ] as const) {
      writer.start();
      const values = Array.from({ length: count }, (_, n) => ({
        n,
        text: `p${page} 审查 ✅ 😀 ${'x'.repeat(n * 50)}`,
      }));
      for (const value of values) writer.add(JSON.stringify(value));
      expect(writer.length).toBe(count);
      const read = writer.finish();
      expect(Array.from({ length: read.length }, (_, i) => read.at(i))).toEqual(values);
      expect(read.at(count)).toBeUndefined();
    }
  });

  it('takes a text as its UTF-8 bytes as well as a string', () => {
    const writer = new JsonPageWriter<string>(context);
    writer.start();
    writer.add(Buffer.from('"审查 ✅ 😀"', 'utf8'));
    writer.add('"é"');
    writer.add(new TextEncoder().encode('"x"'));
    const page = writer.finish();
    expect([page.at(0), page.at(1), page.at(2)]).toEqual(['审查 ✅ 😀', 'é', 'x']);
  });

  it('holds a string as it is beside texts copied as bytes, and forgets it with its page', () => {
    const writer = new JsonPageWriter<string>(context);
    writer.start();
    writer.hold('"held 审查 😀"');
    writer.add('"copied é"');
    writer.hold('"held again"');
    writer.add(Buffer.from('"bytes ✅"', 'utf8'));
    expect(writer.length).toBe(4);
    const page = writer.finish();
    expect([0, 1, 2, 3].map((i) => page.at(i))).toEqual([
      'held 审查 😀',
      'copied é',
      'held again',
      'bytes ✅',
    ]);
    writer.start();
    writer.add('"next"');
    expect(() => page.at(0)).toThrow(/after the next one was started/);
    // A page started again holds nothing of the one before.
    writer.start();
    writer.add('"only"');
    const only = writer.finish();
    expect([only.length, only.at(0), only.at(1)]).toEqual([1, 'only', undefined]);
  });

  it('refuses to read a page once the next one was started, and a retried page starts empty', () => {
    const writer = new JsonPageWriter<number>(context);
    writer.start();
    writer.add('1');
    const first = writer.finish();
    writer.start();
    writer.add('2');
    expect(() => first.at(0)).toThrow(/after the next one was started/);
    writer.start();
    expect(writer.length).toBe(0);
    writer.add('3');
    expect(writer.finish().at(0)).toBe(3);
  });

  it('fails with CorruptDataError at a text that does not parse, after the texts before it', () => {
    const writer = new JsonPageWriter<number>(context);
    writer.start();
    writer.add('1');
    writer.add('{"cut');
    const page = writer.finish();
    expect(page.at(0)).toBe(1);
    expect(() => page.at(1)).toThrow(CorruptDataError);
  });
});
