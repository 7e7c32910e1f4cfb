import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { MemoryStore } from '../../src/agent/memory-store.js';
import type { KodeStore } from '../../src/config/create-extended-store.js';
import { describePostgres, dropSchema, requirePostgresUrl, uniqueSchemaName } from '../helpers/postgres.js';

/**
 * Every store exposes its KV API as `store.kv` (SPEC §1): in the same
 * database, counted in the store's metrics, closed with the store, and shared
 * by two store objects over the same data.
 */

interface Backend {
  open(): Promise<KodeStore>;
  peer(store: KodeStore): Promise<KodeStore>;
}

function kvWiringCases(name: string, backend: () => Backend): void {
  it(`${name}: store.kv keeps values in the store's own database, seen by a second store object`, async () => {
    const { open, peer } = backend();
    const store = await open();
    const instance = await store.kv.createInstance({ name: 'wiring' });
    await store.kv.set(instance.id, 'ns', 'k', { n: 1 });
    const other = await peer(store);
    expect((await other.kv.get(instance.id, 'ns', 'k')).value).toEqual({ n: 1 });
    await other.close();
    await store.close();
  });

  it(`${name}: KV operations count in getMetrics()`, async () => {
    const store = await backend().open();
    const before = (await store.getMetrics()).operations;
    const instance = await store.kv.createInstance({ name: 'metrics' });
    await store.kv.set(instance.id, 'ns', 'k', 1);
    await store.kv.get(instance.id, 'ns', 'k');
    const after = (await store.getMetrics()).operations;
    expect(after.saves - before.saves).toBe(2);
    expect(after.loads - before.loads).toBeGreaterThanOrEqual(1);
    await store.close();
  });

  it(`${name}: KV calls after close() reject with StoreClosedError`, async () => {
    const store = await backend().open();
    const instance = await store.kv.createInstance({ name: 'closing' });
    await store.close();
    await expect(store.kv.get(instance.id, 'ns', 'k')).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
    await expect(store.open()).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
  });
}

describe('store.kv', () => {
  kvWiringCases('memory', () => ({
    open: async () => new MemoryStore().open(),
    peer: async (store) => (store as MemoryStore).peer(),
  }));

  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  kvWiringCases('sqlite', () => ({
    open: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'kode-kv-wiring-'));
      dirs.push(dir);
      return new SqliteStore(join(dir, 'agents.db')).open();
    },
    peer: async (store) => new SqliteStore((store as SqliteStore).path).open(),
  }));
});

describePostgres('store.kv on PostgreSQL', () => {
  const schema = uniqueSchemaName('kvwiring');
  afterAll(() => dropSchema(schema));
  kvWiringCases('postgres', () => ({
    open: () => new PostgresStore({ connection: requirePostgresUrl(), schema }).open(),
    peer: (store) =>
      new PostgresStore({ connection: requirePostgresUrl(), schema: (store as PostgresStore).schema }).open(),
  }));
});
