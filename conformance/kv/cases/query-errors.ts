import { check, checkRejects } from '../../runner/assertions.js';
import { defineKvCases, type KvCase } from '../kv-case.js';

/** Malformed queries: each a QueryError (code KODE_QUERY) whose message names the problem. */
const MALFORMED: Array<[string, string, (instance: string) => unknown, string]> = [
  ['not-an-object', 'a query that is not an object', () => 'SELECT *', 'object'],
  ['no-from', 'a query without from', () => ({ where: [] }), 'from'],
  ['empty-instance', 'an empty from.instance', () => ({ from: { instance: '' } }), 'from.instance'],
  [
    'unknown-property',
    'an unknown top-level property (order_by)',
    (i) => ({ from: { instance: i }, order_by: 'key' }),
    'order_by',
  ],
  [
    'where-not-array',
    'where that is not an array',
    (i) => ({ from: { instance: i }, where: { field: 'key' } }),
    'where',
  ],
  [
    'condition-not-object',
    'a condition that is not an object',
    (i) => ({ from: { instance: i }, where: ['key = 1'] }),
    'where[0]',
  ],
  [
    'unknown-operator',
    'an unknown operator',
    (i) => ({ from: { instance: i }, where: [{ field: 'key', operator: 'like', value: 'a%' }] }),
    'like',
  ],
  [
    'missing-field',
    'a condition without field',
    (i) => ({ from: { instance: i }, where: [{ operator: 'eq', value: 1 }] }),
    'field',
  ],
  [
    'unknown-field',
    'a field outside key/namespace/version/createdAt/updatedAt/value/metadata',
    (i) => ({ from: { instance: i }, where: [{ field: 'score', operator: 'eq', value: 1 }] }),
    'score',
  ],
  [
    'empty-path-segment',
    'a path with an empty segment',
    (i) => ({ from: { instance: i }, where: [{ field: 'value..a', operator: 'eq', value: 1 }] }),
    'value..a',
  ],
  [
    'nul-in-path',
    'a path with NUL',
    (i) => ({ from: { instance: i }, where: [{ field: 'value.a\u0000b', operator: 'exists' }] }),
    'U+0000',
  ],
  [
    'object-operand',
    'eq with an object operand',
    (i) => ({ from: { instance: i }, where: [{ field: 'value.a', operator: 'eq', value: { x: 1 } }] }),
    'where[0].value',
  ],
  [
    'boolean-order',
    'gt with a boolean',
    (i) => ({ from: { instance: i }, where: [{ field: 'value.a', operator: 'gt', value: true }] }),
    'gt',
  ],
  [
    'missing-operand',
    'eq without a value',
    (i) => ({ from: { instance: i }, where: [{ field: 'value.a', operator: 'eq' }] }),
    'needs a value',
  ],
  [
    'in-not-array',
    'in with a non-array',
    (i) => ({ from: { instance: i }, where: [{ field: 'key', operator: 'in', value: 'a' }] }),
    'array',
  ],
  [
    'exists-not-boolean',
    'exists with a non-boolean',
    (i) => ({ from: { instance: i }, where: [{ field: 'value.a', operator: 'exists', value: 'yes' }] }),
    'exists',
  ],
  [
    'string-op-on-number',
    'contains on version',
    (i) => ({ from: { instance: i }, where: [{ field: 'version', operator: 'contains', value: '1' }] }),
    'contains',
  ],
  [
    'key-operand-type',
    'a number compared with key',
    (i) => ({ from: { instance: i }, where: [{ field: 'key', operator: 'eq', value: 5 }] }),
    'key',
  ],
  [
    'bad-date',
    'an unreadable createdAt operand',
    (i) => ({ from: { instance: i }, where: [{ field: 'createdAt', operator: 'gt', value: 'yesterday' }] }),
    'createdAt',
  ],
  [
    'nan-operand',
    'NaN as an operand',
    (i) => ({ from: { instance: i }, where: [{ field: 'value.a', operator: 'lt', value: Number.NaN }] }),
    'finite',
  ],
  ['empty-or', 'an empty or group', (i) => ({ from: { instance: i }, where: [{ or: [] }] }), 'or'],
  [
    'too-deep',
    'groups nested too deep',
    (i) => {
      let group: unknown = { field: 'key', operator: 'eq', value: 'a' };
      for (let d = 0; d < 12; d++) group = { or: [group] };
      return { from: { instance: i }, where: [group] };
    },
    'nested',
  ],
  [
    'bad-direction',
    'an orderBy direction other than asc/desc',
    (i) => ({ from: { instance: i }, orderBy: { field: 'key', direction: 'up' } }),
    'direction',
  ],
  [
    'bad-order-field',
    'an orderBy on an unknown field',
    (i) => ({ from: { instance: i }, orderBy: { field: 'rank' } }),
    'rank',
  ],
  [
    'bad-select',
    'select of an unknown field',
    (i) => ({ from: { instance: i }, select: ['key', 'password'] }),
    'password',
  ],
  [
    'bad-select-document',
    'a select path outside value and metadata',
    (i) => ({ from: { instance: i }, select: ['key', 'secret.token'] }),
    'secret.token',
  ],
  [
    'bad-select-path',
    'a select path with an empty segment',
    (i) => ({ from: { instance: i }, select: ['value..name'] }),
    'empty segment',
  ],
  [
    'select-path-nul',
    'a select path holding NUL',
    (i) => ({ from: { instance: i }, select: ['value.a\u0000b'] }),
    'U+0000',
  ],
  ['empty-select', 'an empty select', (i) => ({ from: { instance: i }, select: [] }), 'select'],
  ['negative-limit', 'a negative limit', (i) => ({ from: { instance: i }, limit: -1 }), 'limit'],
  ['fractional-limit', 'a fractional limit', (i) => ({ from: { instance: i }, limit: 1.5 }), 'limit'],
  [
    'string-offset',
    'an offset given as a string',
    (i) => ({ from: { instance: i }, offset: '10' }),
    'offset',
  ],
  [
    'garbage-cursor',
    'a cursor that is not one',
    (i) => ({ from: { instance: i }, cursor: 'not-a-cursor', limit: 2 }),
    'cursor',
  ],
  [
    'cursor-and-offset',
    'a cursor together with an offset',
    (i) => ({ from: { instance: i }, cursor: 'x', offset: 2 }),
    'cursor',
  ],
];

const malformed: KvCase[] = MALFORMED.map(([id, what, build, mention]) => ({
  id,
  title: `${what} is a QueryError that says so`,
  async run({ kv, instance }) {
    const query = build(await instance());
    const error = await checkRejects(() => kv.query(query as never), 'KODE_QUERY', what);
    check(error.name === 'QueryError', `error name ${error.name}`);
    check(
      error.message.includes(mention),
      `the message should mention ${JSON.stringify(mention)}: ${error.message}`,
    );
  },
}));

export const queryErrorCases = defineKvCases('query-errors', [
  ...malformed,
  {
    id: 'cursor-of-another-query',
    title: 'a cursor handed to a different query is a QueryError',
    async run({ kv, instance }) {
      const id = await instance();
      for (const key of ['a', 'b', 'c']) await kv.set(id, 'ns', key, key);
      const page = await kv.query({ from: { instance: id }, limit: 1 });
      check(typeof page.nextCursor === 'string', 'first page has a nextCursor');
      const error = await checkRejects(
        () =>
          kv.query({
            from: { instance: id },
            orderBy: { field: 'key', direction: 'desc' },
            limit: 1,
            cursor: page.nextCursor,
          }),
        'KODE_QUERY',
        'cursor with another orderBy',
      );
      check(error.message.includes('different query'), error.message);
    },
  },
  {
    id: 'unknown-instance',
    title: 'a well-formed query of an unknown instance is a NotFoundError, not a QueryError',
    async run({ kv, unique }) {
      const error = await checkRejects(
        () => kv.query({ from: { instance: unique('nowhere') } }),
        'KODE_NOT_FOUND',
        'query',
      );
      check(error.message.includes('not found'), `the message says "not found": ${error.message}`);
    },
  },
  {
    id: 'values-are-never-sql',
    title: 'quotes and SQL in operands, paths and namespaces are data, never statements',
    async run({ kv, instance }) {
      const id = await instance();
      const hostile = "x' OR '1'='1";
      await kv.set(id, hostile, hostile, { [hostile]: hostile });
      const result = await kv.query({
        from: { instance: id, namespace: hostile },
        where: [{ field: `value.${hostile}`, operator: 'eq', value: hostile }],
      });
      check(result.total === 1, `total ${result.total}`);
      const none = await kv.query({
        from: { instance: id },
        where: [{ field: 'key', operator: 'eq', value: "' OR 1=1 --" }],
      });
      check(none.total === 0, `total ${none.total}`);
    },
  },
]);
