import { check, checkEqual, checkRejects } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';
import { checkIso, PLAIN_RECORD_FIELDS } from './helpers.js';

/** §6 Records and operations: get/set/delete, versions, timestamps, getMany/setMany. */
export const recordCases = defineKvCases('records', [
  {
    id: 'set-returns-the-record',
    title: 'set returns {id, instanceId, namespace, key, value, metadata, version 1, createdAt = updatedAt}',
    async run({ kv, instance }) {
      const id = await instance();
      const record = await kv.set(id, 'ns', 'k', { a: 1 });
      checkEqual(Object.keys(record), PLAIN_RECORD_FIELDS, 'record fields');
      checkEqual([record.instanceId, record.namespace, record.key], [id, 'ns', 'k'], 'address');
      checkEqual(
        [record.value, record.metadata, record.version],
        [{ a: 1 }, {}, 1],
        'value, metadata, version',
      );
      check(typeof record.id === 'string' && record.id.length > 0, 'record id');
      checkIso(record.createdAt, 'createdAt');
      checkEqual(record.updatedAt, record.createdAt, 'updatedAt of a new record');
    },
  },
  {
    id: 'get-returns-exists-value-record',
    title: 'get answers {exists: true, value, record} with the record set returned',
    async run({ kv, instance }) {
      const id = await instance();
      const written = await kv.set(id, 'ns', 'k', [1, 'two']);
      checkEqual(await kv.get(id, 'ns', 'k'), { exists: true, value: [1, 'two'], record: written }, 'get');
    },
  },
  {
    id: 'get-missing',
    title: 'get of a missing key answers {exists: false, value: undefined, record: undefined}',
    async run({ kv, instance }) {
      const id = await instance();
      const result = await kv.get(id, 'ns', 'nothing');
      checkEqual(Object.keys(result).sort(), ['exists', 'record', 'value'], 'fields');
      checkEqual([result.exists, result.value, result.record], [false, undefined, undefined], 'get');
    },
  },
  {
    id: 'overwrite-replaces-value',
    title: 'set on an existing key replaces the value whole',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', { a: 1, b: 2 });
      await kv.set(id, 'ns', 'k', { c: 3 });
      checkEqual((await kv.get(id, 'ns', 'k')).value, { c: 3 }, 'value');
    },
  },
  {
    id: 'overwrite-keeps-created-at-and-id',
    title: 'set on an existing key keeps createdAt and the record id',
    async run({ kv, instance, clock }) {
      const id = await instance();
      const first = await kv.set(id, 'ns', 'k', 1);
      clock.advance(50);
      const second = await kv.set(id, 'ns', 'k', 2);
      checkEqual([second.createdAt, second.id], [first.createdAt, first.id], 'createdAt and id returned');
      const stored = (await kv.get(id, 'ns', 'k')).record;
      checkEqual([stored?.createdAt, stored?.id], [first.createdAt, first.id], 'createdAt and id stored');
    },
  },
  {
    id: 'overwrite-bumps-updated-at',
    title: 'set on an existing key moves updatedAt forward, even within the same millisecond',
    async run({ kv, instance }) {
      const id = await instance();
      let previous = Date.parse((await kv.set(id, 'ns', 'k', 0)).updatedAt);
      for (let i = 1; i <= 5; i++) {
        const next = Date.parse((await kv.set(id, 'ns', 'k', i)).updatedAt);
        check(next > previous, `write ${i}: updatedAt ${next} is not after ${previous}`);
        previous = next;
      }
    },
  },
  {
    id: 'overwrite-bumps-version',
    title: 'every set of a key adds one to its version',
    async run({ kv, instance }) {
      const id = await instance();
      const versions: number[] = [];
      for (let i = 0; i < 4; i++) versions.push((await kv.set(id, 'ns', 'k', i)).version);
      checkEqual(versions, [1, 2, 3, 4], 'versions');
      checkEqual((await kv.get(id, 'ns', 'k')).record?.version, 4, 'stored version');
    },
  },
  {
    id: 'delete-reports-existence',
    title: 'delete returns true when the key existed, false otherwise',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'k', 1);
      checkEqual(await kv.delete(id, 'ns', 'k'), true, 'first delete');
      checkEqual(await kv.delete(id, 'ns', 'k'), false, 'second delete');
      checkEqual((await kv.get(id, 'ns', 'k')).exists, false, 'get after delete');
    },
  },
  {
    id: 'recreated-key-is-new',
    title: 'a key set again after delete is a new record: version 1, new id, new createdAt',
    async run({ kv, instance, clock }) {
      const id = await instance();
      const old = await kv.set(id, 'ns', 'k', 1);
      await kv.set(id, 'ns', 'k', 2);
      await kv.delete(id, 'ns', 'k');
      clock.advance(20);
      const fresh = await kv.set(id, 'ns', 'k', 3);
      checkEqual(fresh.version, 1, 'version');
      check(fresh.id !== old.id, 'a new record id');
      check(Date.parse(fresh.createdAt) > Date.parse(old.createdAt), 'a new createdAt');
    },
  },
  {
    id: 'delete-leaves-siblings',
    title: 'delete removes one key and nothing else',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'a', 1);
      await kv.set(id, 'ns', 'b', 2);
      await kv.set(id, 'other', 'a', 3);
      await kv.delete(id, 'ns', 'a');
      checkEqual(
        [(await kv.get(id, 'ns', 'b')).value, (await kv.get(id, 'other', 'a')).value],
        [2, 3],
        'siblings',
      );
    },
  },
  {
    id: 'namespaces-are-separate',
    title: 'the same key in two namespaces is two records',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'one', 'k', 'first');
      await kv.set(id, 'two', 'k', 'second');
      checkEqual(
        [(await kv.get(id, 'one', 'k')).value, (await kv.get(id, 'two', 'k')).value],
        ['first', 'second'],
        'values',
      );
    },
  },
  {
    id: 'instances-are-separate',
    title: 'the same namespace and key in two instances is two records',
    async run({ kv, instance }) {
      const a = await instance('a');
      const b = await instance('b');
      await kv.set(a, 'ns', 'k', 'in a');
      checkEqual((await kv.get(b, 'ns', 'k')).exists, false, 'key in the other instance');
      await kv.set(b, 'ns', 'k', 'in b');
      checkEqual((await kv.get(a, 'ns', 'k')).value, 'in a', 'first instance unchanged');
    },
  },
  {
    id: 'returned-values-are-copies',
    title: 'changing a value after set, or a value get returned, does not change what is stored',
    async run({ kv, instance }) {
      const id = await instance();
      const input = { list: [1, 2], nested: { a: 1 } };
      const written = await kv.set(id, 'ns', 'k', input);
      input.list.push(3);
      input.nested.a = 99;
      (written.value as { list: number[] }).list.push(4);
      const read = await kv.get<{ list: number[] }>(id, 'ns', 'k');
      read.value?.list.push(5);
      checkEqual((await kv.get(id, 'ns', 'k')).value, { list: [1, 2], nested: { a: 1 } }, 'stored value');
    },
  },
  {
    id: 'get-many',
    title:
      'getMany returns the live records of the keys in the order asked, once each, missing keys left out',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'a', 1);
      await kv.set(id, 'ns', 'b', 2);
      await kv.set(id, 'other', 'c', 3);
      const records = await kv.getMany(id, 'ns', ['b', 'missing', 'a', 'c', 'b']);
      checkEqual(
        records.map((r) => [r.key, r.value]),
        [
          ['b', 2],
          ['a', 1],
        ],
        'records',
      );
      checkEqual(await kv.getMany(id, 'ns', []), [], 'no keys');
    },
  },
  {
    id: 'set-many',
    title:
      'setMany writes every item (new ones at version 1, existing ones one version up) and returns the records',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'old', 'before');
      const records = await kv.setMany(id, [
        { namespace: 'ns', key: 'old', value: 'after' },
        { namespace: 'ns', key: 'new', value: { n: 1 } },
        { namespace: 'other', key: 'x', value: null },
      ]);
      checkEqual(
        records.map((r) => [r.namespace, r.key, r.version]),
        [
          ['ns', 'old', 2],
          ['ns', 'new', 1],
          ['other', 'x', 1],
        ],
        'records',
      );
      checkEqual((await kv.get(id, 'ns', 'old')).value, 'after', 'overwritten');
      checkEqual((await kv.get(id, 'other', 'x')).value, null, 'new null');
    },
  },
  {
    id: 'set-many-is-atomic',
    title: 'setMany with one unserialisable value writes nothing (ValidationError)',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'a', 'original');
      await checkRejects(
        () =>
          kv.setMany(id, [
            { namespace: 'ns', key: 'a', value: 'changed' },
            { namespace: 'ns', key: 'b', value: () => 1 },
          ]),
        'KODE_VALIDATION',
        'setMany',
      );
      checkEqual((await kv.get(id, 'ns', 'a')).value, 'original', 'untouched key');
      checkEqual((await kv.get(id, 'ns', 'b')).exists, false, 'not created');
    },
  },
  {
    id: 'set-many-refuses-duplicates',
    title: 'setMany refuses a batch naming one key twice (ValidationError)',
    async run({ kv, instance }) {
      const id = await instance();
      await checkRejects(
        () =>
          kv.setMany(id, [
            { namespace: 'ns', key: 'k', value: 1 },
            { namespace: 'ns', key: 'k', value: 2 },
          ]),
        'KODE_VALIDATION',
        'setMany',
      );
      checkEqual(await kv.getRecordCount(id), 0, 'records');
    },
  },
  {
    id: 'options-are-checked',
    title: 'an unknown option (a misspelling such as ttl) is refused with ValidationError, not ignored',
    async run({ kv, instance }) {
      const id = await instance();
      await checkRejects(() => kv.set(id, 'ns', 'k', 1, { ttl: 5 } as never), 'KODE_VALIDATION', 'set');
      checkEqual((await kv.get(id, 'ns', 'k')).exists, false, 'nothing written');
    },
  },
]);
