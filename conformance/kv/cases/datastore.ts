import { createDataStore, type DataStore } from '../../../src/kv/data-store.js';
import type { KvStore } from '../../../src/kv/kv-types.js';
import { check, checkEqual, checkRejects } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';

function store(kv: KvStore, userId: string, agentName = 'agent'): DataStore {
  return createDataStore(kv, { userId, agentName });
}

/** §6 DataStore proxy (seeds 002/003), bound to (userId, agentName). */
export const dataStoreCases = defineKvCases('datastore', [
  {
    id: 'get-default',
    title:
      'get returns the default (undefined unless given) for a missing key, also for a user with no data yet',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      checkEqual(await ds.get('missing'), undefined, 'no default');
      checkEqual(await ds.get('missing', { timeout: 30 }), { timeout: 30 }, 'default');
      await ds.set('other', 1);
      checkEqual(await ds.get('missing', 0), 0, 'default once the user has data');
    },
  },
  {
    id: 'set-and-get',
    title: 'set stores a value that get returns; a stored falsy value is not replaced by the default',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      await ds.set('result', { score: 95, passed: true });
      checkEqual(await ds.get('result'), { score: 95, passed: true }, 'value');
      await ds.set('flag', false);
      checkEqual(await ds.get('flag', true), false, 'stored false');
    },
  },
  {
    id: 'default-namespace',
    title: 'a new proxy works in the namespace "default"',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      checkEqual(ds.namespace, 'default', 'namespace');
      await ds.set('k', 1);
      checkEqual(await ds.listNamespaces(), ['default'], 'namespaces');
    },
  },
  {
    id: 'delete',
    title: 'delete returns true when the key existed and false otherwise',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      checkEqual(await ds.delete('never'), false, 'delete for a user without data');
      await ds.set('k', 1);
      checkEqual([await ds.delete('k'), await ds.delete('k')], [true, false], 'deletes');
    },
  },
  {
    id: 'list-keys',
    title: 'listKeys lists the keys of the current namespace in code-point order, prefix matched literally',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      for (const key of ['status', 'analysis:file2', 'config', 'analysis:file1', 'a%', 'ab', '😀'])
        await ds.set(key, 1);
      await ds.useNamespace('elsewhere').set('analysis:hidden', 1);
      checkEqual(
        await ds.listKeys(),
        ['a%', 'ab', 'analysis:file1', 'analysis:file2', 'config', 'status', '😀'],
        'all keys',
      );
      checkEqual(await ds.listKeys('analysis:'), ['analysis:file1', 'analysis:file2'], 'prefix');
      checkEqual(await ds.listKeys('a%'), ['a%'], 'prefix with %');
      checkEqual(await store(kv, unique('nobody')).listKeys(), [], 'user without data');
    },
  },
  {
    id: 'list-namespaces',
    title: "listNamespaces lists the user's namespaces that hold data, sorted",
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      await ds.useNamespace('files:repo-b').set('x', 1);
      await ds.useNamespace('cache:api').set('x', 1);
      await ds.set('x', 1);
      const emptied = ds.useNamespace('temp');
      await emptied.set('x', 1);
      await emptied.delete('x');
      checkEqual(await ds.listNamespaces(), ['cache:api', 'default', 'files:repo-b'], 'namespaces');
    },
  },
  {
    id: 'use-namespace',
    title: 'useNamespace returns a new proxy; the original keeps its namespace and data',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      const cache = ds.useNamespace('api-cache');
      checkEqual([ds.namespace, cache.namespace], ['default', 'api-cache'], 'namespaces');
      await cache.set('user-123', 'cached');
      await ds.set('user-123', 'default');
      checkEqual([await cache.get('user-123'), await ds.get('user-123')], ['cached', 'default'], 'values');
    },
  },
  {
    id: 'use-namespace-validates',
    title: 'useNamespace refuses an empty namespace or one with NUL (ValidationError)',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      await checkRejects(async () => ds.useNamespace(''), 'KODE_VALIDATION', 'empty namespace');
      await checkRejects(async () => ds.useNamespace('a\u0000b'), 'KODE_VALIDATION', 'NUL');
    },
  },
  {
    id: 'clear',
    title: 'clear deletes the current namespace and returns how many keys it held; other namespaces stay',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      const temp = ds.useNamespace('temp-processing');
      await temp.set('step1', 1);
      await temp.set('step2', 2);
      await ds.set('keep', 1);
      checkEqual(await temp.clear(), 2, 'cleared');
      checkEqual([await temp.listKeys(), await ds.listKeys()], [[], ['keep']], 'keys');
      checkEqual(await temp.clear(), 0, 'second clear');
    },
  },
  {
    id: 'get-many',
    title:
      'getMany returns {key: value} for the keys that exist; missing keys are omitted; __proto__ is a key',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      await ds.set('file1', { a: 1 });
      await ds.set('file2', null);
      await ds.set('__proto__', 'just a key');
      const found = await ds.getMany(['file1', 'file2', 'file3', '__proto__']);
      checkEqual(Object.keys(found), ['file1', 'file2', '__proto__'], 'keys');
      checkEqual(found.__proto__ as unknown, 'just a key', '__proto__ value');
      checkEqual([found.file1, found.file2], [{ a: 1 }, null], 'values');
    },
  },
  {
    id: 'set-many',
    title: 'setMany stores every item and returns the count; it accepts an object or [key, value] pairs',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      checkEqual(await ds.setMany({ 'file:a.py': { lines: 100 }, 'file:b.py': { lines: 200 } }), 2, 'object');
      checkEqual(
        await ds.setMany(
          new Map([
            ['m1', 1],
            ['m2', 2],
          ]),
        ),
        2,
        'map',
      );
      checkEqual(await ds.setMany({}), 0, 'empty');
      checkEqual(await ds.listKeys(), ['file:a.py', 'file:b.py', 'm1', 'm2'], 'keys');
    },
  },
  {
    id: 'set-many-atomic',
    title: 'setMany with one value JSON cannot hold stores nothing and raises a TypeError',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      await ds.set('a', 'before');
      const error = await checkRejects(
        () => ds.setMany({ a: 'after', b: 1, c: () => 0 }),
        'KODE_VALIDATION',
        'setMany',
      );
      check(error instanceof TypeError, 'a TypeError');
      checkEqual([await ds.get('a'), await ds.get('b')], ['before', undefined], 'values');
    },
  },
  {
    id: 'set-refuses-non-json',
    title: 'set of a value JSON cannot hold raises a TypeError (seed 002 error table)',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      const error = await checkRejects(() => ds.set('k', new Map()), 'KODE_VALIDATION', 'set');
      check(error instanceof TypeError, 'a TypeError');
    },
  },
  {
    id: 'metadata-merges',
    title: 'set with metadata merges it shallowly into the stored metadata',
    async run({ kv, unique }) {
      const ds = store(kv, unique('user'));
      await ds.set('report', 1, { version: '1.0', generated_by: 'analyzer-v2' });
      await ds.set('report', 2, { version: '1.1' });
      checkEqual(
        (await ds.getRecord('report'))?.metadata,
        { version: '1.1', generated_by: 'analyzer-v2' },
        'metadata',
      );
    },
  },
  {
    id: 'records-remember-agents',
    title:
      'getRecord returns the whole record, with the agent that created it and the one that changed it last',
    async run({ kv, unique }) {
      const user = unique('user');
      await store(kv, user, 'producer').set('latest-analysis', { v: 1 });
      const consumer = store(kv, user, 'consumer');
      const seen = await consumer.getRecord('latest-analysis');
      checkEqual(
        [seen?.createdBy, seen?.updatedBy, seen?.value],
        ['producer', 'producer', { v: 1 }],
        'first write',
      );
      await consumer.set('latest-analysis', { v: 2 });
      const record = await consumer.getRecord('latest-analysis');
      checkEqual(
        [record?.createdBy, record?.updatedBy, record?.version],
        ['producer', 'consumer', 2],
        'after another agent',
      );
      checkEqual(await consumer.getRecord('missing'), undefined, 'missing key');
    },
  },
  {
    id: 'users-are-isolated',
    title: "two users with the same keys and namespaces never see each other's data",
    async run({ kv, unique }) {
      const alice = store(kv, unique('alice'));
      const bob = store(kv, unique('bob'));
      await alice.set('secret', 'alice');
      await alice.useNamespace('shared').set('k', 'alice');
      checkEqual(
        [await bob.get('secret'), await bob.listKeys(), await bob.listNamespaces()],
        [undefined, [], []],
        'bob sees nothing',
      );
      checkEqual(await bob.useNamespace('shared').clear(), 0, 'bob clears nothing of alice');
      checkEqual(await bob.delete('secret'), false, 'bob deletes nothing of alice');
      await bob.set('secret', 'bob');
      checkEqual([await alice.get('secret'), await bob.get('secret')], ['alice', 'bob'], 'values');
    },
  },
  {
    id: 'crafted-names-stay-inside',
    title:
      "user ids and namespaces built to collide with another user's (separators, prefixes) stay separate",
    async run({ kv, unique }) {
      const base = unique('u');
      const a = store(kv, base).useNamespace('x:y');
      const b = store(kv, `${base}:x`).useNamespace('y');
      const c = store(kv, `${base}:x:y`);
      await a.set('k', 'a');
      await b.set('k', 'b');
      await c.set('k', 'c');
      checkEqual([await a.get('k'), await b.get('k'), await c.get('k')], ['a', 'b', 'c'], 'values');
      checkEqual(await store(kv, `${base}:x`).listNamespaces(), ['y'], 'namespaces of the second user');
    },
  },
  {
    id: 'query-is-scoped',
    title: 'DataStore.query reads only the current namespace of its user, and refuses a from',
    async run({ kv, unique }) {
      const user = unique('user');
      const ds = store(kv, user);
      await ds.set('a', { n: 1 });
      await ds.useNamespace('other').set('b', { n: 2 });
      await store(kv, unique('intruder')).set('a', { n: 3 });
      const result = await ds.query({ where: [{ field: 'value.n', operator: 'gte', value: 0 }] });
      checkEqual(
        result.records.map((r) => [r.namespace, r.key, r.value]),
        [['default', 'a', { n: 1 }]],
        'records',
      );
      await checkRejects(
        () => ds.query({ from: { instance: 'x' } } as never),
        'KODE_QUERY',
        'query with from',
      );
    },
  },
  {
    id: 'identity-validated',
    title: 'createDataStore refuses an empty or non-string userId or agentName (ValidationError)',
    async run({ kv }) {
      for (const [userId, agentName] of [
        ['', 'a'],
        ['u', ''],
        [5, 'a'],
        ['u\u0000', 'a'],
      ]) {
        await checkRejects(
          async () => createDataStore(kv, { userId, agentName } as never),
          'KODE_VALIDATION',
          `userId ${JSON.stringify(userId)}, agentName ${JSON.stringify(agentName)}`,
        );
      }
    },
  },
]);
