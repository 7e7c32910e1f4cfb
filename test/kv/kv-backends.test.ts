import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { POSTGRES_KV_SCHEMA_VERSION, PostgresKvBackend } from '../../adapters/postgres/postgres-kv.js';
import { SqliteKvBackend } from '../../adapters/sqlite/sqlite-kv.js';
import { StoreOperations } from '../../src/agent/store-operations.js';
import { createDataStore } from '../../src/kv/data-store.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import { MemoryKvBackend } from '../../src/kv/memory-kv.js';
import { describePostgres, useTestSchema } from '../helpers/postgres.js';

const directory = mkdtempSync(join(tmpdir(), 'kode-kv-backends-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;

function sqliteFile(): { path: string; open(): Database.Database } {
  const path = join(directory, `kv-${++files}.db`);
  return {
    path,
    open() {
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5');
      return db;
    },
  };
}

describe('createKvStore', () => {
  it("builds a memory store without arguments, and returns a store's own kv when given the store", async () => {
    const kv = createKvStore();
    expect(kv.backend).toBe('memory');
    expect(createKvStore({ kv })).toBe(kv);
  });

  it('refuses anything that is neither a backend nor a store with kv (ValidationError)', () => {
    expect(() => createKvStore({} as never)).toThrow(TypeError);
    expect(() => createKvStore('sqlite' as never)).toThrow(/KvBackend/);
  });

  it("runs in the owning store's operation frame: counted in its metrics, refused once it is closed", async () => {
    const operations = new StoreOperations('memory');
    const kv = createKvStore(new MemoryKvBackend(), { operations });
    const { id } = await kv.createInstance({ name: 'n' });
    await kv.set(id, 'ns', 'k', 1);
    await kv.get(id, 'ns', 'k');
    expect(operations.metrics.operations()).toMatchObject({ saves: 2, loads: 1 });
    operations.markClosed();
    await expect(kv.get(id, 'ns', 'k')).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
  });
});

describe('SQLite KV backend', () => {
  it("records its schema as component kv beside the agent store's, and opens an existing database again", async () => {
    const file = sqliteFile();
    const db = file.open();
    db.exec('CREATE TABLE kode_schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
    db.prepare("INSERT INTO kode_schema_version VALUES ('agent', 1)").run();
    const kv = createKvStore(new SqliteKvBackend(db));
    await kv.set((await kv.createInstance({ name: 'n', id: 'i' })).id, 'ns', 'k', 'kept');
    expect(db.prepare('SELECT component, version FROM kode_schema_version ORDER BY component').all()).toEqual(
      [
        { component: 'agent', version: 1 },
        { component: 'kv', version: 1 },
      ],
    );
    const again = createKvStore(new SqliteKvBackend(file.open()));
    expect((await again.get('i', 'ns', 'k')).value).toBe('kept');
    db.close();
  });

  it('refuses a database whose kv schema is newer than this code, and retries the open on the next call', async () => {
    const db = sqliteFile().open();
    db.exec('CREATE TABLE kode_schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
    db.prepare("INSERT INTO kode_schema_version VALUES ('kv', 99)").run();
    const kv = createKvStore(new SqliteKvBackend(db));
    await expect(kv.listInstances()).rejects.toThrow(/version 99, newer than this kode-store knows/);
    db.prepare("UPDATE kode_schema_version SET version = 1 WHERE component = 'kv'").run();
    db.exec(
      'CREATE TABLE kode_kv_instances (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)',
    );
    expect(await kv.listInstances()).toEqual([]);
    db.close();
  });

  it('takes the database from a function, for a store that opens it lazily', async () => {
    const db = sqliteFile().open();
    const kv = createKvStore(new SqliteKvBackend(async () => db));
    expect((await kv.createInstance({ name: 'lazy' })).name).toBe('lazy');
    db.close();
  });

  it("waits for another connection's write lock without freezing the event loop, then writes", async () => {
    const file = sqliteFile();
    const holder = file.open();
    const kv = createKvStore(new SqliteKvBackend(file.open()));
    const { id } = await kv.createInstance({ name: 'n' });
    holder.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const writing = kv.set(id, 'ns', 'k', 'after the lock');
    let settled = false;
    void writing.finally(() => {
      settled = true;
    });
    while (ticks < 20) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(settled).toBe(false);
    holder.exec('COMMIT');
    await writing;
    clearInterval(timer);
    expect((await kv.get(id, 'ns', 'k')).value).toBe('after the lock');
    holder.close();
  });

  it("gives up after busyTimeoutMs with an error that keeps SQLite's code, writing nothing", async () => {
    const file = sqliteFile();
    const holder = file.open();
    const kv = createKvStore(new SqliteKvBackend(file.open(), { busyTimeoutMs: 30 }));
    const { id } = await kv.createInstance({ name: 'n' });
    holder.exec('BEGIN IMMEDIATE');
    const error = await kv.set(id, 'ns', 'k', 1).then(
      () => undefined,
      (e: Error & { code?: string; cause?: { code?: string } }) => e,
    );
    holder.exec('ROLLBACK');
    expect(error?.code).toBe('KODE_BUSY');
    expect(error?.message).toMatch(/sqlite\.kv\.set: the database stayed locked/);
    expect(error?.cause?.code).toMatch(/^SQLITE_BUSY/);
    expect((await kv.get(id, 'ns', 'k')).exists).toBe(false);
    holder.close();
  });

  it('reports a closed database as a rejected promise, not a crash', async () => {
    const db = sqliteFile().open();
    const kv = createKvStore(new SqliteKvBackend(db));
    await kv.listInstances();
    db.close();
    await expect(kv.listInstances()).rejects.toMatchObject({ code: 'KODE_STORE_ERROR', backend: 'sqlite' });
  });
});

describePostgres('PostgreSQL KV backend', () => {
  const target = useTestSchema('kv_backend');
  const odd = target.also(`${target.schema}_"quoted" name`);
  const pools: pg.Pool[] = [];
  const pool = () => {
    const created = new pg.Pool({ connectionString: target.url, max: 3 });
    pools.push(created);
    return created;
  };
  afterAll(async () => {
    for (const p of pools) await p.end();
  });

  it('creates its schema, records component kv, and opens it again', async () => {
    const kv = createKvStore(new PostgresKvBackend(pool(), { schema: target.schema }));
    await kv.set((await kv.createInstance({ name: 'n', id: 'i' })).id, 'ns', 'k', 'kept');
    const rows = await pool().query(
      `SELECT component, version FROM ${pg.escapeIdentifier(target.schema)}.kode_schema_version WHERE component = 'kv'`,
    );
    expect(rows.rows).toEqual([{ component: 'kv', version: POSTGRES_KV_SCHEMA_VERSION }]);
    const again = createKvStore(new PostgresKvBackend(async () => pool(), { schema: target.schema }));
    expect((await again.get('i', 'ns', 'k')).value).toBe('kept');
  });

  it('answers queries over strings jsonb cannot hold (NUL, lone surrogates) like every backend, cursors included', async () => {
    const kv = createKvStore(new PostgresKvBackend(pool(), { schema: target.schema }));
    const { id } = await kv.createInstance({ name: 'odd strings' });
    const strings = ['\ue000', 'b', 'a\u0001', '\ud800x', 'a', 'a\u0000b'];
    for (const [i, s] of strings.entries()) await kv.set(id, 'ns', `k${i}`, { s });
    const query = { from: { instance: id }, orderBy: { field: 'value.s' }, select: ['value' as const] };
    const expected = ['a', 'a\u0000b', 'a\u0001', 'b', '\ud800x', '\ue000'];
    expect((await kv.query(query)).records.map((r) => (r.value as { s: string }).s)).toEqual(expected);
    const walked: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await kv.query({ ...query, limit: 1, ...(cursor ? { cursor } : {}) });
      walked.push(...page.records.map((r) => (r.value as { s: string }).s));
      cursor = page.nextCursor;
    } while (cursor);
    expect(walked).toEqual(expected);
    const found = await kv.query({
      from: { instance: id },
      where: [{ field: 'value.s', operator: 'startsWith', value: 'a' }],
    });
    expect(found.total).toBe(3);
  });

  it('works in a schema whose name needs quoting', async () => {
    const kv = createKvStore(new PostgresKvBackend(pool(), { schema: odd }));
    const { id } = await kv.createInstance({ name: 'n' });
    expect((await kv.set(id, 'ns', 'k', 1)).version).toBe(1);
  });

  it('refuses a schema whose kv version is newer than this code (ConfigError)', async () => {
    const schema = target.also(`${target.schema}_newer`);
    const admin = pool();
    await admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
    await admin.query(
      `CREATE TABLE ${pg.escapeIdentifier(schema)}.kode_schema_version (component text PRIMARY KEY, version integer NOT NULL)`,
    );
    await admin.query(`INSERT INTO ${pg.escapeIdentifier(schema)}.kode_schema_version VALUES ('kv', 99)`);
    const kv = createKvStore(new PostgresKvBackend(admin, { schema }));
    await expect(kv.listInstances()).rejects.toMatchObject({ code: 'KODE_CONFIG', variable: 'schema' });
  });

  it('refuses an unusable schema name at construction (ConfigError)', () => {
    expect(() => new PostgresKvBackend(pool(), { schema: '' })).toThrow(/schema/);
    expect(() => new PostgresKvBackend(pool(), { schema: 'a\u0000b' })).toThrow(/NUL/);
  });

  it('reports an unreachable server as a ConnectionError without credentials, and recovers on a later call', async () => {
    const unreachable = new pg.Pool({
      connectionString: 'postgres://kode:s3cret@127.0.0.1:1/test',
      connectionTimeoutMillis: 2000,
    });
    pools.push(unreachable);
    let source: pg.Pool = unreachable;
    const kv = createKvStore(new PostgresKvBackend(async () => source, { schema: target.schema }));
    const error = await kv.listInstances().then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(error?.code).toBe('KODE_CONNECTION');
    expect(error?.message).not.toContain('s3cret');
    source = pool();
    expect(Array.isArray(await kv.listInstances())).toBe(true);
  });
});

describe('KV messages and counters at the edges', () => {
  it('names userId and agentName in DataStore errors', () => {
    const kv = createKvStore();
    expect(() => createDataStore(kv, { userId: '', agentName: 'a' })).toThrow(/userId must not be empty/);
    expect(() => createDataStore(kv, { userId: 'u', agentName: '' })).toThrow(/agentName must not be empty/);
  });

  it('a DataStore proxy has no property, own or inherited, that reaches the KV store holding every user', async () => {
    const kv = createKvStore();
    await kv.set('kode-datastore:bob', 'default', 'secret', 'bob only', { autoCreateInstance: true });
    const data = createDataStore(kv, { userId: 'alice', agentName: 'agent' });
    for (const proxy of [data, data.useNamespace('other')]) {
      const reachable = new Set<unknown>();
      for (let target: object | null = proxy; target !== null; target = Object.getPrototypeOf(target)) {
        for (const name of Reflect.ownKeys(target)) {
          const descriptor = Object.getOwnPropertyDescriptor(target, name);
          if (descriptor && 'value' in descriptor) reachable.add(descriptor.value);
        }
      }
      expect(reachable.has(kv)).toBe(false);
      expect((proxy as unknown as { kv?: unknown }).kv).toBeUndefined();
    }
    expect(await data.get('secret')).toBeUndefined();
  });

  it('suggests autoCreateInstance only to writes that take it', async () => {
    const kv = createKvStore();
    await expect(kv.set('nope', 'ns', 'k', 1)).rejects.toThrow(/autoCreateInstance/);
    await expect(kv.delete('nope', 'ns', 'k')).rejects.toMatchObject({ code: 'KODE_NOT_FOUND' });
    await expect(kv.delete('nope', 'ns', 'k')).rejects.not.toThrow(/autoCreateInstance/);
  });

  it('refuses an increment past 2^53 - 1 instead of losing counts, and changes nothing', async () => {
    const kv = createKvStore();
    await kv.set('i', 'ns', 'n', Number.MAX_SAFE_INTEGER - 1, { autoCreateInstance: true });
    expect((await kv.increment('i', 'ns', 'n')).value).toBe(Number.MAX_SAFE_INTEGER);
    await expect(kv.increment('i', 'ns', 'n')).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    expect((await kv.get('i', 'ns', 'n')).value).toBe(Number.MAX_SAFE_INTEGER);
  });
});
