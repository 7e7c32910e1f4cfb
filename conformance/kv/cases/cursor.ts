import type { KvQuery, KvStore } from '../../../src/kv/kv-types.js';
import { check, checkEqual } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';
import { keysOf } from './helpers.js';

/** Walks a query page by page with nextCursor and returns every record's `namespace/key`. */
async function walk(
  kv: KvStore,
  query: KvQuery,
  pageSize: number,
): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await kv.query({ ...query, limit: pageSize, ...(cursor ? { cursor } : {}) });
    keys.push(...keysOf(page));
    cursor = page.nextCursor;
    pages++;
    check(pages < 1000, 'cursor pagination does not end');
  } while (cursor);
  return { keys, pages };
}

async function seedScores(kv: KvStore, id: string): Promise<void> {
  const items = Array.from({ length: 25 }, (_, i) => ({
    namespace: i % 2 ? 'odd' : 'even',
    key: `k${String(i % 13).padStart(2, '0')}`,
    value: { score: i % 4 === 0 ? `s${i % 3}` : i % 5, i },
  }));
  const unique = new Map(items.map((item) => [`${item.namespace}/${item.key}`, item]));
  await kv.setMany(id, [...unique.values()]);
}

/** §6 Beyond the seeds: cursor pagination for large namespaces. */
export const cursorCases = defineKvCases('cursor', [
  {
    id: 'pages-cover-everything-once',
    title: 'walking a sorted query with nextCursor returns every record exactly once, in order',
    async run({ kv, instance }) {
      const id = await instance();
      await seedScores(kv, id);
      for (const orderBy of [
        undefined,
        { field: 'value.score', direction: 'desc' as const },
        { field: 'key' },
      ]) {
        const query: KvQuery = { from: { instance: id }, ...(orderBy ? { orderBy } : {}) };
        const all = keysOf(await kv.query(query));
        for (const size of [1, 4, 7, 100]) {
          checkEqual(
            (await walk(kv, query, size)).keys,
            all,
            `pages of ${size}, orderBy ${JSON.stringify(orderBy)}`,
          );
        }
      }
    },
  },
  {
    id: 'last-page-has-no-cursor',
    title: 'nextCursor is absent on the last page and when limit is not given',
    async run({ kv, instance }) {
      const id = await instance();
      for (const key of ['a', 'b', 'c', 'd']) await kv.set(id, 'ns', key, 1);
      const first = await kv.query({ from: { instance: id }, limit: 2 });
      check(first.nextCursor !== undefined, 'first page has a cursor');
      const second = await kv.query({ from: { instance: id }, limit: 2, cursor: first.nextCursor });
      checkEqual([keysOf(second), second.nextCursor], [['ns/c', 'ns/d'], undefined], 'second page');
      checkEqual((await kv.query({ from: { instance: id } })).nextCursor, undefined, 'no limit');
    },
  },
  {
    id: 'stable-under-writes',
    title:
      'records written between pages ahead of the cursor do not shift later pages (no record skipped or repeated)',
    async run({ kv, instance }) {
      const id = await instance();
      for (let i = 0; i < 10; i++) await kv.set(id, 'ns', `k${i}`, i);
      const query: KvQuery = { from: { instance: id, namespace: 'ns' }, orderBy: { field: 'value' } };
      const first = await kv.query({ ...query, limit: 4 });
      await kv.set(id, 'ns', 'early', -1);
      await kv.delete(id, 'ns', 'k0');
      const rest = await kv.query({ ...query, limit: 100, cursor: first.nextCursor });
      checkEqual(keysOf(rest), ['ns/k4', 'ns/k5', 'ns/k6', 'ns/k7', 'ns/k8', 'ns/k9'], 'second page');
    },
  },
  {
    id: 'total-ignores-cursor',
    title: 'total counts every match, whatever page the cursor is on',
    async run({ kv, instance }) {
      const id = await instance();
      await seedScores(kv, id);
      const all = await kv.query({ from: { instance: id } });
      const first = await kv.query({ from: { instance: id }, limit: 3 });
      const second = await kv.query({ from: { instance: id }, limit: 3, cursor: first.nextCursor });
      checkEqual([first.total, second.total], [all.total, all.total], 'totals');
    },
  },
  {
    id: 'cursor-with-conditions-and-select',
    title: 'a cursor works with where and select',
    async run({ kv, instance }) {
      const id = await instance();
      await seedScores(kv, id);
      const query: KvQuery = {
        from: { instance: id },
        where: [{ field: 'value.score', operator: 'gte', value: 1 }],
        orderBy: [{ field: 'value.score' }, { field: 'namespace', direction: 'desc' }],
        select: ['namespace', 'key'],
      };
      checkEqual((await walk(kv, query, 2)).keys, keysOf(await kv.query(query)), 'walked');
    },
  },
]);
