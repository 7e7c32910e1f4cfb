/**
 * Increments a counter kept in an agent's info `rounds` times, each time under
 * that agent's lock (read, pause, write), for the cross-process lock test.
 * Usage: node --import tsx postgres-lock-counter.ts <url> <schema> <agentId> <rounds> [preparedStatements]
 */
import { PostgresStore } from '../../adapters/postgres/index.js';

const [url, schema, agentId, rounds, prepared] = process.argv.slice(2);
if (!url || !schema || !agentId || !rounds) {
  console.error('usage: postgres-lock-counter.ts <url> <schema> <agentId> <rounds> [preparedStatements]');
  process.exit(2);
}
const store = new PostgresStore({
  connection: { connectionString: url, max: 2, applicationName: 'kode-store-test-lock-counter' },
  schema,
  // `false` behind a pooler in transaction mode (test/adapters/postgres/postgres-pgbouncer.test.ts).
  preparedStatements: prepared !== 'false',
});
for (let i = 0; i < Number(rounds); i++) {
  const release = await store.acquireAgentLock(agentId, 30_000);
  try {
    const info = await store.loadInfo(agentId);
    if (!info) throw new Error('the counter agent has no info');
    // A gap between read and write: without mutual exclusion, increments get lost.
    await new Promise((resolve) => setImmediate(resolve));
    await store.saveInfo(agentId, { ...info, messageCount: info.messageCount + 1 });
  } finally {
    await release();
  }
}
await store.close();
process.stdout.write('done\n');
