import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import type { DoctorReport } from '../../bin/commands/doctor.js';
import { CorruptDataError } from '../../src/errors.js';
import type { Message } from '../../src/types.js';
import { describeMongo, requireMongoUrl, uniqueDatabaseName, withAdminClient } from '../helpers/mongo.js';
import {
  adminQuery,
  describePostgres,
  dropSchema,
  requirePostgresUrl,
  uniqueSchemaName,
} from '../helpers/postgres.js';
import { FIXTURE_LOCATION, runInProcess, tempDir } from './cli-support.js';

/**
 * Damage is reported, not crashed on: a file that is not a database, a
 * damaged page, a stored row that no longer decodes. Every command names
 * the file (CorruptDataError), doctor reports every unreadable agent and
 * goes on (exit 1) and says what to do, export -o never leaves a partial
 * file, import checks its whole input before touching the destination.
 */

const DAMAGED = 'agt-damaged';
const FIXTURE_AGENTS = 11;

let scratch: { dir: string; remove: () => Promise<void> };
let exported: string;

beforeAll(async () => {
  scratch = await tempDir('kode-cli-damage-');
  const source = join(scratch.dir, 'source.db');
  expect((await runInProcess(['migrate', '--from', FIXTURE_LOCATION, '--to', `sqlite:${source}`])).code).toBe(
    0,
  );
  const run = await runInProcess(['export', `sqlite:${source}`]);
  expect(run.code).toBe(0);
  exported = run.stdout;
});
afterAll(() => scratch.remove());

async function freshDir(name: string): Promise<string> {
  const dir = join(scratch.dir, name);
  await mkdir(dir);
  return dir;
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

/** A message large enough that SQLite keeps most of it in overflow pages of its own. */
function bigMessage(): Message {
  return { role: 'user', content: [{ type: 'text', text: `MARKER-${'Z'.repeat(40_000)}` }] };
}

/**
 * Breaks one overflow page of `DAMAGED`'s big message: its pointer to the
 * next page now points past the end of the file. Only that message's row
 * uses the page, so the other agents stay readable, as they would after a
 * torn write or a bad sector in the middle of a real file.
 */
async function damageOverflowPage(db: string): Promise<void> {
  const bytes = await readFile(db);
  const pageSize = bytes.readUInt16BE(16) === 1 ? 65_536 : bytes.readUInt16BE(16);
  for (let page = 1; page * pageSize < bytes.length; page++) {
    const start = page * pageSize;
    const body = bytes.subarray(start + 4, start + pageSize);
    if (bytes.readUInt32BE(start) !== 0 && body.every((byte) => byte === 0x5a)) {
      const handle = await open(db, 'r+');
      try {
        await handle.write(Buffer.from([0x7f, 0xff, 0xff, 0x00]), 0, 4, start);
      } finally {
        await handle.close();
      }
      return;
    }
  }
  throw new Error('no overflow page of the big message was found');
}

/** A SQLite store with the fixture's agents and one agent whose message sits on a damaged page. */
async function damagedStore(name: string): Promise<string> {
  const dir = await freshDir(name);
  const db = join(dir, 'agents.db');
  expect((await runInProcess(['import', `sqlite:${db}`], { stdin: exported })).code).toBe(0);
  const store = new SqliteStore(db);
  await store.saveMessages(DAMAGED, [bigMessage()]);
  await store.close();
  await damageOverflowPage(db);
  return db;
}

describe('a file that is not a database', () => {
  it('gives CorruptDataError naming the file from every command (exit 1), and changes nothing', async () => {
    const dir = await freshDir('not-a-db');
    const db = join(dir, 'notes.db');
    await writeFile(db, 'these are my notes, not a database\n'.repeat(200));
    const before = await files(dir);
    const output = join(scratch.dir, 'not-a-db.jsonl');
    for (const args of [
      ['inspect', `sqlite:${db}`, 'agents'],
      ['inspect', `sqlite:${db}`, 'kv'],
      ['export', `sqlite:${db}`],
      ['export', `sqlite:${db}`, '-o', output],
      ['migrate', '--from', `sqlite:${db}`, '--to', `sqlite:${join(scratch.dir, 'never', 'to.db')}`],
    ]) {
      const run = await runInProcess(args);
      expect({ args, code: run.code }).toEqual({ args, code: 1 });
      expect(run.stderr).toContain(`${resolve(db)} is not a SQLite database`);
      expect(await files(dir)).toEqual(before);
    }
    const imported = await runInProcess(['import', `sqlite:${db}`], { stdin: exported });
    expect(imported.code).toBe(1);
    expect(imported.stderr).toContain(`${resolve(db)} is not a SQLite database`);
    expect(await files(dir)).toEqual(before);
    expect(existsSync(output)).toBe(false);
    expect(existsSync(join(scratch.dir, 'never'))).toBe(false);
  });

  it('is reported by doctor with what to do (exit 1)', async () => {
    const db = join(await freshDir('not-a-db-doctor'), 'notes.db');
    await writeFile(db, 'x'.repeat(8192));
    const human = await runInProcess(['doctor', `sqlite:${db}`]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(`${resolve(db)} is not a SQLite database`);
    expect(human.stdout).toMatch(/restore the latest backup/);
    const run = await runInProcess(['doctor', `sqlite:${db}`, '--json']);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as DoctorReport;
    expect(report).toMatchObject({ ok: false, checked: 0, agents: [] });
    expect(report.problems).toEqual([expect.stringContaining(resolve(db))]);
    expect(report.advice).toHaveLength(1);
  });

  it('is a CorruptDataError with the path from the store API, read-only or not', async () => {
    const db = join(await freshDir('not-a-db-api'), 'notes.db');
    await writeFile(db, 'x'.repeat(8192));
    for (const readOnly of [true, false]) {
      const store = new SqliteStore({ path: db, readOnly });
      const error = await store.list().catch((e: unknown) => e);
      await store.close();
      expect(error).toBeInstanceOf(CorruptDataError);
      expect(error).toMatchObject({ code: 'KODE_CORRUPT', path: resolve(db) });
    }
  });
});

describe('a damaged page in a SQLite store', () => {
  let db: string;
  beforeAll(async () => {
    db = await damagedStore('damaged-page');
  });

  it('doctor runs the integrity check, reports the unreadable agent, checks every other one and exits 1', async () => {
    const run = await runInProcess(['doctor', `sqlite:${db}`, '--json']);
    expect(run.stderr).not.toMatch(/^kode-store:/m);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as DoctorReport;
    expect(report.checked).toBe(FIXTURE_AGENTS + 1);
    expect(report.problems.length).toBeGreaterThan(0);
    expect(report.agents.map((d) => [d.agentId, d.unreadable])).toEqual([[DAMAGED, true]]);
    expect(report.agents[0]!.issues.join('\n')).toContain(resolve(db));
    expect(report.advice.join(' ')).toMatch(/restore/);
    const human = await runInProcess(['doctor', `sqlite:${db}`]);
    expect(human.stdout).toMatch(/the store is damaged:/);
    expect(human.stdout).toMatch(/12 agent\(s\) checked: 1 with issues \(1 unreadable\)/);
    // --repair leaves a damaged agent alone.
    const repair = await runInProcess(['doctor', `sqlite:${db}`, '--repair', '--json']);
    expect(repair.code).toBe(1);
    expect((JSON.parse(repair.stdout) as DoctorReport).agents[0]!.repaired).toEqual([]);
  });

  it('the damaged agent fails to load with CorruptDataError naming the file; the others load', async () => {
    const store = new SqliteStore({ path: db, readOnly: true });
    try {
      const error = await store.loadMessages(DAMAGED).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'KODE_CORRUPT', path: resolve(db) });
      for (const agentId of (await store.list()).filter((id) => id !== DAMAGED)) {
        await store.loadMessages(agentId);
      }
    } finally {
      await store.close();
    }
    const inspect = await runInProcess(['inspect', `sqlite:${db}`, 'messages', DAMAGED]);
    expect(inspect.code).toBe(1);
    expect(inspect.stderr).toContain(`${resolve(db)} is damaged`);
  });

  it('export -o fails (exit 1) leaving neither a partial file nor a temporary one, and an older export intact', async () => {
    const dir = await freshDir('export-target');
    const target = join(dir, 'backup.jsonl');
    await writeFile(target, 'the previous backup\n');
    const run = await runInProcess(['export', `sqlite:${db}`, '-o', target]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(resolve(db));
    expect(run.stderr).toContain(`stopped at agent "${DAMAGED}"; ${target} was not written`);
    expect(await readdir(dir)).toEqual(['backup.jsonl']);
    expect(await readFile(target, 'utf8')).toBe('the previous backup\n');
    const fresh = join(dir, 'fresh.jsonl');
    expect((await runInProcess(['export', `sqlite:${db}`, '-o', fresh])).code).toBe(1);
    expect(existsSync(fresh)).toBe(false);
    // Without the damaged agent the same export completes and appears whole.
    const ok = await runInProcess(['export', `sqlite:${db}`, '--agents', 'agt-0', '-o', fresh]);
    expect(ok.code).toBe(0);
    expect((await readFile(fresh, 'utf8')).trimEnd().split('\n').at(-1)).toMatch(/"type":"end","agents":10,/);
    expect((await readdir(dir)).sort()).toEqual(['backup.jsonl', 'fresh.jsonl']);
  });
});

describe('export and import error paths', () => {
  it('export -o into a directory that does not exist is refused (exit 2)', async () => {
    const target = join(scratch.dir, 'no-such-dir', 'out.jsonl');
    const run = await runInProcess(['export', FIXTURE_LOCATION, '-o', target]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/cannot write .*out\.jsonl/);
    expect(existsSync(join(scratch.dir, 'no-such-dir'))).toBe(false);
  });

  it('import -i of a missing file is refused (exit 2) before the destination is created', async () => {
    const destination = join(scratch.dir, 'import-missing', 'agents.db');
    const run = await runInProcess([
      'import',
      `sqlite:${destination}`,
      '-i',
      join(scratch.dir, 'nope.jsonl'),
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/cannot read .*nope\.jsonl/);
    expect(existsSync(join(scratch.dir, 'import-missing'))).toBe(false);
  });

  it('import -i of a damaged file is refused whole (exit 1) before the destination is created', async () => {
    const lines = exported.trimEnd().split('\n');
    const damaged = join(scratch.dir, 'damaged.jsonl');
    // The last agent's counts no longer match its records: found only at the end of the file.
    const lastAgentEnd = lines.findLastIndex((line) => line.includes('"type":"agentEnd"'));
    lines.splice(lastAgentEnd - 1, 1);
    await writeFile(damaged, `${lines.join('\n')}\n`);
    const destination = join(scratch.dir, 'import-damaged', 'agents.db');
    const run = await runInProcess(['import', `sqlite:${destination}`, '-i', damaged]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`${damaged}: .*line ${lastAgentEnd}: .*agentEnd says`));
    expect(existsSync(join(scratch.dir, 'import-damaged'))).toBe(false);
  });
});

// ---- PostgreSQL and MongoDB: rows that do not decode --------------------------------------------

/** What doctor and export must say about a store where DAMAGED's stored message no longer decodes. */
async function expectUnreadableAgentReported(location: string): Promise<void> {
  const run = await runInProcess(['doctor', location, '--json']);
  expect(run.code).toBe(1);
  const report = JSON.parse(run.stdout) as DoctorReport;
  expect(report.checked).toBe(FIXTURE_AGENTS + 1);
  expect(report.agents.map((d) => [d.agentId, d.unreadable])).toEqual([[DAMAGED, true]]);
  expect(report.agents[0]!.issues.join('\n')).toMatch(/stored JSON could not be parsed/);
  expect(report.advice.join(' ')).toMatch(/restore them from a backup/);
  const target = join(scratch.dir, `unreadable-${Math.random().toString(36).slice(2)}.jsonl`);
  const exportRun = await runInProcess(['export', location, '-o', target]);
  expect(exportRun.code).toBe(1);
  expect(existsSync(target)).toBe(false);
}

describePostgres('an agent whose rows do not decode, on PostgreSQL', () => {
  const schema = uniqueSchemaName('clidmg');
  afterAll(() => dropSchema(schema));

  it('is reported by doctor (exit 1) while every other agent is checked', async () => {
    const url = new URL(requirePostgresUrl());
    url.searchParams.set('schema', schema);
    const location = url.toString();
    expect((await runInProcess(['import', location], { stdin: exported })).code).toBe(0);
    const store = await import('../../src/config/create-extended-store.js').then((m) =>
      m.createExtendedStore({ type: 'postgres', connection: requirePostgresUrl(), schema }),
    );
    await store.saveMessages(DAMAGED, [{ role: 'user', content: [{ type: 'text', text: 'soon torn' }] }]);
    await store.close();
    await adminQuery(
      `UPDATE "${schema}".kode_messages SET message_json = '{"role":"us' WHERE agent_id = $1`,
      [DAMAGED],
    );
    await expectUnreadableAgentReported(location);
  });
});

describeMongo('an agent whose documents do not decode, on MongoDB', () => {
  const dbName = uniqueDatabaseName('clidmg');
  afterAll(() => withAdminClient((client) => client.db(dbName).dropDatabase()));

  it('is reported by doctor (exit 1) while every other agent is checked', async () => {
    const url = new URL(requireMongoUrl());
    url.pathname = `/${dbName}`;
    const location = url.toString();
    expect((await runInProcess(['import', location], { stdin: exported })).code).toBe(0);
    const store = await import('../../src/config/create-extended-store.js').then((m) =>
      m.createExtendedStore(location),
    );
    await store.saveMessages(DAMAGED, [{ role: 'user', content: [{ type: 'text', text: 'soon torn' }] }]);
    await store.close();
    await withAdminClient((client) =>
      client
        .db(dbName)
        .collection('kode_messages')
        .updateOne({ agentId: DAMAGED }, { $set: { json: '{"role":"us' } }),
    );
    await expectUnreadableAgentReported(location);
  });
});
