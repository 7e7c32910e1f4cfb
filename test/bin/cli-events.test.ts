import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../../adapters/mongo/index.js';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { collect } from '../../conformance/runner/assertions.js';
import { FileEventLog } from '../../src/hybrid/file-event-log.js';
import type { ExtendedStore, Timeline } from '../../src/types.js';
import { describeMongo, useTestDatabase } from '../helpers/mongo.js';
import { describePostgres, useTestSchema } from '../helpers/postgres.js';
import { FIXTURE_DIR, runInProcess } from './cli-support.js';

/**
 * `kode-store events <location> --to file|database` (issue 13): moves every
 * agent's events to the other mode, verified, resumable; afterwards a store in
 * the new mode reads them all and one in the old mode refuses.
 */

function event(agent: string, seq: number): Timeline {
  return {
    cursor: seq,
    bookmark: { seq, timestamp: 1_700_000_000_000 + seq },
    event: {
      channel: seq % 3 === 0 ? 'monitor' : 'progress',
      type: 'text_chunk',
      step: 1,
      delta: `${agent}:${seq} \u0000 é 😀`,
    } as unknown as Timeline['event'],
  };
}

const streams = { a: 50, b: 3 } as const;

interface Place {
  location: string;
  fileStoreBaseDir: string;
  open(mode: 'database' | 'file'): Promise<ExtendedStore>;
}

function eventCommand(place: () => Promise<Place>): void {
  it('moves every agent to files and back, reading the same events each time, and refuses the old mode', async () => {
    const p = await place();
    const database = await p.open('database');
    for (const [agent, count] of Object.entries(streams)) {
      for (let seq = 1; seq <= count; seq++) await database.appendEvent(agent, event(agent, seq));
    }
    await database.saveMessages('c', [{ role: 'user', content: [{ type: 'text', text: 'no events' }] }]);

    const toFiles = await runInProcess(
      ['events', p.location, '--to', 'file', '--file-store-dir', p.fileStoreBaseDir, '--json'],
      {},
    );
    expect(toFiles.stderr).not.toContain('Error');
    expect(toFiles.code).toBe(0);
    const report = JSON.parse(toFiles.stdout) as {
      agents: Array<{ agentId: string; events: number }>;
      events: number;
    };
    expect(report.agents).toEqual([
      { agentId: 'a', events: 50, outcome: 'moved' },
      { agentId: 'b', events: 3, outcome: 'moved' },
    ]);
    const hybrid = await p.open('file');
    for (const [agent, count] of Object.entries(streams)) {
      expect(await collect(hybrid.readEvents(agent))).toEqual(
        Array.from({ length: count }, (_, i) => event(agent, i + 1)),
      );
      expect((await hybrid.checkConsistency(agent)).issues).toEqual([]);
      await expect(collect(database.readEvents(agent))).rejects.toMatchObject({ code: 'KODE_CONFIG' });
    }
    expect(await hybrid.list()).toEqual(['a', 'b', 'c']);

    const back = await runInProcess([
      'events',
      p.location,
      '--to',
      'database',
      '--file-store-dir',
      p.fileStoreBaseDir,
    ]);
    expect(back.code).toBe(0);
    expect(back.stdout).toContain('53 events now in the database');
    for (const [agent, count] of Object.entries(streams)) {
      expect(await collect(database.readEvents(agent))).toEqual(
        Array.from({ length: count }, (_, i) => event(agent, i + 1)),
      );
      await expect(collect(hybrid.readEvents(agent))).rejects.toMatchObject({ code: 'KODE_CONFIG' });
    }
    expect(await readdir(p.fileStoreBaseDir)).toEqual([]);
  });

  it('finishes an interrupted move: a partial copy is replaced, an agent already switched only loses its old copy', async () => {
    const p = await place();
    const database = await p.open('database');
    for (let seq = 1; seq <= 10; seq++) await database.appendEvent('partial', event('partial', seq));
    for (let seq = 1; seq <= 4; seq++) await database.appendEvent('switched', event('switched', seq));
    // A run that stopped midway: 'partial' has two entries in a file and still
    // the database's record; 'switched' was moved and recorded, its rows not yet removed.
    const log = new FileEventLog({ baseDir: p.fileStoreBaseDir });
    await log.append('partial', JSON.stringify(event('partial', 1)));
    await log.append('partial', JSON.stringify(event('partial', 2)));
    await log.close();
    expect(
      (
        await runInProcess([
          'events',
          p.location,
          '--to',
          'file',
          '--file-store-dir',
          p.fileStoreBaseDir,
          '--agents',
          'switched',
        ])
      ).code,
    ).toBe(0);
    const hybrid = await p.open('file');
    const rowsLeft = database as unknown as {
      eventRows(): { insertRows(id: string, lines: string[]): Promise<void> };
    };
    await rowsLeft.eventRows().insertRows('switched', [JSON.stringify(event('switched', 1))]);

    const run = await runInProcess([
      'events',
      p.location,
      '--to',
      'file',
      '--file-store-dir',
      p.fileStoreBaseDir,
      '--json',
    ]);
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout) as { agents: unknown[] }).agents).toEqual([
      { agentId: 'partial', events: 10, outcome: 'moved' },
      { agentId: 'switched', events: 0, outcome: 'finished' },
    ]);
    expect(await collect(hybrid.readEvents('partial'))).toEqual(
      Array.from({ length: 10 }, (_, i) => event('partial', i + 1)),
    );
    expect(await collect(hybrid.readEvents('switched'))).toEqual(
      Array.from({ length: 4 }, (_, i) => event('switched', i + 1)),
    );
    expect((await hybrid.checkConsistency('switched')).issues).toEqual([]);
  });

  it('says when there is nothing to move', async () => {
    const p = await place();
    const database = await p.open('database');
    await database.saveMessages('quiet', []);
    const run = await runInProcess([
      'events',
      p.location,
      '--to',
      'file',
      '--file-store-dir',
      p.fileStoreBaseDir,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('no agent has events to move');
  });
}

describe('kode-store events on SQLite', () => {
  const dirs: string[] = [];
  const stores: ExtendedStore[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  eventCommand(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-events-cli-'));
    dirs.push(dir);
    const path = join(dir, 'agents.db');
    const fileStoreBaseDir = join(dir, 'events');
    return {
      location: `sqlite:${path}`,
      fileStoreBaseDir,
      open: async (mode) => {
        const store = await new SqliteStore({ path, eventStorage: mode, fileStoreBaseDir }).open();
        stores.push(store);
        return store;
      },
    };
  });

  it('refuses a store that keeps no events in files, and a bad mode, with exit 2', async () => {
    expect((await runInProcess(['events', 'memory:', '--to', 'file'])).code).toBe(2);
    expect((await runInProcess(['events', 'sqlite:/tmp/x.db', '--to', 'elsewhere'])).code).toBe(2);
    expect((await runInProcess(['events', 'json:/tmp', '--to', 'file'])).code).toBe(2);
  });
});

describePostgres('kode-store events on PostgreSQL', () => {
  const schemaPlace = useTestSchema('events_cli');
  const stores: ExtendedStore[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  let n = 0;
  eventCommand(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-events-cli-'));
    dirs.push(dir);
    const schema = schemaPlace.also(`${schemaPlace.schema}_${++n}`);
    const fileStoreBaseDir = join(dir, 'events');
    const url = new URL(schemaPlace.url);
    url.searchParams.set('schema', schema);
    return {
      location: url.toString(),
      fileStoreBaseDir,
      open: async (mode) => {
        const store = await new PostgresStore({
          connection: schemaPlace.url,
          schema,
          eventStorage: mode,
          fileStoreBaseDir,
        }).open();
        stores.push(store);
        return store;
      },
    };
  });
});

describeMongo('kode-store events on MongoDB', () => {
  const databasePlace = useTestDatabase('events_cli');
  const stores: ExtendedStore[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  let n = 0;
  eventCommand(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-events-cli-'));
    dirs.push(dir);
    const dbName = databasePlace.also(`${databasePlace.dbName}_${++n}`.slice(0, 63));
    const fileStoreBaseDir = join(dir, 'events');
    // The location names the database in its path, as a user's would.
    const url = new URL(databasePlace.url);
    url.pathname = `/${dbName}`;
    return {
      location: url.toString(),
      fileStoreBaseDir,
      open: async (mode) => {
        const store = new MongoStore({
          uri: databasePlace.url,
          dbName,
          eventStorage: mode,
          fileStoreBaseDir,
        });
        await store.open();
        stores.push(store);
        return store;
      },
    };
  });
});

describe('hybrid mode beside other data', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('refuses to write event files into an SDK JSONStore directory, and changes nothing there', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-jsonstore-guard-'));
    dirs.push(dir);
    const jsonStore = join(dir, 'store');
    await cp(FIXTURE_DIR, jsonStore, { recursive: true });
    const before = await snapshotTree(jsonStore);
    const store = new SqliteStore({
      path: join(dir, 'agents.db'),
      eventStorage: 'file',
      fileStoreBaseDir: jsonStore,
    });
    await expect(store.appendEvent('agt-new', event('agt-new', 1))).rejects.toMatchObject({
      code: 'KODE_CONFIG',
      variable: 'fileStoreBaseDir',
      message: expect.stringContaining('JSONStore'),
    });
    expect(await store.exists('agt-new')).toBe(false);
    await store.close();
    expect(await snapshotTree(jsonStore)).toEqual(before);
    // A directory of our own event files, or an empty one, is fine.
    const ours = new SqliteStore({
      path: join(dir, 'ours.db'),
      eventStorage: 'file',
      fileStoreBaseDir: join(dir, 'ours'),
    });
    await ours.appendEvent('agt-new', event('agt-new', 1));
    await ours.close();
    const again = new SqliteStore({
      path: join(dir, 'ours.db'),
      eventStorage: 'file',
      fileStoreBaseDir: join(dir, 'ours'),
    });
    await again.appendEvent('agt-new', event('agt-new', 2));
    expect(await collect(again.readEvents('agt-new'))).toEqual([event('agt-new', 1), event('agt-new', 2)]);
    await again.close();
  });

  it('the commands read a hybrid store when the environment says so (KODE_STORE_EVENTS, KODE_STORE_PATH)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-cli-hybrid-'));
    dirs.push(dir);
    const path = join(dir, 'agents.db');
    const fileStoreBaseDir = join(dir, 'events');
    const hybrid = new SqliteStore({ path, eventStorage: 'file', fileStoreBaseDir });
    for (let seq = 1; seq <= 7; seq++) await hybrid.appendEvent('filed', event('filed', seq));
    await hybrid.close();
    const env = { KODE_STORE_EVENTS: 'file', KODE_STORE_PATH: fileStoreBaseDir };
    const doctor = await runInProcess(['doctor', `sqlite:${path}`, '--json'], { env });
    expect(doctor.code).toBe(0);
    // Without it, the database-mode store says where the events are and how to read them.
    const blind = await runInProcess(['doctor', `sqlite:${path}`]);
    expect(blind.code).toBe(1);
    expect(blind.stdout + blind.stderr).toContain('KODE_STORE_EVENTS');
  });
});

async function snapshotTree(root: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[path.slice(root.length)] = await readFile(path, 'base64');
  }
  return files;
}
