import { existsSync } from 'node:fs';
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/agent/memory-store.js';
import {
  adminQuery,
  describePostgres,
  dropSchema,
  requirePostgresUrl,
  uniqueSchemaName,
} from '../helpers/postgres.js';
import { copyFixture, FIXTURE_LOCATION, runInProcess, spawnCli, tempDir } from './cli-support.js';

const ASSISTANT = 'agt-01M81Y5YTSB07WSKPHZV3ZCPY1';
const APPROVAL = 'agt-01M81Y5Z9YGJW8TEJP7KZ99W6M';
const COMMANDS = ['migrate', 'inspect', 'doctor', 'export', 'import', 'conformance'];

let scratch: { dir: string; remove: () => Promise<void> };
beforeAll(async () => {
  scratch = await tempDir('kode-cli-commands-');
});
afterAll(() => scratch.remove());

function json<T = Record<string, unknown>>(text: string): T {
  return JSON.parse(text) as T;
}

describe('help and exit codes', () => {
  it('documents every command and the exit codes in --help (exit 0)', async () => {
    const top = await spawnCli(['--help']);
    expect(top.code).toBe(0);
    for (const command of COMMANDS) expect(top.stdout).toContain(command);
    for (const command of COMMANDS) {
      const run = await runInProcess([command, '--help']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/Exit codes:\n {2}0 {2}success\n {2}1 .*\n {2}2 .*\n {2}3 /);
      expect(run.stdout).toContain(`kode-store ${command}`);
    }
    expect((await runInProcess(['inspect', '--help'])).stdout).toMatch(/json:<dir>.*read-only/);
  });

  it('exits 2 on usage errors: unknown command or option, bad numbers, missing arguments', async () => {
    expect((await spawnCli(['frobnicate'])).code).toBe(2);
    expect((await runInProcess(['inspect', FIXTURE_LOCATION, 'agents', '--bogus'])).code).toBe(2);
    expect((await runInProcess(['inspect', FIXTURE_LOCATION, 'agents', '--limit', '-1'])).code).toBe(2);
    expect((await runInProcess(['inspect', FIXTURE_LOCATION, 'teleport'])).code).toBe(2);
    expect((await runInProcess(['inspect', FIXTURE_LOCATION, 'messages'])).code).toBe(2);
    expect((await runInProcess(['migrate'])).code).toBe(2);
    expect((await runInProcess(['conformance'])).code).toBe(2);
  });

  it('exits 2 on locations it cannot use, naming the problem', async () => {
    const unknown = await runInProcess(['inspect', 'ftp://x', 'agents']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown store location.*json:<dir>/);
    const missing = await runInProcess(['inspect', `json:${join(scratch.dir, 'nope')}`, 'agents']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/is not a directory/);
    const sameTwice = await runInProcess(['migrate', '--from', 'sqlite:a.db', '--to', 'sqlite:a.db']);
    expect(sameTwice.code).toBe(2);
    const intoJson = await runInProcess(['migrate', '--from', 'memory:', '--to', FIXTURE_LOCATION], {
      stores: { 'memory:': new MemoryStore() },
    });
    expect(intoJson.code).toBe(2);
    expect(intoJson.stderr).toMatch(/read-only/);
    const badEnv = await runInProcess(['inspect', 'agents'], { env: { KODE_STORE_TYPE: 'postgres' } });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/DATABASE_URL or POSTGRES_HOST/);
  });
});

describe('inspect', () => {
  it('lists agents in pages, with the way to the next page', async () => {
    const run = await runInProcess(['inspect', FIXTURE_LOCATION, 'agents', '--limit', '3', '--offset', '3']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('agents 4–6 of 10; next page: --offset 6 --limit 3');
    expect(run.stdout).toContain('agt-01M81Y5Z1R8Q0HAQJ2MCCNJYET');
    const page = json<{ items: Array<{ agentId: string }>; total: number; more: boolean }>(
      (await runInProcess(['inspect', FIXTURE_LOCATION, 'agents', '--prefix', `${ASSISTANT}/`, '--json']))
        .stdout,
    );
    expect(page.items.map((a) => a.agentId)).toEqual([
      `${ASSISTANT}/fork-1795361537133`,
      `${ASSISTANT}/fork-1795361537133/fork-1795361537197`,
    ]);
    expect(page).toMatchObject({ total: 2, more: false });
  });

  it('shows one agent with the counts of what it holds', async () => {
    const run = await runInProcess(['inspect', FIXTURE_LOCATION, 'agent', ASSISTANT, '--json']);
    expect(run.code).toBe(0);
    expect(json(run.stdout)).toMatchObject({
      agentId: ASSISTANT,
      info: { templateId: 'fx-assistant' },
      counts: { messages: 44, toolCalls: 11, events: 295, snapshots: 1 },
    });
    const table = await runInProcess(['inspect', FIXTURE_LOCATION, 'agent', ASSISTANT]);
    expect(table.stdout).toMatch(/stored events\s*│ 295/);
  });

  it('pages messages and tool calls', async () => {
    const messages = await runInProcess([
      'inspect',
      FIXTURE_LOCATION,
      'messages',
      ASSISTANT,
      '--limit',
      '2',
      '--offset',
      '42',
    ]);
    expect(messages.code).toBe(0);
    expect(messages.stdout).toContain('messages 43–44 of 44');
    const tools = json<{ items: Array<{ state: string }> }>(
      (await runInProcess(['inspect', FIXTURE_LOCATION, 'tools', APPROVAL, '--json'])).stdout,
    );
    expect(tools.items.map((t) => t.state)).toEqual(['COMPLETED', 'DENIED', 'DENIED', 'APPROVAL_REQUIRED']);
  });

  it('filters events by channel and since, reading only as far as the page', async () => {
    const control = json<{
      items: Array<{ bookmark: { seq: number }; event: { channel: string } }>;
      total: number;
    }>(
      (
        await runInProcess([
          'inspect',
          FIXTURE_LOCATION,
          'events',
          APPROVAL,
          '--channel',
          'control',
          '--since',
          '30',
          '--json',
        ])
      ).stdout,
    );
    expect(control.items.length).toBeGreaterThan(0);
    expect(control.items.every((e) => e.event.channel === 'control' && e.bookmark.seq > 30)).toBe(true);
    expect(control.total).toBe(control.items.length);
    const first = await runInProcess(['inspect', FIXTURE_LOCATION, 'events', ASSISTANT, '--limit', '5']);
    expect(first.stdout).toContain('events 1–5; next page: --offset 5 --limit 5');
    expect(first.stdout).toMatch(/tool_manual_updated/);
  });

  it('names a corrupt json: file and exits 1, or skips it with --skip-corrupt', async () => {
    const root = await copyFixture(join(scratch.dir, 'corrupt'));
    const file = join(root, APPROVAL, 'runtime/tool-calls.json');
    await truncate(file, 50);
    const stopped = await runInProcess(['inspect', `json:${root}`, 'tools', APPROVAL]);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain(file);
    const skipped = await runInProcess(['inspect', `json:${root}`, 'tools', APPROVAL, '--skip-corrupt']);
    expect(skipped.code).toBe(0);
    expect(skipped.stdout.trim()).toBe('no tool calls');
  });

  it('exits 1 for an agent that does not exist', async () => {
    const run = await runInProcess(['inspect', FIXTURE_LOCATION, 'agent', 'agt-missing']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/agent "agt-missing" not found/);
  });

  it('reads the store the environment names when no location is given', async () => {
    const db = join(scratch.dir, 'env.db');
    expect(
      (
        await runInProcess([
          'migrate',
          '--from',
          FIXTURE_LOCATION,
          '--to',
          `sqlite:${db}`,
          '--agents',
          ASSISTANT,
        ])
      ).code,
    ).toBe(0);
    const run = await spawnCli(['inspect', 'agents', '--json'], {
      env: { KODE_STORE_TYPE: 'sqlite', KODE_SQLITE_PATH: db, KODE_STORE_PATH: join(scratch.dir, 'files') },
    });
    expect(run.code).toBe(0);
    expect(json<{ total: number }>(run.stdout).total).toBe(3);
  });

  it('refuses kv on a json: location or a store without a KV API (exit 2)', async () => {
    expect((await runInProcess(['inspect', FIXTURE_LOCATION, 'kv'])).code).toBe(2);
    // A custom store written against the SDK's interface has no `kv`.
    const withoutKv = Object.defineProperty(new MemoryStore(), 'kv', { value: undefined });
    const run = await runInProcess(['inspect', 'memory:', 'kv'], { stores: { 'memory:': withoutKv } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/no KV API/);
  });
});

describe('conformance', () => {
  it('runs the suite against a module exporting a store factory, printing each case (exit 0)', async () => {
    const run = await spawnCli([
      'conformance',
      'test/bin/cli-conformance-module.ts',
      '--only',
      'messages.roundtrip',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^PASS messages\.roundtrip\.unicode: /m);
    expect(run.stdout).toMatch(/store: \d+ passed, 0 failed, \d+ skipped/);
  });

  it('exits 1 and prints FAIL lines for a store with a bug', async () => {
    const run = await spawnCli([
      'conformance',
      'test/bin/cli-conformance-broken.ts',
      '--only',
      'messages.roundtrip',
      '--json',
    ]);
    expect(run.code).toBe(1);
    const report = json<{ store: { failed: number; results: Array<{ status: string; error?: string }> } }>(
      run.stdout,
    );
    expect(report.store.failed).toBeGreaterThan(0);
    expect(report.store.results.find((r) => r.status === 'failed')?.error).toBeTruthy();
  });

  it('exits 2 for a module that is missing or exports no harness', async () => {
    const missing = await spawnCli(['conformance', 'test/does-not-exist.ts']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/not found/);
    const none = await spawnCli(['conformance', 'test/bin/cli-support.ts']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/exports no harness/);
  });
});

describe('locations that name nothing', () => {
  it('refuses to read a SQLite file that does not exist (exit 2), and creates nothing', async () => {
    const missing = join(scratch.dir, 'no', 'such', 'agents.db');
    for (const args of [
      ['inspect', `sqlite:${missing}`, 'agents'],
      ['inspect', `sqlite:${missing}`, 'kv'],
      ['doctor', `sqlite:${missing}`],
      ['export', `sqlite:${missing}`],
      ['migrate', '--from', `sqlite:${missing}`, '--to', 'memory:'],
    ]) {
      const run = await runInProcess(args);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toMatch(/does not exist/);
    }
    expect(existsSync(join(scratch.dir, 'no'))).toBe(false);
  });
});

describePostgres('postgres:// locations with ?schema=', () => {
  const schema = uniqueSchemaName('cli');
  afterAll(() => dropSchema(schema));

  it('import writes into the named schema, and export reads it back from there', async () => {
    const source = new MemoryStore();
    const agentId = `cli-schema-${schema}`;
    await source.saveMessages(agentId, [{ role: 'user', content: [{ type: 'text', text: 'in a schema' }] }]);
    const exported = await runInProcess(['export', 'memory:'], { stores: { 'memory:': source } });
    expect(exported.code).toBe(0);
    const url = new URL(requirePostgresUrl());
    url.searchParams.set('schema', schema);
    const imported = await runInProcess(['import', url.toString()], { stdin: exported.stdout });
    expect({ code: imported.code, stderr: imported.stderr }).toEqual({
      code: 0,
      stderr: expect.not.stringMatching(/error/i),
    });
    const rows = await adminQuery<{ agent_id: string }>(
      `SELECT agent_id FROM "${schema}".kode_agents WHERE agent_id = $1`,
      [agentId],
    );
    expect(rows).toEqual([{ agent_id: agentId }]);
    const again = await runInProcess(['export', url.toString()]);
    expect(again.stdout).toContain('in a schema');
  });
});
