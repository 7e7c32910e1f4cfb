import type { KvQuery, KvRecord, KvStore } from '../../../src/kv/kv-types.js';
import { check, checkEqual } from '../../runner/assertions.js';
import { defineKvCases, type KvCase, type KvTestClock } from '../kv-case.js';
import { keysOf } from './helpers.js';

/** A small data set with numbers and numeric strings, missing fields, nested paths, arrays and scalars. */
const RECORDS: Array<[string, unknown, Record<string, unknown>?]> = [
  ['a', { n: 1, s: 'apple', tags: ['red', 'fruit'], nested: { x: 1 } }, { m: 1 }],
  ['b', { n: '1', s: 'Banana', nested: { x: 'one' } }, { m: 'one' }],
  ['c', { n: 10, s: 'cherry', tags: ['red', 10] }],
  ['d', { n: 2.5, s: null, nested: 'flat' }],
  ['e', { s: 'apple pie', flag: true, nested: { x: null } }],
  ['f', 'scalar string'],
  ['g', 42],
];

interface Seeded {
  id: string;
  records: Record<string, KvRecord>;
}

/** Writes the data set into namespace `ns` (5 ms apart) and one record into namespace `other`. */
async function seedQueryData(kv: KvStore, id: string, clock: KvTestClock): Promise<Seeded> {
  const records: Record<string, KvRecord> = {};
  for (const [key, value, metadata] of RECORDS) {
    records[key] = await kv.set(
      id,
      'ns',
      key,
      value as never,
      metadata ? { metadata: metadata as never } : {},
    );
    clock.advance(5);
  }
  await kv.set(id, 'other', 'a', { n: 3, s: 'other' });
  return { id, records };
}

/** A case that seeds the data set, runs one query and compares `namespace/key` of the answer (and the total). */
function answers(
  id: string,
  title: string,
  query: (seeded: Seeded) => Omit<KvQuery, 'from'> & { from?: KvQuery['from'] },
  expected: string[],
  total?: number,
): KvCase {
  return {
    id,
    title,
    async run({ kv, instance, clock }) {
      const seeded = await seedQueryData(kv, await instance(), clock);
      const q = query(seeded);
      const result = await kv.query({ from: { instance: seeded.id, namespace: 'ns' }, ...q } as KvQuery);
      checkEqual(keysOf(result), expected, `records of ${JSON.stringify(q)}`);
      checkEqual(result.total, total ?? expected.length, 'total');
    },
  };
}

const ns = (...keys: string[]) => keys.map((key) => `ns/${key}`);
const where = (field: string, operator: string, value?: unknown) => ({
  where: [{ field, operator, value } as never],
});

/** §6 Query DSL (seed 000 plus in/nin/exists/or): semantics checked case by case. */
export const queryCases = defineKvCases('query', [
  answers(
    'all-of-a-namespace',
    'a query with only from returns the namespace, by key',
    () => ({}),
    ns('a', 'b', 'c', 'd', 'e', 'f', 'g'),
  ),
  answers(
    'all-of-an-instance',
    'a query without namespace spans every namespace; equal keys order by namespace',
    (s) => ({ from: { instance: s.id }, where: [{ field: 'key', operator: 'lte', value: 'b' }] }),
    ['ns/a', 'other/a', 'ns/b'],
  ),
  answers(
    'eq-number',
    'eq 1 matches the number 1, not the string "1"',
    () => where('value.n', 'eq', 1),
    ns('a'),
  ),
  answers(
    'eq-string',
    'eq "1" matches the string "1", not the number 1',
    () => where('value.n', 'eq', '1'),
    ns('b'),
  ),
  answers(
    'eq-null',
    'eq null matches a JSON null, not a missing field',
    () => where('value.s', 'eq', null),
    ns('d'),
  ),
  answers('eq-boolean', 'eq true matches true only', () => where('value.flag', 'eq', true), ns('e')),
  answers(
    'neq-skips-missing',
    'neq matches present fields that differ, never a missing field',
    () => where('value.n', 'neq', 1),
    ns('b', 'c', 'd'),
  ),
  answers(
    'gt-numeric',
    'gt 2 compares numbers as numbers (10 > 2) and skips strings',
    () => where('value.n', 'gt', 2),
    ns('c', 'd'),
  ),
  answers('lte-numeric', 'lte 2.5 includes equality', () => where('value.n', 'lte', 2.5), ns('a', 'd')),
  answers(
    'lt-string',
    'lt "a" compares strings by code point ("Banana" < "a") and skips non-strings',
    () => where('value.s', 'lt', 'a'),
    ns('b'),
  ),
  answers(
    'gte-empty-string',
    'gte "" matches every string and nothing else',
    () => where('value.s', 'gte', ''),
    ns('a', 'b', 'c', 'e'),
  ),
  answers(
    'contains-substring',
    'contains finds a substring',
    () => where('value.s', 'contains', 'pple'),
    ns('a', 'e'),
  ),
  answers(
    'contains-is-case-sensitive',
    'contains is case-sensitive',
    () => where('value.s', 'contains', 'banana'),
    [],
  ),
  answers(
    'contains-array-element',
    'contains on an array field finds an element',
    () => where('value.tags', 'contains', 'red'),
    ns('a', 'c'),
  ),
  answers(
    'contains-array-number',
    'contains a number finds an equal number element',
    () => where('value.tags', 'contains', 10),
    ns('c'),
  ),
  answers(
    'starts-with',
    'startsWith matches a prefix',
    () => where('value.s', 'startsWith', 'apple'),
    ns('a', 'e'),
  ),
  answers('ends-with', 'endsWith matches a suffix', () => where('value.s', 'endsWith', 'pie'), ns('e')),
  answers('nested-path', 'a dot path reads nested members', () => where('value.nested.x', 'eq', 1), ns('a')),
  answers(
    'path-through-scalar',
    'a path through a scalar finds nothing',
    () => where('value.nested.x', 'exists', true),
    ns('a', 'b', 'e'),
  ),
  answers(
    'path-into-array',
    'a path does not index arrays (value.tags.0 is missing)',
    () => where('value.tags.0', 'exists', true),
    [],
  ),
  answers(
    'exists-false',
    'exists false matches records without the field',
    () => where('value.n', 'exists', false),
    ns('e', 'f', 'g'),
  ),
  answers(
    'whole-value',
    'the field value compares the whole value of scalar records',
    () => where('value', 'eq', 42),
    ns('g'),
  ),
  answers(
    'metadata-path',
    'metadata.m reads metadata, with types kept',
    () => where('metadata.m', 'eq', 'one'),
    ns('b'),
  ),
  answers(
    'in',
    'in matches any listed value, with types kept',
    () => where('value.n', 'in', [1, 10, '2.5']),
    ns('a', 'c'),
  ),
  answers(
    'nin',
    'nin matches present fields equal to none of the values',
    () => where('value.n', 'nin', [1, '1']),
    ns('c', 'd'),
  ),
  answers('key-in', 'in on key', () => where('key', 'in', ['g', 'a', 'zz']), ns('a', 'g')),
  answers(
    'or-group',
    'an or group matches when any of its conditions holds',
    () => ({
      where: [
        {
          or: [
            { field: 'value.n', operator: 'eq', value: 1 },
            { field: 'value.s', operator: 'eq', value: 'cherry' },
          ],
        },
      ],
    }),
    ns('a', 'c'),
  ),
  answers(
    'and-inside-or',
    'an and group inside an or; conditions outside it are ANDed',
    () => ({
      where: [
        {
          or: [
            {
              and: [
                { field: 'value.n', operator: 'gte', value: 2 },
                { field: 'value.n', operator: 'lt', value: 5 },
              ],
            },
            { field: 'value', operator: 'eq', value: 42 },
          ],
        },
        { field: 'key', operator: 'neq', value: 'zz' },
      ],
    }),
    ns('d', 'g'),
  ),
  answers(
    'where-is-anded',
    'several conditions must all hold',
    () => ({
      where: [
        { field: 'value.s', operator: 'contains', value: 'a' },
        { field: 'value.n', operator: 'exists', value: true },
      ],
    }),
    ns('a', 'b'),
  ),
  answers(
    'namespace-field',
    'a condition on namespace',
    (s) => ({ from: { instance: s.id }, where: [{ field: 'namespace', operator: 'eq', value: 'other' }] }),
    ['other/a'],
  ),
  answers(
    'created-at-forms',
    'createdAt conditions accept an ISO string, a Date and epoch ms alike',
    (s) => ({
      where: [
        { field: 'createdAt', operator: 'gt', value: s.records.c?.createdAt },
        { field: 'createdAt', operator: 'lte', value: new Date(Date.parse(s.records.f?.createdAt ?? '')) },
        { field: 'updatedAt', operator: 'gte', value: Date.parse(s.records.d?.updatedAt ?? '') },
      ],
    }),
    ns('d', 'e', 'f'),
  ),
  answers(
    'order-mixed-types',
    'ascending order: missing, then numbers, then strings; ties by key',
    () => ({ orderBy: { field: 'value.n' } }),
    ns('e', 'f', 'g', 'a', 'd', 'c', 'b'),
  ),
  answers(
    'order-desc',
    'descending order reverses the types and values, but ties still break by key ascending',
    () => ({ orderBy: { field: 'value.n', direction: 'desc' } }),
    ns('b', 'c', 'd', 'a', 'e', 'f', 'g'),
  ),
  answers(
    'order-array',
    'orderBy as an array sorts by each key in turn',
    () => ({
      orderBy: [
        { field: 'metadata.m', direction: 'desc' },
        { field: 'key', direction: 'desc' },
      ],
    }),
    ns('b', 'a', 'g', 'f', 'e', 'd', 'c'),
  ),
  answers(
    'ties-by-key',
    'records equal under orderBy come in key order',
    () => ({ orderBy: { field: 'value.flag' } }),
    ns('a', 'b', 'c', 'd', 'f', 'g', 'e'),
  ),
  answers(
    'order-by-created',
    'orderBy createdAt desc',
    () => ({ orderBy: { field: 'createdAt', direction: 'desc' } }),
    ns('g', 'f', 'e', 'd', 'c', 'b', 'a'),
  ),
  answers(
    'limit-offset',
    'limit and offset cut the sorted answer; total counts every match',
    () => ({ orderBy: { field: 'key' }, limit: 2, offset: 3 }),
    ns('d', 'e'),
    7,
  ),
  answers('offset-alone', 'offset works without limit', () => ({ offset: 5 }), ns('f', 'g'), 7),
  answers('limit-zero', 'limit 0 returns no records and the total', () => ({ limit: 0 }), [], 7),
  answers(
    'offset-past-end',
    'an offset past the end returns no records and the total',
    () => ({ offset: 50 }),
    [],
    7,
  ),
  {
    id: 'select',
    title: 'select returns only the named fields',
    async run({ kv, instance, clock }) {
      const seeded = await seedQueryData(kv, await instance(), clock);
      const result = await kv.query({
        from: { instance: seeded.id, namespace: 'ns' },
        select: ['value', 'key'],
        limit: 2,
      });
      checkEqual(
        result.records.map((r) => Object.keys(r).sort()),
        [
          ['key', 'value'],
          ['key', 'value'],
        ],
        'fields',
      );
      checkEqual(result.records[0], { key: 'a', value: RECORDS[0]?.[1] }, 'first record');
    },
  },
  {
    id: 'select-paths',
    title:
      'select takes dot paths into value and metadata and returns only those members, in the stored order (seed 000)',
    async run({ kv, instance, clock }) {
      const seeded = await seedQueryData(kv, await instance(), clock);
      const result = await kv.query({
        from: { instance: seeded.id, namespace: 'ns' },
        select: ['key', 'value.nested.x', 'value.s', 'metadata.m'],
        orderBy: { field: 'key' },
      });
      checkEqual(
        result.records,
        [
          // Members keep the stored order (s before nested), whatever the order of `select`.
          { key: 'a', value: { s: 'apple', nested: { x: 1 } }, metadata: { m: 1 } },
          { key: 'b', value: { s: 'Banana', nested: { x: 'one' } }, metadata: { m: 'one' } },
          // A path that finds nothing is left out; a document where none is found is left out whole.
          { key: 'c', value: { s: 'cherry' } },
          { key: 'd', value: { s: null } },
          { key: 'e', value: { s: 'apple pie', nested: { x: null } } },
          // Paths walk objects only: a scalar value has no members.
          { key: 'f' },
          { key: 'g' },
        ],
        'records',
      );
      checkEqual(result.total, 7, 'total');
    },
  },
  {
    id: 'select-path-inside-selected',
    title: 'a path inside a selected field or path adds nothing: the outer selection is returned whole',
    async run({ kv, instance, clock }) {
      const seeded = await seedQueryData(kv, await instance(), clock);
      const from = { instance: seeded.id, namespace: 'ns' };
      const whole = await kv.query({
        from,
        select: ['value.s', 'value'],
        orderBy: { field: 'key' },
        limit: 1,
      });
      checkEqual(whole.records, [{ value: RECORDS[0]?.[1] }], 'value and value.s');
      const nested = await kv.query({
        from,
        select: ['value.nested.x', 'value.nested', 'key'],
        where: [{ field: 'key', operator: 'in', value: ['a', 'd'] }],
        orderBy: { field: 'key' },
      });
      checkEqual(
        nested.records,
        [
          { key: 'a', value: { nested: { x: 1 } } },
          { key: 'd', value: { nested: 'flat' } },
        ],
        'value.nested and value.nested.x',
      );
    },
  },
  {
    id: 'select-paths-with-where-order-and-cursor',
    title: 'select paths work together with conditions, ordering by another path, and cursor pages',
    async run({ kv, instance, clock }) {
      const seeded = await seedQueryData(kv, await instance(), clock);
      const query: KvQuery = {
        from: { instance: seeded.id, namespace: 'ns' },
        where: [{ field: 'value.s', operator: 'exists' }],
        select: ['value.s'],
        orderBy: { field: 'value.n', direction: 'desc' },
        limit: 3,
      };
      const first = await kv.query(query);
      check(typeof first.nextCursor === 'string', 'a first page with a nextCursor');
      const second = await kv.query({ ...query, cursor: first.nextCursor });
      checkEqual(
        [...first.records, ...second.records],
        // value.n: c 10, d 2.5, a 1, b '1' (strings after numbers, so first in desc), e missing (last).
        [
          { value: { s: 'Banana' } },
          { value: { s: 'cherry' } },
          { value: { s: null } },
          { value: { s: 'apple' } },
          { value: { s: 'apple pie' } },
        ],
        'pages',
      );
      checkEqual([first.total, second.total, second.nextCursor], [5, 5, undefined], 'totals');
    },
  },
  {
    id: 'full-records',
    title: 'without select, query returns whole records, equal to what get returns',
    async run({ kv, instance, clock }) {
      const seeded = await seedQueryData(kv, await instance(), clock);
      await kv.set(seeded.id, 'ns', 'a', { n: 1 }, { metadata: { extra: true } });
      const [first] = (await kv.query({ from: { instance: seeded.id, namespace: 'ns' }, limit: 1 })).records;
      checkEqual(first, (await kv.get(seeded.id, 'ns', 'a')).record, 'record');
    },
  },
  {
    id: 'version-field',
    title: 'version is a queryable field',
    async run({ kv, instance, clock }) {
      const seeded = await seedQueryData(kv, await instance(), clock);
      await kv.set(seeded.id, 'ns', 'c', 'again');
      const result = await kv.query({
        from: { instance: seeded.id, namespace: 'ns' },
        where: [{ field: 'version', operator: 'gte', value: 2 }],
      });
      checkEqual(keysOf(result), ns('c'), 'records');
    },
  },
  {
    id: 'reads-latest-writes',
    title: 'a query sees the latest value of every key and no deleted key',
    async run({ kv, instance, clock }) {
      const seeded = await seedQueryData(kv, await instance(), clock);
      await kv.set(seeded.id, 'ns', 'g', 7);
      await kv.delete(seeded.id, 'ns', 'f');
      const result = await kv.query({
        from: { instance: seeded.id, namespace: 'ns' },
        where: [{ field: 'value', operator: 'lt', value: 10 }],
      });
      checkEqual(keysOf(result), ns('g'), 'records');
      check(result.records[0]?.value === 7, 'latest value');
    },
  },
]);
