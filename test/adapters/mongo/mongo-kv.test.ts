import fc from 'fast-check';
import { BSON, type Collection } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../../../adapters/mongo/index.js';
import { MAX_DOCUMENT_BYTES } from '../../../adapters/mongo/mongo-documents.js';
import {
  batchSteps,
  fromKvInstanceDocument,
  fromKvRecordDocument,
  planOperations,
  refKey,
  toKvInstanceDocument,
  toKvRecordDocument,
} from '../../../adapters/mongo/mongo-kv-documents.js';
import { kvColumnPrefilter, kvKeysFilter, kvLiveFilter } from '../../../adapters/mongo/mongo-kv-query.js';
import type { KvRecordRow } from '../../../src/kv/kv-backend.js';
import {
  type KvPredicate,
  type KvRecordView,
  normalizeKvQuery,
  planDocuments,
} from '../../../src/kv/kv-query.js';
import { matchesPredicate } from '../../../src/kv/kv-query-eval.js';
import { createKvStore } from '../../../src/kv/kv-store.js';
import type { KvStore } from '../../../src/kv/kv-types.js';
import { describeMongo, startChild, useTestDatabase, withAdminClient } from '../../helpers/mongo.js';
import { type Doc, matches } from '../../helpers/mongo-filter.js';

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
    expect(planDocuments(plan({ where: [{ field: 'key', operator: 'eq', value: 'k' }] }))).toEqual({
      value: false,
      metadata: false,
    });
    expect(planDocuments(plan({ where: [{ field: 'value.a', operator: 'eq', value: 1 }] }))).toEqual({
      value: true,
      metadata: false,
    });
    expect(planDocuments(plan({ orderBy: { field: 'metadata.rank', direction: 'asc' } }))).toEqual({
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

  describe('values over the 16 MiB document limit', () => {
    const huge = 'x'.repeat(MAX_DOCUMENT_BYTES);
    const refused = (path: string) => ({
      code: 'KODE_VALIDATION',
      path,
      message: expect.stringContaining(String(MAX_DOCUMENT_BYTES)),
    });

    it('a value, metadata, or the two together too large for one document are refused, naming the field', async () => {
      const instance = await kv.createInstance({ name: 'sizes' });
      await expect(kv.set(instance.id, 'ns', 'k', huge)).rejects.toMatchObject(refused('value'));
      await expect(kv.set(instance.id, 'ns', 'k', 1, { metadata: { huge } })).rejects.toMatchObject(
        refused('metadata'),
      );
      const half = 'h'.repeat(MAX_DOCUMENT_BYTES / 2);
      await expect(kv.set(instance.id, 'ns', 'k', half, { metadata: { half } })).rejects.toMatchObject(
        refused('value and metadata'),
      );
      await expect(kv.increment(instance.id, 'ns', 'n', 1, { metadata: { huge } })).rejects.toMatchObject(
        refused('metadata'),
      );
      expect(await kv.getRecordCount(instance.id)).toBe(0);
      // Nothing oversized reached the server: the connection still works.
      await kv.set(instance.id, 'ns', 'k', 'small');
      expect((await kv.get(instance.id, 'ns', 'k')).value).toBe('small');
    });

    it('setMany with one oversized item writes none of the batch, and an auto-created instance is not created', async () => {
      const instance = await kv.createInstance({ name: 'sizes-many' });
      await kv.set(instance.id, 'ns', 'a', 'before');
      const batch = [
        { namespace: 'ns', key: 'a', value: 'after' },
        { namespace: 'ns', key: 'b', value: huge },
      ];
      await expect(kv.setMany(instance.id, batch)).rejects.toMatchObject(refused('value'));
      expect((await kv.get(instance.id, 'ns', 'a')).value).toBe('before');
      expect(await kv.getRecordCount(instance.id)).toBe(1);
      const id = `auto-${Date.now()}`;
      await expect(kv.set(id, 'ns', 'k', huge, { autoCreateInstance: true })).rejects.toMatchObject(
        refused('value'),
      );
      await expect(kv.setMany(id, batch, { autoCreateInstance: true })).rejects.toMatchObject(
        refused('value'),
      );
      expect(await kv.getInstance(id)).toBeUndefined();
    });

    it('the in-memory backend, which has no such limit, keeps storing the same value', async () => {
      const memory = createKvStore();
      const instance = await memory.createInstance({ name: 'big' });
      await memory.set(instance.id, 'ns', 'k', huge);
      expect((await memory.get(instance.id, 'ns', 'k')).value).toBe(huge);
    });
  });

  describe('multi-record writes without transactions', () => {
    /** A store whose KV waits at most `waitMs` for another batch, with a short lease. */
    function shortLeaseKv(waitMs = 2_000): KvStore {
      const store = new MongoStore({ uri: place.url, dbName: place.dbName });
      stores.push(store);
      return createKvStore(store.kvBackend({ leaseMs: 300, lockWaitTimeoutMs: waitMs }), { now });
    }

    /** Runs `body` on one of the KV collections through a client of its own. */
    const raw = <T>(name: string, body: (collection: Collection<Doc>) => Promise<T>) =>
      withAdminClient((client) => body(client.db(place.dbName).collection<Doc>(`kode_${name}`)));

    /** Reads raw record documents of an instance, by key. */
    async function rawRecords(instanceId: string): Promise<Doc[]> {
      return withAdminClient((client) =>
        client
          .db(place.dbName)
          .collection('kode_kv_records')
          .find({ instanceId } as Doc)
          .sort({ key: 1 })
          .toArray(),
      );
    }

    /**
     * Leaves the state a batch holder leaves when its process dies after
     * logging its undo entries and writing the first `written` of its steps:
     * its expired lease in the instance document, its log, its marked rows.
     */
    async function deadPutBatch(instanceId: string, keys: string[], value: string, written: number) {
      await withAdminClient(async (client) => {
        const db = client.db(place.dbName);
        const instance = await db.collection('kode_kv_instances').findOne({ _id: instanceId } as Doc);
        const held = { owner: 'dead-host:1:put', instanceId, incarnation: String(instance?.incarnation) };
        const current = new Map(
          (await rawRecords(instanceId)).map((doc) => [
            refKey(String(doc.namespace), String(doc.key)),
            { _id: doc._id, rev: String(doc.rev), doc },
          ]),
        );
        const plan = {
          remove: [],
          put: keys.map((key) => ({
            ...row({ instanceId, namespace: 'ns', key, value: JSON.stringify(value), version: 9 }),
          })),
        };
        const steps = batchSteps(held, current, plan);
        await db.collection('kode_kv_undo').insertMany(steps.undo as unknown as Doc[]);
        await db.collection('kode_kv_records').bulkWrite(steps.operations.slice(0, written) as never[]);
        await db.collection('kode_kv_instances').updateOne({ _id: instanceId } as Doc, {
          $set: {
            lease: { owner: held.owner, until: new Date(Date.now() - 1_000), kind: 'put', previous: null },
          },
          $inc: { leaseSeq: 1 },
        });
      });
    }

    it('a batch whose process died part-way is undone by the next reader, and its marks and log are gone', async () => {
      const kvs = shortLeaseKv();
      const instance = await kvs.createInstance({ name: 'dead-put' });
      await kvs.setMany(instance.id, [
        { namespace: 'ns', key: 'a', value: 'old-a' },
        { namespace: 'ns', key: 'c', value: 'old-c' },
      ]);
      await deadPutBatch(instance.id, ['a', 'b', 'c', 'd'], 'new', 3);
      // Half the dead batch is in the collection: a reader must not see it.
      expect(await kvs.getRecordCount(instance.id, 'ns')).toBe(2);
      const found = await kvs.getMany(instance.id, 'ns', ['a', 'b', 'c', 'd']);
      expect(found.map((record) => [record.key, record.value])).toEqual([
        ['a', 'old-a'],
        ['c', 'old-c'],
      ]);
      const docs = await rawRecords(instance.id);
      expect(docs.map((doc) => [doc.key, 'batch' in doc])).toEqual([
        ['a', false],
        ['c', false],
      ]);
      expect(await raw('kv_undo', (undo) => undo.countDocuments({ instanceId: instance.id }))).toBe(0);
      const state = await raw('kv_instances', (instances) => instances.findOne({ _id: instance.id } as Doc));
      expect(state?.lease).toBeUndefined();
    });

    it('a single-key write waits for the undo of a dead batch instead of building on its value', async () => {
      const kvs = shortLeaseKv();
      const instance = await kvs.createInstance({ name: 'dead-put-increment' });
      await kvs.set(instance.id, 'ns', 'n', 1);
      await deadPutBatch(instance.id, ['n', 'm'], 'not a number', 1);
      expect((await kvs.increment(instance.id, 'ns', 'n', 1)).value).toBe(2);
      expect((await kvs.get(instance.id, 'ns', 'm')).exists).toBe(false);
    });

    it('a dead deleteNamespace is rolled back before its point of no return, and finished after it', async () => {
      const kvs = shortLeaseKv();
      for (const phase of [undefined, 'delete'] as const) {
        const instance = await kvs.createInstance({ name: `dead-delete-${phase ?? 'marking'}` });
        await kvs.setMany(instance.id, [
          { namespace: 'ns', key: 'a', value: 1 },
          { namespace: 'ns', key: 'b', value: 2 },
          { namespace: 'other', key: 'c', value: 3 },
        ]);
        const owner = `dead-host:1:delete-${phase}`;
        await withAdminClient(async (client) => {
          const db = client.db(place.dbName);
          await db
            .collection('kode_kv_records')
            .updateMany({ instanceId: instance.id, namespace: 'ns' } as Doc, {
              $set: { batch: owner, rev: 'x' },
            });
          const lease = { owner, until: new Date(Date.now() - 1_000), kind: 'delete', previous: null };
          await db
            .collection('kode_kv_instances')
            .updateOne({ _id: instance.id } as Doc, { $set: { lease: phase ? { ...lease, phase } : lease } });
        });
        expect(await kvs.getRecordCount(instance.id, 'ns')).toBe(phase ? 0 : 2);
        expect(await kvs.getRecordCount(instance.id, 'other')).toBe(1);
        expect((await rawRecords(instance.id)).some((doc) => 'batch' in doc)).toBe(false);
      }
    });

    it('a writer killed at any moment of its batches leaves each batch whole or absent for every reader', async () => {
      const kvs = shortLeaseKv(10_000);
      const keys = 300;
      // Kill moments spread over one batch (lease, reads, undo log, rows, clean-up), in
      // fractions of the time the writer's last batch took; the checks are on values only.
      for (const fraction of [0.15, 0.45, 0.75]) {
        const instance = await kvs.createInstance({ name: `killed-at-${fraction}` });
        // Every other key exists before: each batch both replaces and inserts.
        await kvs.setMany(
          instance.id,
          Array.from({ length: keys / 2 }, (_, i) => ({
            namespace: 'ns',
            key: `k${String(2 * i).padStart(4, '0')}`,
            value: 'round-0',
          })),
        );
        const writer = startChild('mongo-kv-batch-writer.ts', [
          place.url,
          place.dbName,
          instance.id,
          String(keys),
          '300',
        ]);
        await writer.line(/^round 1$/);
        const started = performance.now();
        await writer.line(/^round 2$/);
        const batchMs = performance.now() - started;
        await new Promise((resolve) => setTimeout(resolve, fraction * batchMs));
        await writer.kill();
        const records = (await kvs.query({ from: { instance: instance.id, namespace: 'ns' }, limit: 1000 }))
          .records;
        const rounds = new Set(records.map((record) => record.value));
        expect(rounds.size, `killed at ${fraction} of a batch: values ${[...rounds].join(', ')}`).toBe(1);
        expect(records).toHaveLength(keys);
        expect(await kvs.getRecordCount(instance.id, 'ns')).toBe(keys);
      }
    }, 180_000);

    it('a batch lease held by a live writer makes readers and writers wait, then fail with TimeoutError', async () => {
      const kvs = shortLeaseKv(300);
      const instance = await kvs.createInstance({ name: 'held' });
      await kvs.set(instance.id, 'ns', 'k', 1);
      await raw('kv_instances', (instances) =>
        instances.updateOne({ _id: instance.id } as Doc, {
          $set: {
            lease: { owner: 'live', until: new Date(Date.now() + 60_000), kind: 'put', previous: null },
          },
        }),
      );
      const timeout = { code: 'KODE_TIMEOUT', timeoutMs: 300 };
      await expect(kvs.getRecordCount(instance.id)).rejects.toMatchObject(timeout);
      await expect(
        kvs.setMany(instance.id, [
          { namespace: 'ns', key: 'a', value: 1 },
          { namespace: 'ns', key: 'b', value: 2 },
        ]),
      ).rejects.toMatchObject(timeout);
      await expect(kvs.deleteNamespace(instance.id, 'ns')).rejects.toMatchObject(timeout);
      // A single key needs no lease: it is written and read while the batch runs.
      await kvs.set(instance.id, 'ns', 'k', 2);
      expect((await kvs.get(instance.id, 'ns', 'k')).value).toBe(2);
      await raw('kv_instances', (instances) =>
        instances.updateOne({ _id: instance.id } as Doc, { $unset: { lease: '' } }),
      );
      expect(await kvs.getRecordCount(instance.id)).toBe(1);
    });
  });
});
