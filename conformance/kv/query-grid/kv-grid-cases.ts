import { type KvRecordView, normalizeKvQuery } from '../../../src/kv/kv-query.js';
import { evaluatePlan } from '../../../src/kv/kv-query-eval.js';
import type { KvOrderBy, KvQuery, KvWhereItem } from '../../../src/kv/kv-types.js';
import { check, checkEqual } from '../../runner/assertions.js';
import { keysOf } from '../cases/helpers.js';
import type { KvCase, KvSharedFixture } from '../kv-case.js';
import { GRID_NAMESPACES, gridRecords } from './kv-grid-data.js';

/**
 * The generated query grid: conditions × orderings × pages × scopes, each
 * query's expected answer computed by the plain model (the evaluator of
 * `kv-query.ts` over the records as written). Every backend is held to the
 * same answers, record for record and in the same order.
 */

interface GridFixture {
  instanceId: string;
  /** The records as stored, in the evaluator's form. */
  views: Array<KvRecordView & { value: unknown; metadata: unknown }>;
  /** createdAt of the first record; record i was created at start + 7 i. */
  start: number;
}

const STEP_MS = 7;

export const gridFixture: KvSharedFixture<GridFixture> = {
  name: 'kv-query-grid',
  async setUp(kv, clock) {
    const instanceId = `kv-grid-${Math.floor(Math.random() * 36 ** 8).toString(36)}`;
    await kv.createInstance({ name: 'kv conformance query grid', id: instanceId });
    const start = clock.now();
    const written = new Map<string, Awaited<ReturnType<typeof kv.set>>>();
    const records = gridRecords();
    for (const record of records) {
      const options = record.metadata ? { metadata: record.metadata } : {};
      written.set(
        `${record.namespace}/${record.key}`,
        await kv.set(instanceId, record.namespace, record.key, record.value, options),
      );
      clock.advance(STEP_MS);
    }
    for (const record of records.filter((r) => r.rewrite)) {
      written.set(
        `${record.namespace}/${record.key}`,
        await kv.set(instanceId, record.namespace, record.key, record.value),
      );
      clock.advance(STEP_MS);
    }
    const views = [...written.values()].map((r) => ({
      key: r.key,
      namespace: r.namespace,
      version: r.version,
      createdAt: Date.parse(r.createdAt),
      updatedAt: Date.parse(r.updatedAt),
      value: r.value,
      metadata: r.metadata,
    }));
    return { instanceId, views, start };
  },
};

type Condition = [label: string, build: (fx: GridFixture) => KvWhereItem];

const c = (field: string, operator: string, value?: unknown): KvWhereItem =>
  (value === undefined && operator === 'exists'
    ? { field, operator }
    : { field, operator, value }) as KvWhereItem;

const fixed = (field: string, operator: string, value?: unknown): Condition => [
  `${field} ${operator} ${JSON.stringify(value) ?? ''}`.trim(),
  () => c(field, operator, value),
];

/** Single conditions: every operator on numbers, numeric strings, strings, nested paths, arrays, columns. */
const CONDITIONS: Condition[] = [
  fixed('value.n', 'eq', 1),
  fixed('value.n', 'eq', '1'),
  fixed('value.n', 'eq', 0),
  fixed('value.n', 'eq', null),
  fixed('value.n', 'eq', true),
  fixed('value.n', 'eq', ''),
  fixed('value.n', 'neq', 1),
  fixed('value.n', 'neq', '1'),
  fixed('value.n', 'neq', null),
  fixed('value.n', 'gt', 0),
  fixed('value.n', 'gte', 1),
  fixed('value.n', 'lt', 2.5),
  fixed('value.n', 'lte', -0.5),
  fixed('value.n', 'gt', 1e20),
  fixed('value.n', 'gt', '1'),
  fixed('value.n', 'lt', '9'),
  fixed('value.n', 'gte', ''),
  fixed('value.n', 'in', [1, '1', 10]),
  fixed('value.n', 'in', []),
  fixed('value.n', 'nin', [1, 10]),
  fixed('value.n', 'nin', []),
  fixed('value.n', 'exists', true),
  fixed('value.n', 'exists', false),
  fixed('value.n', 'contains', 1),
  fixed('value.n', 'startsWith', '1'),
  fixed('value.n', 'endsWith', '0'),
  fixed('value.s', 'eq', 'apple'),
  fixed('value.s', 'neq', 'apple'),
  fixed('value.s', 'gt', 'apple'),
  fixed('value.s', 'lt', 'B'),
  fixed('value.s', 'gte', 'é'),
  fixed('value.s', 'lt', '😀'),
  fixed('value.s', 'gt', '\uffff'),
  fixed('value.s', 'lte', 'a'),
  fixed('value.s', 'contains', 'pp'),
  fixed('value.s', 'contains', 'a'),
  fixed('value.s', 'contains', '%'),
  fixed('value.s', 'contains', ''),
  fixed('value.s', 'contains', 'b'),
  fixed('value.s', 'startsWith', 'a'),
  fixed('value.s', 'startsWith', 'apple'),
  fixed('value.s', 'startsWith', 'a%'),
  fixed('value.s', 'endsWith', 'e'),
  fixed('value.s', 'endsWith', ''),
  fixed('value.s', 'endsWith', 'x'),
  fixed('value.s', 'eq', 10),
  fixed('value.s', 'eq', ''),
  fixed('value.s', 'in', ['apple', 'banana', 'zz']),
  fixed('value.s', 'exists', false),
  fixed('value.s', 'gt', 5),
  fixed('value.nested.x', 'eq', 1),
  fixed('value.nested.x', 'eq', '1'),
  fixed('value.nested.x', 'exists', true),
  fixed('value.nested.x', 'eq', null),
  fixed('value.nested.x', 'gt', 0),
  fixed('value.nested.x', 'neq', 1),
  fixed('value.nested.y.z', 'eq', 'deep'),
  fixed('value.nested.y.z', 'exists', true),
  fixed('value.nested.y.z', 'startsWith', 'deep'),
  fixed('value.nested.y.z', 'gt', 1),
  fixed('value.nested', 'eq', 'flat'),
  fixed('value.nested', 'exists', true),
  fixed('value.tags', 'contains', 'red'),
  fixed('value.tags', 'contains', 1),
  fixed('value.tags', 'contains', true),
  fixed('value.tags', 'contains', null),
  fixed('value.tags', 'contains', 'r'),
  fixed('value.tags', 'exists', false),
  fixed('value.tags', 'eq', 'red'),
  fixed('value.tags', 'neq', 'red'),
  fixed('value.t', 'eq', 1),
  fixed('value.t', 'gte', 2),
  fixed('value.t', 'neq', 3),
  fixed('value.t', 'in', [1, 3]),
  fixed('value', 'eq', 5),
  fixed('value', 'eq', 'five'),
  fixed('value', 'eq', null),
  fixed('value', 'exists', true),
  fixed('value', 'contains', 2),
  fixed('metadata.m', 'eq', 1),
  fixed('metadata.m', 'eq', 'x'),
  fixed('metadata.m', 'gt', 0),
  fixed('metadata.m', 'lt', 'n'),
  fixed('metadata.m', 'exists', false),
  fixed('metadata.other', 'eq', true),
  fixed('key', 'eq', 'a'),
  fixed('key', 'gt', 'k'),
  fixed('key', 'lte', 'Z'),
  fixed('key', 'startsWith', 'k0'),
  fixed('key', 'contains', 'e'),
  fixed('key', 'endsWith', '0'),
  fixed('key', 'in', ['a', 'é', '😀', 'missing']),
  fixed('key', 'nin', ['a', 'A']),
  fixed('key', 'gt', '\uffff'),
  fixed('namespace', 'eq', 'grid-b'),
  fixed('namespace', 'neq', 'grid-a'),
  fixed('version', 'eq', 2),
  fixed('version', 'lt', 2),
  [
    'createdAt gt start+140ms (ISO)',
    (fx) => c('createdAt', 'gt', new Date(fx.start + 20 * STEP_MS).toISOString()),
  ],
  ['createdAt lte start+70ms (Date)', (fx) => c('createdAt', 'lte', new Date(fx.start + 10 * STEP_MS))],
  ['updatedAt gt last creation (ms)', (fx) => c('updatedAt', 'gt', fx.start + 47 * STEP_MS)],
];

/** Combinations: ANDed pairs, or groups, and groups nested in or groups. */
function composites(): Condition[] {
  const out: Condition[] = [];
  const at = (i: number) => CONDITIONS[i % CONDITIONS.length] as Condition;
  for (let i = 0; i < 20; i++) {
    const [la, a] = at(i * 5);
    const [lb, b] = at(i * 5 + 17);
    out.push([`${la} AND ${lb}`, (fx) => ({ and: [a(fx), b(fx)] })]);
    const [lc, cc] = at(i * 3 + 1);
    const [ld, d] = at(i * 7 + 2);
    out.push([`${lc} OR ${ld}`, (fx) => ({ or: [cc(fx), d(fx)] })]);
    const [le, e] = at(i * 11 + 3);
    out.push([`(${la} AND ${ld}) OR ${le}`, (fx) => ({ or: [{ and: [a(fx), d(fx)] }, e(fx)] })]);
  }
  return out;
}

const ORDERINGS: Array<[string, KvOrderBy | KvOrderBy[] | undefined]> = [
  ['default order', undefined],
  ['value.n asc', { field: 'value.n' }],
  ['value.s desc', { field: 'value.s', direction: 'desc' }],
  ['value.t asc, value.n desc', [{ field: 'value.t' }, { field: 'value.n', direction: 'desc' }]],
  ['key desc', { field: 'key', direction: 'desc' }],
  ['metadata.m desc, createdAt asc', [{ field: 'metadata.m', direction: 'desc' }, { field: 'createdAt' }]],
  ['value.nested.x asc', { field: 'value.nested.x' }],
  ['value asc', { field: 'value' }],
  [
    'version desc, updatedAt desc',
    [
      { field: 'version', direction: 'desc' },
      { field: 'updatedAt', direction: 'desc' },
    ],
  ],
];

const PAGES: Array<[string, { limit?: number; offset?: number }]> = [
  ['all', {}],
  ['limit 5', { limit: 5 }],
  ['limit 5 offset 3', { limit: 5, offset: 3 }],
  ['limit 0', { limit: 0 }],
  ['offset 7', { offset: 7 }],
  ['limit 100 offset 20', { limit: 100, offset: 20 }],
  ['limit 1 offset 10', { limit: 1, offset: 10 }],
];

const SCOPES: Array<string | undefined> = [GRID_NAMESPACES[0], GRID_NAMESPACES[1], undefined];

/** The model's answer: the plain evaluator over the fixture's records in scope. */
function modelAnswer(fx: GridFixture, query: KvQuery) {
  const { cursor: _cursor, ...plan } = normalizeKvQuery(query);
  const views = fx.views.filter((view) => plan.namespace === undefined || view.namespace === plan.namespace);
  return evaluatePlan(views, plan);
}

function gridCase(
  n: number,
  label: string,
  build: (fx: GridFixture) => Omit<KvQuery, 'from'>,
  scope: string | undefined,
  walkPageSize?: number,
): KvCase {
  return {
    id: `kv.grid.${String(n).padStart(3, '0')}`,
    title: `${label} [${scope ?? 'all namespaces'}] answers as the plain model`,
    async run({ kv, shared }) {
      const fx = await shared(gridFixture);
      const query: KvQuery = {
        ...build(fx),
        from:
          scope === undefined ? { instance: fx.instanceId } : { instance: fx.instanceId, namespace: scope },
      };
      const expected = modelAnswer(fx, query);
      const actual = await kv.query(query);
      const what = JSON.stringify(query);
      checkEqual(
        keysOf(actual),
        expected.records.map((v) => `${v.namespace}/${v.key}`),
        `records of ${what}`,
      );
      checkEqual(actual.total, expected.total, `total of ${what}`);
      checkEqual(
        actual.records.map((r) => r.value),
        expected.records.map((v) => v.value),
        `values of ${what}`,
      );
      if (walkPageSize === undefined) return;
      const walked: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await kv.query({ ...query, limit: walkPageSize, ...(cursor ? { cursor } : {}) });
        walked.push(...keysOf(page));
        cursor = page.nextCursor;
        check(++pages <= 100, 'cursor walk does not end');
      } while (cursor);
      checkEqual(
        walked,
        expected.records.map((v) => `${v.namespace}/${v.key}`),
        `cursor walk (pages of ${walkPageSize}) of ${what}`,
      );
    },
  };
}

/** Every generated grid case, with stable ids `kv.grid.NNN`. */
export function gridCases(): KvCase[] {
  const cases: KvCase[] = [];
  const add = (
    label: string,
    build: (fx: GridFixture) => Omit<KvQuery, 'from'>,
    scope: string | undefined,
    walk?: number,
  ) => cases.push(gridCase(cases.length, label, build, scope, walk));
  const withOrder = (order: KvOrderBy | KvOrderBy[] | undefined) =>
    order === undefined ? {} : { orderBy: order };

  // Each single condition under three orderings, with pages and scopes rotating.
  CONDITIONS.forEach(([label, where], j) => {
    const orderings = [0, 1 + (j % 8), 1 + ((j + 3) % 8)];
    orderings.forEach((o, k) => {
      const [orderLabel, order] = ORDERINGS[o] as (typeof ORDERINGS)[number];
      const [pageLabel, page] = PAGES[(j + k) % PAGES.length] as (typeof PAGES)[number];
      add(
        `where ${label}, ${orderLabel}, ${pageLabel}`,
        (fx) => ({ where: [where(fx)], ...withOrder(order), ...page }),
        SCOPES[(j + k) % 3],
      );
    });
  });
  // Combined conditions under two orderings.
  composites().forEach(([label, where], j) => {
    for (const o of [j % ORDERINGS.length, (j + 4) % ORDERINGS.length]) {
      const [orderLabel, order] = ORDERINGS[o] as (typeof ORDERINGS)[number];
      const [pageLabel, page] = PAGES[(j + o) % PAGES.length] as (typeof PAGES)[number];
      add(
        `where ${label}, ${orderLabel}, ${pageLabel}`,
        (fx) => ({ where: [where(fx)], ...withOrder(order), ...page }),
        SCOPES[(j + o) % 3],
      );
    }
  });
  // Every ordering in every scope, read whole and then walked with cursors.
  for (const [orderLabel, order] of ORDERINGS) {
    for (const scope of SCOPES) add(`${orderLabel}, walked by cursor`, () => withOrder(order), scope, 4);
  }
  // Every ordering with every page, across namespaces.
  for (const [orderLabel, order] of ORDERINGS) {
    for (const [pageLabel, page] of PAGES)
      add(`${orderLabel}, ${pageLabel}`, () => ({ ...withOrder(order), ...page }), undefined);
  }
  return cases;
}
