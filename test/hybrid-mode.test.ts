import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../adapters/postgres/index.js';
import { SqliteStore } from '../adapters/sqlite/index.js';
import { agentDirName } from '../src/agent-path.js';
import type { KodeStore } from '../src/create-extended-store.js';
import type { Timeline } from '../src/types.js';
import { describePostgres, dropSchema, requirePostgresUrl, uniqueSchemaName } from './helpers/postgres.js';

/**
 * Hybrid mode when the file system says no (SPEC §4, §8): a failed append
 * leaves no agent behind, and healthCheck tells the truth about the base
 * directory. The conformance suite covers everything else in both modes.
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
