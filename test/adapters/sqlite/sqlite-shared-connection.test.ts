import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteKvBackend, SqliteStore } from '../../../adapters/sqlite/index.js';
import { createKvStore } from '../../../src/kv/kv-store.js';
import { tempDir } from '../../bin/cli-support.js';

/**
 * The SQLite adapter has one connection layer (`SqliteConnection`): a
 * store's agent backend and its `kv` run on the same one, and a KV backend
 * on a caller's database runs on one that leaves the database as the caller
 * set it up.
 */

let scratch: { dir: string; remove: () => Promise<void> };
beforeAll(async () => {
  scratch = await tempDir('kode-sqlite-shared-');
});
afterAll(() => scratch.remove());

function tables(db: Database.Database): string[] {
  return (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{
      name: string;
    }>
  ).map((row) => row.name);
}

describe('KV on a database the caller opened', () => {
  it('installs only the kv component, changes no pragma, and leaves the database open', async () => {
    const db = new Database(join(scratch.dir, 'caller.db'));
    const kv = createKvStore(new SqliteKvBackend(db));
    const { id } = await kv.createInstance({ name: 'n' });
    await kv.set(id, 'ns', 'k', 1);
    expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
    expect(db.pragma('auto_vacuum', { simple: true })).toBe(0);
    expect(tables(db)).not.toContain('agents');
    expect(db.prepare('SELECT component FROM kode_schema_version').all()).toEqual([{ component: 'kv' }]);
    expect(db.open).toBe(true);
    db.close();
  });
});

describe("a store's kv", () => {
  it("runs on the store's connection: waits for another's lock with the agent writes, records kv beside agent, closes with it", async () => {
    const path = join(scratch.dir, 'store.db');
    const store = new SqliteStore({ path });
    await store.saveTodos('agent', { todos: [], version: 1, updatedAt: 1 } as never);
    const { id } = await store.kv.createInstance({ name: 'n' });
    // Another connection holds the write lock: a KV write and an agent write
    // queued together both wait for it (busy retries), neither fails.
    const holder = new Database(path);
    holder.exec('BEGIN IMMEDIATE');
    const writes = Promise.all([
      store.kv.set(id, 'ns', 'k', 'v'),
      store.saveTodos('agent', { todos: [], version: 2, updatedAt: 2 } as never),
    ]);
    await new Promise((resume) => setTimeout(resume, 50));
    const reader = new Database(path, { readonly: true });
    expect(reader.prepare('SELECT count(*) AS n FROM kode_kv_records').get()).toEqual({ n: 0 });
    holder.exec('COMMIT');
    holder.close();
    await writes;
    expect(reader.prepare('SELECT count(*) AS n FROM kode_kv_records').get()).toEqual({ n: 1 });
    expect(reader.prepare('SELECT component FROM kode_schema_version ORDER BY component').all()).toEqual([
      { component: 'agent' },
      { component: 'kv' },
    ]);
    reader.close();
    await store.close();
    // Closed with the store: the kv is refused, not run on a connection of its own.
    await expect(store.kv.get(id, 'ns', 'k')).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
  });
});
