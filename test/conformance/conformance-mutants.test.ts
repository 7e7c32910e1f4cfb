import { describe, expect, it } from 'vitest';
import { allStoreCases, verifyStore } from '../../conformance/index.js';
import { mutants } from '../mutants/broken-memory-stores.js';
import { memoryHarness } from '../mutants/memory-harness.js';

const profileOf = new Map(allStoreCases().map((c) => [c.id, c.profile]));

/**
 * The suite's test of itself: each deliberately broken copy of MemoryStore
 * must fail the case of the rule its bug breaks, found by running the whole
 * suite on it. A mutant that passes means the suite has a blind spot. A bug
 * against a rule the SDK relies on must fail that case in the sdk profile
 * too; a bug against a rule of kode-store's own (an error code, input
 * validation, a default) is not judged there (the case is skipped).
 */
describe('the conformance suite catches broken stores', () => {
  it('has at least 15 mutants with distinct names, each naming an existing case', () => {
    expect(mutants.length).toBeGreaterThanOrEqual(15);
    expect(new Set(mutants.map((m) => m.name)).size).toBe(mutants.length);
    for (const m of mutants) expect(profileOf.has(m.caughtBy), `${m.name} names ${m.caughtBy}`).toBe(true);
  });

  it('has sdk-profile mutants for what the SDK relies on: exclusion, event order, delete, per-agent ids', () => {
    const sdkCaught = mutants.filter((m) => profileOf.get(m.caughtBy) === 'sdk').map((m) => m.name);
    expect(sdkCaught).toEqual(
      expect.arrayContaining([
        'lock-does-not-exclude',
        'reorders-unawaited-appends',
        'delete-leaves-messages',
        'tool-calls-keyed-by-call-id',
      ]),
    );
  });

  // The mutants run side by side: most of a run is spent waiting (lock timeouts, clock ticks).
  describe.concurrent('each mutant fails its case', () => {
    for (const mutant of mutants) {
      const sdkRule = profileOf.get(mutant.caughtBy) === 'sdk';
      it(`catches ${mutant.name} (${mutant.bug}) in ${mutant.caughtBy}, ${sdkRule && !mutant.codesOnly ? 'in both profiles' : 'in strict only'}`, async () => {
        const harness = memoryHarness(mutant.name, mutant.make);
        const strict = await verifyStore(harness, { caseTimeoutMs: 10_000 });
        expect(strict.results.filter((r) => r.status === 'failed').map((r) => r.id)).toContain(
          mutant.caughtBy,
        );
        const sdk = await verifyStore(harness, { caseTimeoutMs: 10_000, profile: 'sdk' });
        const caught = sdk.results.find((r) => r.id === mutant.caughtBy);
        // A bug only in error codes leaves the case passing there (any rejection counts); a strict-only case is skipped.
        expect(caught?.status).toBe(!sdkRule ? 'skipped' : mutant.codesOnly ? 'passed' : 'failed');
      });
    }
  });
});
