import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { parseTimeArgument } from '../../bin/commands/prune.js';
import { collect, waitPast } from '../../conformance/runner/assertions.js';
import { agentInfo, conversation, snapshot, timeline } from '../../conformance/store/sample-data.js';
import { MemoryStore } from '../../src/agent/memory-store.js';
import { FILE_TIME_SLACK_MS } from '../../src/hybrid/file-event-log.js';
import type { ExtendedStore } from '../../src/types.js';
import { runInProcess, tempDir } from './cli-support.js';

/**
 * `kode-store prune` and `kode-store compact` (issue 17) on real SQLite
 * files: what a dry run reports is what the real run removes, the summary
 * and the JSON report, usage errors (exit 2), and the space `compact` gives
 * back.
 */

let scratch: { dir: string; remove: () => Promise<void> };
beforeAll(async () => {
  scratch = await tempDir('kode-cli-retention-');
});
afterAll(() => scratch.remove());

/** A time after every write so far and before every later one. */
async function boundary(): Promise<number> {
  const start = Date.now();
  await waitPast(start);
  const at = Date.now();
  await waitPast(at);
  return at;
}

async function seed(store: ExtendedStore, id: string, events: number): Promise<void> {
  await store.saveInfo(id, agentInfo(id, { templateId: 'cli' }));
  await store.saveMessages(id, conversation(3));
  for (let seq = 1; seq <= events; seq++) await store.appendEvent(id, timeline(seq));
  await store.saveSnapshot(id, snapshot('s1', '2026-11-22T15:30:00.000Z'));
  await store.saveSnapshot(id, snapshot('s2', '2026-11-22T15:31:00.000Z'));
}

interface Report {
  dryRun: boolean;
  agents: number;
  messages: number;
  events: number;
  snapshots: number;
  scannedAgents: number;
  policy: Record<string, unknown>;
}

describe('kode-store prune', () => {
  it('reports in a dry run exactly what the real run then removes, and the dry run changes nothing', async () => {
    const path = join(scratch.dir, 'prune.db');
    const location = `sqlite:${path}`;
    const store = new SqliteStore({ path });
    await seed(store, 'idle', 4);
    await seed(store, 'busy', 6);
    const at = await boundary();
    await store.appendEvent('busy', timeline(7));
    await store.close();
    const args = [
      'prune',
      location,
      '--inactive-before',
      new Date(at).toISOString(),
      '--keep-events',
      '2',
      '--keep-snapshots',
      '1',
      '--json',
    ];

    const dry = await runInProcess([...args, '--dry-run']);
    expect(dry.stderr).toMatch(/prune: 2 agents scanned, would remove 1 agents/);
    expect(dry.code).toBe(0);
    const dryReport = JSON.parse(dry.stdout) as Report;
    expect(dryReport).toMatchObject({
      dryRun: true,
      agents: 1,
      messages: 3,
      events: 4 + 5,
      snapshots: 2 + 1,
      scannedAgents: 2,
      policy: { inactiveBefore: new Date(at).toISOString(), keepEvents: 2, keepSnapshots: 1 },
    });
    const unchanged = new SqliteStore({ path, readOnly: true });
    expect(await unchanged.list()).toEqual(['busy', 'idle']);
    expect((await collect(unchanged.readEvents('busy'))).length).toBe(7);
    await unchanged.close();

    const real = await runInProcess(args);
    expect(real.code).toBe(0);
    const { dryRun, policy, ...removed } = JSON.parse(real.stdout) as Report;
    const { dryRun: _d, policy: _p, ...wouldRemove } = dryReport;
    expect(dryRun).toBe(false);
    expect(removed).toEqual(wouldRemove);

    const after = new SqliteStore({ path, readOnly: true });
    expect(await after.list()).toEqual(['busy']);
    expect((await collect(after.readEvents('busy'))).map((e) => e.bookmark?.seq)).toEqual([6, 7]);
    expect((await after.listSnapshots('busy')).map((s) => s.id)).toEqual(['s2']);
    await after.close();
  });

  it('prints a summary table, narrowed by --template and --prefix', async () => {
    const store = new MemoryStore();
    await seed(store, 'team-a-1', 1);
    await seed(store, 'team-b-1', 1);
    await store.saveInfo('team-a-2', agentInfo('team-a-2', { templateId: 'other' }));
    const at = await boundary();
    const run = await runInProcess(
      [
        'prune',
        'memory:shared',
        '--inactive-before',
        new Date(at).toISOString(),
        '--template',
        'cli',
        '--prefix',
        'team-a-',
      ],
      { stores: { 'memory:shared': store } },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/memory:shared: pruned/);
    expect(run.stdout).toMatch(/agents removed\W+1\W/);
    expect(await store.list()).toEqual(['team-a-2', 'team-b-1']);
  });

  it('refuses a command without a rule, a bad time, and --channels without an event rule (exit 2)', async () => {
    const location = 'memory:';
    const none = await runInProcess(['prune', location]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/nothing to prune/);
    const badTime = await runInProcess(['prune', location, '--inactive-before', 'yesterday']);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toMatch(/must be an age/);
    const badCount = await runInProcess(['prune', location, '--keep-events', '-1']);
    expect(badCount.code).toBe(2);
    const channels = await runInProcess([
      'prune',
      location,
      '--keep-snapshots',
      '1',
      '--channels',
      'progress',
    ]);
    expect(channels.code).toBe(2);
    expect(channels.stderr).toMatch(/--channels needs/);
  });

  it('refuses a store without prune (exit 2), naming it', async () => {
    const plain = new MemoryStore();
    const withoutRetention = new Proxy(plain, {
      get: (target, key, receiver) =>
        key === 'prune' || key === 'compact' ? undefined : Reflect.get(target, key, receiver),
    });
    const stores = { 'custom:store': withoutRetention };
    const prune = await runInProcess(['prune', 'custom:store', '--keep-snapshots', '1'], { stores });
    expect(prune.code).toBe(2);
    expect(prune.stderr).toMatch(/custom:store \(memory\) does not support prune/);
    const compact = await runInProcess(['compact', 'custom:store'], { stores });
    expect(compact.code).toBe(2);
    expect(compact.stderr).toMatch(/does not support compact/);
  });

  it('prunes the events of a hybrid-mode store by rewriting its event files, and its agents', async () => {
    const path = join(scratch.dir, 'hybrid.db');
    const events = join(scratch.dir, 'hybrid-events');
    const env = { KODE_STORE_EVENTS: 'file', KODE_STORE_PATH: events };
    const store = new SqliteStore({ path, eventStorage: 'file', fileStoreBaseDir: events });
    await seed(store, 'old', 3);
    await seed(store, 'kept', 3);
    await store.close();
    const pruned = await runInProcess(
      ['prune', `sqlite:${path}`, '--prefix', 'kept', '--keep-events', '1', '--json'],
      { env },
    );
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(JSON.parse(pruned.stdout)).toMatchObject({ agents: 0, events: 2 });
    const reopened = new SqliteStore({ path, eventStorage: 'file', fileStoreBaseDir: events });
    expect((await collect(reopened.readEvents('kept'))).map((e) => e.bookmark.seq)).toEqual([3]);
    // The rewritten file is sound (seed() leaves info.messageCount behind its messages, which is not ours).
    const issues = (await reopened.checkConsistency('kept')).issues;
    expect(issues.filter((issue) => /event/.test(issue))).toEqual([]);
    await reopened.close();
    // Appends are judged by the event file's time, trusted to within FILE_TIME_SLACK_MS.
    await waitPast(Date.now() + FILE_TIME_SLACK_MS);
    const at = await boundary();
    const run = await runInProcess(
      ['prune', `sqlite:${path}`, '--inactive-before', new Date(at).toISOString(), '--json'],
      { env },
    );
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ agents: 2, files: 2 });
  });
});

describe('kode-store compact', () => {
  it('gives the pages of pruned events back to the file system', async () => {
    const path = join(scratch.dir, 'compact.db');
    const store = new SqliteStore({ path });
    const big = 'x'.repeat(2000);
    for (let seq = 1; seq <= 2000; seq++)
      void store.appendEvent('a', timeline(seq, 'progress', { delta: big }));
    await store.appendEvent('a', timeline(2001));
    await store.prune({ events: { keepNewest: 1 } });
    await store.close();
    const run = await runInProcess(['compact', `sqlite:${path}`, '--json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as {
      bytesBefore: number;
      bytesAfter: number;
      reclaimableBytes: number;
    };
    // About 4 MB of events went; what is left is a few pages.
    expect(report.bytesBefore).toBeGreaterThan(4_000_000);
    expect(report.bytesAfter).toBeLessThan(report.bytesBefore / 10);
    expect(report.reclaimableBytes).toBe(0);
  });

  it('leaves a file made without incremental auto-vacuum as it is, and converts it with --full', async () => {
    const path = join(scratch.dir, 'old-format.db');
    // A file that existed before kode-store chose incremental auto-vacuum.
    const raw = new Database(path);
    raw.exec('CREATE TABLE unrelated (x)');
    raw.close();
    const store = new SqliteStore({ path });
    for (let seq = 1; seq <= 500; seq++)
      await store.appendEvent('a', timeline(seq, 'progress', { delta: 'y'.repeat(2000) }));
    await store.prune({ events: { keepNewest: 0 } });
    await store.close();
    const plain = await runInProcess(['compact', `sqlite:${path}`]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/nothing done: .*--full/);
    const autoVacuum = () => {
      const db = new Database(path, { readonly: true });
      try {
        return db.pragma('auto_vacuum', { simple: true });
      } finally {
        db.close();
      }
    };
    expect(autoVacuum()).toBe(0);
    const full = await runInProcess(['compact', `sqlite:${path}`, '--full', '--json']);
    expect(full.code).toBe(0);
    const report = JSON.parse(full.stdout) as { bytesBefore: number; bytesAfter: number };
    expect(report.bytesAfter).toBeLessThan(report.bytesBefore);
    expect(autoVacuum()).toBe(2);
  });

  it('does nothing, successfully, on a memory store', async () => {
    const run = await runInProcess(['compact', 'memory:', '--json']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      location: 'memory:',
      action: expect.stringMatching(/nothing to do/),
    });
  });
});

describe('time arguments', () => {
  it('reads ages and ISO dates', () => {
    const now = Date.UTC(2026, 11, 7);
    expect(parseTimeArgument('90d', now)).toBe(now - 90 * 86_400_000);
    expect(parseTimeArgument('12h', now)).toBe(now - 12 * 3_600_000);
    expect(parseTimeArgument('2w', now)).toBe(now - 14 * 86_400_000);
    expect(parseTimeArgument('2026-09-01', now)).toBe(Date.UTC(2026, 8, 1));
    expect(() => parseTimeArgument('90 days', now)).toThrow(/must be an age/);
    expect(() => parseTimeArgument('2026-13-45', now)).toThrow(/must be an age/);
  });
});
