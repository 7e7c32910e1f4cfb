import type { KvStore } from '../../../src/kv/kv-types.js';
import { check, checkEqual, checkRejects } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';

/** An instance with a live key `live`, and a key `short` that expires in 1 s, in namespace `ns`; `only-short` holds just an expiring key. */
async function withExpiring(kv: KvStore, id: string): Promise<void> {
  await kv.set(id, 'ns', 'live', 'stays');
  await kv.set(id, 'ns', 'short', 'goes', { ttlMs: 1000 });
  await kv.set(id, 'only-short', 'k', 'goes', { ttlMs: 1000 });
}

/** §6 Beyond the seeds: TTL. An expired record is invisible to every read path at once, swept later. */
export const ttlCases = defineKvCases('ttl', [
  {
    id: 'visible-until-expiry',
    title: 'a record with ttlMs is visible before it expires and carries expiresAt = write time + ttlMs',
    async run({ kv, instance, clock }) {
      const id = await instance();
      const record = await kv.set(id, 'ns', 'k', 1, { ttlMs: 10_000 });
      checkEqual(
        Date.parse(record.expiresAt ?? '') - Date.parse(record.updatedAt),
        10_000,
        'expiresAt - updatedAt',
      );
      clock.advance(9_000);
      checkEqual((await kv.get(id, 'ns', 'k')).record?.expiresAt, record.expiresAt, 'get before expiry');
    },
  },
  {
    id: 'expiry-instant',
    title: 'a record is visible 1 ms before expiresAt and invisible from expiresAt on',
    async run({ kv, instance, clock }) {
      const id = await instance();
      const record = await kv.set(id, 'ns', 'k', 1, { expiresAt: clock.now() + 5000 });
      const at = Date.parse(record.expiresAt ?? '');
      clock.advance(at - 1 - clock.now());
      checkEqual((await kv.get(id, 'ns', 'k')).exists, true, '1 ms before');
      clock.advance(1);
      checkEqual((await kv.get(id, 'ns', 'k')).exists, false, 'at expiresAt');
    },
  },
  {
    id: 'invisible-to-get',
    title: 'an expired record is invisible to get and getMany',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await withExpiring(kv, id);
      clock.advance(1000);
      checkEqual((await kv.get(id, 'ns', 'short')).exists, false, 'get');
      checkEqual(
        (await kv.getMany(id, 'ns', ['short', 'live'])).map((r) => r.key),
        ['live'],
        'getMany',
      );
    },
  },
  {
    id: 'invisible-to-query',
    title: 'an expired record is invisible to query: neither in records nor in total',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await withExpiring(kv, id);
      clock.advance(1000);
      const result = await kv.query({ from: { instance: id } });
      checkEqual([result.records.map((r) => r.key), result.total], [['live'], 1], 'query');
      const filtered = await kv.query({
        from: { instance: id, namespace: 'ns' },
        where: [{ field: 'value', operator: 'eq', value: 'goes' }],
      });
      checkEqual(filtered.total, 0, 'query for the expired value');
    },
  },
  {
    id: 'invisible-to-counts',
    title: 'an expired record is not counted by getRecordCount, of its namespace or its instance',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await withExpiring(kv, id);
      checkEqual([await kv.getRecordCount(id), await kv.getRecordCount(id, 'ns')], [3, 2], 'before');
      clock.advance(1000);
      checkEqual([await kv.getRecordCount(id), await kv.getRecordCount(id, 'ns')], [1, 1], 'after');
      checkEqual(await kv.getRecordCount(id, 'only-short'), 0, 'namespace of expired records only');
    },
  },
  {
    id: 'invisible-to-namespaces',
    title: 'a namespace holding only expired records is no longer listed',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await withExpiring(kv, id);
      checkEqual(await kv.getNamespaces(id), ['ns', 'only-short'], 'before');
      clock.advance(1000);
      checkEqual(await kv.getNamespaces(id), ['ns'], 'after');
    },
  },
  {
    id: 'invisible-to-delete',
    title: 'delete of an expired record returns false; deleteNamespace does not count it',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await withExpiring(kv, id);
      clock.advance(1000);
      checkEqual(await kv.delete(id, 'ns', 'short'), false, 'delete');
      checkEqual(await kv.deleteNamespace(id, 'only-short'), 0, 'deleteNamespace of expired records');
      await kv.set(id, 'ns', 'short2', 1, { ttlMs: 1 });
      clock.advance(1);
      checkEqual(await kv.deleteNamespace(id, 'ns'), 1, 'deleteNamespace counts live records only');
    },
  },
  {
    id: 'expires-at-forms',
    title: 'expiresAt accepts a Date, epoch milliseconds or an ISO string',
    async run({ kv, instance, clock }) {
      const id = await instance();
      const at = Math.floor(clock.now()) + 60_000;
      const iso = new Date(at).toISOString();
      for (const [label, input] of [
        ['Date', new Date(at)],
        ['ms', at],
        ['ISO', iso],
      ] as const) {
        checkEqual((await kv.set(id, 'ns', label, 1, { expiresAt: input })).expiresAt, iso, label);
      }
    },
  },
  {
    id: 'past-expiry-hides-at-once',
    title: 'a write with expiresAt in the past is invisible at once',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { expiresAt: clock.now() - 1 });
      checkEqual((await kv.get(id, 'ns', 'k')).exists, false, 'get');
      checkEqual(await kv.getRecordCount(id), 0, 'count');
    },
  },
  {
    id: 'set-without-ttl-clears-it',
    title: 'a set without ttlMs/expiresAt makes the record permanent again',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { ttlMs: 1000 });
      const record = await kv.set(id, 'ns', 'k', 2);
      checkEqual(record.expiresAt, undefined, 'expiresAt');
      clock.advance(2000);
      checkEqual((await kv.get(id, 'ns', 'k')).value, 2, 'value after the old expiry');
    },
  },
  {
    id: 'set-extends-ttl',
    title: 'a set with a new ttlMs replaces the expiry',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { ttlMs: 1000 });
      clock.advance(900);
      await kv.set(id, 'ns', 'k', 2, { ttlMs: 1000 });
      clock.advance(900);
      checkEqual((await kv.get(id, 'ns', 'k')).value, 2, 'value');
    },
  },
  {
    id: 'expired-key-is-a-new-record',
    title: 'a set on an expired key creates a new record: version 1, fresh metadata',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { ttlMs: 100, metadata: { old: true } });
      await kv.set(id, 'ns', 'k', 2, { ttlMs: 100 });
      clock.advance(100);
      const record = await kv.set(id, 'ns', 'k', 3);
      checkEqual([record.version, record.metadata], [1, {}], 'record');
    },
  },
  {
    id: 'sweep',
    title:
      'sweepExpired removes expired records (counting them) and nothing live; counts are unchanged by it',
    async run({ kv, instance, clock }) {
      const id = await instance();
      await withExpiring(kv, id);
      clock.advance(1000);
      const before = [await kv.getRecordCount(id), await kv.getNamespaces(id)];
      const swept = await kv.sweepExpired();
      check(swept >= 2, `sweepExpired removed ${swept}, expected at least this case's 2`);
      checkEqual([await kv.getRecordCount(id), await kv.getNamespaces(id)], before, 'counts and namespaces');
      checkEqual((await kv.get(id, 'ns', 'live')).value, 'stays', 'live record');
      await kv.set(id, 'only-short', 'k', 'back');
      checkEqual(await kv.getRecordCount(id, 'only-short'), 1, 'namespace written again after the sweep');
    },
  },
  {
    id: 'ttl-validated',
    title: 'ttlMs must be a positive integer, expiresAt a readable time, and not both (ValidationError)',
    async run({ kv, instance, clock }) {
      const id = await instance();
      for (const ttlMs of [0, -5, 1.5, '100']) {
        await checkRejects(
          () => kv.set(id, 'ns', 'k', 1, { ttlMs: ttlMs as never }),
          'KODE_VALIDATION',
          `ttlMs ${String(ttlMs)}`,
        );
      }
      await checkRejects(
        () => kv.set(id, 'ns', 'k', 1, { expiresAt: 'not a date' }),
        'KODE_VALIDATION',
        'expiresAt',
      );
      await checkRejects(
        () => kv.set(id, 'ns', 'k', 1, { ttlMs: 100, expiresAt: clock.now() + 100 }),
        'KODE_VALIDATION',
        'both',
      );
      checkEqual(await kv.getRecordCount(id), 0, 'nothing written');
    },
  },
]);
