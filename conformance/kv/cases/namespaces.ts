import { check, checkEqual, sleep } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';

/** §6 Operations on namespaces: getNamespaces, deleteNamespace, getRecordCount. */
export const namespaceCases = defineKvCases('namespaces', [
  {
    id: 'list-only-non-empty',
    title: 'getNamespaces lists namespaces with at least one record; one emptied by delete disappears',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'kept', 'k', 1);
      await kv.set(id, 'emptied', 'a', 1);
      await kv.set(id, 'emptied', 'b', 1);
      await kv.delete(id, 'emptied', 'a');
      checkEqual(await kv.getNamespaces(id), ['emptied', 'kept'], 'before the last delete');
      await kv.delete(id, 'emptied', 'b');
      checkEqual(await kv.getNamespaces(id), ['kept'], 'after the last delete');
    },
  },
  {
    id: 'list-sorted',
    title: 'getNamespaces returns namespaces in code-point order',
    async run({ kv, instance }) {
      const id = await instance();
      for (const namespace of ['b', 'B', 'a:2', 'a:10', '😀', '\uffff']) await kv.set(id, namespace, 'k', 1);
      checkEqual(await kv.getNamespaces(id), ['B', 'a:10', 'a:2', 'b', '\uffff', '😀'], 'namespaces');
    },
  },
  {
    id: 'list-empty-instance',
    title: 'getNamespaces of an instance without records is []',
    async run({ kv, instance }) {
      checkEqual(await kv.getNamespaces(await instance()), [], 'namespaces');
    },
  },
  {
    id: 'list-per-instance',
    title: 'getNamespaces lists only the namespaces of its instance',
    async run({ kv, instance }) {
      const a = await instance('a');
      const b = await instance('b');
      await kv.set(a, 'only-a', 'k', 1);
      await kv.set(b, 'only-b', 'k', 1);
      checkEqual(await kv.getNamespaces(a), ['only-a'], 'namespaces of a');
    },
  },
  {
    id: 'delete-namespace-counts',
    title:
      'deleteNamespace deletes every record of the namespace, returns how many, and touches no other namespace',
    async run({ kv, instance }) {
      const id = await instance();
      for (const key of ['a', 'b', 'c']) await kv.set(id, 'doomed', key, key);
      await kv.set(id, 'kept', 'a', 'stays');
      checkEqual(await kv.deleteNamespace(id, 'doomed'), 3, 'deleted');
      checkEqual(await kv.getRecordCount(id, 'doomed'), 0, 'records left');
      checkEqual((await kv.get(id, 'doomed', 'a')).exists, false, 'a deleted key');
      checkEqual((await kv.get(id, 'kept', 'a')).value, 'stays', 'other namespace');
      checkEqual(await kv.getNamespaces(id), ['kept'], 'namespaces');
    },
  },
  {
    id: 'delete-namespace-missing',
    title: 'deleteNamespace of a namespace without records returns 0',
    async run({ kv, instance }) {
      checkEqual(await kv.deleteNamespace(await instance(), 'nothing'), 0, 'deleted');
    },
  },
  {
    id: 'delete-namespace-per-instance',
    title: 'deleteNamespace leaves the same namespace of another instance alone',
    async run({ kv, instance }) {
      const a = await instance('a');
      const b = await instance('b');
      await kv.set(a, 'ns', 'k', 1);
      await kv.set(b, 'ns', 'k', 2);
      await kv.deleteNamespace(a, 'ns');
      checkEqual((await kv.get(b, 'ns', 'k')).value, 2, 'record of the other instance');
    },
  },
  {
    id: 'namespace-reusable-after-delete',
    title: 'a namespace written again after deleteNamespace holds only the new records',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'old', 1);
      await kv.deleteNamespace(id, 'ns');
      await kv.set(id, 'ns', 'new', 2);
      checkEqual(await kv.getRecordCount(id, 'ns'), 1, 'count');
      checkEqual(
        (await kv.query({ from: { instance: id, namespace: 'ns' } })).records.map((r) => r.key),
        ['new'],
        'keys',
      );
    },
  },
  {
    id: 'count-instance-and-namespace',
    title: 'getRecordCount counts an instance, or one namespace of it',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.setMany(id, [
        { namespace: 'a', key: '1', value: 1 },
        { namespace: 'a', key: '2', value: 2 },
        { namespace: 'b', key: '1', value: 3 },
      ]);
      checkEqual(await kv.getRecordCount(id), 3, 'instance');
      checkEqual(await kv.getRecordCount(id, 'a'), 2, 'namespace a');
      checkEqual(await kv.getRecordCount(id, 'b'), 1, 'namespace b');
      checkEqual(await kv.getRecordCount(id, 'c'), 0, 'namespace without records');
    },
  },
  {
    id: 'count-follows-writes',
    title: 'counts follow inserts and deletes; overwriting a key does not change them',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'a', 1);
      await kv.set(id, 'ns', 'b', 1);
      await kv.set(id, 'ns', 'a', 2);
      await kv.increment(id, 'ns', 'c');
      await kv.increment(id, 'ns', 'c');
      checkEqual(await kv.getRecordCount(id, 'ns'), 3, 'after writes');
      await kv.delete(id, 'ns', 'b');
      await kv.delete(id, 'ns', 'b');
      checkEqual(await kv.getRecordCount(id, 'ns'), 2, 'after deletes');
      checkEqual(await kv.getRecordCount(id), 2, 'instance');
    },
  },
  {
    id: 'count-matches-query-total',
    title: 'getRecordCount equals the total of a query without conditions',
    async run({ kv, instance }) {
      const id = await instance();
      for (let i = 0; i < 12; i++) await kv.set(id, i % 3 === 0 ? 'x' : 'y', `k${i}`, i);
      const total = (await kv.query({ from: { instance: id }, limit: 1 })).total;
      checkEqual(total, await kv.getRecordCount(id), 'instance count');
      check(total === 12, `total ${total}`);
    },
  },
  {
    id: 'delete-namespace-is-atomic',
    title: 'deleteNamespace racing a 50-item setMany on another store leaves all 50 or none, never part',
    needsPeer: true,
    requires: ['atomicBatches'],
    async run({ kv, instance, peer }) {
      const other = await peer();
      for (let round = 0; round < 5; round++) {
        const id = await instance(`round${round}`);
        await kv.setMany(
          id,
          Array.from({ length: 50 }, (_, i) => ({ namespace: 'ns', key: `old${i}`, value: i })),
        );
        const batch = Array.from({ length: 50 }, (_, i) => ({ namespace: 'ns', key: `new${i}`, value: i }));
        const [deleted] = await Promise.all([kv.deleteNamespace(id, 'ns'), other.setMany(id, batch)]);
        const left = await kv.getRecordCount(id, 'ns');
        check(deleted === 50 || deleted === 100, `round ${round}: deleteNamespace removed ${deleted}`);
        checkEqual(left, deleted === 100 ? 0 : 50, `round ${round}: records left after deleting ${deleted}`);
      }
    },
  },
  {
    id: 'set-many-is-seen-whole',
    title:
      'getRecordCount, getMany and query racing a 50-item setMany (25 replaced, 25 new) on another store see all of it or none',
    needsPeer: true,
    requires: ['atomicBatches'],
    async run({ kv, instance, peer }) {
      const other = await peer();
      const keys = Array.from({ length: 50 }, (_, i) => `k${String(i).padStart(2, '0')}`);
      for (let round = 0; round < 5; round++) {
        const id = await instance(`round${round}`);
        // Every other key exists: the batch both replaces and inserts, interleaved.
        await kv.setMany(
          id,
          keys.filter((_, i) => i % 2 === 0).map((key) => ({ namespace: 'ns', key, value: 'old' })),
        );
        let writing = true;
        let reads = 0;
        const reader = (async () => {
          do {
            const count = await kv.getRecordCount(id, 'ns');
            const many = (await kv.getMany(id, 'ns', keys)).map((record) => record.value ?? null);
            const listed = (await kv.query({ from: { instance: id, namespace: 'ns' }, limit: 100 })).records;
            const seen = `round ${round}, read ${reads}`;
            check(count === 25 || count === 50, `${seen}: getRecordCount saw ${count} records`);
            const news = many.filter((value) => value === 'new').length;
            check(news === 0 || news === 50, `${seen}: getMany saw ${news} of 50 new values`);
            const listedNew = listed.filter((record) => record.value === 'new').length;
            check(
              (listed.length === 25 && listedNew === 0) || (listed.length === 50 && listedNew === 50),
              `${seen}: query saw ${listed.length} records, ${listedNew} of them new`,
            );
            reads++;
            // Lets a writer that waits on a timer run, on a backend that answers without one.
            await sleep(0);
          } while (writing);
        })();
        try {
          await other.setMany(
            id,
            keys.map((key) => ({ namespace: 'ns', key, value: 'new' })),
          );
        } finally {
          writing = false;
        }
        await reader;
        checkEqual(await kv.getRecordCount(id, 'ns'), 50, `round ${round}: records after the batch`);
      }
    },
  },
]);
