import type { JsonValue, KvMetadata } from '../../../src/kv/kv-types.js';

/**
 * The records the generated query grid runs over. Two namespaces hold the
 * same 24 keys (so ties across namespaces occur), with values chosen to
 * separate correct from almost-correct backends: numbers next to numeric
 * strings, missing fields next to nulls, nested paths through objects,
 * scalars and arrays, ties, and keys and strings outside the BMP.
 * `grid-b` also holds strings with NUL and lone surrogates, which some
 * databases cannot read as JSON (PostgreSQL jsonb) and must answer anyway.
 */

const MISSING = Symbol('missing');
type Slot = JsonValue | typeof MISSING;

export const GRID_NAMESPACES = ['grid-a', 'grid-b'] as const;

export const GRID_KEYS = [
  'k00',
  'k01',
  'k02',
  'k03',
  'k10',
  'k11',
  'k12',
  'k20',
  'a',
  'A',
  'Z',
  'é',
  'e\u0301',
  '😀',
  '\uffff',
  '%',
  '_',
  'key space',
  'k0',
  'k00x',
  'k',
  'z',
  'ab',
  'a%',
];

const N: Slot[] = [
  0,
  1,
  -1,
  2.5,
  10,
  1e21,
  -0.5,
  '1',
  '10',
  '9',
  '-1',
  '',
  null,
  true,
  false,
  MISSING,
  [1, 2],
  { k: 1 },
  1,
  10,
];
const S: Slot[] = [
  'apple',
  'Apple',
  'apple pie',
  'banana',
  '',
  'é',
  'e\u0301',
  '😀',
  '\uffff',
  'a%b',
  'a_b',
  "it's",
  'zz',
  10,
  MISSING,
  null,
  ['apple', 'x'],
  'apple',
];
const S_EXOTIC: Slot[] = ['a\u0000b', '\ud800x', 'apple\u0000', 'zz\udfff'];
const NESTED: Slot[] = [
  { x: 1, y: { z: 'deep' } },
  { x: '1' },
  { x: null },
  'flat',
  [{ x: 1 }],
  MISSING,
  { y: { z: 5 } },
  { x: 2, y: { z: 'deep2' } },
  { x: 1 },
];
const TAGS: Slot[] = [['red', 'blue'], ['red', 1], [], MISSING, 'red', [true, null], ['blue']];
const TIES: Slot[] = [1, 2, 3, MISSING, 2];
const SCALARS: JsonValue[] = [5, 'five', null, [1, 2], true];
const META: Array<KvMetadata | undefined> = [
  { m: 1 },
  { m: 'x' },
  undefined,
  { m: 0.5, other: true },
  { m: 'm' },
  {},
];

export interface GridRecord {
  namespace: string;
  key: string;
  value: JsonValue;
  metadata?: KvMetadata;
  /** Written twice, so its version is 2 and its updatedAt later than its createdAt. */
  rewrite: boolean;
}

function object(fields: Record<string, Slot>): JsonValue {
  const value: Record<string, JsonValue> = {};
  for (const [name, slot] of Object.entries(fields)) if (slot !== MISSING) value[name] = slot;
  return value;
}

/** The grid's records, in the order they are written. */
export function gridRecords(): GridRecord[] {
  const records: GridRecord[] = [];
  for (let i = 0; i < GRID_NAMESPACES.length * GRID_KEYS.length; i++) {
    const b = i >= GRID_KEYS.length;
    const strings = b ? [...S, ...S_EXOTIC] : S;
    const value =
      i % 11 === 5
        ? (SCALARS[i % SCALARS.length] as JsonValue)
        : object({
            n: N[i % N.length] as Slot,
            s: strings[(i * 7) % strings.length] as Slot,
            nested: NESTED[(i * 3) % NESTED.length] as Slot,
            tags: TAGS[(i * 5) % TAGS.length] as Slot,
            t: TIES[i % TIES.length] as Slot,
          });
    records.push({
      namespace: GRID_NAMESPACES[b ? 1 : 0] as string,
      key: GRID_KEYS[i % GRID_KEYS.length] as string,
      value,
      metadata: META[i % META.length],
      rewrite: i % 9 === 4,
    });
  }
  return records;
}
