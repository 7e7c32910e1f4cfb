import { compareCodePoints } from '../../../src/strings.js';
import { checkEqual, checkRejects } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';

/** Characters that break naive stores: LIKE wildcards, quotes, escapes, separators, emoji. */
export const HOSTILE_NAMES = [
  '%',
  '_',
  "'",
  '"',
  '\\',
  '.',
  ':',
  '/',
  '*',
  '?',
  '[x]',
  '$',
  ' ',
  'a b',
  '😀',
  'é',
  'e\u0301',
  '\uffff',
  '\u{10FFFF}',
  'null',
  'ns:key',
  "'; DROP TABLE kode_kv_records; --",
];

/** §6 Keys and namespaces: case-sensitive, stored as given, code-point order, refused when unstorable. */
export const nameCases = defineKvCases('names', [
  {
    id: 'keys-are-case-sensitive',
    title: 'keys differing only in case are different keys',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', 'Key', 'upper');
      await kv.set(id, 'ns', 'key', 'lower');
      checkEqual(
        [(await kv.get(id, 'ns', 'Key')).value, (await kv.get(id, 'ns', 'key')).value],
        ['upper', 'lower'],
        'values',
      );
      checkEqual(await kv.getRecordCount(id, 'ns'), 2, 'records');
    },
  },
  {
    id: 'namespaces-are-case-sensitive',
    title: 'namespaces differing only in case are different namespaces',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'NS', 'k', 1);
      await kv.set(id, 'ns', 'k', 2);
      checkEqual(await kv.getNamespaces(id), ['NS', 'ns'], 'namespaces');
    },
  },
  {
    id: 'no-unicode-normalisation',
    title: 'é precomposed and e + combining accent are two keys',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'ns', '\u00e9', 'precomposed');
      await kv.set(id, 'ns', 'e\u0301', 'combining');
      checkEqual((await kv.get(id, 'ns', '\u00e9')).value, 'precomposed', 'precomposed');
      checkEqual((await kv.get(id, 'ns', 'e\u0301')).value, 'combining', 'combining');
    },
  },
  {
    id: 'hostile-keys-round-trip',
    title:
      'keys with wildcards, quotes, backslashes, dots, colons, emoji and SQL are stored as given, each its own key',
    async run({ kv, instance }) {
      const id = await instance();
      for (const [i, key] of HOSTILE_NAMES.entries()) await kv.set(id, 'ns', key, i);
      for (const [i, key] of HOSTILE_NAMES.entries())
        checkEqual((await kv.get(id, 'ns', key)).value, i, `key ${JSON.stringify(key)}`);
      const listed = (
        await kv.query({ from: { instance: id, namespace: 'ns' }, select: ['key'] })
      ).records.map((r) => r.key);
      checkEqual(listed, [...HOSTILE_NAMES].sort(compareCodePoints), 'keys listed in code-point order');
    },
  },
  {
    id: 'hostile-namespaces-round-trip',
    title: 'namespaces with hostile characters are stored as given and listed in code-point order',
    async run({ kv, instance }) {
      const id = await instance();
      for (const [i, namespace] of HOSTILE_NAMES.entries()) await kv.set(id, namespace, 'k', i);
      for (const [i, namespace] of HOSTILE_NAMES.entries()) {
        checkEqual((await kv.get(id, namespace, 'k')).value, i, `namespace ${JSON.stringify(namespace)}`);
        checkEqual(await kv.getRecordCount(id, namespace), 1, `count of ${JSON.stringify(namespace)}`);
      }
      checkEqual(await kv.getNamespaces(id), [...HOSTILE_NAMES].sort(compareCodePoints), 'namespaces');
    },
  },
  {
    id: 'code-point-order',
    title: 'keys sort by code point: U+FFFF before U+1F600 (UTF-16 order would swap them), Z before a',
    async run({ kv, instance }) {
      const id = await instance();
      const keys = ['😀', '\uffff', 'a', 'Z', 'é', 'aa', '\u{10FFFF}', '\ue000'];
      for (const key of keys) await kv.set(id, 'ns', key, key);
      const listed = (await kv.query({ from: { instance: id }, orderBy: { field: 'key' } })).records.map(
        (r) => r.key,
      );
      checkEqual(listed, ['Z', 'a', 'aa', 'é', '\ue000', '\uffff', '😀', '\u{10FFFF}'], 'key order');
    },
  },
  {
    id: 'prefix-characters-are-literal',
    title: 'startsWith matches % and _ literally',
    async run({ kv, instance }) {
      const id = await instance();
      for (const key of ['a%', 'a%b', 'ab', 'a_', 'axb', 'a']) await kv.set(id, 'ns', key, 1);
      const found = async (prefix: string) =>
        (
          await kv.query({
            from: { instance: id, namespace: 'ns' },
            where: [{ field: 'key', operator: 'startsWith', value: prefix }],
          })
        ).records.map((r) => r.key);
      checkEqual(await found('a%'), ['a%', 'a%b'], 'prefix a%');
      checkEqual(await found('a_'), ['a_'], 'prefix a_');
    },
  },
  {
    id: 'nul-is-refused',
    title:
      'NUL in a key, namespace or instance id is refused (ValidationError), consistently on every backend',
    async run({ kv, instance }) {
      const id = await instance();
      await checkRejects(() => kv.set(id, 'ns', 'a\u0000b', 1), 'KODE_VALIDATION', 'NUL in key');
      await checkRejects(() => kv.set(id, 'n\u0000s', 'k', 1), 'KODE_VALIDATION', 'NUL in namespace');
      await checkRejects(() => kv.get(id, 'ns', '\u0000'), 'KODE_VALIDATION', 'NUL in key of get');
      await checkRejects(
        () => kv.createInstance({ name: 'n', id: 'x\u0000' }),
        'KODE_VALIDATION',
        'NUL in instance id',
      );
      checkEqual(await kv.getRecordCount(id), 0, 'records');
    },
  },
  {
    id: 'empty-names-are-refused',
    title: 'an empty key or namespace is refused (ValidationError)',
    async run({ kv, instance }) {
      const id = await instance();
      await checkRejects(() => kv.set(id, 'ns', '', 1), 'KODE_VALIDATION', 'empty key');
      await checkRejects(() => kv.set(id, '', 'k', 1), 'KODE_VALIDATION', 'empty namespace');
    },
  },
  {
    id: 'lone-surrogates-are-refused',
    title: 'a key or namespace with a lone surrogate is refused (UTF-8 drivers would turn it into U+FFFD)',
    async run({ kv, instance }) {
      const id = await instance();
      await checkRejects(() => kv.set(id, 'ns', 'a\ud800', 1), 'KODE_VALIDATION', 'lone surrogate in key');
      await checkRejects(
        () => kv.set(id, '\udc00', 'k', 1),
        'KODE_VALIDATION',
        'lone surrogate in namespace',
      );
    },
  },
  {
    id: 'non-strings-are-refused',
    title: 'a key or namespace that is not a string is refused (ValidationError)',
    async run({ kv, instance }) {
      const id = await instance();
      await checkRejects(() => kv.set(id, 'ns', 5 as never, 1), 'KODE_VALIDATION', 'number key');
      await checkRejects(() => kv.set(id, null as never, 'k', 1), 'KODE_VALIDATION', 'null namespace');
      await checkRejects(() => kv.get(id, 'ns', undefined as never), 'KODE_VALIDATION', 'undefined key');
    },
  },
  {
    id: 'length-limits',
    title: 'a key of 1024 UTF-8 bytes is stored; 1025 bytes is refused; namespaces allow 512 bytes',
    async run({ kv, instance }) {
      const id = await instance();
      const longest = `${'é'.repeat(511)}xx`;
      await kv.set(id, 'ns', longest, 'fits');
      checkEqual((await kv.get(id, 'ns', longest)).value, 'fits', 'longest key');
      await checkRejects(() => kv.set(id, 'ns', `${longest}x`, 1), 'KODE_VALIDATION', 'key too long');
      await kv.set(id, 'n'.repeat(512), 'k', 1);
      await checkRejects(() => kv.set(id, 'n'.repeat(513), 'k', 1), 'KODE_VALIDATION', 'namespace too long');
    },
  },
]);
