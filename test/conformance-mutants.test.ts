import { describe, expect, it } from 'vitest';
import { allStoreCases, verifyStore } from '../conformance/index.js';
import { mutants } from './mutants/broken-memory-stores.js';
import { memoryHarness } from './mutants/memory-harness.js';

/**
 * The suite's test of itself: each deliberately broken copy of MemoryStore
 * must fail the case of the rule its bug breaks, found by running the whole
 * suite on it. A mutant that passes means the suite has a blind spot.
 */
describe('the conformance suite catches broken stores', () => {
  it('has at least 15 mutants with distinct names, each naming an existing case', () => {
    expect(mutants.length).toBeGreaterThanOrEqual(15);
    expect(new Set(mutants.map((m) => m.name)).size).toBe(mutants.length);
    const ids = new Set(allStoreCases().map((c) => c.id));
    for (const m of mutants) expect(ids.has(m.caughtBy), `${m.name} names ${m.caughtBy}`).toBe(true);
  });

  // The mutants run side by side: most of a run is spent waiting (lock timeouts, clock ticks).
  describe.concurrent('each mutant fails its case', () => {
    for (const mutant of mutants) {
      it(`catches ${mutant.name} (${mutant.bug}) in ${mutant.caughtBy}`, async () => {
        const result = await verifyStore(memoryHarness(mutant.name, mutant.make), { caseTimeoutMs: 10_000 });
        const failed = result.results.filter((r) => r.status === 'failed').map((r) => r.id);
        expect(failed).toContain(mutant.caughtBy);
      });
    }
  });
});
