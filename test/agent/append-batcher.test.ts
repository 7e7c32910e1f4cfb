import { describe, expect, it } from 'vitest';
import { AppendBatcher } from '../../src/agent/append-batcher.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('AppendBatcher', () => {
  it('writes a burst of un-awaited items in call order, in few batches', async () => {
    const batches: number[][] = [];
    const batcher = new AppendBatcher<number>(async (items) => {
      batches.push(items);
      await tick();
    });
    await Promise.all(Array.from({ length: 100 }, (_, i) => batcher.enqueue(i)));
    expect(batches.flat()).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(batches).toHaveLength(1);
  });

  it('rejects only the items of a batch that failed', async () => {
    let calls = 0;
    const batcher = new AppendBatcher<number>(async () => {
      calls++;
      await tick();
      if (calls === 1) throw new Error('disk full');
    });
    const first = batcher.enqueue(1);
    await expect(first).rejects.toThrow('disk full');
    await expect(batcher.enqueue(2)).resolves.toBeUndefined();
  });

  it('rejects only the items a batch write refused, with their own errors, and resolves the rest', async () => {
    const written: number[] = [];
    const mapped: unknown[] = [];
    const batcher = new AppendBatcher<number>(
      async (items) => {
        written.push(...items.filter((n) => n % 2 === 0));
        return (n) => (n % 2 === 0 ? undefined : new Error(`odd ${n}`));
      },
      undefined,
      (error, n) => {
        mapped.push(n);
        return error;
      },
    );
    const outcomes = await Promise.allSettled([1, 2, 3, 4].map((n) => batcher.enqueue(n)));
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[2] as PromiseRejectedResult).reason).toMatchObject({ message: 'odd 3' });
    expect(written).toEqual([2, 4]);
    expect(mapped).toEqual([1, 3]);
  });

  it('idle() waits for the items queued before it, written or failed, and resolves at once when nothing is pending', async () => {
    const written: number[] = [];
    const batcher = new AppendBatcher<number>(async (items) => {
      await tick();
      if (items.includes(3)) throw new Error('bad batch');
      written.push(...items);
    });
    await batcher.idle();
    const outcomes = [batcher.enqueue(1), batcher.enqueue(2)].map((p) => p.catch(() => 'failed'));
    await batcher.idle();
    expect(written).toEqual([1, 2]);
    const failed = batcher.enqueue(3).catch(() => 'failed');
    await batcher.idle();
    expect(await failed).toBe('failed');
    expect(await Promise.all(outcomes)).toEqual([undefined, undefined]);
  });

  it('idle() does not wait for items queued after it: a caller never starves behind a stream that never pauses', async () => {
    const batcher = new AppendBatcher<number>(async () => {
      await tick();
    }, 10);
    let stop = false;
    let produced = 0;
    const producer = (async () => {
      while (!stop) {
        for (let i = 0; i < 20; i++) void batcher.enqueue(produced++);
        await tick();
      }
    })();
    await tick();
    const before = produced;
    let idleAt: number | undefined;
    const idle = batcher.idle().then(() => {
      idleAt = produced;
    });
    // The producer keeps the queue non-empty; idle() must still resolve.
    while (idleAt === undefined && produced < before + 20_000) await tick();
    stop = true;
    await producer;
    await idle;
    expect(idleAt).toBeDefined();
    expect(idleAt).toBeLessThan(before + 20_000);
  });
});
