import type { KvStore } from '../../../src/kv/kv-types.js';
import { check, checkEqual, sleep } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';

const WRITERS = 8;
const STEPS = 500;

/** Runs `WRITERS` loops, half on each store, and waits for all. */
async function writers(
  kv: KvStore,
  other: KvStore,
  body: (store: KvStore, writer: number) => Promise<void>,
): Promise<void> {
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => body(w % 2 ? other : kv, w)));
}

/** §6 "no lost update between two writers": races between two store instances on one database. */
export const raceCases = defineKvCases('races', [
  {
    id: 'increments',
    title: `${WRITERS} writers on two stores, ${STEPS} increments each on one key, end at exactly ${WRITERS * STEPS}`,
    needsPeer: true,
    timeoutMs: 240_000,
    async run({ kv, instance, peer }) {
      const id = await instance();
      const other = await peer();
      await writers(kv, other, async (store) => {
        for (let i = 0; i < STEPS; i++) await store.increment(id, 'ns', 'counter');
      });
      const record = (await kv.get(id, 'ns', 'counter')).record;
      checkEqual([record?.value, record?.version], [WRITERS * STEPS, WRITERS * STEPS], 'value and version');
      checkEqual(
        (await other.get(id, 'ns', 'counter')).value,
        WRITERS * STEPS,
        'value seen by the other store',
      );
    },
  },
  {
    id: 'compare-and-set',
    title: `${WRITERS} writers on two stores, ${STEPS} compare-and-set increments each (get, set ifVersion, retry on conflict), end at exactly ${WRITERS * STEPS}`,
    needsPeer: true,
    timeoutMs: 240_000,
    async run({ kv, instance, peer }) {
      const id = await instance();
      const other = await peer();
      await kv.set(id, 'ns', 'counter', 0);
      let conflicts = 0;
      await writers(kv, other, async (store) => {
        let streak = 0;
        for (let done = 0; done < STEPS; ) {
          const current = await store.get<number>(id, 'ns', 'counter');
          try {
            await store.set(id, 'ns', 'counter', (current.value ?? 0) + 1, {
              ifVersion: current.record?.version,
            });
            done++;
            streak = 0;
          } catch (error) {
            if ((error as { code?: string }).code !== 'KODE_CONFLICT') throw error;
            conflicts++;
            // What a well-behaved CAS client does: back off a random, growing while, so contenders spread out.
            streak++;
            await sleep(Math.random() * Math.min(8, 2 ** streak));
          }
        }
      });
      const record = (await kv.get(id, 'ns', 'counter')).record;
      checkEqual(
        [record?.value, record?.version],
        [WRITERS * STEPS, WRITERS * STEPS + 1],
        `value and version (${conflicts} conflicts retried)`,
      );
    },
  },
  {
    id: 'concurrent-inserts-are-counted',
    title:
      'two stores inserting 150 new keys each into one namespace at once: counts, namespaces and totals agree at 300',
    needsPeer: true,
    timeoutMs: 120_000,
    async run({ kv, instance, peer }) {
      const id = await instance();
      const other = await peer();
      await Promise.all(
        [kv, other, kv, other].map(async (store, w) => {
          for (let i = 0; i < 75; i++) await store.set(id, 'ns', `w${w}-${i}`, i);
        }),
      );
      checkEqual(await kv.getRecordCount(id, 'ns'), 300, 'namespace count');
      checkEqual(await other.getRecordCount(id), 300, 'instance count');
      checkEqual(
        (await kv.query({ from: { instance: id, namespace: 'ns' }, limit: 0 })).total,
        300,
        'query total',
      );
    },
  },
  {
    id: 'inserts-and-deletes-keep-counts-exact',
    title:
      'two stores inserting and deleting overlapping keys at once leave counts equal to the records that exist',
    needsPeer: true,
    timeoutMs: 120_000,
    async run({ kv, instance, peer }) {
      const id = await instance();
      const other = await peer();
      await Promise.all(
        [kv, other, kv, other].map(async (store, w) => {
          for (let i = 0; i < 120; i++) {
            const key = `k${(i * 7 + w * 3) % 40}`;
            const namespace = i % 3 === 0 ? 'a' : 'b';
            if ((i + w) % 3 === 0) await store.delete(id, namespace, key);
            else if ((i + w) % 3 === 1) await store.increment(id, namespace, key);
            else
              await store.setMany(id, [
                { namespace, key, value: w },
                { namespace: 'c', key, value: i },
              ]);
          }
        }),
      );
      const records = await kv.query({ from: { instance: id }, select: ['namespace'] });
      const byNamespace = new Map<string, number>();
      for (const r of records.records)
        byNamespace.set(r.namespace as string, (byNamespace.get(r.namespace as string) ?? 0) + 1);
      for (const namespace of ['a', 'b', 'c']) {
        checkEqual(
          await kv.getRecordCount(id, namespace),
          byNamespace.get(namespace) ?? 0,
          `count of ${namespace}`,
        );
      }
      checkEqual(await kv.getRecordCount(id), records.records.length, 'instance count');
      checkEqual(await kv.getNamespaces(id), [...byNamespace.keys()].sort(), 'namespaces');
    },
  },
  {
    id: 'delete-instance-during-writes',
    title: 'deleting an instance while another store writes into it leaves no record behind',
    needsPeer: true,
    timeoutMs: 120_000,
    async run({ kv, instance, peer }) {
      const other = await peer();
      for (let round = 0; round < 3; round++) {
        const id = await instance(`round${round}`);
        const writing = (async () => {
          let failures = 0;
          for (let i = 0; i < 60; i++) {
            try {
              await other.set(id, `ns${i % 3}`, `k${i}`, i);
            } catch (error) {
              check(
                (error as { code?: string }).code === 'KODE_NOT_FOUND',
                `write failed with ${String(error)}`,
              );
              failures++;
            }
          }
          return failures;
        })();
        await kv.set(id, 'ns0', 'first', 1);
        await kv.deleteInstance(id);
        await writing;
        await kv.createInstance({ name: 'again', id });
        checkEqual(
          [await kv.getRecordCount(id), await kv.getNamespaces(id)],
          [0, []],
          `round ${round}: recreated instance`,
        );
      }
    },
  },
]);
