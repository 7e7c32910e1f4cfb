import { checkEqual, checkRejects } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';

/** §6 Beyond the seeds: atomic `increment`. */
export const incrementCases = defineKvCases('increment', [
  {
    id: 'missing-starts-at-zero',
    title: 'increment of a missing key stores delta (a missing key counts as 0)',
    async run({ kv, instance }) {
      const id = await instance();
      const record = await kv.increment(id, 'ns', 'k', 5);
      checkEqual([record.value, record.version], [5, 1], 'record');
    },
  },
  {
    id: 'default-delta',
    title: 'increment without delta adds 1',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.increment(id, 'ns', 'k');
      checkEqual((await kv.increment(id, 'ns', 'k')).value, 2, 'value');
    },
  },
  {
    id: 'adds-like-javascript',
    title: 'negative and fractional deltas add as JavaScript numbers do (0.1 + 0.2)',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 0.1);
      checkEqual((await kv.increment(id, 'ns', 'k', 0.2)).value, 0.1 + 0.2, 'fraction');
      await kv.set(id, 'ns', 'n', 10);
      checkEqual((await kv.increment(id, 'ns', 'n', -15)).value, -5, 'negative');
    },
  },
  {
    id: 'refuses-non-numbers',
    title: 'increment of a value that is not a number fails (ValidationError) and leaves it',
    async run({ kv, instance }) {
      const id = await instance();
      for (const value of ['5', { n: 1 }, null, true, [1]]) {
        await kv.set(id, 'ns', 'k', value as never);
        await checkRejects(
          () => kv.increment(id, 'ns', 'k'),
          'KODE_VALIDATION',
          `increment of ${JSON.stringify(value)}`,
        );
        checkEqual((await kv.get(id, 'ns', 'k')).value, value, 'value');
      }
    },
  },
  {
    id: 'refuses-bad-deltas',
    title: 'a delta that is not a finite number is refused, as is a result beyond the finite range',
    async run({ kv, instance }) {
      const id = await instance();
      for (const delta of [Number.NaN, Number.POSITIVE_INFINITY, '1']) {
        await checkRejects(
          () => kv.increment(id, 'ns', 'k', delta as never),
          'KODE_VALIDATION',
          `delta ${String(delta)}`,
        );
      }
      await kv.set(id, 'ns', 'big', Number.MAX_VALUE);
      await checkRejects(
        () => kv.increment(id, 'ns', 'big', Number.MAX_VALUE),
        'KODE_VALIDATION',
        'overflow',
      );
      checkEqual((await kv.get(id, 'ns', 'big')).value, Number.MAX_VALUE, 'value after overflow');
    },
  },
  {
    id: 'is-a-write',
    title:
      'increment bumps version and updatedAt, keeps createdAt and metadata, and merges metadata it is given',
    async run({ kv, instance, clock }) {
      const id = await instance();
      const first = await kv.set(id, 'ns', 'k', 1, { metadata: { a: 1 } });
      clock.advance(10);
      const next = await kv.increment(id, 'ns', 'k', 1, { metadata: { b: 2 } });
      checkEqual(
        [next.version, next.createdAt, next.metadata],
        [2, first.createdAt, { a: 1, b: 2 }],
        'record',
      );
      checkEqual(Date.parse(next.updatedAt) > Date.parse(first.updatedAt), true, 'updatedAt moved');
    },
  },
  {
    id: 'keeps-expiry',
    title: 'increment keeps the record expiry unless given a new one',
    async run({ kv, instance }) {
      const id = await instance();
      const first = await kv.set(id, 'ns', 'k', 1, { ttlMs: 60_000 });
      checkEqual((await kv.increment(id, 'ns', 'k')).expiresAt, first.expiresAt, 'expiresAt');
      const extended = await kv.increment(id, 'ns', 'k', 1, { ttlMs: 120_000 });
      checkEqual(Date.parse(extended.expiresAt ?? '') > Date.parse(first.expiresAt ?? ''), true, 'extended');
    },
  },
  {
    id: 'restarts-after-expiry',
    title: 'increment of an expired key starts again from 0 with a new record',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 100, { ttlMs: 1000 });
      clock.advance(1000);
      const record = await kv.increment(id, 'ns', 'k', 1);
      checkEqual([record.value, record.version, record.expiresAt], [1, 1, undefined], 'record');
    },
  },
  {
    id: 'if-version',
    title: 'increment with a stale ifVersion fails with ConflictError',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.increment(id, 'ns', 'k');
      await kv.increment(id, 'ns', 'k');
      await checkRejects(
        () => kv.increment(id, 'ns', 'k', 1, { ifVersion: 1 }),
        'KODE_CONFLICT',
        'stale increment',
      );
      checkEqual((await kv.increment(id, 'ns', 'k', 1, { ifVersion: 2 })).value, 3, 'current increment');
    },
  },
  {
    id: 'auto-create-instance',
    title: 'increment with autoCreateInstance creates the instance',
    async run({ kv, unique }) {
      const id = unique('counter');
      checkEqual((await kv.increment(id, 'ns', 'k', 1, { autoCreateInstance: true })).value, 1, 'value');
      checkEqual((await kv.getInstance(id))?.id, id, 'instance');
    },
  },
]);
