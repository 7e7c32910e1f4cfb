/**
 * Increments a counter kept in a plain file `iterations` times, each time
 * under `acquireAgentLock`: read the file, yield to the event loop (so an
 * unprotected read-modify-write would interleave with other processes),
 * write the file. Prints `done` at the end.
 * Usage: sqlite-lock-counter.ts <dbPath> <counterFile> <iterations>
 */
import { readFile, writeFile } from 'node:fs/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { nextStdinLine } from './sqlite-child-process.js';

const [path, counterFile, iterations] = process.argv.slice(2);
if (!path || !counterFile || !iterations) {
  throw new Error('usage: sqlite-lock-counter.ts <dbPath> <counterFile> <iterations>');
}
const store = new SqliteStore({ path });
// Every process starts counting only when the test says go, so they really compete.
console.log('ready');
await nextStdinLine('go');
for (let i = 0; i < Number(iterations); i++) {
  const release = await store.acquireAgentLock('shared-counter', 60_000);
  try {
    const value = Number(await readFile(counterFile, 'utf8'));
    await yieldToEventLoop();
    await writeFile(counterFile, String(value + 1));
  } finally {
    await release();
  }
}
await store.close();
console.log('done');
