import { describe, expect, it } from 'vitest';
import { StoreOperations } from '../../src/agent/store-operations.js';
import { KodeStoreError, StoreClosedError, ValidationError } from '../../src/errors.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('StoreOperations.append (the appendEvent frame)', () => {
  it('counts every append exactly and measures the latency of one append in flight at a time', async () => {
    const ops = new StoreOperations('test');
    const written = tick();
    await Promise.all(Array.from({ length: 50 }, () => ops.append('appendEvent', 'a', () => written)));
    expect(ops.metrics.operations().saves).toBe(50);
    // One measured latency for the burst: the mean is taken over measured appends only.
    const burst = ops.metrics.performance();
    expect(burst.maxLatencyMs).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) await ops.append('appendEvent', 'a', () => tick());
    expect(ops.metrics.operations().saves).toBe(55);
    expect(ops.metrics.performance().p50LatencyMs).toBeGreaterThan(0);
  });

  it('runs the body synchronously, in call order', () => {
    const ops = new StoreOperations('test');
    const order: number[] = [];
    for (let i = 0; i < 3; i++) {
      void ops.append('appendEvent', 'a', () => {
        order.push(i);
        return Promise.resolve();
      });
    }
    expect(order).toEqual([0, 1, 2]);
  });

  it('rejects (never throws) with typed errors: a bad id, a closed store, a body that throws', async () => {
    const ops = new StoreOperations('test');
    const body = () => Promise.resolve();
    let badId: Promise<void> | undefined;
    expect(() => {
      badId = ops.append('appendEvent', '', body);
    }).not.toThrow();
    await expect(badId).rejects.toBeInstanceOf(ValidationError);
    await expect(
      ops.append('appendEvent', 'a', () => {
        throw new Error('disk on fire');
      }),
    ).rejects.toMatchObject({
      constructor: KodeStoreError,
      backend: 'test',
      operation: 'appendEvent',
      agentId: 'a',
    });
    ops.markClosed();
    await expect(ops.append('appendEvent', 'a', body)).rejects.toBeInstanceOf(StoreClosedError);
    // Failures are counted too.
    expect(ops.metrics.operations().saves).toBe(3);
  });

  it("passes the storage's own rejection through unchanged", async () => {
    const ops = new StoreOperations('test');
    const typed = new KodeStoreError('write failed', { backend: 'file-event-log', operation: 'append' });
    await expect(ops.append('appendEvent', 'a', () => Promise.reject(typed))).rejects.toBe(typed);
  });
});
