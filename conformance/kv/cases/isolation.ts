import { createDataStore, type DataStore } from '../../../src/kv/data-store.js';
import type { KvStore } from '../../../src/kv/kv-types.js';
import { compareCodePoints } from '../../../src/strings.js';
import { check, checkEqual, checkRejects } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';
import { SeededRandom } from '../kv-random.js';

const USERS = 20;
const OPERATIONS_PER_USER = 500;
/** Suffixes that make user ids collide under any concatenation, LIKE pattern or escaping scheme. */
const USER_SUFFIXES = [
  '',
  '%',
  '_',
  "'",
  '"',
  '\\',
  '.',
  ':',
  '😀',
  ' ',
  ':default',
  'a',
  'A',
  '%_',
  '\\\\',
  "''",
  ':x:y',
  '.*',
  'é',
  'e\u0301',
];
/** Pieces of keys and namespaces: shared by all users, so they write the same names on purpose. */
const PIECES = ['%', '_', "'", '"', '\\', '.', ':', '😀', 'a', 'A', 'é', ' ', '/'];

type Model = Map<string, Map<string, unknown>>;

function name(random: SeededRandom, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += random.pick(PIECES);
  return text;
}

function sortedKeys(model: Model, namespace: string, prefix = ''): string[] {
  return [...(model.get(namespace)?.keys() ?? [])]
    .filter((key) => key.startsWith(prefix))
    .sort(compareCodePoints);
}

/**
 * One user's run: random operations through a DataStore, each answer
 * checked against a plain model of what this user alone wrote.
 */
async function fuzzUser(kv: KvStore, userId: string, seed: number): Promise<void> {
  const random = new SeededRandom(seed);
  const model: Model = new Map();
  const namespaces = Array.from({ length: 6 }, () => name(random, 1 + random.int(2)));
  const keys = Array.from({ length: 24 }, () => name(random, 1 + random.int(3)));
  const root = createDataStore(kv, { userId, agentName: `agent-${seed}` });
  let serial = 0;
  const at = (step: number, what: string) => `user ${JSON.stringify(userId)} step ${step} ${what}`;

  for (let step = 0; step < OPERATIONS_PER_USER; step++) {
    const namespace = random.pick(namespaces);
    const ds: DataStore = root.useNamespace(namespace);
    const rows = model.get(namespace) ?? new Map<string, unknown>();
    model.set(namespace, rows);
    const key = random.pick(keys);
    const roll = random.next();
    if (roll < 0.28) {
      const value = { owner: userId, n: ++serial };
      await ds.set(key, value);
      rows.set(key, value);
    } else if (roll < 0.42) {
      checkEqual(
        await ds.get(key),
        rows.get(key),
        at(step, `get ${JSON.stringify(namespace)}/${JSON.stringify(key)}`),
      );
    } else if (roll < 0.5) {
      checkEqual(await ds.delete(key), rows.has(key), at(step, 'delete'));
      rows.delete(key);
    } else if (roll < 0.58) {
      const prefix = random.chance(0.3) ? '' : name(random, 1 + random.int(2));
      checkEqual(
        await ds.listKeys(prefix),
        sortedKeys(model, namespace, prefix),
        at(step, `listKeys ${JSON.stringify(prefix)}`),
      );
    } else if (roll < 0.63) {
      const expected = [...model]
        .filter(([, r]) => r.size > 0)
        .map(([n]) => n)
        .sort(compareCodePoints);
      checkEqual(await root.listNamespaces(), expected, at(step, 'listNamespaces'));
    } else if (roll < 0.65) {
      checkEqual(await ds.clear(), rows.size, at(step, 'clear'));
      rows.clear();
    } else if (roll < 0.73) {
      const asked = [...new Set(Array.from({ length: 1 + random.int(5) }, () => random.pick(keys)))];
      const expected = Object.fromEntries(asked.filter((k) => rows.has(k)).map((k) => [k, rows.get(k)]));
      checkEqual(await ds.getMany(asked), expected, at(step, 'getMany'));
    } else if (roll < 0.81) {
      const items = Object.fromEntries(
        Array.from({ length: 1 + random.int(4) }, () => [random.pick(keys), { owner: userId, n: ++serial }]),
      );
      checkEqual(await ds.setMany(items), Object.keys(items).length, at(step, 'setMany'));
      for (const [k, v] of Object.entries(items)) rows.set(k, v);
    } else if (roll < 0.87) {
      const record = await ds.getRecord(key);
      checkEqual(record?.value, rows.get(key), at(step, 'getRecord'));
      if (record) checkEqual([record.namespace, record.key], [namespace, key], at(step, 'getRecord address'));
    } else if (roll < 0.94) {
      const result = await ds.query({
        where: [{ field: 'value.owner', operator: 'eq', value: userId }],
        select: ['key'],
      });
      checkEqual(
        [result.records.map((r) => r.key), result.total],
        [sortedKeys(model, namespace), rows.size],
        at(step, 'query'),
      );
    } else {
      // NUL cannot be stored by every backend: refused everywhere, and nothing changes.
      await checkRejects(() => ds.set(`${key}\u0000`, 1), 'KODE_VALIDATION', at(step, 'set with NUL'));
    }
  }
  // Finally every namespace and key of this user, in full.
  for (const [namespace, rows] of model) {
    const ds = root.useNamespace(namespace);
    checkEqual(
      await ds.listKeys(),
      sortedKeys(model, namespace),
      `user ${JSON.stringify(userId)} final keys of ${JSON.stringify(namespace)}`,
    );
    checkEqual(
      await ds.getMany([...rows.keys()]),
      Object.fromEntries(rows),
      `user ${JSON.stringify(userId)} final values`,
    );
  }
}

/** §6 "A user can never read, list, count or change another user's data, whatever the keys, namespaces or query contain." */
export const isolationCases = defineKvCases('isolation', [
  {
    id: 'instances',
    title:
      "two instances holding the same namespaces and keys never show each other's records on any read path",
    async run({ kv, instance }) {
      const a = await instance('a');
      const b = await instance('b');
      await kv.setMany(a, [
        { namespace: 'ns', key: 'k', value: 'a' },
        { namespace: 'only-a', key: 'k', value: 'a' },
      ]);
      await kv.set(b, 'ns', 'k', 'b');
      checkEqual((await kv.get(b, 'ns', 'k')).value, 'b', 'get');
      checkEqual((await kv.getMany(b, 'only-a', ['k'])).length, 0, 'getMany');
      checkEqual(await kv.getNamespaces(b), ['ns'], 'getNamespaces');
      checkEqual([await kv.getRecordCount(b), await kv.getRecordCount(b, 'only-a')], [1, 0], 'counts');
      const all = await kv.query({ from: { instance: b } });
      checkEqual([all.records.map((r) => r.value), all.total], [['b'], 1], 'query');
      checkEqual(await kv.deleteNamespace(b, 'only-a'), 0, 'deleteNamespace');
      checkEqual((await kv.get(a, 'only-a', 'k')).value, 'a', 'record of a after b deleted its namespace');
    },
  },
  {
    id: 'fuzz',
    title: `${USERS * OPERATIONS_PER_USER} random DataStore operations by ${USERS} users with hostile ids, keys and namespaces: every answer matches a model of the user's own data`,
    timeoutMs: 300_000,
    async run({ kv, unique }) {
      const base = unique('fuzz');
      const users = USER_SUFFIXES.slice(0, USERS).map((suffix) => `${base}${suffix}`);
      check(new Set(users).size === USERS, 'distinct user ids');
      await Promise.all(users.map((userId, i) => fuzzUser(kv, userId, 1000 + i)));
    },
  },
]);
