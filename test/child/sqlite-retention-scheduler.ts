/**
 * Runs scheduled retention on a SqliteStore until told to close: prints
 * `round ran` or `round skipped` after each round (and `error <message>` for
 * a failed one), closes the store on `close` from stdin, prints `closed`, and
 * then ends by itself: the process exits only if the schedule left no timer.
 * Usage: sqlite-retention-scheduler.ts <dbPath> <intervalMs> [leaseMs]
 */
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { nextStdinLine } from './sqlite-child-process.js';

const [path, intervalMs, leaseMs] = process.argv.slice(2);
if (!path || !intervalMs)
  throw new Error('usage: sqlite-retention-scheduler.ts <dbPath> <intervalMs> [leaseMs]');
const store = new SqliteStore({ path, lockLeaseMs: leaseMs ? Number(leaseMs) : undefined });
store.scheduleRetention({
  policy: { events: { keepNewest: 1000 } },
  intervalMs: Number(intervalMs),
  onRun: (round) => console.log(`round ${round.ran ? 'ran' : 'skipped'}`),
  onError: (error) => console.log(`error ${error instanceof Error ? error.message : String(error)}`),
});
console.log('scheduled');
await nextStdinLine('close');
await store.close();
console.log('closed');
