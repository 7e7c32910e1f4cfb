import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { agentInfo, timeline } from '../../conformance/store/sample-data.js';
import { MemoryStore } from '../../src/agent/memory-store.js';
import type { PrunePolicy } from '../../src/agent/retention.js';

/**
 * `store.prune`'s `concurrency`: several agents of a page pruned at once
 * must remove exactly what one at a time removes, and report the same.
 */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kode-prune-concurrency-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const id = (i: number) => `agt-conc-${String(i).padStart(3, '0')}`;

/**
 * 60 agents with 6 events each; one in four is written again after the
 * returned cut-off, so it stays. Waits a few milliseconds so that the
 * last-write times fall on either side of the cut-off (nothing is timed).
 */
async function fill(store: SqliteStore): Promise<number> {
  for (let i = 0; i < 60; i++) {
    await store.saveInfo(id(i), agentInfo(id(i)));
    for (let seq = 1; seq <= 6; seq++) await store.appendEvent(id(i), timeline(seq));
  }
  await sleep(5);
  const cutOff = Date.now();
  await sleep(5);
  for (let i = 0; i < 60; i += 4) await store.saveInfo(id(i), agentInfo(id(i)));
  return cutOff;
}

describe('prune concurrency', () => {
  it('removes and reports the same with 1 and with 16 agents at a time (SQLite, pages of 7)', async () => {
    const one = new SqliteStore({ path: join(dir, 'one.db') });
    const many = new SqliteStore({ path: join(dir, 'many.db') });
    try {
      const policy = (cutOff: number): PrunePolicy => ({
        inactiveBefore: cutOff,
        events: { keepNewest: 2 },
      });
      const oneCut = await fill(one);
      const manyCut = await fill(many);
      const preview = await many.prune(policy(manyCut), { dryRun: true, batchSize: 7, concurrency: 16 });
      const serial = await one.prune(policy(oneCut), { batchSize: 7, concurrency: 1 });
      const phases: string[] = [];
      const concurrent = await many.prune(policy(manyCut), {
        batchSize: 7,
        concurrency: 16,
        onProgress: (p) => {
          phases.push(p.phase);
        },
      });
      expect(serial.agents).toBe(45);
      // 15 kept agents keep 2 of their 6 events.
      expect(serial.events).toBe(45 * 6 + 15 * 4);
      expect(concurrent).toEqual(serial);
      expect({ ...preview, dryRun: false }).toEqual(concurrent);
      // Nine pages of 7 (the last one short), each scanned then pruned.
      expect(phases).toEqual(Array.from({ length: 9 }, () => ['scanned', 'removed']).flat());
      expect(await many.list('agt-conc-')).toEqual(await one.list('agt-conc-'));
      expect(await many.list('agt-conc-')).toHaveLength(15);
      const left: unknown[] = [];
      for await (const event of many.readEvents(id(4))) left.push(event);
      expect(left).toHaveLength(2);
    } finally {
      await one.close();
      await many.close();
    }
  });

  it.each([
    0,
    -1,
    1.5,
    65,
    Number.NaN,
    '8',
  ])('rejects concurrency %s with a validation error', async (value) => {
    const store = new MemoryStore();
    await store.saveInfo(id(1), agentInfo(id(1)));
    await expect(
      store.prune({ inactiveBefore: Date.now() }, { concurrency: value as number }),
    ).rejects.toMatchObject({ code: 'KODE_VALIDATION', message: expect.stringContaining('concurrency') });
    expect(await store.exists(id(1))).toBe(true);
  });
});
