import { MAX_JSON_DEPTH } from '../../../src/json-codec.js';
import { checkEqual, checkRejects } from '../../runner/assertions.js';
import { nestedValue } from '../../store/sample-data.js';
import { defineKvCases, type KvCase } from '../kv-case.js';

/** §6 "Values are any JSON": each kind of value round-trips exactly (types, key order, bytes). */
const ROUND_TRIPS: Array<[string, string, () => unknown]> = [
  ['null', 'JSON null', () => null],
  ['zero', 'the number 0', () => 0],
  ['false', 'false', () => false],
  ['true', 'true', () => true],
  ['empty-string', 'the empty string', () => ''],
  ['empty-array', 'an empty array', () => []],
  ['empty-object', 'an empty object', () => ({})],
  [
    'numbers',
    'integers, negatives, fractions, tiny and huge numbers stay numbers',
    () => [1, -7, 0.1, 5e-324, 1e21, -1.5e300, 2 ** 53],
  ],
  ['numeric-strings', 'numeric strings stay strings', () => ['1', '0.10', '1e3', '-0']],
  ['nested', 'deeply nested objects and arrays', () => ({ a: [{ b: { c: [null, [true, { d: 'e' }]] } }] })],
  ['deep', '40 levels of nesting', () => Array.from({ length: 40 }).reduce((inner) => ({ inner }), 'bottom')],
  ['key-order', 'object keys keep their order', () => ({ z: 1, a: 2, m: { y: 1, b: 2 }, '10': 3, '2': 4 })],
  ['unicode', 'emoji, CJK, RTL and combining marks', () => ({ text: '😀 漢字 עברית é e\u0301 \u{10FFFF}' })],
  ['nul-in-string', 'U+0000 inside a string', () => ({ text: 'a\u0000b', 'k\u0000ey': '\u0000' })],
  ['lone-surrogate', 'a lone surrogate inside a string', () => ['\ud800', 'x\udfffy']],
  [
    'control-characters',
    'control characters and escapes',
    () => '\n\t\r\b\f"\\/\u0001\u001f\u007f\u2028\u2029',
  ],
  [
    'proto-key',
    'an object key named __proto__ is an ordinary key',
    () => JSON.parse('{"__proto__": {"polluted": true}, "x": 1}'),
  ],
  [
    'hostile-keys',
    'object keys with dots, quotes, brackets and dollars',
    () => ({ 'a.b': 1, 'q"x': 2, '[0]': 3, $: 4, '': 5 }),
  ],
  ['scalar-string', 'a bare string value', () => 'just text'],
  ['large', 'a value of 1 MiB', () => ({ blob: 'x'.repeat(1024 * 1024) })],
];

/** Values JSON cannot hold: refused with a TypeError before anything is written (§6, §8). */
const REFUSALS: Array<[string, string, () => unknown]> = [
  ['function', 'a function', () => () => 1],
  ['symbol', 'a symbol', () => Symbol('s')],
  ['bigint', 'a BigInt', () => 10n],
  ['nan', 'NaN', () => Number.NaN],
  ['infinity', 'Infinity', () => Number.POSITIVE_INFINITY],
  ['negative-infinity', '-Infinity', () => Number.NEGATIVE_INFINITY],
  ['undefined', 'undefined', () => undefined],
  ['nested-undefined', 'an object property that is undefined', () => ({ a: 1, b: undefined })],
  ['array-hole', 'an undefined array item', () => [1, undefined]],
  ['nested-function', 'a function deep inside', () => ({ a: [{ f: () => 0 }] })],
  [
    'cycle',
    'a cycle',
    () => {
      const value: Record<string, unknown> = { a: 1 };
      value.self = value;
      return value;
    },
  ],
  ['map', 'a Map', () => new Map([['a', 1]])],
];

const roundTrips: KvCase[] = ROUND_TRIPS.map(([id, what, make]) => ({
  id: `round-trip.${id}`,
  title: `${what} round-trips exactly through set and get`,
  async run({ kv, instance }) {
    const instanceId = await instance();
    const written = await kv.set(instanceId, 'ns', 'k', make() as never);
    checkEqual(written.value, make(), 'value returned by set');
    checkEqual((await kv.get(instanceId, 'ns', 'k')).value, make(), 'value returned by get');
    const [queried] = (await kv.query({ from: { instance: instanceId, namespace: 'ns' } })).records;
    checkEqual(queried?.value, make(), 'value returned by query');
  },
}));

const refusals: KvCase[] = REFUSALS.map(([id, what, make]) => ({
  id: `refuses.${id}`,
  title: `${what} is refused with a TypeError (ValidationError) and the stored value stays`,
  async run({ kv, instance }) {
    const instanceId = await instance();
    await kv.set(instanceId, 'ns', 'k', 'before');
    await checkRejects(
      () => kv.set(instanceId, 'ns', 'k', make() as never),
      'KODE_VALIDATION',
      `set ${what}`,
    );
    await checkRejects(
      () => kv.set(instanceId, 'ns', 'fresh', make() as never),
      'KODE_VALIDATION',
      `set new ${what}`,
    );
    const stored = await kv.get(instanceId, 'ns', 'k');
    checkEqual([stored.value, stored.record?.version], ['before', 1], 'stored record');
    checkEqual((await kv.get(instanceId, 'ns', 'fresh')).exists, false, 'new key');
  },
}));

/**
 * Depth (§6, §8): every backend stores and queries values up to
 * MAX_JSON_DEPTH levels; deeper ones are refused before anything is written,
 * values and metadata alike, so none can make a query over others fail.
 */
const depth: KvCase[] = [
  {
    id: 'depth.at-limit',
    title: `a value and metadata nesting ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH) round-trip and are queried like any other`,
    async run({ kv, instance }) {
      const instanceId = await instance();
      const value = { tag: 'deep', inner: nestedValue(MAX_JSON_DEPTH - 1) };
      const metadata = { tag: 'deep', inner: nestedValue(MAX_JSON_DEPTH - 1) };
      await kv.set(instanceId, 'ns', 'deep', value, { metadata });
      await kv.set(instanceId, 'ns', 'flat', { tag: 'flat' }, { metadata: { tag: 'flat' } });
      const stored = await kv.get(instanceId, 'ns', 'deep');
      checkEqual([stored.value, stored.record?.metadata], [value, metadata], 'get');
      const byValue = await kv.query({
        from: { instance: instanceId, namespace: 'ns' },
        where: [{ field: 'value.inner.level.level', operator: 'exists', value: true }],
      });
      checkEqual(
        byValue.records.map((record) => record.key),
        ['deep'],
        'value path into the deep value',
      );
      const byMetadata = await kv.query({
        from: { instance: instanceId },
        where: [{ field: 'metadata.tag', operator: 'eq', value: 'flat' }],
      });
      checkEqual(
        byMetadata.records.map((record) => record.key),
        ['flat'],
        'metadata path, instance-wide',
      );
    },
  },
  {
    id: 'depth.refused',
    title: `a value or metadata nesting ${MAX_JSON_DEPTH + 1} levels, or 100,000, is refused with a ValidationError and nothing is written`,
    async run({ kv, instance }) {
      const instanceId = await instance();
      await kv.set(instanceId, 'ns', 'k', 'before');
      for (const levels of [MAX_JSON_DEPTH + 1, 100_000]) {
        await checkRejects(
          () => kv.set(instanceId, 'ns', 'k', nestedValue(levels)),
          'KODE_VALIDATION',
          `set a value of ${levels} levels`,
        );
        await checkRejects(
          () => kv.set(instanceId, 'ns', 'fresh', 1, { metadata: { inner: nestedValue(levels - 1) } }),
          'KODE_VALIDATION',
          `set metadata of ${levels} levels`,
        );
      }
      const stored = await kv.get(instanceId, 'ns', 'k');
      checkEqual([stored.value, stored.record?.version], ['before', 1], 'stored record');
      checkEqual((await kv.get(instanceId, 'ns', 'fresh')).exists, false, 'new key');
      const all = await kv.query({
        from: { instance: instanceId },
        where: [{ field: 'value', operator: 'exists', value: true }],
      });
      checkEqual(
        all.records.map((record) => record.key),
        ['k'],
        'query over the instance',
      );
    },
  },
];

export const valueCases = defineKvCases('values', [...roundTrips, ...refusals, ...depth]);
