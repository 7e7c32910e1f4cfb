import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../../adapters/mongo/index.js';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { createExtendedStore } from '../../src/config/create-extended-store.js';
import type { ExtendedStore, Message, Timeline } from '../../src/types.js';
import { tempDir } from '../bin/cli-support.js';
import { describeMongo, useTestDatabase, withAdminClient } from '../helpers/mongo.js';
import { adminQuery, describePostgres, useTestSchema } from '../helpers/postgres.js';

/**
 * The read-only open mode of every backend (`readOnly: true`): reads work,
 * every write rejects with `UnsupportedError` (KODE_UNSUPPORTED) and changes
 * nothing, KV data that was never created reads as empty, and a location
 * without a kode-store is a `ConfigError` naming the setting.
 */

const AGENT = 'agt-ro';
const MESSAGES: Message[] = [{ role: 'user', content: [{ type: 'text', text: 'kept as it is' }] }];
const EVENT: Timeline = {
  cursor: 1,
  bookmark: { seq: 1, timestamp: 1 },
  event: { channel: 'monitor', type: 'state_changed', state: 'READY' },
} as unknown as Timeline;

type KvHolder = ExtendedStore & { kv: import('../../src/kv/kv-types.js').KvStore };

/** Puts one agent (and, if asked, one KV record) into a read-write store. */
async function seed(store: KvHolder, withKv: boolean): Promise<void> {
  await store.saveMessages(AGENT, MESSAGES);
  await store.appendEvent(AGENT, EVENT);
  if (withKv) {
    await store.kv.createInstance({ id: 'settings', name: 'Settings' });
    await store.kv.set('settings', 'ui', 'theme', 'dark');
  }
}

/** Every kind of write, each of which must reject with KODE_UNSUPPORTED. */
const WRITES: Array<[string, (store: KvHolder) => Promise<unknown>]> = [
  ['saveMessages', (s) => s.saveMessages(AGENT, [])],
  ['saveToolCallRecords', (s) => s.saveToolCallRecords(AGENT, [])],
  ['saveTodos', (s) => s.saveTodos(AGENT, { todos: [], version: 1, updatedAt: 1 } as never)],
  ['appendEvent', (s) => s.appendEvent(AGENT, EVENT)],
  ['saveInfo', (s) => s.saveInfo(AGENT, { agentId: AGENT } as never)],
  ['saveSnapshot', (s) => s.saveSnapshot(AGENT, { id: 's1', messages: [], lastSfpIndex: 0 } as never)],
  ['saveHistoryWindow', (s) => s.saveHistoryWindow(AGENT, {} as never)],
  ['saveMediaCache', (s) => s.saveMediaCache(AGENT, [])],
  ['delete', (s) => s.delete(AGENT)],
  ['batchFork', (s) => s.batchFork(AGENT, 1)],
  ['acquireAgentLock', (s) => s.acquireAgentLock(AGENT, 100)],
  ['kv.createInstance', (s) => s.kv.createInstance({ id: 'other', name: 'Other' })],
  ['kv.set', (s) => s.kv.set('settings', 'ui', 'theme', 'light')],
  ['kv.sweepExpired', (s) => s.kv.sweepExpired()],
];

/** Reads work, writes reject, and the data is what `seed` left. */
async function expectReadOnly(store: KvHolder, withKv: boolean): Promise<void> {
  expect(await store.list()).toEqual([AGENT]);
  expect(await store.loadMessages(AGENT)).toEqual(MESSAGES);
  const events: Timeline[] = [];
  for await (const event of store.readEvents(AGENT)) events.push(event);
  expect(events).toHaveLength(1);
  expect((await store.checkConsistency(AGENT)).consistent).toBe(true);
  expect((await store.healthCheck()).healthy).toBe(true);
  for (const [name, write] of WRITES) {
    const error = await write(store).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect({ name, error }).toMatchObject({ name, error: { code: 'KODE_UNSUPPORTED' } });
  }
  expect(await store.loadMessages(AGENT)).toEqual(MESSAGES);
  if (withKv) {
    expect((await store.kv.get('settings', 'ui', 'theme')).value).toBe('dark');
  } else {
    expect(await store.kv.listInstances()).toEqual([]);
  }
}

async function files(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    result[name] = createHash('sha256')
      .update(await readFile(join(dir, name)))
      .digest('hex');
  }
  return result;
}

describe('SqliteStore({ readOnly: true })', () => {
  let scratch: { dir: string; remove: () => Promise<void> };
  beforeAll(async () => {
    scratch = await tempDir('kode-read-only-');
  });
  afterAll(() => scratch.remove());

  for (const withKv of [false, true]) {
    it(`reads, refuses every write and changes no byte (${withKv ? 'with' : 'without'} KV data)`, async () => {
      const db = join(scratch.dir, `store-${withKv}.db`);
      const writer = new SqliteStore(db);
      await seed(writer, withKv);
      await writer.close();
      const before = await files(scratch.dir);
      const store = new SqliteStore({ path: db, readOnly: true });
      try {
        expect(store.readOnly).toBe(true);
        await expectReadOnly(store, withKv);
        expect(await store.checkIntegrity()).toEqual([]);
      } finally {
        await store.close();
      }
      expect(await files(scratch.dir)).toEqual(before);
    });
  }

  it('refuses bad options and locations with a ConfigError naming the setting, creating nothing', async () => {
    const cases: Array<[SqliteStore, string]> = [
      [new SqliteStore({ path: ':memory:', readOnly: true }), 'readOnly'],
      [new SqliteStore({ path: join(scratch.dir, 'x.db'), readOnly: 'yes' as never }), 'readOnly'],
      [new SqliteStore({ path: join(scratch.dir, 'missing', 'x.db'), readOnly: true }), 'path'],
    ];
    for (const [store, variable] of cases) {
      await expect(store.list()).rejects.toMatchObject({ code: 'KODE_CONFIG', variable });
      await store.close();
    }
    expect(existsSync(join(scratch.dir, 'missing'))).toBe(false);
    const db = join(scratch.dir, 'x.db');
    const error = await new SqliteStore(db).checkIntegrity(0).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KODE_VALIDATION' });
  });

  it('createExtendedStore passes readOnly on, and refuses it for memory:', async () => {
    const db = join(scratch.dir, 'factory.db');
    const writer = await createExtendedStore({ type: 'sqlite', dbPath: db });
    await seed(writer, false);
    await writer.close();
    const store = await createExtendedStore({ type: 'sqlite', dbPath: db, readOnly: true });
    await expect(store.saveMessages(AGENT, [])).rejects.toMatchObject({ code: 'KODE_UNSUPPORTED' });
    await store.close();
    await expect(createExtendedStore({ type: 'memory', readOnly: true })).rejects.toMatchObject({
      code: 'KODE_CONFIG',
      variable: 'readOnly',
    });
    await expect(
      createExtendedStore({ type: 'sqlite', dbPath: db, readOnly: 1 as never }),
    ).rejects.toMatchObject({ code: 'KODE_CONFIG', variable: 'readOnly' });
  });
});

describePostgres('PostgresStore({ readOnly: true })', () => {
  const place = useTestSchema('readonly');
  const typo = place.also(`${place.schema}_typo`);

  /** This schema's tables and indexes. */
  async function catalogue(): Promise<string[]> {
    const rows = await adminQuery<{ entry: string }>(
      `SELECT n.nspname || '.' || coalesce(c.relname, '') AS entry FROM pg_namespace n
         LEFT JOIN pg_class c ON c.relnamespace = n.oid WHERE n.nspname IN ($1, $2) ORDER BY 1`,
      [place.schema, typo],
    );
    return rows.map((row) => row.entry);
  }

  for (const withKv of [false, true]) {
    it(`reads, refuses every write and creates nothing (${withKv ? 'with' : 'without'} KV data)`, async () => {
      const writer = new PostgresStore({ connection: place.url, schema: place.schema });
      await writer.delete(AGENT);
      await seed(writer, withKv);
      await writer.close();
      const before = await catalogue();
      const store = new PostgresStore({ connection: place.url, schema: place.schema, readOnly: true });
      try {
        await expectReadOnly(store, withKv);
      } finally {
        await store.close();
      }
      expect(await catalogue()).toEqual(before);
    });
  }

  it('refuses a schema without a store (ConfigError naming the schema) and creates no schema', async () => {
    const store = new PostgresStore({ connection: place.url, schema: typo, readOnly: true });
    await expect(store.list()).rejects.toMatchObject({ code: 'KODE_CONFIG', variable: 'schema' });
    await expect(store.kv.listInstances()).rejects.toMatchObject({ code: 'KODE_CONFIG' });
    await store.close();
    expect((await catalogue()).some((entry) => entry.startsWith(`${typo}.`))).toBe(false);
  });
});

describeMongo('MongoStore({ readOnly: true })', () => {
  const place = useTestDatabase('readonly');
  const typo = place.also(`${place.dbName.slice(0, 50)}_typo`);

  async function collections(dbName: string): Promise<string[]> {
    return withAdminClient(async (client) =>
      (await client.db(dbName).listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).sort(),
    );
  }

  it('reads, refuses every write and creates no collection (KV never used)', async () => {
    const writer = new MongoStore({ uri: place.url, dbName: place.dbName });
    await seed(writer, false);
    await writer.close();
    await withAdminClient((client) =>
      client
        .db(place.dbName)
        .collection('kode_kv_records')
        .drop()
        .catch(() => false),
    );
    await withAdminClient((client) =>
      client
        .db(place.dbName)
        .collection('kode_kv_instances')
        .drop()
        .catch(() => false),
    );
    const before = await collections(place.dbName);
    const store = new MongoStore({ uri: place.url, dbName: place.dbName, readOnly: true });
    try {
      await expectReadOnly(store, false);
    } finally {
      await store.close();
    }
    expect(await collections(place.dbName)).toEqual(before);
  });

  it('refuses a database without a store (ConfigError naming dbName)', async () => {
    const store = new MongoStore({ uri: place.url, dbName: typo, readOnly: true });
    await expect(store.list()).rejects.toMatchObject({ code: 'KODE_CONFIG', variable: 'dbName' });
    await store.close();
    expect(await collections(typo)).toEqual([]);
  });
});
