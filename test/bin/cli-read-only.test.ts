import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateAgentSchema } from '../../adapters/postgres/postgres-schema.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import {
  AGENT_SCHEMA_MIGRATIONS,
  latestVersion,
  migrateSchema,
} from '../../adapters/sqlite/sqlite-schema.js';
import { describeMongo, requireMongoUrl, uniqueDatabaseName, withAdminClient } from '../helpers/mongo.js';
import {
  adminQuery,
  describePostgres,
  dropSchema,
  requirePostgresUrl,
  uniqueSchemaName,
} from '../helpers/postgres.js';
import { FIXTURE_LOCATION, REPO_ROOT, runInProcess, spawnCli, tempDir } from './cli-support.js';

/**
 * SPEC §9: inspect, doctor (without --repair), export and a migration's
 * source are read-only. Each command runs against a location and what the
 * location holds is compared before and after: every file's bytes in the
 * SQLite directory (so a -wal/-shm file left behind shows too), the
 * PostgreSQL catalogue (schemas, tables, indexes), MongoDB's databases,
 * collections and indexes. A location without kode-store data is refused
 * with exit 2, naming it and what was missing, and stays as it was.
 */

const ASSISTANT = 'agt-01M81Y5YTSB07WSKPHZV3ZCPY1';

let scratch: { dir: string; remove: () => Promise<void> };
/** Outputs of export -o go here, outside the directories being compared. */
let outputs: string;
let exported: string;

beforeAll(async () => {
  scratch = await tempDir('kode-cli-read-only-');
  outputs = join(scratch.dir, 'outputs');
  await mkdir(outputs);
  const source = join(scratch.dir, 'source.db');
  expect((await runInProcess(['migrate', '--from', FIXTURE_LOCATION, '--to', `sqlite:${source}`])).code).toBe(
    0,
  );
  const run = await runInProcess(['export', `sqlite:${source}`]);
  expect(run.code).toBe(0);
  exported = run.stdout;
});
afterAll(() => scratch.remove());

/** Every read command, run against `location` (whose store holds the fixture's agents). */
function readCommands(location: string): string[][] {
  return [
    ['inspect', location, 'agents'],
    ['inspect', location, 'agent', ASSISTANT],
    ['inspect', location, 'messages', ASSISTANT],
    ['inspect', location, 'events', ASSISTANT, '--limit', '0'],
    ['inspect', location, 'tools', ASSISTANT],
    ['inspect', location, 'kv'],
    ['doctor', location],
    ['doctor', location, '--json'],
    ['export', location, '-o', join(outputs, `export-${Math.random().toString(36).slice(2)}.jsonl`)],
    ['migrate', '--from', location, '--to', 'memory:'],
  ];
}

/** The commands that read a location, for one that should be refused. */
function refusedCommands(location: string): string[][] {
  return [
    ['inspect', location, 'agents'],
    ['inspect', location, 'kv'],
    ['doctor', location],
    ['export', location],
    ['export', location, '-o', join(outputs, 'never.jsonl')],
    ['migrate', '--from', location, '--to', 'memory:'],
  ];
}

/** Runs each command and checks its exit code, and that `snapshot` is the same after each. */
async function expectUnchanged(
  commands: string[][],
  snapshot: () => Promise<unknown>,
  expected: { code: number; stderr?: RegExp },
): Promise<void> {
  const before = await snapshot();
  for (const args of commands) {
    const run = await runInProcess(args);
    expect({ args, code: run.code, stderr: run.stderr }).toEqual({
      args,
      code: expected.code,
      stderr: expected.stderr ? expect.stringMatching(expected.stderr) : expect.any(String),
    });
    expect({ args, after: await snapshot() }).toEqual({ args, after: before });
  }
}

// ---- SQLite -----------------------------------------------------------------------------------

/** Every file in `dir` with the hash of its bytes. */
async function files(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    result[name] = createHash('sha256')
      .update(await readFile(join(dir, name)))
      .digest('hex');
  }
  return result;
}

async function sqliteDir(name: string): Promise<string> {
  const dir = join(scratch.dir, name);
  await mkdir(dir);
  return dir;
}

describe('read commands on SQLite', () => {
  it('change no byte of a store and leave no -wal/-shm behind (fixture store, no KV tables)', async () => {
    const dir = await sqliteDir('plain');
    const db = join(dir, 'agents.db');
    expect((await runInProcess(['import', `sqlite:${db}`], { stdin: exported })).code).toBe(0);
    expect(Object.keys(await files(dir))).toEqual(['agents.db']);
    await expectUnchanged(readCommands(`sqlite:${db}`), () => files(dir), { code: 0 });
  });

  it('change no byte of a store that holds KV data', async () => {
    const dir = await sqliteDir('with-kv');
    const db = join(dir, 'agents.db');
    expect((await runInProcess(['import', `sqlite:${db}`], { stdin: exported })).code).toBe(0);
    const store = new SqliteStore(db);
    await store.kv.createInstance({ id: 'settings', name: 'Settings' });
    await store.kv.set('settings', 'ui', 'theme', { dark: true });
    await store.close();
    await expectUnchanged(
      [...readCommands(`sqlite:${db}`), ['inspect', `sqlite:${db}`, 'kv', 'settings', 'ui']],
      () => files(dir),
      { code: 0 },
    );
    const shown = await runInProcess(['inspect', `sqlite:${db}`, 'kv', 'settings', 'ui', '--json']);
    expect(shown.stdout).toContain('"theme"');
  });

  it('read the data of a database another connection is writing, and leave its WAL files in place', async () => {
    const dir = await sqliteDir('live');
    const db = join(dir, 'agents.db');
    const writer = new SqliteStore(db);
    try {
      await writer.saveMessages('agt-live', [
        { role: 'user', content: [{ type: 'text', text: 'not yet checkpointed' }] },
      ]);
      expect(existsSync(`${db}-wal`)).toBe(true);
      const run = await runInProcess(['inspect', `sqlite:${db}`, 'messages', 'agt-live']);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('not yet checkpointed');
      expect(existsSync(`${db}-wal`) && existsSync(`${db}-shm`)).toBe(true);
      // The writer is unaffected.
      await writer.saveMessages('agt-live', []);
    } finally {
      await writer.close();
    }
    expect(Object.keys(await files(dir))).toEqual(['agents.db']);
  });

  it('refuse a zero-byte file (exit 2), naming it, and leave it at zero bytes', async () => {
    const dir = await sqliteDir('zero');
    const db = join(dir, 'empty.db');
    await writeFile(db, '');
    await expectUnchanged(refusedCommands(`sqlite:${db}`), () => files(dir), {
      code: 2,
      stderr: new RegExp(`${resolve(db)} holds no kode-store data \\(no agent schema`),
    });
    expect((await readFile(db)).length).toBe(0);
    expect(existsSync(join(outputs, 'never.jsonl'))).toBe(false);
  });

  it("refuse another application's SQLite database in WAL mode (exit 2), leaving it byte for byte", async () => {
    const dir = await sqliteDir('foreign');
    const db = join(dir, 'notes.db');
    const foreign = new Database(db);
    foreign.pragma('journal_mode = WAL');
    foreign.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine')");
    foreign.close();
    await expectUnchanged(refusedCommands(`sqlite:${db}`), () => files(dir), {
      code: 2,
      stderr: /notes\.db holds no kode-store data/,
    });
  });

  it('refuse a directory and a file that does not exist (exit 2), creating nothing', async () => {
    const dir = await sqliteDir('nothing');
    await expectUnchanged(refusedCommands(`sqlite:${dir}`), () => files(dir), {
      code: 2,
      stderr: /is not a file/,
    });
    await expectUnchanged(refusedCommands(`sqlite:${join(dir, 'sub', 'agents.db')}`), () => files(dir), {
      code: 2,
      stderr: /agents\.db does not exist/,
    });
  });

  it('refuse a store of an older schema (exit 2) saying how to upgrade it; doctor --repair upgrades it', async () => {
    const dir = await sqliteDir('old');
    const db = join(dir, 'agents.db');
    const old = new Database(db);
    old.pragma('journal_mode = WAL');
    migrateSchema(old, 'agent', AGENT_SCHEMA_MIGRATIONS.slice(0, 1));
    old.close();
    await expectUnchanged(refusedCommands(`sqlite:${db}`), () => files(dir), {
      code: 2,
      stderr: /agent schema at version 1, older than this kode-store's \(\d+\).*kode-store doctor --repair/,
    });
    const repaired = await runInProcess(['doctor', `sqlite:${db}`, '--repair']);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toMatch(/repaired: schema upgraded/);
    const upgraded = new Database(db, { readonly: true });
    expect(
      upgraded.prepare("SELECT version FROM kode_schema_version WHERE component = 'agent'").get(),
    ).toEqual({ version: latestVersion(AGENT_SCHEMA_MIGRATIONS) });
    upgraded.close();
    expect((await runInProcess(['inspect', `sqlite:${db}`, 'agents'])).code).toBe(0);
  });

  it('read the store the environment names read-only too', async () => {
    const dir = await sqliteDir('env');
    const db = join(dir, 'agents.db');
    expect((await runInProcess(['import', `sqlite:${db}`], { stdin: exported })).code).toBe(0);
    const before = await files(dir);
    const run = await spawnCli(['inspect', 'agents', '--json'], {
      env: { KODE_STORE_TYPE: 'sqlite', KODE_SQLITE_PATH: db },
    });
    expect(run.code).toBe(0);
    expect(await files(dir)).toEqual(before);
    const missing = await spawnCli(['doctor'], {
      env: { KODE_STORE_TYPE: 'sqlite', KODE_SQLITE_PATH: join(dir, 'typo.db') },
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/typo\.db does not exist/);
    expect(await files(dir)).toEqual(before);
  });
});

// ---- json: -------------------------------------------------------------------------------------

describe('json: locations that are not JSONStore directories', () => {
  it('are refused (exit 2) by every read command and by migrate, naming the directory', async () => {
    const empty = await sqliteDir('not-a-jsonstore');
    await writeFile(join(empty, 'README.md'), 'a project, not a store');
    const destination = join(scratch.dir, 'never-written', 'agents.db');
    await expectUnchanged(
      [
        ...refusedCommands(`json:${empty}`),
        ['migrate', '--from', `json:${empty}`, '--to', `sqlite:${destination}`],
      ],
      () => files(empty),
      { code: 2, stderr: new RegExp(`${empty} holds no JSONStore data`) },
    );
    expect(existsSync(join(scratch.dir, 'never-written'))).toBe(false);
  });
});

// ---- conformance ----------------------------------------------------------------------------------

describe('conformance', () => {
  it('writes nothing in the directory it runs in', async () => {
    const cwd = await sqliteDir('conformance-cwd');
    const run = await spawnCli(
      ['conformance', join(REPO_ROOT, 'test/bin/cli-conformance-module.ts'), '--only', 'messages.roundtrip'],
      { cwd },
    );
    expect(run.code).toBe(0);
    expect(await readdir(cwd)).toEqual([]);
  });
});

// ---- PostgreSQL -------------------------------------------------------------------------------

describePostgres('read commands on PostgreSQL', () => {
  const prefix = uniqueSchemaName('cliro');
  const schemas = {
    store: `${prefix}_store`,
    typo: `${prefix}_typo`,
    empty: `${prefix}_empty`,
    old: `${prefix}_old`,
  };
  afterAll(async () => {
    for (const schema of Object.values(schemas)) await dropSchema(schema);
  });

  function location(schema: string): string {
    const url = new URL(requirePostgresUrl());
    url.searchParams.set('schema', schema);
    return url.toString();
  }

  /** Schemas of this test, their tables, indexes and sequences (anything the store could create). */
  async function catalogue(): Promise<string[]> {
    const rows = await adminQuery<{ entry: string }>(
      `SELECT n.nspname || coalesce('.' || c.relname || ':' || c.relkind::text, '') AS entry
         FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid
        WHERE n.nspname LIKE $1 ORDER BY 1`,
      [`${prefix}%`],
    );
    return rows.map((row) => row.entry);
  }

  it('change no schema, table or index of a store', async () => {
    const imported = await runInProcess(['import', location(schemas.store)], { stdin: exported });
    expect(imported.code).toBe(0);
    expect((await catalogue()).length).toBeGreaterThan(10);
    await expectUnchanged(readCommands(location(schemas.store)), catalogue, { code: 0 });
  });

  it('refuse a mistyped ?schema= (exit 2), naming it, and create no schema', async () => {
    await expectUnchanged(refusedCommands(location(schemas.typo)), catalogue, {
      code: 2,
      stderr: new RegExp(`schema "${schemas.typo}" holds no kode-store data`),
    });
    expect((await catalogue()).some((entry) => entry.startsWith(schemas.typo))).toBe(false);
  });

  it('refuse an empty schema (exit 2), creating no table in it', async () => {
    await adminQuery(`CREATE SCHEMA "${schemas.empty}"`);
    await expectUnchanged(refusedCommands(location(schemas.empty)), catalogue, {
      code: 2,
      stderr: /holds no kode-store data \(no agent version in kode_schema_version\)/,
    });
    expect((await catalogue()).filter((entry) => entry.startsWith(schemas.empty))).toEqual([schemas.empty]);
  });

  it('refuse an older schema (exit 2) without migrating it; doctor --repair upgrades it', async () => {
    const client = new pg.Client({ connectionString: requirePostgresUrl() });
    await client.connect();
    try {
      const tx = {
        query: async <R>(text: string | { text: string }, values: unknown[] = []) =>
          (await client.query(typeof text === 'string' ? text : text.text, values)).rows as R[],
      };
      await migrateAgentSchema(tx, schemas.old, 1);
    } finally {
      await client.end();
    }
    await expectUnchanged(refusedCommands(location(schemas.old)), catalogue, {
      code: 2,
      stderr: /agent schema at version 1, older than this kode-store's/,
    });
    const repaired = await runInProcess(['doctor', location(schemas.old), '--repair']);
    expect(repaired.code).toBe(0);
    expect((await runInProcess(['inspect', location(schemas.old), 'agents'])).code).toBe(0);
  });
});

// ---- MongoDB ----------------------------------------------------------------------------------

describeMongo('read commands on MongoDB', () => {
  const prefix = uniqueDatabaseName('cliro').slice(0, 40);
  const databases = { store: `${prefix}_store`, typo: `${prefix}_typo` };
  afterAll(async () => {
    await withAdminClient(async (client) => {
      for (const name of Object.values(databases)) await client.db(name).dropDatabase();
    });
  });

  function location(dbName: string): string {
    const url = new URL(requireMongoUrl());
    url.pathname = `/${dbName}`;
    return url.toString();
  }

  /**
   * This test's collections, their indexes and document counts. A database
   * exists in MongoDB only while it holds a collection; the emulator the
   * tests may run against also lists one a read touched, so databases are
   * seen through their collections.
   */
  async function catalogue(): Promise<string[]> {
    const client = new MongoClient(requireMongoUrl());
    await client.connect();
    try {
      const entries: string[] = [];
      const { databases: all } = await client.db('admin').admin().listDatabases({ nameOnly: true });
      for (const { name } of all.filter((d) => d.name.startsWith(prefix))) {
        for (const { name: collection } of await client
          .db(name)
          .listCollections({}, { nameOnly: true })
          .toArray()) {
          const handle = client.db(name).collection(collection);
          const indexes = (await handle.indexes()).map((index) => index.name).sort();
          entries.push(`${name}.${collection} ${await handle.countDocuments()} [${indexes.join(',')}]`);
        }
      }
      return entries.sort();
    } finally {
      await client.close();
    }
  }

  it('change no collection, index or document of a store', async () => {
    const imported = await runInProcess(['import', location(databases.store)], { stdin: exported });
    expect(imported.code).toBe(0);
    expect((await catalogue()).length).toBeGreaterThan(10);
    await expectUnchanged(readCommands(location(databases.store)), catalogue, { code: 0 });
  });

  it('refuse a mistyped database name (exit 2), naming it, and create nothing', async () => {
    await expectUnchanged(refusedCommands(location(databases.typo)), catalogue, {
      code: 2,
      stderr: new RegExp(`database ${databases.typo} holds no kode-store data`),
    });
    expect((await catalogue()).some((entry) => entry.startsWith(databases.typo))).toBe(false);
  });
});
