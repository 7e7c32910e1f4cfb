import { describe, expect, it } from 'vitest';
import { AgentWriteQueue } from '../../src/agent/agent-write-queue.js';

/** The per-agent write order of the pooled backends (PostgreSQL, MongoDB). */
describe('AgentWriteQueue', () => {
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('runs the writes of one agent one at a time, in call order, even when later ones are quicker', async () => {
    const queue = new AgentWriteQueue();
    const log: string[] = [];
    let running = 0;
    const task = (name: string, ticks: number) => async () => {
      running++;
      expect(running).toBe(1);
      for (let i = 0; i < ticks; i++) await tick();
      log.push(name);
      running--;
      return name;
    };
    const results = await Promise.all([
      queue.write('a', task('1', 3)),
      queue.write('a', task('2', 0)),
      queue.write('a', task('3', 1)),
    ]);
    expect(results).toEqual(['1', '2', '3']);
    expect(log).toEqual(['1', '2', '3']);
  });

  it('runs writes of different agents side by side', async () => {
    const queue = new AgentWriteQueue();
    let releaseA: () => void = () => undefined;
    const a = queue.write('a', () => new Promise<void>((resolve) => (releaseA = resolve)));
    // Agent b finishes while agent a's write is still open.
    await queue.write('b', async () => undefined);
    releaseA();
    await a;
  });

  it('a failed write rejects its own caller only; the next write of the agent still runs', async () => {
    const queue = new AgentWriteQueue();
    const failed = queue.write('a', async () => {
      throw new Error('boom');
    });
    const next = queue.write('a', async () => 'ran');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ran');
  });

  it('settled waits for the writes of one agent queued so far, not for those of another', async () => {
    const queue = new AgentWriteQueue();
    let releaseB: () => void = () => undefined;
    const b = queue.write('b', () => new Promise<void>((resolve) => (releaseB = resolve)));
    let wrote = false;
    void queue.write('a', async () => {
      await tick();
      wrote = true;
    });
    await queue.settled('a');
    expect(wrote).toBe(true);
    releaseB();
    await b;
  });

  it('settledAll waits for everything queued, and finished agents are forgotten', async () => {
    const queue = new AgentWriteQueue();
    let done = 0;
    for (const id of ['a', 'b', 'a']) {
      void queue.write(id, async () => {
        await tick();
        done++;
      });
    }
    await queue.settledAll();
    expect(done).toBe(3);
    await tick();
    expect(queue.pendingAgents).toBe(0);
  });
});
