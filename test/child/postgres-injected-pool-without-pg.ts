/**
 * Hands a PostgresStore a pool from a copy of pg the store cannot resolve:
 * a module resolve hook refuses `pg` to everything this process imports,
 * and the pool's pg is loaded by file path. Appends events, reads them back
 * and prints what it read (or the error), as one JSON line.
 * Usage: node --import tsx postgres-injected-pool-without-pg.ts <url> <schema>
 */
import { createRequire } from 'node:module';
import { refusePg } from './refuse-pg.js';

refusePg();

const [url, schema] = process.argv.slice(2) as [string, string];
const require = createRequire(import.meta.url);
const pgFile = require.resolve('pg');
const pg = require(pgFile) as typeof import('pg');

const { PostgresStore } = await import('../../adapters/postgres/index.js');
const pool = new pg.Pool({ connectionString: url, max: 2 });
const store = new PostgresStore({ pool, schema });
try {
  for (let cursor = 1; cursor <= 3; cursor++) {
    await store.appendEvent('agent', {
      cursor,
      bookmark: { seq: cursor, timestamp: cursor },
      event: { channel: 'progress', type: 'text_chunk', delta: `chunk ${cursor}` },
    } as never);
  }
  const deltas: string[] = [];
  for await (const entry of store.readEvents('agent')) {
    deltas.push((entry as unknown as { event: { delta: string } }).event.delta);
  }
  process.stdout.write(`${JSON.stringify({ deltas })}\n`);
} catch (error) {
  const e = error as { name?: string; code?: string; message?: string };
  process.stdout.write(`${JSON.stringify({ name: e.name, code: e.code, message: e.message })}\n`);
} finally {
  await store.close();
  await pool.end();
}
