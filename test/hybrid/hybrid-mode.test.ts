import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import type { KodeStore } from '../../src/config/create-extended-store.js';
import { StorageFullError } from '../../src/errors.js';
import { agentDirName } from '../../src/hybrid/agent-path.js';
import { EVENTS_FILE_NAME } from '../../src/hybrid/file-event-log.js';
import type { Timeline } from '../../src/types.js';
import { ChildScript } from '../child/sqlite-child-process.js';
import { describePostgres, dropSchema, requirePostgresUrl, uniqueSchemaName } from '../helpers/postgres.js';
import { SmallDisk, smallDiskUnavailable } from '../helpers/small-disk.js';

/**
 * Hybrid mode when the file system or the database says no (SPEC §4, §8): a
 * rejected append leaves nothing readable and no agent behind, a failed
 * registration in the database neither rejects appends nor hides the agent,
 * and healthCheck tells the truth about the base directory. The conformance
 * suite covers everything else in both modes.
 */

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kode-hybrid-'));
  dirs.push(dir);
  return dir;
}

const entry: Timeline = {
  cursor: 1,
  bookmark: { seq: 1, timestamp: 1 },
  event: { channel: 'progress', type: 'text_chunk', step: 1, delta: 'x' },
};

function numbered(seq: number, padding = 0): Timeline {
  return {
    cursor: seq,
    bookmark: { seq, timestamp: seq },
    event: { channel: 'progress', type: 'text_chunk', step: 1, delta: `event ${seq} ${'p'.repeat(padding)}` },
  };
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

function hybridCases(name: string, open: (baseDir: string) => Promise<KodeStore>): void {
  it(`${name}: an append the file system refuses rejects and leaves no agent behind`, async () => {
    const baseDir = await tempDir();
    const store = await open(baseDir);
    // A regular file where the agent's directory would go: the append cannot succeed.
    await writeFile(join(baseDir, agentDirName('ghost').name), 'in the way');
    await expect(store.appendEvent('ghost', entry)).rejects.toMatchObject({
      code: expect.stringMatching(/^KODE_/),
    });
    expect(await store.exists('ghost')).toBe(false);
    expect(await store.list('ghost')).toEqual([]);
    await store.close();
  });

  it(`${name}: healthCheck reports a base directory that is a file as not writable`, async () => {
    const parent = await tempDir();
    const baseDir = join(parent, 'store');
    await writeFile(baseDir, 'not a directory');
    const store = await open(baseDir);
    const health = await store.healthCheck();
    expect(health.fileSystem.writable).toBe(false);
    expect(health.fileSystem.error).toContain('not a directory');
    expect(health.healthy).toBe(false);
    await store.close();
  });

  it(`${name}: healthCheck is healthy when the base directory does not exist yet but can be created`, async () => {
    const store = await open(join(await tempDir(), 'not', 'yet'));
    expect((await store.healthCheck()).fileSystem).toEqual({ writable: true });
    await store.close();
  });

  describe.skipIf(smallDiskUnavailable !== undefined)(
    `${name}: on a full disk (${smallDiskUnavailable ?? 'a 512 KiB tmpfs'})`,
    () => {
      let disk: SmallDisk;
      let run = 0;
      beforeAll(() => {
        disk = SmallDisk.mount(512 * 1024);
      });
      afterAll(() => disk?.unmount());

      it('rejects appends with StorageFullError, and nothing of them is read back or listed', async () => {
        disk.free();
        const store = await open(join(disk.dir, `store-${++run}`));
        await store.appendEvent('agt-1', numbered(1));
        await store.appendEvent('agt-1', numbered(2));
        disk.fill(8 * 1024);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 100 }, (_, i) => store.appendEvent('agt-1', numbered(10 + i, 400))),
        );
        for (const outcome of outcomes) {
          expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(StorageFullError);
        }
        await expect(store.appendEvent('agt-new', numbered(1, 20_000))).rejects.toMatchObject({
          code: 'KODE_STORAGE_FULL',
          agentId: 'agt-new',
        });
        expect(await collect(store.readEvents('agt-1'))).toEqual([numbered(1), numbered(2)]);
        expect(await store.exists('agt-new')).toBe(false);
        expect(await store.list()).toEqual(['agt-1']);
        expect(await store.checkConsistency('agt-1')).toMatchObject({ consistent: true, issues: [] });

        disk.fill();
        const health = await store.healthCheck();
        expect(health.healthy).toBe(false);
        expect(health.fileSystem.writable).toBe(false);
        expect(health.fileSystem.error).toMatch(/is full/);

        disk.free();
        expect((await store.healthCheck()).healthy).toBe(true);
        await store.appendEvent('agt-new', numbered(3));
        expect(await collect(store.readEvents('agt-new'))).toEqual([numbered(3)]);
        expect(await store.list()).toEqual(['agt-1', 'agt-new']);
        await store.close();
      });
    },
  );
}

describe('hybrid mode on SQLite', () => {
  hybridCases('sqlite', async (baseDir) =>
    new SqliteStore({
      path: join(await tempDir(), 'agents.db'),
      eventStorage: 'file',
      fileStoreBaseDir: baseDir,
    }).open(),
  );
});

describe('hybrid mode on SQLite: the database stays locked while a new agent gets its first appends', () => {
  it('acknowledges the appends (they are on disk), lists the agent, and registers it with a later append', async () => {
    const dir = await tempDir();
    const path = join(dir, 'agents.db');
    const baseDir = join(dir, 'events');
    const store = await new SqliteStore({
      path,
      eventStorage: 'file',
      fileStoreBaseDir: baseDir,
      busyTimeoutMs: 200,
    }).open();
    const holder = ChildScript.start('sqlite-hold-write-lock.ts', [path]);
    try {
      await holder.waitFor('locked');
      // Un-awaited, as the SDK appends: one batch, whose registration waits busyTimeoutMs and fails.
      await Promise.all([1, 2, 3].map((seq) => store.appendEvent('fresh', numbered(seq))));
      expect(await collect(store.readEvents('fresh'))).toEqual([numbered(1), numbered(2), numbered(3)]);
      expect(await store.exists('fresh')).toBe(true);
      expect(await store.list()).toEqual(['fresh']);
      expect(await store.list('fre')).toEqual(['fresh']);
      expect(await store.checkConsistency('fresh')).toMatchObject({ consistent: true });
      holder.send('release');
      await holder.waitFor('released');
      await store.appendEvent('fresh', numbered(4));
      // Registered now: a lost event file is reported, not taken for an agent without events.
      await unlink(join(baseDir, agentDirName('fresh').name, EVENTS_FILE_NAME));
      const check = await store.checkConsistency('fresh');
      expect(check.consistent).toBe(false);
      expect(check.issues.join('\n')).toMatch(/event file, but the file is missing/);
    } finally {
      await holder.kill();
      await store.close();
    }
  });
});

describePostgres('hybrid mode on PostgreSQL', () => {
  const schema = uniqueSchemaName('hybrid');
  afterAll(() => dropSchema(schema));
  hybridCases('postgres', (baseDir) =>
    new PostgresStore({
      connection: requirePostgresUrl(),
      schema,
      eventStorage: 'file',
      fileStoreBaseDir: baseDir,
    }).open(),
  );
});
