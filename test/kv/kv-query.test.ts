import { describe, expect, it } from 'vitest';
import { isJsonbReadable } from '../../adapters/postgres/postgres-kv.js';
import { decodeCursor, encodeCursor, queryFingerprint } from '../../src/kv/kv-cursor.js';
import { type KvRecordView, normalizeKvQuery } from '../../src/kv/kv-query.js';
import {
  compareSortPositions,
  evaluatePlan,
  matchesPredicate,
  sortPosition,
  vectorDirections,
} from '../../src/kv/kv-query-eval.js';
import { compareCodePoints, prefixUpperBound } from '../../src/strings.js';

const view = (key: string, value: unknown, extra: Partial<KvRecordView> = {}): KvRecordView => ({
  key,
  namespace: 'ns',
  version: 1,
  createdAt: 1000,
  updatedAt: 1000,
  value,
  metadata: {},
  ...extra,
});

function where(field: string, operator: string, value?: unknown) {
  return normalizeKvQuery({ from: { instance: 'i' }, where: [{ field, operator, value }] }).where;
}

describe('code-point order', () => {
  it('puts U+FFFF before U+1F600, which UTF-16 order (JavaScript <) swaps', () => {
    expect('\uffff' < '😀').toBe(false);
    expect(compareCodePoints('\uffff', '😀')).toBeLessThan(0);
    expect(['😀', '\uffff', 'a', '\ue000', 'Z'].sort(compareCodePoints)).toEqual([
      'Z',
      'a',
      '\ue000',
      '\uffff',
      '😀',
    ]);
  });

  it('orders lone surrogates by their own value, between U+D7FF and U+E000', () => {
    const sorted = ['\ue000', '\ud800', '\ud7ff', '😀', '\udfff'].sort(compareCodePoints);
    expect(sorted).toEqual(['\ud7ff', '\ud800', '\udfff', '\ue000', '😀']);
    expect(compareCodePoints('\ud83dx', '\ud83d\ude00')).toBeLessThan(0);
    expect(compareCodePoints('\ud800a', '\ud800b')).toBeLessThan(0);
  });

  it('orders a prefix before its extensions and equal strings as equal', () => {
    expect(compareCodePoints('ab', 'abc')).toBeLessThan(0);
    expect(compareCodePoints('😀', '😀')).toBe(0);
  });
});

describe('prefixUpperBound', () => {
  it('increments the last code point, so a prefix match is a half-open range', () => {
    expect(prefixUpperBound('ab')).toBe('ac');
    expect(prefixUpperBound('a\u{10FFFF}')).toBe('b');
    expect(prefixUpperBound('\ud7ff')).toBe('\ue000');
    expect(prefixUpperBound('😀')).toBe('😁');
  });

  it('has no bound for the empty prefix or one made of U+10FFFF only', () => {
    expect(prefixUpperBound('')).toBeUndefined();
    expect(prefixUpperBound('\u{10FFFF}\u{10FFFF}')).toBeUndefined();
  });

  it('holds exactly the strings that start with the prefix, for random strings', () => {
    const alphabet = ['a', 'b', '\uffff', '😀', '\u{10FFFF}', '\ud7ff', '\ue000'];
    let seed = 7;
    const pick = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return alphabet[seed % alphabet.length] as string;
    };
    for (let i = 0; i < 2000; i++) {
      const prefix = Array.from({ length: 1 + (i % 3) }, pick).join('');
      const text = Array.from({ length: i % 5 }, pick).join('');
      const upper = prefixUpperBound(prefix);
      const inRange =
        compareCodePoints(text, prefix) >= 0 && (upper === undefined || compareCodePoints(text, upper) < 0);
      expect(inRange, `${JSON.stringify(text)} vs prefix ${JSON.stringify(prefix)}`).toBe(
        text.startsWith(prefix),
      );
    }
  });
});

describe('the plain evaluator', () => {
  it('compares by type: 1 is not "1", and ordering skips other types', () => {
    expect(matchesPredicate(view('a', { n: 1 }), where('value.n', 'eq', 1))).toBe(true);
    expect(matchesPredicate(view('a', { n: '1' }), where('value.n', 'eq', 1))).toBe(false);
    expect(matchesPredicate(view('a', { n: '10' }), where('value.n', 'gt', 9))).toBe(false);
    expect(matchesPredicate(view('a', { n: 10 }), where('value.n', 'gt', 9))).toBe(true);
  });

  it('never lets neq or nin match a missing field, but does match a null', () => {
    expect(matchesPredicate(view('a', {}), where('value.n', 'neq', 1))).toBe(false);
    expect(matchesPredicate(view('a', {}), where('value.n', 'nin', [1]))).toBe(false);
    expect(matchesPredicate(view('a', { n: null }), where('value.n', 'neq', 1))).toBe(true);
  });

  it('walks object members only: a path through an array or a scalar finds nothing', () => {
    expect(matchesPredicate(view('a', { list: [{ x: 1 }] }), where('value.list.0.x', 'exists', true))).toBe(
      false,
    );
    expect(matchesPredicate(view('a', { s: 'text' }), where('value.s.length', 'exists', true))).toBe(false);
    expect(
      matchesPredicate(view('a', JSON.parse('{"__proto__": {"x": 1}}')), where('value.__proto__.x', 'eq', 1)),
    ).toBe(true);
    expect(matchesPredicate(view('a', {}), where('value.constructor', 'exists', true))).toBe(false);
  });

  it('sorts missing < null < false < true < numbers < strings < arrays = objects, ties by key then namespace', () => {
    const records = [
      view('o', { v: { a: 1 } }),
      view('s', { v: 'x' }),
      view('n', { v: 2 }),
      view('t', { v: true }),
      view('f', { v: false }),
      view('z', { v: null }),
      view('m', {}),
      view('a', { v: [1] }),
      view('b', { v: 2 }, { namespace: 'a' }),
    ];
    const plan = normalizeKvQuery({ from: { instance: 'i' }, orderBy: { field: 'value.v' } });
    expect(evaluatePlan(records, plan).records.map((r) => `${r.namespace}/${r.key}`)).toEqual([
      'ns/m',
      'ns/z',
      'ns/f',
      'ns/t',
      'a/b',
      'ns/n',
      'ns/s',
      'ns/a',
      'ns/o',
    ]);
  });

  it('applies a position strictly after, then offset and limit, and counts all matches', () => {
    const records = ['a', 'b', 'c', 'd'].map((key, i) => view(key, { i }));
    const plan = normalizeKvQuery({
      from: { instance: 'i' },
      orderBy: { field: 'value.i', direction: 'desc' },
      limit: 1,
    });
    const after = sortPosition(records[2] as KvRecordView, plan.orderBy);
    expect(evaluatePlan(records, { ...plan, after })).toMatchObject({ total: 4, records: [{ key: 'b' }] });
    const directions = vectorDirections(plan.orderBy);
    expect(
      compareSortPositions(sortPosition(records[3] as KvRecordView, plan.orderBy), after, directions),
    ).toBeLessThan(0);
  });
});

describe('normalizeKvQuery', () => {
  it('reads the seed example', () => {
    const plan = normalizeKvQuery({
      from: { instance: 'instance-id', namespace: 'optional-namespace' },
      where: [{ field: 'value.someField', operator: 'eq', value: 'expected-value' }],
      select: ['key', 'value'],
      orderBy: { field: 'createdAt', direction: 'desc' },
      limit: 10,
      offset: 0,
    });
    expect(plan).toMatchObject({
      instanceId: 'instance-id',
      namespace: 'optional-namespace',
      limit: 10,
      offset: 0,
      needsValue: true,
      needsMetadata: false,
      orderBy: [{ field: { kind: 'column', column: 'createdAt' }, direction: 'desc' }],
    });
  });

  it('turns createdAt operands (ISO, Date, ms) into the same epoch ms', () => {
    const at = Date.UTC(2024, 0, 19, 10);
    for (const operand of [new Date(at).toISOString(), new Date(at), at]) {
      expect(where('createdAt', 'gte', operand)).toMatchObject({ items: [{ operand: at }] });
    }
  });

  it('needs value only when selected or sorted by', () => {
    expect(normalizeKvQuery({ from: { instance: 'i' }, select: ['key'] }).needsValue).toBe(false);
    expect(
      normalizeKvQuery({ from: { instance: 'i' }, select: ['key'], orderBy: { field: 'value.a' } })
        .needsValue,
    ).toBe(true);
  });
});

describe('cursors', () => {
  it('round-trip a position, strings with NUL and lone surrogates included', () => {
    const position = { vector: [5, 0, 'a\u0000\ud800'], key: 'k', namespace: 'n' };
    expect(decodeCursor(encodeCursor('fp', position), 'fp', 3)).toEqual(position);
  });

  it('refuse a cursor of another query, or a damaged one, with QueryError', () => {
    const cursor = encodeCursor('fp', { vector: [], key: 'k', namespace: 'n' });
    expect(() => decodeCursor(cursor, 'other', 0)).toThrow(/different query/);
    expect(() => decodeCursor(`${cursor.slice(0, -3)}`, 'fp', 0)).toThrow(/malformed/);
    expect(() => decodeCursor(cursor, 'fp', 3)).toThrow(/malformed/);
  });

  it('fingerprint the scope, conditions and order, not the page', () => {
    const base = { from: { instance: 'i' }, where: [{ field: 'key', operator: 'gt', value: 'a' }] } as const;
    const a = queryFingerprint(normalizeKvQuery({ ...base, limit: 1 }));
    expect(queryFingerprint(normalizeKvQuery({ ...base, limit: 50, select: ['key'] }))).toBe(a);
    expect(queryFingerprint(normalizeKvQuery({ ...base, orderBy: { field: 'key' } }))).not.toBe(a);
  });
});

describe('isJsonbReadable (which rows PostgreSQL evaluates in SQL)', () => {
  it('is false for JSON text with a NUL or lone-surrogate escape, true otherwise', () => {
    expect(isJsonbReadable(JSON.stringify({ a: 'x\u0000' }))).toBe(false);
    expect(isJsonbReadable(JSON.stringify(['\ud800']))).toBe(false);
    expect(isJsonbReadable(JSON.stringify({ 'k\u0000': 1 }))).toBe(false);
    expect(isJsonbReadable(JSON.stringify({ a: '\\u0000 is six characters' }))).toBe(true);
    expect(isJsonbReadable(JSON.stringify({ a: '\\\u0000' }))).toBe(false);
    expect(isJsonbReadable(JSON.stringify({ a: '😀 \u0001' }))).toBe(true);
  });
});
