import { spawn } from 'node:child_process';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { compareAgents, countAgent } from '../../bin/agent-copy.js';
import { MemoryStore } from '../../src/agent/memory-store.js';
import { JsonStoreReader } from '../../src/transfer/json-store-reader.js';
import type { ExtendedStore, Timeline } from '../../src/types.js';
import { describePostgres, dropSchema, requirePostgresUrl, uniqueSchemaName } from '../helpers/postgres.js';
import {
  CLI_ENTRY,
  copyFixture,
  expectedCounts,
  FIXTURE_DIR,
  FIXTURE_LOCATION,
  type FixtureManifest,
  loadManifest,
  runInProcess,
  spawnCli,
  TSX_LOADER,
  tempDir,
} from './cli-support.js';

/** Preloaded into a CLI child to stop it at a known point (test/child/stop-after-events.ts). */
const STOP_AFTER_EVENTS = new URL('../child/stop-after-events.ts', import.meta.url).href;

const ONE_OFF = 'agt-01M81Y5ZQBXZ24M0ZTAKMQ05S4';
const CRASHED = 'agt-01M81Y5ZF7V8KSXSER1RPEBZ1R';
const POOL = '__pool_meta__';

let manifest: FixtureManifest;
let scratch: { dir: string; remove: () => Promise<void> };

beforeAll(async () => {
  manifest = await loadManifest();
  scratch = await tempDir('kode-cli-migrate-');
});
afterAll(() => scratch.remove());

/** Every fixture agent holds exactly the manifest's counts, and the pool record came along. */
async function expectFixtureCounts(store: ExtendedStore): Promise<void> {
  expect(await store.list()).toEqual([POOL, ...Object.keys(manifest.agents)].sort());
  for (const [agentId, agent] of Object.entries(manifest.agents)) {
    expect({ agentId, counts: await countAgent(store, agentId) }).toEqual({
      agentId,
      counts: expectedCounts(agent),
    });
  }
  expect(await store.loadInfo(POOL)).toMatchObject({ runningAgents: { version: '1.0.0' } });
}

async function eventsOf(store: Pick<ExtendedStore, 'readEvents'>, agentId: string): Promise<Timeline[]> {
  const out: Timeline[] = [];
  for await (const entry of store.readEvents(agentId)) out.push(entry);
  return out;
}

async function withSqlite<T>(path: string, body: (store: SqliteStore) => Promise<T>): Promise<T> {
  const store = new SqliteStore(path);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

describe('migrate: the SDK fixture through SQLite', () => {
  it('copies json: → sqlite: with the manifest counts, passes --verify, and a second run changes nothing', async () => {
    const db = join(scratch.dir, 'chain.db');
    const first = await spawnCli(['migrate', '--from', FIXTURE_LOCATION, '--to', `sqlite:${db}`, '--verify']);
    expect(first.stderr).not.toMatch(/kode-store:/);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/verification \(deep\): every agent matches/);
    // Progress as plain lines (not a terminal), one per agent, with counts.
    expect(first.stderr).toMatch(
      /migrate \[1\/11\] agt-01M81Y5YTSB07WSKPHZV3ZCPY1 copied: 44 messages, 11 tool calls, 295 events/,
    );
    await withSqlite(db, expectFixtureCounts);

    const again = await spawnCli(['migrate', '--from', FIXTURE_LOCATION, '--to', `sqlite:${db}`, '--json']);
    expect(again.code).toBe(0);
    const report = JSON.parse(again.stdout) as { agents: Array<{ outcome: string }>; ok: boolean };
    expect(report.ok).toBe(true);
    expect(report.agents.map((a) => a.outcome)).toEqual(Array(11).fill('unchanged'));
    await withSqlite(db, expectFixtureCounts);
  });

  it('keeps the merged event order of the JSONStore logs through sqlite: → memory:', async () => {
    const db = join(scratch.dir, 'order.db');
    expect((await runInProcess(['migrate', '--from', FIXTURE_LOCATION, '--to', `sqlite:${db}`])).code).toBe(
      0,
    );
    const memory = new MemoryStore();
    const run = await runInProcess(['migrate', '--from', `sqlite:${db}`, '--to', 'memory:', '--verify'], {
      stores: { 'memory:': memory },
    });
    expect(run.code).toBe(0);
    await expectFixtureCounts(memory);
    const reader = new JsonStoreReader(FIXTURE_DIR);
    for (const agentId of [CRASHED, ONE_OFF]) {
      expect(JSON.stringify(await eventsOf(memory, agentId))).toBe(
        JSON.stringify(await eventsOf(reader, agentId)),
      );
    }
  });
});

describePostgres('migrate: SQLite → PostgreSQL → memory', () => {
  const schema = uniqueSchemaName('cli_migrate');
  afterAll(() => dropSchema(schema));

  it('yields the manifest counts for every agent at each step, and --verify passes', async () => {
    const env = {
      KODE_STORE_TYPE: 'postgres',
      DATABASE_URL: requirePostgresUrl(),
      KODE_POSTGRES_SCHEMA: schema,
    };
    const db = join(scratch.dir, 'to-postgres.db');
    expect((await spawnCli(['migrate', '--from', FIXTURE_LOCATION, '--to', `sqlite:${db}`])).code).toBe(0);

    // No --to: the environment names the PostgreSQL store (and its schema).
    const toPostgres = await spawnCli(['migrate', '--from', `sqlite:${db}`, '--verify'], { env });
    expect(toPostgres.stderr).not.toMatch(/kode-store:/);
    expect(toPostgres.code).toBe(0);
    expect(toPostgres.stdout).toMatch(/every agent matches/);

    const memory = new MemoryStore();
    const toMemory = await runInProcess(['migrate', '--to', 'memory:', '--verify', '--json'], {
      env,
      stores: { 'memory:': memory },
    });
    expect(toMemory.code).toBe(0);
    expect(JSON.parse(toMemory.stdout)).toMatchObject({ ok: true, verification: 'deep' });
    await expectFixtureCounts(memory);
    // The end of the chain equals its start, record for record.
    const reader = new JsonStoreReader(FIXTURE_DIR);
    for (const agentId of await reader.list())
      expect(await compareAgents(reader, memory, agentId)).toEqual([]);
  });
});

describe('migrate: interrupted and re-run', () => {
  const BIG = 'agt-00-big';
  const BIG_EVENTS = 6000;

  /** The fixture plus one agent with a long event log, so that a kill lands inside its copy. */
  async function fixtureWithBigAgent(): Promise<string> {
    const root = await copyFixture(join(scratch.dir, 'kill'));
    const dir = join(root, BIG);
    await mkdir(join(dir, 'events'), { recursive: true });
    await mkdir(join(dir, 'runtime'), { recursive: true });
    const lines: string[] = [];
    for (let seq = 0; seq < BIG_EVENTS; seq++) {
      const bookmark = { seq, timestamp: 1_795_361_537_000 + seq };
      lines.push(
        JSON.stringify({
          cursor: seq,
          bookmark,
          event: { channel: 'progress', type: 'text_chunk', step: 1, delta: `chunk ${seq}`, bookmark },
        }),
      );
    }
    await writeFile(join(dir, 'events/progress.log'), `${lines.join('\n')}\n`);
    await writeFile(
      join(dir, 'runtime/messages.json'),
      JSON.stringify([{ role: 'user', content: [{ type: 'text', text: 'go' }] }]),
    );
    await writeFile(
      join(dir, 'meta.json'),
      JSON.stringify({
        agentId: BIG,
        templateId: 't',
        createdAt: '2026-01-01T00:00:00.000Z',
        lineage: [],
        configVersion: 'v',
        messageCount: 1,
        lastSfpIndex: 0,
      }),
    );
    return root;
  }

  it('a migration killed inside an agent completes on the re-run with no duplicates', async () => {
    const root = await fixtureWithBigAgent();
    const db = join(scratch.dir, 'killed.db');
    // The big agent sorts first; its events are appended in 1200 batches of
    // 5 and its info written last. The child stops itself once 50 of them are
    // in, so the kill lands mid-agent by construction, not by timing.
    const stopAfter = 50;
    const child = spawn(
      process.execPath,
      [
        '--import',
        TSX_LOADER,
        '--import',
        STOP_AFTER_EVENTS,
        CLI_ENTRY,
        'migrate',
        '--from',
        `json:${root}`,
        '--to',
        `sqlite:${db}`,
        '--batch-size',
        '5',
      ],
      {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          KODE_TEST_STOP_AFTER_EVENTS: `${BIG}:${stopAfter}`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    const outcome = new Promise<'stopped' | 'ended'>((done) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        if (stderr.includes('stop-after-events: stopping')) done('stopped');
      });
      child.on('close', () => done('ended'));
    });
    const exited = new Promise<void>((done) => child.on('close', () => done()));
    const observer = new SqliteStore(db);
    try {
      expect(await outcome, `the migration ended before its ${stopAfter}th event of ${BIG}:\n${stderr}`).toBe(
        'stopped',
      );
      child.kill('SIGKILL');
      await exited;
      expect(child.signalCode).toBe('SIGKILL');
      expect(await observer.loadInfo(BIG)).toBeUndefined();
      const partial = (await eventsOf(observer, BIG)).length;
      expect(partial).toBeGreaterThanOrEqual(stopAfter);
      expect(partial).toBeLessThan(BIG_EVENTS);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await observer.close();
    }

    const rerun = await spawnCli([
      'migrate',
      '--from',
      `json:${root}`,
      '--to',
      `sqlite:${db}`,
      '--verify',
      '--json',
    ]);
    expect(rerun.code).toBe(0);
    const report = JSON.parse(rerun.stdout) as { agents: Array<{ agentId: string; outcome: string }> };
    expect(report.agents.find((a) => a.agentId === BIG)?.outcome).toBe('replaced');

    await withSqlite(db, async (store) => {
      const events = await eventsOf(store, BIG);
      expect(events).toHaveLength(BIG_EVENTS);
      expect(new Set(events.map((e) => JSON.stringify(e))).size).toBe(BIG_EVENTS);
      expect(events.map((e) => e.bookmark.seq)).toEqual([...Array(BIG_EVENTS).keys()]);
      expect(await store.loadMessages(BIG)).toHaveLength(1);
      for (const [agentId, agent] of Object.entries(manifest.agents)) {
        expect(await countAgent(store, agentId)).toEqual(expectedCounts(agent));
      }
    });
  });
});

describe('migrate: corrupt JSONStore files', () => {
  let root: string;
  let messagesFile: string;
  let monitorLog: string;

  beforeAll(async () => {
    root = await copyFixture(join(scratch.dir, 'corrupt'));
    messagesFile = join(root, ONE_OFF, 'runtime/messages.json');
    await truncate(messagesFile, 300);
    monitorLog = join(root, CRASHED, 'events/monitor.log');
    const lines = (await readFile(monitorLog, 'utf8')).split('\n');
    lines.splice(5, 0, lines[5]!.slice(0, 40));
    await writeFile(monitorLog, lines.join('\n'));
  });

  it('names the truncated file and the torn line, copies nothing, and exits 1', async () => {
    const db = join(scratch.dir, 'corrupt-stop.db');
    const run = await spawnCli(['migrate', '--from', `json:${root}`, '--to', `sqlite:${db}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(messagesFile);
    expect(run.stderr).toContain(`${monitorLog}:6`);
    expect(run.stderr).toMatch(/nothing was copied.*--skip-corrupt/s);
    await withSqlite(db, async (store) => expect(await store.list()).toEqual([]));
  });

  it('with --skip-corrupt, leaves out only those and copies everything else', async () => {
    const memory = new MemoryStore();
    const run = await runInProcess(
      ['migrate', '--from', `json:${root}`, '--to', 'memory:', '--skip-corrupt', '--verify'],
      {
        stores: { 'memory:': memory },
      },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/2 corrupt file\(s\)\/line\(s\) skipped/);
    expect(run.stdout).toContain(messagesFile);
    expect(run.stderr).toContain(`skipping corrupt ${monitorLog}:6`);
    for (const [agentId, agent] of Object.entries(manifest.agents)) {
      const expected = expectedCounts(agent);
      if (agentId === ONE_OFF) expected.messages = 0;
      expect({ agentId, counts: await countAgent(memory, agentId) }).toEqual({ agentId, counts: expected });
    }
  });
});
