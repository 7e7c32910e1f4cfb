import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/errors.js';
import { type EncodeMode, encodeJson, MAX_JSON_DEPTH } from '../src/json-codec.js';

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

/** A value of exactly `depth` levels of objects (`{}` is 1), or of arrays. */
function nested(depth: number, kind: 'object' | 'array' = 'object'): unknown {
  let value: unknown = kind === 'object' ? {} : [];
  for (let level = 1; level < depth; level++) value = kind === 'object' ? { a: value } : [value];
  return value;
}

const MODES: EncodeMode[] = ['strict', 'strict-no-undefined', 'event'];

describe('encodeJson: nesting depth', () => {
  for (const mode of MODES) {
    for (const kind of ['object', 'array'] as const) {
      it(`${mode}: accepts ${MAX_JSON_DEPTH} levels of ${kind}s and refuses ${MAX_JSON_DEPTH + 1} with a ValidationError naming the limit`, () => {
        const atLimit = nested(MAX_JSON_DEPTH, kind);
        expect(encodeJson(atLimit, mode)).toBe(JSON.stringify(atLimit));
        let error: unknown;
        try {
          encodeJson(nested(MAX_JSON_DEPTH + 1, kind), mode, { operation: 'set', what: 'value' });
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ValidationError);
        expect(error).toMatchObject({ code: 'KODE_VALIDATION', operation: 'set' });
        expect((error as Error).message).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
        expect((error as ValidationError).path).toMatch(
          kind === 'object' ? /^value(\.a){512}$/ : /^value(\[0\]){512}$/,
        );
      });
    }

    it(`${mode}: refuses 50,000 and 1,000,000 levels with a ValidationError, not a stack overflow`, () => {
      for (const depth of [4_000, 50_000, 1_000_000]) {
        expect(() => encodeJson(nested(depth), mode), String(depth)).toThrow(ValidationError);
        expect(() => encodeJson({ list: [nested(depth, 'array')] }, mode), String(depth)).toThrow(
          ValidationError,
        );
      }
    });

    it(`${mode}: counts the levels a toJSON result adds`, () => {
      const deep = { toJSON: () => nested(MAX_JSON_DEPTH) };
      expect(() => encodeJson({ wrapped: deep }, mode)).toThrow(ValidationError);
      expect(encodeJson(deep, mode)).toBe(JSON.stringify(nested(MAX_JSON_DEPTH)));
    });
  }

  it('event: walks a long text with many brackets that is shallow, and accepts it', () => {
    const wide = { items: Array.from({ length: 2 * MAX_JSON_DEPTH }, (_, i) => ({ i, tags: [i] })) };
    expect(encodeJson(wide, 'event')).toBe(JSON.stringify(wide));
  });

  it('event: a deep value inside a string is only text', () => {
    const text = JSON.stringify(nested(MAX_JSON_DEPTH + 10));
    expect(encodeJson({ note: text }, 'event')).toBe(JSON.stringify({ note: text }));
  });
});
