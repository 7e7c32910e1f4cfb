import { afterAll, describe, it } from 'vitest';
import { MongoStore } from '../adapters/mongo/index.js';
import { runKvConformance } from '../conformance/kv/index.js';
import { createKvStore } from '../src/kv/kv-store.js';
import type { KvStore } from '../src/kv/kv-types.js';
import { describeMongo, useTestDatabase } from './helpers/mongo.js';

/**
 * The KV conformance suite against MongoKvBackend, in the test run's MongoDB
 * (skipped with the reason when there is none). Each KV store, peers
 * included, has its own MongoStore and so its own client, as two processes
 * would.
 */
describeMongo('KV on MongoDB', () => {
  const place = useTestDatabase('kv_conformance');
  const owners = new Map<KvStore, MongoStore>();

  function kvOnNewClient(now: () => number): KvStore {
    const store = new MongoStore({ uri: place.url, dbName: place.dbName });
    const kv = createKvStore(store.kvBackend(), { now });
    owners.set(kv, store);
    return kv;
  }

  runKvConformance(
    {
      name: 'mongo',
      create: async ({ now }) => kvOnNewClient(now),
      async destroy(kv) {
        await owners.get(kv)?.close();
        owners.delete(kv);
      },
      createPeer: async (_kv, { now }) => kvOnNewClient(now),
    },
    { describe, it, afterAll },
  );
});
