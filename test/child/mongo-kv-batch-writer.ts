/**
 * Writes batches into one KV instance for a parent test until it is killed.
 * Usage: node --import tsx mongo-kv-batch-writer.ts <url> <dbName> <instanceId> <keys> <leaseMs>
 * Each round is one setMany of every key with the value `round-<n>`; it prints
 * `round <n>` once a round is stored. The parent SIGKILLs it at some moment
 * and then checks that no reader ever sees a round in part.
 */
import { MongoStore } from '../../adapters/mongo/index.js';
import { createKvStore } from '../../src/kv/kv-store.js';

const [uri, dbName, instanceId, keyCount, leaseMs] = process.argv.slice(2);
if (!uri || !dbName || !instanceId || !keyCount || !leaseMs) {
  console.error('usage: mongo-kv-batch-writer.ts <url> <dbName> <instanceId> <keys> <leaseMs>');
  process.exit(2);
}

const store = new MongoStore({ uri, dbName });
const kv = createKvStore(store.kvBackend({ leaseMs: Number(leaseMs) }));
const keys = Array.from({ length: Number(keyCount) }, (_, i) => `k${String(i).padStart(4, '0')}`);
for (let round = 1; ; round++) {
  await kv.setMany(
    instanceId,
    keys.map((key) => ({ namespace: 'ns', key, value: `round-${round}` })),
  );
  process.stdout.write(`round ${round}\n`);
}
