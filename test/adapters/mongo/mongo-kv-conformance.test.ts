import { afterAll, describe, expect, it } from 'vitest';
import { MongoKvBackend, MongoStore } from '../../../adapters/mongo/index.js';
import { runKvConformance, verifyKvStore } from '../../../conformance/kv/index.js';
import { createKvStore } from '../../../src/kv/kv-store.js';
import type { KvStore } from '../../../src/kv/kv-types.js';
import { MemoryKvBackend } from '../../../src/kv/memory-kv.js';
import { describeMongo, useTestDatabase } from '../../helpers/mongo.js';

/**
 * The KV conformance suite against MongoKvBackend, in the test run's MongoDB
 * (skipped with the reason when there is none). Each KV store, peers
 * included, has its own MongoStore and so its own client, as two processes
 * would.
 */
// Runs without a server: how the runner treats a capability a backend declares missing.
it('a case requiring a capability the harness declares false is skipped with the reason, never run', async () => {
  const shared = new MemoryKvBackend();
  const harness = {
    name: 'memory without atomic batches',
    create: async ({ now }: { now: () => number }) => createKvStore(shared, { now }),
    destroy: async () => {},
    createPeer: async (_kv: KvStore, { now }: { now: () => number }) => createKvStore(shared, { now }),
    capabilities: { atomicBatches: false, reasons: { atomicBatches: 'no multi-record transactions here' } },
  };
  const result = await verifyKvStore(harness, { only: ['kv.namespaces'] });
  const skipped = result.results.filter((r) => r.status === 'skipped');
  expect(skipped.map((r) => r.id).sort()).toEqual([
    'kv.namespaces.delete-namespace-is-atomic',
    'kv.namespaces.set-many-is-seen-whole',
  ]);
  for (const r of skipped) {
    expect(r.reason).toBe('the backend does not declare atomicBatches: no multi-record transactions here');
  }
  expect(result.failed).toBe(0);
});

describeMongo('KV on MongoDB', () => {
  const place = useTestDatabase('kv_conformance');
  const owners = new Map<KvStore, MongoStore>();

  function kvOnNewClient(now: () => number): KvStore {
    const store = new MongoStore({ uri: place.url, dbName: place.dbName });
    const kv = createKvStore(store.kvBackend(), { now });
    owners.set(kv, store);
    return kv;
  }

  /** Capabilities are what the backend class declares; it needs no connection to say. */
  const declared = new MongoKvBackend(() => Promise.reject(new Error('never opened')));

  runKvConformance(
    {
      name: 'mongo',
      create: async ({ now }) => kvOnNewClient(now),
      async destroy(kv) {
        await owners.get(kv)?.close();
        owners.delete(kv);
      },
      createPeer: async (_kv, { now }) => kvOnNewClient(now),
      // What the backend declares for this deployment (atomic batches with or without transactions).
      capabilities: declared.capabilities,
    },
    { describe, it, afterAll },
  );
});
