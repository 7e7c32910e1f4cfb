/**
 * Holds one agent lock for a parent test, in its own process.
 * Usage: node --import tsx mongo-lock-holder.ts <url> <dbName> <collectionPrefix> <agentId> <leaseMs>
 * Prints `acquired` once it holds the lock; on a `release` line from stdin it
 * releases, closes the store and exits 0. A parent that SIGKILLs it plays a
 * crashed holder (the lease then expires on its own).
 */
import { createInterface } from 'node:readline';
import { MongoStore } from '../../adapters/mongo/index.js';

const [uri, dbName, collectionPrefix, agentId, leaseMs] = process.argv.slice(2);
if (!uri || !dbName || collectionPrefix === undefined || !agentId || !leaseMs) {
  console.error('usage: mongo-lock-holder.ts <url> <dbName> <collectionPrefix> <agentId> <leaseMs>');
  process.exit(2);
}

const store = new MongoStore({ uri, dbName, collectionPrefix, lockLeaseMs: Number(leaseMs) });
const release = await store.acquireAgentLock(agentId, 30_000);
process.stdout.write('acquired\n');

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === 'release') {
    await release();
    await store.close();
    process.stdout.write('released\n');
    process.exit(0);
  }
}
