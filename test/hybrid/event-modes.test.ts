import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../../adapters/mongo/index.js';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { collect } from '../../conformance/runner/assertions.js';
import type { ExtendedStore, Timeline } from '../../src/types.js';
import { describeMongo, useTestDatabase } from '../helpers/mongo.js';
import { describePostgres, useTestSchema } from '../helpers/postgres.js';

/**
 * SPEC §4: the database records where each agent's events live; a store
 * opened in the other mode never silently shows fewer events. Here it
 * refuses, with a ConfigError naming KODE_STORE_EVENTS and the command that
 * moves events, and checkConsistency reports the agent.
 */

function event(seq: number): Timeline {
  return {
    cursor: seq,
    bookmark: { seq, timestamp: 1_700_000_000_000 + seq },
    event: {
      channel: 'progress',
      type: 'text_chunk',
      step: 1,
      delta: `d${seq}`,
    } as unknown as Timeline['event'],
  };
}

const mismatch = {
  code: 'KODE_CONFIG',
  variable: 'KODE_STORE_EVENTS',
  message: expect.stringContaining('kode-store events'),
};

type Opener = (mode: 'database' | 'file') => Promise<ExtendedStore>;

/** `place()` gives each test a new database (and event directory) that both modes open. */
function modeRules(place: () => Promise<Opener>): void {
  it('a database-mode store refuses to read, append to or delete an agent whose events are in files', async () => {
    const open = await place();
    const hybrid = await open('file');
    await hybrid.saveInfo('filed', {
      agentId: 'filed',
      templateId: 't',
      createdAt: '2026-01-01T00:00:00.000Z',
      lineage: [],
      configVersion: 'v',
      messageCount: 0,
      lastSfpIndex: -1,
    });
    for (let seq = 1; seq <= 3; seq++) await hybrid.appendEvent('filed', event(seq));
    const database = await open('database');
    expect(await database.exists('filed')).toBe(true);
    await expect(collect(database.readEvents('filed'))).rejects.toMatchObject(mismatch);
    await expect(database.appendEvent('filed', event(4))).rejects.toMatchObject(mismatch);
    await expect(database.delete('filed')).rejects.toMatchObject(mismatch);
    const report = await database.checkConsistency('filed');
    expect(report.consistent).toBe(false);
    expect(report.issues.join('\n')).toContain('hybrid mode');
    // Nothing was lost or split: the hybrid store still reads exactly its three events.
    expect((await collect(hybrid.readEvents('filed'))).map((e) => e.bookmark.seq)).toEqual([1, 2, 3]);
    // Other agents are unaffected.
    await database.appendEvent('plain', event(1));
    expect(await collect(database.readEvents('plain'))).toEqual([event(1)]);
  });

  it('a hybrid store refuses to read or append to an agent whose events are in the database, and deletes it whole', async () => {
    const open = await place();
    const database = await open('database');
    for (let seq = 1; seq <= 38; seq++) await database.appendEvent('rows', event(seq));
    const hybrid = await open('file');
    expect(await hybrid.exists('rows')).toBe(true);
    expect(await hybrid.list('rows')).toEqual(['rows']);
    // Before: the hybrid store read 1 of 38 events here (the one it appended to a new file).
    await expect(collect(hybrid.readEvents('rows'))).rejects.toMatchObject(mismatch);
    await expect(hybrid.appendEvent('rows', event(39))).rejects.toMatchObject(mismatch);
    const report = await hybrid.checkConsistency('rows');
    expect(report.consistent).toBe(false);
    expect(report.issues.join('\n')).toContain('database mode');
    expect((await collect(database.readEvents('rows'))).map((e) => e.bookmark.seq)).toEqual(
      Array.from({ length: 38 }, (_, i) => i + 1),
    );
    await hybrid.delete('rows');
    expect(await database.exists('rows')).toBe(false);
    expect(await collect(database.readEvents('rows'))).toEqual([]);
  });
}

describe('event modes on SQLite', () => {
  const dirs: string[] = [];
  const stores: ExtendedStore[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  modeRules(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-modes-'));
    dirs.push(dir);
    return async (mode) => {
      const store = await new SqliteStore({
        path: join(dir, 'agents.db'),
        eventStorage: mode,
        fileStoreBaseDir: mode === 'file' ? join(dir, 'events') : undefined,
      }).open();
      stores.push(store);
      return store;
    };
  });
});

describePostgres('event modes on PostgreSQL', () => {
  const place = useTestSchema('modes');
  const stores: ExtendedStore[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  let n = 0;
  modeRules(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-modes-'));
    dirs.push(dir);
    const schema = place.also(`${place.schema}_${++n}`);
    return async (mode) => {
      const store = await new PostgresStore({
        connection: place.url,
        schema,
        eventStorage: mode,
        fileStoreBaseDir: mode === 'file' ? join(dir, 'events') : undefined,
      }).open();
      stores.push(store);
      return store;
    };
  });
});

describeMongo('event modes on MongoDB', () => {
  const place = useTestDatabase('modes');
  const stores: ExtendedStore[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  let n = 0;
  modeRules(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-modes-'));
    dirs.push(dir);
    // Each test its own collection prefix: a new store in the same database.
    const collectionPrefix = `m${++n}_`;
    return async (mode) => {
      const store = await new MongoStore({
        uri: place.url,
        dbName: place.dbName,
        collectionPrefix,
        eventStorage: mode,
        fileStoreBaseDir: mode === 'file' ? join(dir, 'events') : undefined,
      }).open();
      stores.push(store);
      return store;
    };
  });
});
