/**
 * Opens a PostgresStore in a process where the `pg` package cannot be
 * resolved (a module resolve hook refuses it, as if it were not installed),
 * and prints the error the first operation rejects with, as one JSON line.
 * Usage: node --import tsx postgres-without-pg.ts
 */
import { refusePg } from './refuse-pg.js';

refusePg();

const { PostgresStore } = await import('../../adapters/postgres/index.js');
const store = new PostgresStore({ connection: 'postgres://nobody@127.0.0.1:1/none' });
try {
  await store.loadInfo('agent');
  process.stdout.write(`${JSON.stringify({ resolved: true })}\n`);
} catch (error) {
  const e = error as { name?: string; code?: string; message?: string; variable?: string };
  process.stdout.write(
    `${JSON.stringify({ name: e.name, code: e.code, message: e.message, variable: e.variable })}\n`,
  );
}
await store.close();
