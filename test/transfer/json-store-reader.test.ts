import { appendFile, mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countAgent } from '../../bin/agent-copy.js';
import { JsonStoreCorruptFileError } from '../../src/transfer/json-store-problems.js';
import { JsonStoreReader } from '../../src/transfer/json-store-reader.js';
import type { Timeline } from '../../src/types.js';
import {
  copyFixture,
  expectedCounts,
  FIXTURE_DIR,
  type FixtureManifest,
  loadManifest,
  tempDir,
} from '../bin/cli-support.js';

const ASSISTANT = 'agt-01M81Y5YTSB07WSKPHZV3ZCPY1';
const FORK = `${ASSISTANT}/fork-1795361537133`;
const FORK_OF_FORK = `${FORK}/fork-1795361537197`;
const CRASHED = 'agt-01M81Y5ZF7V8KSXSER1RPEBZ1R';
const ONE_OFF = 'agt-01M81Y5ZQBXZ24M0ZTAKMQ05S4';
const COMPRESS = 'agt-01M81Y5ZGM5G6FSHPDFFH1SCM2';

async function events(reader: JsonStoreReader, agentId: string, opts = {}): Promise<Timeline[]> {
  const out: Timeline[] = [];
  for await (const entry of reader.readEvents(agentId, opts)) out.push(entry);
  return out;
}

let manifest: FixtureManifest;
let scratch: { dir: string; remove: () => Promise<void> };

beforeAll(async () => {
  manifest = await loadManifest();
  scratch = await tempDir('kode-json-reader-');
});
afterAll(() => scratch.remove());

describe('JsonStoreReader on the SDK fixture', () => {
  const reader = new JsonStoreReader(FIXTURE_DIR);

  it('lists every agent, nested forks by their path, and not __pool_meta__', async () => {
    const ids = await reader.list();
    expect(ids).toEqual(Object.keys(manifest.agents).sort());
    expect(ids).toContain(FORK_OF_FORK);
    expect(ids).not.toContain('__pool_meta__');
    expect(await reader.list(`${ASSISTANT}/`)).toEqual([FORK, FORK_OF_FORK]);
  });

  it('holds exactly the manifest counts for every agent (duplicate lines dropped, WAL lines added)', async () => {
    for (const [agentId, agent] of Object.entries(manifest.agents)) {
      expect({ agentId, counts: await countAgent(reader, agentId) }).toEqual({
        agentId,
        counts: expectedCounts(agent),
      });
    }
    expect(reader.problems).toEqual([]);
  });

  it('drops byte-identical duplicate lines but keeps different events that reuse a seq', async () => {
    const summary = await reader.summarize(ASSISTANT);
    expect(summary.duplicateEventLines).toBe(22);
    const monitor = await events(reader, ASSISTANT, { channel: 'monitor' });
    const seqZero = monitor.filter((e) => e.bookmark.seq === 0);
    expect(seqZero).toHaveLength(2);
    expect(JSON.stringify(seqZero[0])).not.toBe(JSON.stringify(seqZero[1]));
  });

  it('imports the leftover .wal lines of the one-off agent', async () => {
    const stream = await events(reader, ONE_OFF);
    const progressSeqs = stream.filter((e) => e.event.channel === 'progress').map((e) => e.bookmark.seq);
    for (const seq of [40, 41, 42, 43, 45]) expect(progressSeqs).toContain(seq);
    expect(stream).toHaveLength(18 + 35);
  });

  it('merges the channels by timestamp then seq, so a resumed session follows the one it resumed', async () => {
    const stream = await events(reader, CRASHED);
    for (let i = 1; i < stream.length; i++) {
      const [a, b] = [stream[i - 1]!.bookmark, stream[i]!.bookmark];
      expect(a.timestamp < b.timestamp || (a.timestamp === b.timestamp && a.seq <= b.seq)).toBe(true);
    }
    const resumed = stream.findIndex((e) => e.event.type === 'agent_resumed');
    // Everything of the first session (up to seq 23) comes before the resume.
    expect(stream.slice(0, resumed - 1).map((e) => e.bookmark.seq)).toEqual(
      [...stream.slice(0, resumed - 1).map((e) => e.bookmark.seq)].sort((x, y) => x - y),
    );
    expect(stream[resumed - 1]!.event.type).toBe('tool_manual_updated');
    expect(stream[resumed - 1]!.bookmark.seq).toBe(0);
    expect(Math.max(...stream.slice(0, resumed - 1).map((e) => e.bookmark.seq))).toBe(23);
  });

  it('merges by seq then timestamp when asked (eventOrder: seq)', async () => {
    const bySeq = await events(new JsonStoreReader(FIXTURE_DIR, { eventOrder: 'seq' }), CRASHED);
    for (let i = 1; i < bySeq.length; i++) {
      const [a, b] = [bySeq[i - 1]!.bookmark, bySeq[i]!.bookmark];
      expect(a.seq < b.seq || (a.seq === b.seq && a.timestamp <= b.timestamp)).toBe(true);
    }
    expect(bySeq).toHaveLength((await events(reader, CRASHED)).length);
  });

  it('filters events by channel and since like a store', async () => {
    const all = await events(reader, ASSISTANT);
    const control = await events(reader, 'agt-01M81Y5Z9YGJW8TEJP7KZ99W6M', { channel: 'control' });
    expect(control.map((e) => e.event.channel)).toEqual([
      'control',
      'control',
      'control',
      'control',
      'control',
    ]);
    const since = await events(reader, ASSISTANT, { since: { seq: 200, timestamp: 0 } });
    expect(since.length).toBe(all.filter((e) => e.bookmark.seq > 200).length);
    expect(since.every((e) => e.bookmark.seq > 200)).toBe(true);
  });

  it('reads recovered files with their fractional mtime and exact content', async () => {
    const files = await reader.loadRecoveredFiles(COMPRESS);
    expect(files).toHaveLength(6);
    expect(files[0]).toMatchObject({ path: '/workspace/project/src/app.ts', timestamp: 1795361537643 });
    expect(files[0]!.mtime).toBe(1795361537586.0696);
    const raw = await readFile(
      join(FIXTURE_DIR, COMPRESS, 'history/recovered/_workspace_project_src_app.ts_1795361537643.txt'),
      'utf8',
    );
    expect(raw.endsWith(files[0]!.content)).toBe(true);
    expect(raw).toBe(
      `# Recovered: ${files[0]!.path}\n# Timestamp: ${files[0]!.timestamp}\n# Mtime: 1795361537586.0696\n\n${files[0]!.content}`,
    );
    expect(files.map((f) => f.timestamp)).toEqual([...files.map((f) => f.timestamp)].sort((a, b) => a - b));
  });

  it('loads history windows and compression records oldest first', async () => {
    const windows = await reader.loadHistoryWindows(COMPRESS);
    expect(windows.map((w) => w.id)).toEqual([
      'window-1795361537643',
      'window-1795361537666',
      'window-1795361540164',
      'window-1795361540194',
    ]);
    const compressions = await reader.loadCompressionRecords(COMPRESS);
    expect(compressions.map((c) => c.windowId)).toEqual(windows.map((w) => w.id));
  });

  it('serves the pool record through loadInfo("__pool_meta__"), as AgentPool asks for it', async () => {
    const pool = (await reader.loadInfo('__pool_meta__')) as unknown as {
      runningAgents: { agentIds: string[] };
    };
    expect(pool.runningAgents.agentIds).toHaveLength(6);
    expect(await reader.exists('__pool_meta__')).toBe(true);
    expect(await reader.loadMessages('__pool_meta__')).toEqual([]);
  });

  it('answers like a store for an unknown agent', async () => {
    expect(await reader.exists('nope')).toBe(false);
    expect(await reader.loadInfo('nope')).toBeUndefined();
    expect(await reader.loadMessages('nope')).toEqual([]);
    expect(await events(reader, 'nope')).toEqual([]);
    expect(await reader.loadSnapshot(ASSISTANT, 'release-draft')).toMatchObject({ id: 'release-draft' });
    expect(await reader.loadSnapshot(ASSISTANT, 'nope')).toBeUndefined();
  });

  it('is healthy but never writable, and finds the fixture consistent', async () => {
    const health = await reader.healthCheck();
    expect(health.healthy).toBe(true);
    expect(health.fileSystem.writable).toBe(false);
    for (const agentId of await reader.list()) {
      expect(await reader.checkConsistency(agentId)).toMatchObject({ consistent: true, issues: [] });
    }
  });
});

describe('JsonStoreReader on damaged directories (a copy of the fixture)', () => {
  it('names a truncated JSON file and stops, or skips it and keeps everything else', async () => {
    const root = await copyFixture(join(scratch.dir, 'truncated'));
    const file = join(root, ONE_OFF, 'runtime/messages.json');
    await truncate(file, 200);

    const strict = new JsonStoreReader(root);
    const error = await strict.loadMessages(ONE_OFF).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JsonStoreCorruptFileError);
    expect((error as JsonStoreCorruptFileError).filePath).toBe(file);
    expect((error as JsonStoreCorruptFileError).code).toBe('KODE_CORRUPT');

    const lenient = new JsonStoreReader(root, { onCorrupt: 'skip' });
    expect(await lenient.loadMessages(ONE_OFF)).toEqual([]);
    expect(lenient.problems).toEqual([
      expect.objectContaining({ kind: 'unparsable-json', path: file, agentId: ONE_OFF }),
    ]);
    const counts = await countAgent(lenient, ONE_OFF);
    expect(counts).toEqual({ ...expectedCounts(manifest.agents[ONE_OFF]!), messages: 0 });
    const consistency = await lenient.checkConsistency(ONE_OFF);
    expect(consistency.consistent).toBe(false);
    expect(consistency.issues.join('\n')).toContain(file);
  });

  it('names a torn event line with its line number and keeps every other line', async () => {
    const root = await copyFixture(join(scratch.dir, 'torn'));
    const log = join(root, CRASHED, 'events/monitor.log');
    const lines = (await readFile(log, 'utf8')).split('\n');
    // A write torn by a crash, then later appends on new lines.
    lines.splice(5, 0, lines[5]!.slice(0, 40));
    await writeFile(log, lines.join('\n'));

    await expect(events(new JsonStoreReader(root), CRASHED)).rejects.toThrow(/monitor\.log:6/);
    const lenient = new JsonStoreReader(root, { onCorrupt: 'skip' });
    expect(await events(lenient, CRASHED)).toHaveLength(expectedCounts(manifest.agents[CRASHED]!).events);
    expect(lenient.problems).toEqual([
      expect.objectContaining({ kind: 'torn-event-line', path: log, line: 6 }),
    ]);
  });

  it('keeps a complete entry written behind a torn one on the same line', async () => {
    const root = await copyFixture(join(scratch.dir, 'glued'));
    const log = join(root, CRASHED, 'events/monitor.log');
    const lines = (await readFile(log, 'utf8')).split('\n');
    lines[5] = lines[4]!.slice(0, 30) + lines[5]!;
    lines.splice(4, 1);
    await writeFile(log, lines.join('\n'));
    const lenient = new JsonStoreReader(root, { onCorrupt: 'skip' });
    const stream = await events(lenient, CRASHED);
    // Entry 4 was torn (lost, reported); entry 5 survives behind it.
    expect(stream).toHaveLength(expectedCounts(manifest.agents[CRASHED]!).events - 1);
    expect(lenient.problems[0]!.message).toMatch(/kept/);
  });

  it('scan() names every corrupt file at once without throwing', async () => {
    const root = await copyFixture(join(scratch.dir, 'scan'));
    await truncate(join(root, ASSISTANT, 'meta.json'), 10);
    await appendFile(join(root, FORK, 'events/progress.log'), '{"cursor":99,"bookm');
    await writeFile(join(root, COMPRESS, 'history/recovered/garbage.txt'), 'not a recovered file');
    await writeFile(join(root, ONE_OFF, 'runtime/media-cache.json'), '{"not":"a list"}');
    const problems = await new JsonStoreReader(root).scan();
    expect(problems.map((p) => [p.kind, p.agentId]).sort()).toEqual(
      [
        ['bad-recovered-file', COMPRESS],
        ['torn-event-line', FORK],
        ['unexpected-shape', ONE_OFF],
        ['unparsable-json', ASSISTANT],
      ].sort(),
    );
  });

  it('prefers a leftover runtime WAL (written before the .json) over the .json', async () => {
    const root = await copyFixture(join(scratch.dir, 'runtime-wal'));
    const messages = JSON.parse(await readFile(join(root, ONE_OFF, 'runtime/messages.json'), 'utf8'));
    const newer = [...messages, { role: 'user', content: [{ type: 'text', text: 'only in the WAL' }] }];
    await writeFile(
      join(root, ONE_OFF, 'runtime/messages.wal'),
      JSON.stringify({ data: newer, timestamp: 1 }),
    );
    expect(await new JsonStoreReader(root).loadMessages(ONE_OFF)).toEqual(newer);

    await writeFile(join(root, ONE_OFF, 'runtime/messages.wal'), '{"data":[');
    await expect(new JsonStoreReader(root).loadMessages(ONE_OFF)).rejects.toThrow(/messages\.wal/);
    const lenient = new JsonStoreReader(root, { onCorrupt: 'skip' });
    expect(await lenient.loadMessages(ONE_OFF)).toEqual(messages);
  });

  it('drops a WAL line that already reached the log (same bytes) but keeps new ones', async () => {
    const root = await copyFixture(join(scratch.dir, 'wal-dup'));
    const dir = join(root, ONE_OFF, 'events');
    const firstLogLine = (await readFile(join(dir, 'progress.log'), 'utf8')).split('\n')[0]!;
    await appendFile(join(dir, 'progress.wal'), `${firstLogLine}\n`);
    const reader = new JsonStoreReader(root);
    expect(await events(reader, ONE_OFF)).toHaveLength(expectedCounts(manifest.agents[ONE_OFF]!).events);
    expect((await reader.summarize(ONE_OFF)).duplicateEventLines).toBe(1);
  });

  it('ignores hidden directories, walks through a directory holding only forks, and needs no empty directories', async () => {
    const { dir, remove } = await tempDir('kode-json-layout-');
    try {
      await mkdir(join(dir, '.git/objects'), { recursive: true });
      await mkdir(join(dir, 'gone/fork-1/runtime'), { recursive: true });
      await writeFile(join(dir, 'gone/fork-1/runtime/messages.json'), '[]');
      await mkdir(join(dir, 'only-meta'), { recursive: true });
      await writeFile(
        join(dir, 'only-meta/meta.json'),
        JSON.stringify({ agentId: 'only-meta', messageCount: 3 }),
      );
      const reader = new JsonStoreReader(dir);
      expect(await reader.list()).toEqual(['gone/fork-1', 'only-meta']);
      expect((await reader.checkConsistency('only-meta')).issues).toEqual([
        'info.messageCount is 3 but 0 messages are stored',
      ]);
      expect((await reader.checkConsistency('missing')).consistent).toBe(false);
      await rm(dir, { recursive: true });
      expect((await new JsonStoreReader(dir).healthCheck()).healthy).toBe(false);
    } finally {
      await remove();
    }
  });
});
