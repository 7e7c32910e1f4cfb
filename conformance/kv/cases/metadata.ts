import { checkEqual, checkRejects } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';

/** §6 "Metadata merges shallowly, inside the database (no lost update between two writers)". */
export const metadataCases = defineKvCases('metadata', [
  {
    id: 'stored-with-the-record',
    title: 'metadata given to set is stored and returned',
    async run({ kv, instance }) {
      const id = await instance();
      const record = await kv.set(id, 'ns', 'k', 1, { metadata: { source: 'test', n: 1 } });
      checkEqual(record.metadata, { source: 'test', n: 1 }, 'returned');
      checkEqual((await kv.get(id, 'ns', 'k')).record?.metadata, { source: 'test', n: 1 }, 'stored');
    },
  },
  {
    id: 'merge-adds-keys',
    title: 'a second set merges new metadata keys into the stored ones',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { metadata: { a: 1 } });
      const record = await kv.set(id, 'ns', 'k', 2, { metadata: { b: 2 } });
      checkEqual(record.metadata, { a: 1, b: 2 }, 'merged');
    },
  },
  {
    id: 'merge-replaces-same-key',
    title: 'a merged key replaces the stored value of that key',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { metadata: { a: 1, b: 1 } });
      checkEqual(
        (await kv.set(id, 'ns', 'k', 2, { metadata: { a: 'two' } })).metadata,
        { a: 'two', b: 1 },
        'merged',
      );
    },
  },
  {
    id: 'merge-is-shallow',
    title: 'a nested object is replaced whole, not merged deeply',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { metadata: { nested: { x: 1, y: 2 }, list: [1, 2] } });
      const record = await kv.set(id, 'ns', 'k', 2, { metadata: { nested: { x: 3 }, list: [9] } });
      checkEqual(record.metadata, { nested: { x: 3 }, list: [9] }, 'merged');
    },
  },
  {
    id: 'null-is-a-value',
    title: 'merging a key set to null stores null (it does not delete the key, unlike a JSON merge patch)',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { metadata: { a: 1, b: { c: null } } });
      const record = await kv.set(id, 'ns', 'k', 2, { metadata: { a: null } });
      checkEqual(record.metadata, { a: null, b: { c: null } }, 'merged');
      checkEqual((await kv.get(id, 'ns', 'k')).record?.metadata, { a: null, b: { c: null } }, 'stored');
    },
  },
  {
    id: 'kept-without-metadata',
    title: 'a set without metadata keeps the stored metadata',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { metadata: { a: 1 } });
      checkEqual((await kv.set(id, 'ns', 'k', 2)).metadata, { a: 1 }, 'metadata');
    },
  },
  {
    id: 'key-order',
    title: 'merged metadata keeps the stored keys in place and appends new ones',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { metadata: { z: 1, a: 1, m: 1 } });
      const record = await kv.set(id, 'ns', 'k', 2, { metadata: { b: 2, a: 2 } });
      checkEqual(Object.keys(record.metadata), ['z', 'a', 'm', 'b'], 'key order');
    },
  },
  {
    id: 'must-be-an-object',
    title: 'metadata that is not a plain object (array, null, string, Date) is refused (ValidationError)',
    async run({ kv, instance }) {
      const id = await instance();
      for (const bad of [[1], null, 'text', new Date(0)]) {
        await checkRejects(
          () => kv.set(id, 'ns', 'k', 1, { metadata: bad as never }),
          'KODE_VALIDATION',
          `metadata ${String(bad)}`,
        );
      }
      checkEqual((await kv.get(id, 'ns', 'k')).exists, false, 'nothing written');
    },
  },
  {
    id: 'must-be-json',
    title: 'metadata holding a value JSON cannot represent is refused and nothing changes',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { metadata: { a: 1 } });
      await checkRejects(
        () => kv.set(id, 'ns', 'k', 2, { metadata: { f: Number.NaN } }),
        'KODE_VALIDATION',
        'NaN',
      );
      const stored = (await kv.get(id, 'ns', 'k')).record;
      checkEqual([stored?.value, stored?.metadata], [1, { a: 1 }], 'stored record');
    },
  },
  {
    id: 'fresh-after-delete',
    title: 'a key set again after delete starts with only the new metadata',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1, { metadata: { old: true } });
      await kv.delete(id, 'ns', 'k');
      checkEqual(
        (await kv.set(id, 'ns', 'k', 2, { metadata: { new: true } })).metadata,
        { new: true },
        'metadata',
      );
    },
  },
  {
    id: 'set-many-metadata',
    title: 'setMany merges the batch metadata, then the item metadata, into each record',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'a', 0, { metadata: { stored: 1 } });
      const [a, b] = await kv.setMany(
        id,
        [
          { namespace: 'ns', key: 'a', value: 1 },
          { namespace: 'ns', key: 'b', value: 2, metadata: { own: 'b', batch: 'item wins' } },
        ],
        { metadata: { batch: 'x' } },
      );
      checkEqual(a?.metadata, { stored: 1, batch: 'x' }, 'metadata of a');
      checkEqual(b?.metadata, { batch: 'item wins', own: 'b' }, 'metadata of b');
    },
  },
  {
    id: 'concurrent-merges-survive',
    title: 'two stores merging different metadata keys into one record at once lose none of them',
    needsPeer: true,
    timeoutMs: 120_000,
    async run({ kv, instance, peer }) {
      const id = await instance();
      const other = await peer();
      await kv.set(id, 'ns', 'k', 0);
      const writer = (store: typeof kv, prefix: string) => async () => {
        for (let i = 0; i < 40; i++)
          await store.set(id, 'ns', 'k', i, { metadata: { [`${prefix}${i}`]: i } });
      };
      await Promise.all([writer(kv, 'a')(), writer(other, 'b')(), writer(kv, 'c')(), writer(other, 'd')()]);
      const metadata = (await kv.get(id, 'ns', 'k')).record?.metadata ?? {};
      const expected = ['a', 'b', 'c', 'd'].flatMap((p) => Array.from({ length: 40 }, (_, i) => `${p}${i}`));
      checkEqual(Object.keys(metadata).sort(), expected.sort(), 'metadata keys');
      checkEqual((await kv.get(id, 'ns', 'k')).record?.version, 161, 'version after 160 writes');
    },
  },
]);
