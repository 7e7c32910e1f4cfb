import fc from 'fast-check';
import { BSON } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../adapters/mongo/index.js';
import {
  fromKvInstanceDocument,
  fromKvRecordDocument,
  kvColumnPrefilter,
  kvDocumentsRead,
  kvKeysFilter,
  kvLiveFilter,
  planOperations,
  toKvInstanceDocument,
  toKvRecordDocument,
} from '../adapters/mongo/mongo-kv.js';
import type { KvRecordRow } from '../src/kv/kv-backend.js';
import {
  type KvPredicate,
  type KvRecordView,
  matchesPredicate,
  normalizeKvQuery,
} from '../src/kv/kv-query.js';
import { createKvStore } from '../src/kv/kv-store.js';
import type { KvStore } from '../src/kv/kv-types.js';
import { describeMongo, useTestDatabase } from './helpers/mongo.js';
import { type Doc, matches } from './helpers/mongo-filter.js';

/**
 * The MongoDB KV backend. Document mapping and the filters it sends are
 * checked here with the real BSON codec and the reference evaluator of
 * test/helpers/mongo-filter.ts; the behaviour of the backend as a whole needs
 * a server.
 */

function row(overrides: Partial<KvRecordRow> = {}): KvRecordRow {
  return {
    instanceId: 'inst',
    namespace: 'ns',
    key: 'k',
    id: 'rec-1',
    value: '{"a.b":1,"$x":[2,3],"nul":"\\u0000","big":9007199254740991}',
    metadata: '{"source":"test"}',
    version: 3,
    createdAt: 1_795_361_537_000,
    updatedAt: 1_795_361_537_999,
    expiresAt: null,
    createdBy: 'agent-a',
    updatedBy: null,
    ...overrides,
  };
}

function throughBson(doc: object): Doc {
  return BSON.deserialize(BSON.serialize(doc));
}

describe('KV documents', () => {
  it('a record round-trips through BSON exactly, JSON text byte for byte, nulls as nulls', () => {
    for (const original of [
      row(),
      row({ expiresAt: 1_900_000_000_000, createdBy: null, updatedBy: 'b', version: 2 ** 40 }),
    ]) {
      const doc = throughBson(toKvRecordDocument(original, 'inc-1', 'rev-1'));
      expect(doc).toMatchObject({ incarnation: 'inc-1', rev: 'rev-1' });
      expect(fromKvRecordDocument(doc)).toEqual(original);
    }
  });

  it('a record read without value or metadata comes back without them', () => {
    const { value: _value, metadata: _metadata, ...rest } = toKvRecordDocument(row(), 'i', 'r');
    const back = fromKvRecordDocument(throughBson(rest));
    expect('value' in back).toBe(false);
    expect('metadata' in back).toBe(false);
  });

  it('an instance round-trips, keyed by its id', () => {
    const instance = { id: 'i/1 😀', name: '$name', description: '', createdAt: 5, updatedAt: 6 };
    const doc = throughBson(toKvInstanceDocument(instance, 'inc'));
    expect(doc._id).toBe('i/1 😀');
    expect(fromKvInstanceDocument(doc)).toEqual(instance);
  });

  it('a mutation plan becomes one ordered bulk write: removals, then whole-row upserts in the incarnation', () => {
    const operations = planOperations('inst', 'inc', {
      remove: [{ namespace: 'ns', key: 'gone' }],
      put: [row()],
    });
    expect(operations[0]).toEqual({
      deleteOne: { filter: { instanceId: 'inst', incarnation: 'inc', namespace: 'ns', key: 'gone' } },
    });
    expect(operations[1]).toMatchObject({
      replaceOne: {
        filter: { instanceId: 'inst', incarnation: 'inc', namespace: 'ns', key: 'k' },
        replacement: { incarnation: 'inc', value: row().value },
        upsert: true,
      },
    });
  });
});

describe('KV filters', () => {
  it('liveness: no expiry or one after now; expiring exactly now is expired', () => {
    const live = kvLiveFilter(100);
    expect(matches({ expiresAt: null }, live)).toBe(true);
    expect(matches({}, live)).toBe(true);
    expect(matches({ expiresAt: 101 }, live)).toBe(true);
    expect(matches({ expiresAt: 100 }, live)).toBe(false);
    expect(matches({ expiresAt: 5 }, live)).toBe(false);
  });

  it('key filters match exactly the requested (namespace, key) pairs', () => {
    const filter = kvKeysFilter([
      { namespace: 'a', key: 'x' },
      { namespace: 'b', key: 'x' },
      { namespace: 'a', key: 'y' },
    ]);
    const hits = [
      ['a', 'x'],
      ['a', 'y'],
      ['b', 'x'],
      ['b', 'y'],
      ['c', 'x'],
    ].filter(([namespace, key]) => matches({ namespace, key }, filter));
    expect(hits).toEqual([
      ['a', 'x'],
      ['a', 'y'],
      ['b', 'x'],
    ]);
  });

  it('reads value or metadata only when a condition or the order needs them', () => {
    const plan = (query: object) => normalizeKvQuery({ from: { instance: 'i' }, ...query });
    expect(kvDocumentsRead(plan({ where: [{ field: 'key', operator: 'eq', value: 'k' }] }))).toEqual({
      value: false,
      metadata: false,
    });
    expect(kvDocumentsRead(plan({ where: [{ field: 'value.a', operator: 'eq', value: 1 }] }))).toEqual({
      value: true,
      metadata: false,
    });
    expect(kvDocumentsRead(plan({ orderBy: { field: 'metadata.rank', direction: 'asc' } }))).toEqual({
      value: false,
      metadata: true,
    });
  });

  // Records over a small alphabet so conditions often hit; the views are what the evaluator reads.
  const text = fc.stringMatching(/^[abAB😀é]{0,3}$/u);
  const record = fc.record({
    key: text,
    namespace: text,
    version: fc.integer({ min: 1, max: 4 }),
    createdAt: fc.integer({ min: 10, max: 14 }),
    updatedAt: fc.integer({ min: 10, max: 14 }),
    value: fc.record(
      { a: fc.oneof(fc.integer({ min: 0, max: 3 }), text, fc.constant(null)) },
      { requiredKeys: [] },
    ),
  });
  const condition = fc.oneof(
    fc.record({
      field: fc.constantFrom('key', 'namespace'),
      operator: fc.constantFrom('eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'startsWith', 'endsWith', 'contains'),
      value: text,
    }),
    fc.record({
      field: fc.constantFrom('version', 'createdAt', 'updatedAt'),
      operator: fc.constantFrom('eq', 'neq', 'gt', 'gte', 'lt', 'lte'),
      value: fc.integer({ min: 0, max: 15 }),
    }),
    fc.record({
      field: fc.constantFrom('key', 'namespace'),
      operator: fc.constantFrom('in', 'nin'),
      value: fc.array(text, { maxLength: 3 }),
    }),
    fc.record({
      field: fc.constant('value.a'),
      operator: fc.constantFrom('eq', 'gte', 'exists'),
      value: fc.integer({ min: 0, max: 3 }),
    }),
  );
  const whereItem = fc.oneof(
    { weight: 4, arbitrary: condition },
    { weight: 1, arbitrary: fc.record({ or: fc.array(condition, { minLength: 1, maxLength: 3 }) }) },
  );

  function predicateOf(where: unknown[]): KvPredicate | undefined {
    try {
      return normalizeKvQuery({ from: { instance: 'i' }, where }).where;
    } catch {
      return undefined;
    }
  }

  function asDoc(view: KvRecordView): Doc {
    return {
      key: view.key,
      namespace: view.namespace,
      version: view.version,
      createdAt: view.createdAt,
      updatedAt: view.updatedAt,
    };
  }

  it('the column prefilter never drops a record the full query keeps', () => {
    fc.assert(
      fc.property(
        fc.array(record, { maxLength: 12 }),
        fc.array(whereItem, { maxLength: 4 }),
        (records, where) => {
          const predicate = predicateOf(where);
          fc.pre(predicate !== undefined);
          const prefilter = { $and: [{}, ...kvColumnPrefilter(predicate as KvPredicate)] };
          for (const view of records) {
            if (matchesPredicate(view, predicate as KvPredicate))
              expect(matches(asDoc(view), prefilter)).toBe(true);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a query made only of translatable column conditions is answered by the prefilter exactly', () => {
    const translatable = condition.filter(
      (c) =>
        c.field !== 'value.a' &&
        !['endsWith', 'contains'].includes(c.operator) &&
        !(c.operator === 'startsWith' && c.value === ''),
    );
    fc.assert(
      fc.property(
        fc.array(record, { maxLength: 12 }),
        fc.array(translatable, { minLength: 1, maxLength: 4 }),
        (records, where) => {
          const predicate = predicateOf(where);
          fc.pre(predicate !== undefined);
          const prefilter = { $and: [{}, ...kvColumnPrefilter(predicate as KvPredicate)] };
          for (const view of records) {
            expect(matches(asDoc(view), prefilter)).toBe(matchesPredicate(view, predicate as KvPredicate));
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('an or-group, a JSON path and a substring test are left to the evaluator', () => {
    const predicate = predicateOf([
      { or: [{ field: 'key', operator: 'eq', value: 'a' }] },
      { field: 'value.a', operator: 'eq', value: 1 },
      { field: 'key', operator: 'contains', value: 'b' },
    ]);
    expect(kvColumnPrefilter(predicate as KvPredicate)).toEqual([]);
  });
});

describeMongo('MongoKvBackend against a server', () => {
  const place = useTestDatabase('kv');
  let clock = 1_800_000_000_000;
  const now = () => clock;
  let stores: MongoStore[] = [];
  let kv: KvStore;
  let peer: KvStore;

  beforeAll(async () => {
    stores = [0, 1].map(() => new MongoStore({ uri: place.url, dbName: place.dbName }));
    [kv, peer] = stores.map((store) => createKvStore(store.kvBackend(), { now })) as [KvStore, KvStore];
  });
  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  it('sets, gets and queries values exactly, keys in code point order', async () => {
    const instance = await kv.createInstance({ name: 'basics' });
    const value = { 'a.b': 1, $x: [2, 3], nul: '\u0000', big: 2 ** 53 - 1 };
    await kv.set(instance.id, 'ns', 'b', value);
    await kv.set(instance.id, 'ns', '😀', 1);
    await kv.set(instance.id, 'ns', '\uffff', 2);
    await kv.set(instance.id, 'ns', 'B', 3);
    expect((await kv.get(instance.id, 'ns', 'b')).value).toEqual(value);
    const result = await kv.query({
      from: { instance: instance.id, namespace: 'ns' },
      orderBy: { field: 'key', direction: 'asc' },
    });
    expect(result.records.map((r) => r.key)).toEqual(['B', 'b', '\uffff', '😀']);
    expect(result.total).toBe(4);
  });

  it('concurrent metadata merges and increments from two store objects lose nothing', async () => {
    const instance = await kv.createInstance({ name: 'races' });
    await kv.set(instance.id, 'ns', 'counter', 0);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? peer : kv).set(instance.id, 'ns', 'merged', 'v', { metadata: { [`m${i}`]: i } }),
      ),
    );
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? peer : kv).increment(instance.id, 'ns', 'counter')),
    );
    const merged = await kv.get(instance.id, 'ns', 'merged');
    expect(Object.keys(merged.record?.metadata ?? {}).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `m${i}`).sort(),
    );
    expect((await kv.get(instance.id, 'ns', 'counter')).value).toBe(20);
  });

  it('expired records vanish from every read at once; deleteNamespace counts live ones; sweep removes them', async () => {
    const instance = await kv.createInstance({ name: 'ttl' });
    await kv.set(instance.id, 'ns', 'short', 1, { ttlMs: 10 });
    await kv.set(instance.id, 'ns', 'long', 2);
    clock += 11;
    expect((await kv.get(instance.id, 'ns', 'short')).exists).toBe(false);
    expect(await kv.getRecordCount(instance.id, 'ns')).toBe(1);
    expect(await kv.getNamespaces(instance.id)).toEqual(['ns']);
    expect(await kv.deleteNamespace(instance.id, 'ns')).toBe(1);
    await kv.set(instance.id, 'other', 'gone', 1, { ttlMs: 1 });
    clock += 2;
    expect(await kv.sweepExpired()).toBeGreaterThanOrEqual(1);
  });

  it('deleting an instance hides its records; a new instance with the same id starts empty', async () => {
    const instance = await kv.createInstance({ name: 'recycled', id: 'recycled-id' });
    await kv.set(instance.id, 'ns', 'k', 1);
    expect(await kv.deleteInstance(instance.id)).toBe(true);
    await kv.createInstance({ name: 'again', id: 'recycled-id' });
    expect(await kv.getRecordCount('recycled-id')).toBe(0);
  });
});
