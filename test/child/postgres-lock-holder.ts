/**
 * Holds one agent lock for a parent test, in its own process.
 * Usage: node --import tsx postgres-lock-holder.ts <url> <schema> <agentId> <leaseMs> [preparedStatements]
 * Prints `acquired` once it holds the lock; on a `release` line from stdin it
 * releases, closes the store and exits 0. A parent that SIGKILLs it plays a
 * crashed holder.
 */
import { createInterface } from 'node:readline';
import { PostgresStore } from '../../adapters/postgres/index.js';

const [url, schema, agentId, leaseMs, prepared] = process.argv.slice(2);
if (!url || !schema || !agentId || !leaseMs) {
  console.error('usage: postgres-lock-holder.ts <url> <schema> <agentId> <leaseMs> [preparedStatements]');
  process.exit(2);
}

const store = new PostgresStore({
  connection: { connectionString: url, max: 2, applicationName: 'kode-store-test-lock-holder' },
  schema,
  // `false` behind a pooler in transaction mode (test/adapters/postgres/postgres-pgbouncer.test.ts).
  preparedStatements: prepared !== 'false',
  lockLeaseMs: Number(leaseMs),
});
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
