import { describe, expect, it } from 'vitest';
import { pagedIterable } from '../src/paged-iterable.js';

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
