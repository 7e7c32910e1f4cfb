import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/errors.js';
import { encodeJson } from '../src/json-codec.js';

/**
 * `event` mode serialises first and walks the value only when the text could
 * hide a change (`null`, `{}`) or JSON.stringify threw. Whatever the value,
 * it must refuse and accept exactly what the full check does.
 */

const cyclic = () => {
  const value: Record<string, unknown> = { a: 1 };
  value.self = value;
  return value;
};

const REFUSED: Array<[string, () => unknown]> = [
  ['NaN', () => Number.NaN],
  ['Infinity', () => Number.POSITIVE_INFINITY],
  ['-Infinity', () => Number.NEGATIVE_INFINITY],
  ['a BigInt', () => 10n],
  ['a Map', () => new Map([['a', 1]])],
  ['a Set', () => new Set([1])],
  ['an empty Map', () => new Map()],
  ['a cycle', cyclic],
  ['toJSON returning NaN', () => ({ toJSON: () => Number.NaN })],
];

const places: Array<[string, (bad: unknown) => unknown]> = [
  ['a property', (bad) => ({ event: { channel: 'progress', value: bad } })],
  ['an array item', (bad) => ({ event: { channel: 'progress', items: [1, bad] } })],
  ['deep inside', (bad) => ({ a: [{ b: { c: [bad] } }] })],
];

describe("encodeJson(value, 'event')", () => {
  for (const [what, make] of REFUSED) {
    for (const [where, place] of places) {
      it(`refuses ${what} in ${where} with a ValidationError`, () => {
        expect(() => encodeJson(place(make()), 'event')).toThrow(ValidationError);
      });
    }
  }

  it('refuses an undefined array item and a hole (JSON would write null)', () => {
    expect(() => encodeJson({ items: [1, undefined] }, 'event')).toThrow(ValidationError);
    // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
    expect(() => encodeJson({ items: [1, , 3] }, 'event')).toThrow(ValidationError);
  });

  it('drops functions, symbols and undefined properties, as the SDK event log does', () => {
    const event = {
      channel: 'control',
      type: 'permission_required',
      respond: () => undefined,
      gone: undefined,
    };
    expect(encodeJson({ event, tag: Symbol('x') }, 'event')).toBe(
      '{"event":{"channel":"control","type":"permission_required"}}',
    );
  });

  it('accepts values whose text holds "null" or "{}" for good reasons, written as JSON.stringify writes them', () => {
    const values = [
      { error: null },
      { input: {} },
      { delta: 'null and {} inside a string' },
      { at: new Date(0) },
      { nested: [null, {}, [], ''] },
    ];
    for (const value of values) expect(encodeJson(value, 'event')).toBe(JSON.stringify(value));
  });

  it('rethrows what a throwing toJSON throws, unchanged', () => {
    const boom = new Error('boom');
    const value = {
      toJSON: () => {
        throw boom;
      },
    };
    expect(() => encodeJson({ value }, 'event')).toThrow(boom);
  });
});
