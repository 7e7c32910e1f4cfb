import { check, checkEqual, checkRejects } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';

/** §6 Beyond the seeds: conditional writes `ifAbsent` / `ifVersion` failing with ConflictError. */
export const conditionalCases = defineKvCases('conditional', [
  {
    id: 'if-absent-creates',
    title: 'set with ifAbsent writes a key that does not exist',
    async run({ kv, instance }) {
      const id = await instance();
      checkEqual((await kv.set(id, 'ns', 'k', 1, { ifAbsent: true })).version, 1, 'version');
    },
  },
  {
    id: 'if-absent-conflicts',
    title: 'set with ifAbsent on an existing key fails with ConflictError and changes nothing',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 'first');
      await checkRejects(
        () => kv.set(id, 'ns', 'k', 'second', { ifAbsent: true }),
        'KODE_CONFLICT',
        'second set',
      );
      const stored = (await kv.get(id, 'ns', 'k')).record;
      checkEqual([stored?.value, stored?.version], ['first', 1], 'stored record');
    },
  },
  {
    id: 'if-absent-after-expiry',
    title: 'an expired key counts as absent for ifAbsent',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 'old', { ttlMs: 1000 });
      clock.advance(1001);
      const record = await kv.set(id, 'ns', 'k', 'new', { ifAbsent: true });
      checkEqual([record.value, record.version], ['new', 1], 'new record');
    },
  },
  {
    id: 'if-version-matches',
    title: 'set with ifVersion equal to the stored version writes',
    async run({ kv, instance }) {
      const id = await instance();
      const first = await kv.set(id, 'ns', 'k', 1);
      checkEqual((await kv.set(id, 'ns', 'k', 2, { ifVersion: first.version })).version, 2, 'version');
    },
  },
  {
    id: 'if-version-mismatch',
    title: 'set with a stale ifVersion fails with ConflictError and changes nothing',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1);
      await kv.set(id, 'ns', 'k', 2);
      await checkRejects(() => kv.set(id, 'ns', 'k', 3, { ifVersion: 1 }), 'KODE_CONFLICT', 'stale set');
      checkEqual((await kv.get(id, 'ns', 'k')).record?.value, 2, 'value');
    },
  },
  {
    id: 'if-version-absent',
    title: 'set with ifVersion on a missing key fails with ConflictError and creates nothing',
    async run({ kv, instance }) {
      const id = await instance();
      await checkRejects(() => kv.set(id, 'ns', 'k', 1, { ifVersion: 1 }), 'KODE_CONFLICT', 'set');
      checkEqual((await kv.get(id, 'ns', 'k')).exists, false, 'key');
    },
  },
  {
    id: 'if-version-expired',
    title: 'set with ifVersion on an expired key fails with ConflictError',
    async run({ kv, instance, clock }) {
      const id = await instance();
      const record = await kv.set(id, 'ns', 'k', 1, { ttlMs: 500 });
      clock.advance(501);
      await checkRejects(
        () => kv.set(id, 'ns', 'k', 2, { ifVersion: record.version }),
        'KODE_CONFLICT',
        'set',
      );
    },
  },
  {
    id: 'options-exclude-each-other',
    title: 'ifAbsent together with ifVersion is refused (ValidationError)',
    async run({ kv, instance }) {
      const id = await instance();
      await checkRejects(
        () => kv.set(id, 'ns', 'k', 1, { ifAbsent: true, ifVersion: 1 }),
        'KODE_VALIDATION',
        'set',
      );
    },
  },
  {
    id: 'if-version-validated',
    title: 'ifVersion must be a positive integer (ValidationError for 0, -1, 1.5, "1")',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1);
      for (const bad of [0, -1, 1.5, '1']) {
        await checkRejects(
          () => kv.set(id, 'ns', 'k', 2, { ifVersion: bad as never }),
          'KODE_VALIDATION',
          `ifVersion ${String(bad)}`,
        );
      }
    },
  },
  {
    id: 'delete-if-version',
    title: 'delete with ifVersion deletes on a match and fails with ConflictError on a mismatch',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1);
      await kv.set(id, 'ns', 'k', 2);
      await checkRejects(() => kv.delete(id, 'ns', 'k', { ifVersion: 1 }), 'KODE_CONFLICT', 'stale delete');
      checkEqual((await kv.get(id, 'ns', 'k')).exists, true, 'still there');
      checkEqual(await kv.delete(id, 'ns', 'k', { ifVersion: 2 }), true, 'delete');
      await checkRejects(
        () => kv.delete(id, 'ns', 'k', { ifVersion: 2 }),
        'KODE_CONFLICT',
        'delete of a missing key',
      );
    },
  },
  {
    id: 'conflict-error-is-typed',
    title: 'a lost conditional write is a ConflictError (code KODE_CONFLICT) naming the key',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'the-key', 1);
      const error = await checkRejects(
        () => kv.set(id, 'ns', 'the-key', 2, { ifAbsent: true }),
        'KODE_CONFLICT',
        'set',
      );
      checkEqual(error.name, 'ConflictError', 'error name');
      check(error.message.includes('the-key'), `message names the key: ${error.message}`);
    },
  },
  {
    id: 'if-absent-race',
    title: 'ten concurrent ifAbsent writes of one key on two stores: exactly one wins',
    needsPeer: true,
    async run({ kv, instance, peer }) {
      const other = await peer();
      for (let round = 0; round < 5; round++) {
        const id = await instance(`round${round}`);
        const attempts = Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? other : kv).set(id, 'ns', 'k', i, { ifAbsent: true }).then(
            () => 'won',
            (error: { code?: string }) => error.code,
          ),
        );
        const outcomes = await Promise.all(attempts);
        checkEqual(
          outcomes.filter((o) => o === 'won').length,
          1,
          `round ${round}: winners (${outcomes.join(', ')})`,
        );
        checkEqual(outcomes.filter((o) => o === 'KODE_CONFLICT').length, 9, `round ${round}: conflicts`);
        checkEqual((await kv.get(id, 'ns', 'k')).record?.version, 1, `round ${round}: version`);
      }
    },
  },
]);
