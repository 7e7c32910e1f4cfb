import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StoreCodec } from '../../src/agent/store-codec.js';

/**
 * `StoreCodec.list` reuses the text of items equal to those it last encoded
 * for the same agent. Whatever the caller does between saves (mutating saved
 * objects in place, reordering keys, adding `undefined` fields, shrinking the
 * list), the texts must be exactly what encoding from scratch gives.
 */

const fresh = (list: unknown[]) => list.map((item) => JSON.stringify(item));

describe('StoreCodec.list', () => {
  it('notices a message mutated in place after it was saved (the SDK keeps its objects)', () => {
    const codec = new StoreCodec('test');
    const messages = [
      { role: 'user', content: [{ type: 'text', text: 'hello' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'hi' }] },
    ];
    codec.list(messages, 'saveMessages', 'a', 'messages');
    (messages[0]!.content[0] as { text: string }).text = 'changed';
    expect(codec.list(messages, 'saveMessages', 'a', 'messages')).toEqual(fresh(messages));
  });

  it('notices a change of key order, and keeps texts exact when an undefined field appears', () => {
    const codec = new StoreCodec('test');
    codec.list([{ a: 1, b: 2 }], 'save', 'a', 'items');
    expect(codec.list([{ b: 2, a: 1 }], 'save', 'a', 'items')).toEqual(['{"b":2,"a":1}']);
    expect(codec.list([{ b: 2, a: 1, c: undefined }], 'save', 'a', 'items')).toEqual(['{"b":2,"a":1}']);
  });

  it('encodes values with toJSON (a Date) as JSON does, every time', () => {
    const codec = new StoreCodec('test');
    const when = new Date(0);
    const list = [{ at: when }];
    codec.list(list, 'save', 'a', 'items');
    when.setTime(1000);
    expect(codec.list(list, 'save', 'a', 'items')).toEqual(fresh(list));
  });

  it('stays exact when a getter re-enters the codec in the middle of a comparison', () => {
    const codec = new StoreCodec('test');
    let other = 0;
    // Reading `b` saves another agent's list while this list is being compared.
    const item = {
      a: { deep: [1, 2] },
      get b() {
        codec.list([{ x: [other, { y: other }] }], 'save', 'other', 'items');
        other++;
        return 'b';
      },
      c: { deeper: { z: 3 } },
    };
    const list = [item, { after: true }];
    codec.list(list, 'save', 'a', 'items');
    expect(codec.list(list, 'save', 'a', 'items')).toEqual(fresh(list));
    item.c.deeper.z = 4;
    expect(codec.list(list, 'save', 'a', 'items')).toEqual(fresh(list));
    expect(codec.listItems.reused).toBeGreaterThan(0);
  });

  it('keeps agents and lists apart', () => {
    const codec = new StoreCodec('test');
    codec.list([1, 2, 3], 'save', 'a', 'messages');
    expect(codec.list([1, 9], 'save', 'b', 'messages')).toEqual(['1', '9']);
    expect(codec.list([7], 'save', 'a', 'records')).toEqual(['7']);
    expect(codec.list([1, 2, 3, 4], 'save', 'a', 'messages')).toEqual(['1', '2', '3', '4']);
  });

  it('still refuses a bad new item after a reused prefix, and remembers nothing from the refused save', () => {
    const codec = new StoreCodec('test');
    const good = [{ n: 1 }, { n: 2 }];
    codec.list(good, 'save', 'a', 'items');
    expect(() => codec.list([...good, { n: 10n }], 'save', 'a', 'items')).toThrow(TypeError);
    expect(codec.list([...good, { n: 3 }], 'save', 'a', 'items')).toEqual(fresh([...good, { n: 3 }]));
  });

  it('encodes only the new items when a long list grows, and reuses nothing after a change at the front', () => {
    const codec = new StoreCodec('test');
    const list = Array.from({ length: 1000 }, (_, i) => ({
      role: 'user',
      content: [{ type: 'text', text: `m${i}` }],
    }));
    codec.list(list, 'save', 'a', 'messages');
    expect(codec.listItems).toEqual({ encoded: 1000, reused: 0 });
    list.push({ role: 'assistant', content: [{ type: 'text', text: 'x' }] }, { role: 'user', content: [] });
    expect(codec.list(list, 'save', 'a', 'messages')).toEqual(fresh(list));
    expect(codec.listItems).toEqual({ encoded: 1002, reused: 1000 });
    list[0]!.role = 'system';
    expect(codec.list(list, 'save', 'a', 'messages')).toEqual(fresh(list));
    expect(codec.listItems).toEqual({ encoded: 2004, reused: 1000 });
  });

  it('reuses items whose undefined fields come and go (JSON leaves them out), and null-prototype objects', () => {
    const codec = new StoreCodec('test');
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { k: 'v' });
    codec.list([{ a: 1, b: undefined }, bare], 'save', 'a', 'items');
    const next = [{ a: 1 }, bare];
    expect(codec.list(next, 'save', 'a', 'items')).toEqual(['{"a":1}', '{"k":"v"}']);
    expect(codec.listItems.reused).toBe(2);
  });

  it('compares numbers as JSON writes them: -0 and 0 are both 0', () => {
    const codec = new StoreCodec('test');
    codec.list([{ n: -0 }, [0]], 'save', 'a', 'items');
    expect(codec.list([{ n: 0 }, [-0]], 'save', 'a', 'items')).toEqual(['{"n":0}', '[0]']);
    expect(codec.listItems.reused).toBe(2);
  });

  it('never reuses class instances or objects with toJSON, and still encodes them exactly', () => {
    class Point {
      constructor(public x: number) {}
    }
    const withToJson = { v: 1, toJSON: () => ({ v: 2 }) };
    const list = [new Point(1), withToJson];
    const codec = new StoreCodec('test');
    codec.list(list, 'save', 'a', 'items');
    (list[0] as Point).x = 5;
    expect(codec.list(list, 'save', 'a', 'items')).toEqual(['{"x":5}', '{"v":2}']);
    expect(codec.listItems.reused).toBe(0);
  });

  it('reuses nothing while Object.prototype has an enumerable property (inherited keys are not JSON)', () => {
    const codec = new StoreCodec('test');
    const item: Record<string, unknown> = { a: 1, polluted: 2 };
    codec.list([item], 'save', 'a', 'items');
    delete item.polluted;
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 2;
    try {
      // for...in would now see "polluted" on the item, as it was saved; JSON does not write it.
      expect(codec.list([item], 'save', 'a', 'items')).toEqual(['{"a":1}']);
      expect(codec.listItems.reused).toBe(0);
    } finally {
      delete proto.polluted;
    }
  });

  it('notices nested changes the shape must track: array length, nesting, type, key renamed', () => {
    const cases: Array<[unknown, unknown]> = [
      [{ a: [1, 2] }, { a: [1, 2, 3] }],
      [{ a: [1, [2]] }, { a: [1, 2] }],
      [{ a: { b: 1 } }, { a: { c: 1 } }],
      [{ a: '1' }, { a: 1 }],
      [{ a: null }, { a: {} }],
      [{ a: [] }, { a: {} }],
      [{ a: true }, { a: 'true' }],
      [{ a: 1, b: 2 }, { a: 1 }],
      [{ a: 1 }, { a: 1, b: 2 }],
    ];
    for (const [before, after] of cases) {
      const codec = new StoreCodec('test');
      codec.list([before], 'save', 'a', 'items');
      expect(codec.list([after], 'save', 'a', 'items')).toEqual(fresh([after]));
      expect(codec.listItems.reused).toBe(0);
    }
  });

  it('always equals a fresh encoding, over random saves with in-place mutations', () => {
    const json = fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.parse(JSON.stringify(value)) as unknown);
    const step = fc.record({
      append: fc.array(json, { maxLength: 3 }),
      mutateIndex: fc.option(fc.nat({ max: 10 }), { nil: undefined }),
      mutation: json,
      truncateTo: fc.option(fc.nat({ max: 10 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), (steps) => {
        const codec = new StoreCodec('test');
        const list: unknown[] = [];
        for (const s of steps) {
          if (s.truncateTo !== undefined) list.length = Math.min(list.length, s.truncateTo);
          list.push(...s.append.map((item) => ({ item })));
          const target = s.mutateIndex === undefined ? undefined : list[s.mutateIndex];
          if (target && typeof target === 'object') (target as { item: unknown }).item = s.mutation;
          expect(codec.list(list, 'save', 'agent', 'items')).toEqual(fresh(list));
        }
      }),
      { numRuns: 300 },
    );
  });
});
