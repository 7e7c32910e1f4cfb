import { describe, expect, it } from 'vitest';
import { formatKvResults, verifyKvStore } from '../../conformance/kv/index.js';
import { kvMutantHarness, kvMutants } from '../../conformance/kv/kv-mutants.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import { MemoryKvBackend } from '../../src/kv/memory-kv.js';

describe('the KV conformance suite catches bugs', () => {
  it('the reference passes every case under verifyKvStore (the runner-free entry point)', async () => {
    const shared = new MemoryKvBackend();
    const result = await verifyKvStore({
      name: 'memory reference',
      create: async ({ now }) => createKvStore(shared, { now }),
      destroy: async () => {},
      createPeer: async (_kv, { now }) => createKvStore(shared, { now }),
    });
    expect(result.failed, formatKvResults(result)).toBe(0);
    expect(result.skipped).toBe(0);
    expect(result.passed).toBeGreaterThan(420);
  }, 60_000);

  it('has at least 8 mutants', () => {
    expect(kvMutants.length).toBeGreaterThanOrEqual(8);
  });

  for (const mutant of kvMutants) {
    it(`fails the mutant "${mutant.name}" (${mutant.bug})`, async () => {
      const result = await verifyKvStore(kvMutantHarness(mutant));
      const caughtBy = result.results.filter((r) => r.status === 'failed').map((r) => r.id);
      expect(caughtBy.length, `no case caught ${mutant.name}`).toBeGreaterThan(0);
    }, 60_000);
  }

  it('a harness that skips an unknown case id is refused', async () => {
    await expect(
      verifyKvStore({ ...kvMutantHarness(kvMutants[0] as never), skip: { 'kv.no-such-case': 'because' } }),
    ).rejects.toThrow(/skip list names unknown cases: kv\.no-such-case/);
  });

  it('only and exclude select cases by id prefix, and refuse unknown ids', async () => {
    const harness = kvMutantHarness(kvMutants[0] as never);
    const result = await verifyKvStore(harness, { only: ['kv.records'], exclude: ['kv.records.set-many'] });
    expect(result.results.length).toBeGreaterThan(5);
    const ids = result.results.map((r) => r.id);
    expect(ids.every((id) => id.startsWith('kv.records.'))).toBe(true);
    // Prefixes end at a dot: excluding kv.records.set-many leaves kv.records.set-many-is-atomic in.
    expect(ids).not.toContain('kv.records.set-many');
    expect(ids).toContain('kv.records.set-many-is-atomic');
    await expect(verifyKvStore(harness, { exclude: ['kv.nothing'] })).rejects.toThrow(
      /'exclude' names unknown cases/,
    );
  });

  it('a skip without a reason is refused, and a listed skip is reported with its reason', async () => {
    const harness = kvMutantHarness(kvMutants[0] as never);
    await expect(verifyKvStore({ ...harness, skip: { 'kv.records.get-missing': ' ' } })).rejects.toThrow(
      /without a reason/,
    );
    const result = await verifyKvStore(
      { ...harness, skip: { 'kv.records.get-missing': 'not today' } },
      { only: ['kv.records.get-missing'] },
    );
    expect(result.results).toMatchObject([
      { status: 'skipped', reason: 'skipped by the harness: not today' },
    ]);
  });

  it('race cases are skipped, with the reason, for a harness without createPeer', async () => {
    const { createPeer: _none, ...harness } = kvMutantHarness(kvMutants[0] as never);
    const result = await verifyKvStore(harness, { only: ['kv.races.increments'] });
    expect(result.results[0]?.status).toBe('skipped');
    expect(result.results[0]?.reason).toMatch(/createPeer/);
  });
});
