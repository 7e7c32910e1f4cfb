import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteKvBackend } from '../../../adapters/sqlite/sqlite-kv.js';
import { createKvStore } from '../../../src/kv/kv-store.js';

/**
 * Races between processes on one SQLite file. In one process better-sqlite3
 * runs each transaction to its end before anything else, so only separate
 * processes really contend for the write lock (SQLITE_BUSY and its retries).
 */

const directory = mkdtempSync(join(tmpdir(), 'kode-kv-processes-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
const root = fileURLToPath(new URL('../../..', import.meta.url));

/** A child that runs `writers` loops of `steps` writes on the file and prints "done". */
function child(
  path: string,
  mode: 'increment' | 'cas' | 'merge',
  writers: number,
  steps: number,
  tag: string,
) {
  const script = `
    import Database from 'better-sqlite3';
    import { SqliteKvBackend } from ${JSON.stringify(join(root, 'adapters/sqlite/sqlite-kv.ts'))};
    import { createKvStore } from ${JSON.stringify(join(root, 'src/kv/kv-store.ts'))};
    const db = new Database(${JSON.stringify(path)});
    db.pragma('busy_timeout = 5');
    db.pragma('synchronous = NORMAL');
    const kv = createKvStore(new SqliteKvBackend(db, { busyTimeoutMs: 60000 }));
    await Promise.all(Array.from({ length: ${writers} }, async (_, w) => {
      for (let done = 0; done < ${steps}; ) {
        if (${JSON.stringify(mode)} === 'increment') { await kv.increment('race', 'ns', 'counter'); done++; continue; }
        if (${JSON.stringify(mode)} === 'merge') { await kv.set('race', 'ns', 'merged', done, { metadata: { [${JSON.stringify(tag)} + '-' + w + '-' + done]: true } }); done++; continue; }
        const current = await kv.get('race', 'ns', 'cas');
        try { await kv.set('race', 'ns', 'cas', current.value + 1, { ifVersion: current.record.version }); done++; }
        catch (error) { if (error.code !== 'KODE_CONFLICT') throw error; await new Promise((r) => setTimeout(r, Math.random() * 3)); }
      }
    }));
    db.close();
    console.log('done');
  `;
  const process_ = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  process_.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  process_.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return new Promise<string>((resolve, reject) =>
    process_.once('exit', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`child exited ${code}: ${output}`)),
    ),
  );
}

async function prepare(): Promise<{ path: string; db: Database.Database }> {
  const path = join(directory, `race-${Math.random().toString(36).slice(2)}.db`);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  const kv = createKvStore(new SqliteKvBackend(db));
  await kv.createInstance({ name: 'race', id: 'race' });
  await kv.set('race', 'ns', 'cas', 0);
  return { path, db };
}

describe('KV on one SQLite file from two processes', () => {
  it('2 processes x 4 writers x 500 increments end at exactly 4,000', async () => {
    const { path, db } = await prepare();
    await Promise.all([child(path, 'increment', 4, 500, 'a'), child(path, 'increment', 4, 500, 'b')]);
    const kv = createKvStore(new SqliteKvBackend(db));
    const record = (await kv.get('race', 'ns', 'counter')).record;
    expect([record?.value, record?.version]).toEqual([4000, 4000]);
    db.close();
  }, 120_000);

  it('2 processes x 4 writers x 500 compare-and-set increments end at exactly 4,000', async () => {
    const { path, db } = await prepare();
    await Promise.all([child(path, 'cas', 4, 500, 'a'), child(path, 'cas', 4, 500, 'b')]);
    const kv = createKvStore(new SqliteKvBackend(db));
    expect((await kv.get('race', 'ns', 'cas')).value).toBe(4000);
    db.close();
  }, 120_000);

  it('2 processes merging different metadata keys into one record lose none', async () => {
    const { path, db } = await prepare();
    await Promise.all([child(path, 'merge', 2, 100, 'a'), child(path, 'merge', 2, 100, 'b')]);
    const kv = createKvStore(new SqliteKvBackend(db));
    const record = (await kv.get('race', 'ns', 'merged')).record;
    expect(Object.keys(record?.metadata ?? {}).length).toBe(400);
    expect(record?.version).toBe(400);
    db.close();
  }, 120_000);
});
