import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import type { DoctorReport } from '../../bin/commands/doctor.js';
import { copyFixture, FIXTURE_LOCATION, runInProcess, spawnCli, tempDir } from './cli-support.js';

const ASSISTANT = 'agt-01M81Y5YTSB07WSKPHZV3ZCPY1';
const TODO = 'agt-01M81Y5Z6Y5043D84VS0NJ1JW9';

let scratch: { dir: string; remove: () => Promise<void> };
let db: string;

beforeAll(async () => {
  scratch = await tempDir('kode-cli-doctor-');
  db = join(scratch.dir, 'doctor.db');
  const run = await runInProcess(['migrate', '--from', FIXTURE_LOCATION, '--to', `sqlite:${db}`]);
  expect(run.code).toBe(0);
});
afterAll(() => scratch.remove());

async function withStore<T>(body: (store: SqliteStore) => Promise<T>): Promise<T> {
  const store = new SqliteStore(db);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

describe('doctor', () => {
  it('finds a healthy, consistent store and exits 0', async () => {
    const run = await runInProcess(['doctor', `sqlite:${db}`, '--json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as DoctorReport;
    expect(report).toMatchObject({ ok: true, checked: 11, agents: [] });
    expect(report.health?.healthy).toBe(true);
    // Progress: one plain line per agent when not on a terminal.
    expect(run.stderr.split('\n').filter((l) => l.startsWith('doctor ['))).toHaveLength(11);
  });

  it('finds a planted messageCount mismatch, exits 1, and --repair fixes it without touching the messages', async () => {
    const messagesBefore = await withStore(async (store) => {
      const info = (await store.loadInfo(ASSISTANT))!;
      await store.saveInfo(ASSISTANT, { ...info, messageCount: info.messageCount + 5 });
      await store.saveInfo(TODO, { ...(await store.loadInfo(TODO))!, messageCount: 0 });
      return store.loadMessages(ASSISTANT);
    });

    const found = await spawnCli(['doctor', `sqlite:${db}`]);
    expect(found.code).toBe(1);
    expect(found.stdout).toContain(ASSISTANT);
    expect(found.stdout).toMatch(/messageCount/);
    expect(found.stdout).toMatch(/2 with issues \(0 unreadable\), 0 repaired, 2 still need attention/);
    expect(found.stdout).toMatch(/--repair/);

    const repaired = await runInProcess(['doctor', `sqlite:${db}`, '--repair', '--json']);
    expect(repaired.code).toBe(0);
    const report = JSON.parse(repaired.stdout) as DoctorReport;
    expect(report.agents.map((d) => d.agentId).sort()).toEqual([ASSISTANT, TODO]);
    for (const diagnosis of report.agents) {
      expect(diagnosis.repaired).toHaveLength(1);
      expect(diagnosis.remaining).toEqual([]);
    }
    await withStore(async (store) => {
      expect((await store.loadInfo(ASSISTANT))!.messageCount).toBe(44);
      expect((await store.loadInfo(TODO))!.messageCount).toBe(18);
      expect(await store.loadMessages(ASSISTANT)).toEqual(messagesBefore);
    });
    expect((await runInProcess(['doctor', `sqlite:${db}`])).code).toBe(0);
  });

  it('does not repair an agent whose lock another holder keeps, and says so', async () => {
    await withStore(async (store) => {
      const info = (await store.loadInfo(ASSISTANT))!;
      await store.saveInfo(ASSISTANT, { ...info, messageCount: 1 });
      const release = await store.acquireAgentLock(ASSISTANT);
      try {
        const { runDoctor } = await import('../../bin/commands/doctor.js');
        const { PassThrough, Readable } = await import('node:stream');
        const stdout = new PassThrough();
        let text = '';
        stdout.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        const code = await runDoctor(
          `sqlite:${db}`,
          { repair: true, json: true, agents: ASSISTANT, lockTimeoutMs: 200 },
          { stdout, stderr: new PassThrough(), stdin: Readable.from([]), interactive: false, env: {} },
        );
        expect(code).toBe(1);
        const report = JSON.parse(text) as DoctorReport;
        expect(report.agents[0]!.repaired[0]).toMatch(/not repaired: the agent stayed locked/);
        expect(report.agents[0]!.remaining).not.toEqual([]);
      } finally {
        await release();
      }
      await store.saveInfo(ASSISTANT, { ...info, messageCount: 44 });
    });
  });

  it('refuses --repair on a read-only json: location (exit 2)', async () => {
    const run = await runInProcess(['doctor', FIXTURE_LOCATION, '--repair']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/read-only/);
  });

  it('reports corrupt files of a json: directory as issues, with their path, and exits 1', async () => {
    const root = await copyFixture(join(scratch.dir, 'corrupt'));
    const file = join(root, TODO, 'runtime/todos.json');
    await truncate(file, 20);
    const run = await runInProcess(['doctor', `json:${root}`, '--json']);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as DoctorReport;
    expect(report.agents).toHaveLength(1);
    expect(report.agents[0]!.agentId).toBe(TODO);
    expect(report.agents[0]!.issues.join('\n')).toContain(file);
  });

  it('reports an unreachable server with exit 3, without leaking the password', async () => {
    const run = await runInProcess(['doctor', 'postgres://postgres:s3cret-pw@127.0.0.1:1/nowhere']);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/ECONNREFUSED/);
    expect(run.stderr + run.stdout).not.toContain('s3cret-pw');
  });
});
