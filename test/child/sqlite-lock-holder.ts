/**
 * Takes an agent lock through a SqliteStore and holds it until told to let
 * go: prints `acquired`, waits for `release` on stdin, releases, closes,
 * prints `released`. Usage: sqlite-lock-holder.ts <dbPath> <agentId> [leaseMs]
 */
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { nextStdinLine } from './sqlite-child-process.js';

const [path, agentId, leaseMs] = process.argv.slice(2);
if (!path || !agentId) throw new Error('usage: sqlite-lock-holder.ts <dbPath> <agentId> [leaseMs]');
const store = new SqliteStore({ path, lockLeaseMs: leaseMs ? Number(leaseMs) : undefined });
const release = await store.acquireAgentLock(agentId, 30_000);
console.log('acquired');
await nextStdinLine('release');
await release();
await store.close();
console.log('released');
