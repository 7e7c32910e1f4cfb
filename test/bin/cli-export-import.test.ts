import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { compareAgents, countAgent } from '../../bin/agent-copy.js';
import { compareKv } from '../../bin/kv-copy.js';
import { MemoryStore } from '../../src/agent/memory-store.js';
import { JsonStoreReader } from '../../src/transfer/json-store-reader.js';
import { describePostgres, dropSchema, requirePostgresUrl, uniqueSchemaName } from '../helpers/postgres.js';
import { FIXTURE_DIR, FIXTURE_LOCATION, runInProcess, spawnCli, tempDir } from './cli-support.js';

const COMPRESS = 'agt-01M81Y5ZGM5G6FSHPDFFH1SCM2';

let scratch: { dir: string; remove: () => Promise<void> };
let db: string;
let exported: string;

beforeAll(async () => {
  scratch = await tempDir('kode-cli-export-');
  db = join(scratch.dir, 'source.db');
  expect((await runInProcess(['migrate', '--from', FIXTURE_LOCATION, '--to', `sqlite:${db}`])).code).toBe(0);
  const run = await spawnCli(['export', `sqlite:${db}`]);
  expect(run.code).toBe(0);
  exported = run.stdout;
});
afterAll(() => scratch.remove());

describe('export / import', () => {
  it('writes a versioned header, one record per line and an end line', () => {
    const lines = exported.trimEnd().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      format: 'kode-store-export',
      version: 1,
      source: 'sqlite',
    });
    expect(JSON.parse(lines.at(-1)!)).toEqual({ type: 'end', agents: 11, kvInstances: 0, kvRecords: 0 });
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  });

  it('round-trips every agent exactly into another backend (sqlite → memory)', async () => {
    const memory = new MemoryStore();
    const run = await runInProcess(['import', 'memory:'], { stdin: exported, stores: { 'memory:': memory } });
    expect(run.code).toBe(0);
    const source = new SqliteStore(db);
    try {
      for (const agentId of await source.list())
        expect(await compareAgents(source, memory, agentId)).toEqual([]);
      expect(await memory.list()).toEqual(await source.list());
    } finally {
      await source.close();
    }
    // Importing the same file again leaves one copy of everything.
    const again = await runInProcess(['import', 'memory:', '--json'], {
      stdin: exported,
      stores: { 'memory:': memory },
    });
    expect(again.code).toBe(0);
    const report = JSON.parse(again.stdout) as { agents: Array<{ outcome: string }> };
    expect(new Set(report.agents.map((a) => a.outcome))).toEqual(new Set(['unchanged']));
    expect((await countAgent(memory, COMPRESS)).events).toBe(261);
  });

  it('exports a json: directory and --agents limits it by prefix (forks included)', async () => {
    const file = join(scratch.dir, 'assistant.jsonl');
    const run = await runInProcess([
      'export',
      FIXTURE_LOCATION,
      '--agents',
      'agt-01M81Y5YTSB07WSKPHZV3ZCPY1',
      '-o',
      file,
    ]);
    expect(run.code).toBe(0);
    const memory = new MemoryStore();
    const imported = await runInProcess(['import', 'memory:', '--input', file], {
      stores: { 'memory:': memory },
    });
    expect(imported.code).toBe(0);
    expect(await memory.list()).toEqual([
      'agt-01M81Y5YTSB07WSKPHZV3ZCPY1',
      'agt-01M81Y5YTSB07WSKPHZV3ZCPY1/fork-1795361537133',
      'agt-01M81Y5YTSB07WSKPHZV3ZCPY1/fork-1795361537133/fork-1795361537197',
    ]);
    const reader = new JsonStoreReader(FIXTURE_DIR);
    for (const agentId of await memory.list())
      expect(await compareAgents(reader, memory, agentId)).toEqual([]);
  });

  it('round-trips KV data (instances, namespaces, keys, values, metadata, expiry, actor)', async () => {
    const source = new MemoryStore();
    await source.kv.createInstance({ id: 'users-1', name: 'Users', description: 'per-user data' });
    await source.kv.set(
      'users-1',
      'prefs',
      'theme',
      { dark: true, zero: 0, empty: '', list: [] },
      {
        metadata: { origin: 'cli-test' },
        actor: 'agent-a',
      },
    );
    await source.kv.set('users-1', 'prefs', 'emoji 😀', 'ü\u0000');
    await source.kv.set('users-1', 'sessions', 's1', [1, null, false], { ttlMs: 3_600_000 });
    await source.kv.createInstance({ id: 'empty', name: 'Nothing yet' });
    await source.saveMessages('agt-kv', [{ role: 'user', content: [{ type: 'text', text: 'x' }] }]);

    const file = join(scratch.dir, 'kv.jsonl');
    const stores = { 'memory:source': source, 'memory:target': new MemoryStore() };
    expect((await runInProcess(['export', 'memory:source', '-o', file], { stores })).code).toBe(0);
    const text = await readFile(file, 'utf8');
    expect(JSON.parse(text.trimEnd().split('\n').at(-1)!)).toEqual({
      type: 'end',
      agents: 1,
      kvInstances: 2,
      kvRecords: 3,
    });
    const run = await runInProcess(['import', 'memory:target', '-i', file], { stores });
    expect(run.code).toBe(0);
    const target = stores['memory:target'];
    expect(await compareKv(source.kv, target.kv)).toEqual([]);
    expect(await target.kv.listInstances()).toHaveLength(2);
    const theme = await target.kv.get('users-1', 'prefs', 'theme');
    expect(theme.record).toMatchObject({
      value: { dark: true, zero: 0, empty: '', list: [] },
      metadata: { origin: 'cli-test' },
      updatedBy: 'agent-a',
    });
    expect((await target.kv.get('users-1', 'sessions', 's1')).record?.expiresAt).toBe(
      (await source.kv.get('users-1', 'sessions', 's1')).record?.expiresAt,
    );
    // A second import changes nothing (versions do not move).
    expect((await runInProcess(['import', 'memory:target', '-i', file], { stores })).code).toBe(0);
    expect(theme.record?.version).toBe((await target.kv.get('users-1', 'prefs', 'theme')).record?.version);
    // And migrate carries the same KV data store to store.
    const migrated = new MemoryStore();
    const copy = await runInProcess(
      ['migrate', '--from', 'memory:source', '--to', 'memory:copy', '--verify', '--json'],
      {
        stores: { ...stores, 'memory:copy': migrated },
      },
    );
    expect(copy.code).toBe(0);
    expect(JSON.parse(copy.stdout).kv).toMatchObject({
      copied: true,
      instances: 2,
      records: 3,
      differences: [],
    });
    expect(await compareKv(source.kv, migrated.kv)).toEqual([]);
  });

  it('refuses KV lines when the destination has no KV API (exit 2), rather than dropping them', async () => {
    const source = new MemoryStore();
    await source.kv.set('i', 'n', 'k', 1, { autoCreateInstance: true });
    // A custom store written against the SDK's interface has no `kv`.
    const withoutKv = Object.defineProperty(new MemoryStore(), 'kv', { value: undefined });
    const stores = { 'memory:source': source, 'memory:plain': withoutKv };
    const exportRun = await runInProcess(['export', 'memory:source'], { stores });
    const run = await runInProcess(['import', 'memory:plain'], { stdin: exportRun.stdout, stores });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/has no KV API/);
  });

  it('refuses a truncated file whole (exit 1): nothing is imported and the destination is not created', async () => {
    const lines = exported.split('\n');
    const cut = lines.slice(0, Math.floor(lines.length / 2)).join('\n');
    const destination = join(scratch.dir, 'never-created', 'import.db');
    const run = await spawnCli(['import', `sqlite:${destination}`], { stdin: cut });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/stdin: .*truncated/);
    expect(run.stderr).toMatch(/nothing was imported/);
    expect(existsSync(join(scratch.dir, 'never-created'))).toBe(false);
    const memory = new MemoryStore();
    const inProcess = await runInProcess(['import', 'memory:', '--json'], {
      stdin: cut,
      stores: { 'memory:': memory },
    });
    expect(inProcess.code).toBe(1);
    const report = JSON.parse(inProcess.stdout) as { agents: unknown[]; ok: boolean; error: string };
    expect(report).toMatchObject({ agents: [], ok: false, error: expect.stringMatching(/truncated/) });
    expect(await memory.list()).toEqual([]);
  });

  it('refuses a file of a newer format version, and one that is not an export', async () => {
    const newer = exported.replace('"version":1', '"version":2');
    const run = await runInProcess(['import', 'memory:'], {
      stdin: newer,
      stores: { 'memory:': new MemoryStore() },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/newer kode-store/);
    const garbage = join(scratch.dir, 'garbage.jsonl');
    await writeFile(garbage, 'hello\n');
    const bad = await runInProcess(['import', 'memory:', '-i', garbage], {
      stores: { 'memory:': new MemoryStore() },
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/line 1: not JSON/);
  });

  it('refuses to import into a json: location (read-only, exit 2)', async () => {
    const run = await runInProcess(['import', FIXTURE_LOCATION], { stdin: exported });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/read-only/);
  });
});

describePostgres('export / import across backends (sqlite → PostgreSQL)', () => {
  const schema = uniqueSchemaName('cli_export');
  afterAll(() => dropSchema(schema));

  it('imports an SQLite export into PostgreSQL exactly', async () => {
    const env = {
      KODE_STORE_TYPE: 'postgres',
      DATABASE_URL: requirePostgresUrl(),
      KODE_POSTGRES_SCHEMA: schema,
    };
    const run = await spawnCli(['import'], { stdin: exported, env });
    expect(run.code).toBe(0);
    const memory = new MemoryStore();
    // Back out of PostgreSQL through a second export, then compare with the original SQLite data.
    const back = await runInProcess(['export'], { env });
    expect(back.code).toBe(0);
    expect(
      (await runInProcess(['import', 'memory:'], { stdin: back.stdout, stores: { 'memory:': memory } })).code,
    ).toBe(0);
    const source = new SqliteStore(db);
    try {
      for (const agentId of await source.list())
        expect(await compareAgents(source, memory, agentId)).toEqual([]);
    } finally {
      await source.close();
    }
  });
});
