import { type ChildProcess, spawn } from 'node:child_process';
import {
  appendFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentDirName } from '../../src/hybrid/agent-path.js';
import { DescriptorLimit } from '../../src/hybrid/descriptor-limit.js';
import { EVENTS_FILE_NAME, FileEventLog, TORN_LINE_TERMINATOR } from '../../src/hybrid/file-event-log.js';
import { encodeJson } from '../../src/json-codec.js';
import type { AgentChannel, Timeline } from '../../src/types.js';
import type { PrunerConfig } from '../child/file-event-log-pruner.js';

/**
 * Pruning hybrid-mode event files (`FileEventLog.pruneEvents`): the file is
 * rewritten atomically without the events a rule names, appends made
 * meanwhile are kept, a dry run writes nothing, and a process killed while
 * it rewrites loses no acknowledged event.
 */

const here = fileURLToPath(new URL('.', import.meta.url));
const PRUNER = join(here, '..', 'child', 'file-event-log-pruner.ts');
const BASE_MS = 1_795_361_537_000;

let root: string;
let baseDir: string;
const opened: FileEventLog[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kode-file-event-prune-'));
  baseDir = join(root, 'store');
});

afterEach(async () => {
  await Promise.allSettled(opened.map((log) => log.close()));
  opened.length = 0;
  rmSync(root, { recursive: true, force: true });
});

function openLog(maxOpenFiles?: number): FileEventLog {
  const log = new FileEventLog({ baseDir, ...(maxOpenFiles === undefined ? {} : { maxOpenFiles }) });
  opened.push(log);
  return log;
}

const CHANNELS: AgentChannel[] = ['progress', 'monitor', 'control'];

/** Event `seq`, on channel `CHANNELS[seq % 3]` unless given, stamped `BASE_MS + seq`. */
function entry(seq: number, channel: AgentChannel = CHANNELS[seq % 3] ?? 'progress'): Timeline {
  const bookmark = { seq, timestamp: BASE_MS + seq };
  return {
    cursor: seq,
    bookmark,
    event: { channel, type: 'text_chunk', step: 1, delta: `event ${seq}`, bookmark },
  } as Timeline;
}

const encode = (timeline: Timeline) => encodeJson(timeline, 'event');

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

async function seqs(log: FileEventLog, agentId: string, since?: number): Promise<number[]> {
  const opts = since === undefined ? {} : { since: { seq: since, timestamp: 0 } };
  return (await collect(log.read(agentId, opts))).map((e) => e.bookmark.seq);
}

function eventsFile(agentId: string): string {
  return join(baseDir, agentDirName(agentId).name, EVENTS_FILE_NAME);
}

async function appendAll(log: FileEventLog, agentId: string, from: number, to: number): Promise<void> {
  for (let seq = from; seq <= to; seq++) await log.append(agentId, encode(entry(seq)));
}

const lineBytes = (seq: number) => Buffer.byteLength(encode(entry(seq)), 'utf8');

describe('FileEventLog.pruneEvents', () => {
  it('removes exactly what the rule names (time, newest N, channels) and reads the rest back in order', async () => {
    const log = openLog();
    await appendAll(log, 'a', 1, 12);
    // Channels by seq % 3: 0 progress, 1 monitor, 2 control. Monitor events: 1, 4, 7, 10.
    const monitorOld = await log.pruneEvents('a', { channels: ['monitor'], olderThan: BASE_MS + 8 }, false);
    expect(monitorOld).toEqual({ count: 3, bytes: lineBytes(1) + lineBytes(4) + lineBytes(7) });
    expect(await seqs(log, 'a')).toEqual([2, 3, 5, 6, 8, 9, 10, 11, 12]);
    const keepTwo = await log.pruneEvents('a', { keepNewest: 2 }, false);
    expect(keepTwo.count).toBe(7);
    expect(await seqs(log, 'a')).toEqual([11, 12]);
    expect(await seqs(log, 'a', 11)).toEqual([12]);
    // Seqs go on from where they were.
    await appendAll(log, 'a', 13, 14);
    expect(await seqs(log, 'a', 11)).toEqual([12, 13, 14]);
    expect(await log.check('a')).toEqual([]);
  });

  it('keeps the newest N and everything not older than the date when both are given', async () => {
    const log = openLog();
    await appendAll(log, 'a', 1, 10);
    const result = await log.pruneEvents('a', { olderThan: BASE_MS + 5, keepNewest: 8 }, false);
    // Older than the date: 1..4; the newest 8 are 3..10, so only 1 and 2 go.
    expect(result.count).toBe(2);
    expect(await seqs(log, 'a')).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('never counts an event without a bookmark timestamp as older than a date', async () => {
    const log = openLog();
    const untimed = { ...entry(1), bookmark: { seq: 1 } } as unknown as Timeline;
    await log.append('a', encode(untimed));
    await appendAll(log, 'a', 2, 3);
    expect((await log.pruneEvents('a', { olderThan: BASE_MS + 100 }, false)).count).toBe(2);
    expect(await seqs(log, 'a')).toEqual([1]);
  });

  it('counts exactly in a dry run and writes nothing (same bytes, same time, no temporary file)', async () => {
    const log = openLog();
    await appendAll(log, 'a', 1, 9);
    const file = eventsFile('a');
    const before = { bytes: readFileSync(file), mtimeMs: statSync(file).mtimeMs, ino: statSync(file).ino };
    const dry = await log.pruneEvents('a', { keepNewest: 3, channels: ['progress', 'control'] }, true);
    expect(readFileSync(file)).toEqual(before.bytes);
    expect(statSync(file).mtimeMs).toBe(before.mtimeMs);
    expect(statSync(file).ino).toBe(before.ino);
    expect(readdirSync(dirname(file))).toEqual([EVENTS_FILE_NAME]);
    const real = await log.pruneEvents('a', { keepNewest: 3, channels: ['progress', 'control'] }, false);
    expect(real).toEqual(dry);
    // progress/control: 2, 3, 5, 6, 8, 9; the newest 3 (6, 8, 9) stay, monitor events are not considered.
    expect(await seqs(log, 'a')).toEqual([1, 4, 6, 7, 8, 9]);
  });

  it('writes nothing when the rule names no event, and answers 0 for an agent without a file', async () => {
    const log = openLog();
    await appendAll(log, 'a', 1, 3);
    const ino = statSync(eventsFile('a')).ino;
    expect(await log.pruneEvents('a', { keepNewest: 3 }, false)).toEqual({ count: 0, bytes: 0 });
    expect(statSync(eventsFile('a')).ino).toBe(ino);
    expect(await log.pruneEvents('nobody', { keepNewest: 0 }, false)).toEqual({ count: 0, bytes: 0 });
    expect(await log.listAgentIds()).toEqual(['a']);
  });

  it("keeps the file's modification time (a prune is not activity) and the agent's empty file once every event went", async () => {
    const log = openLog();
    await appendAll(log, 'a', 1, 4);
    const bound = await log.lastWriteBound('a');
    expect(bound).toBeDefined();
    await log.pruneEvents('a', { keepNewest: 1 }, false);
    // Within the file system's time resolution.
    expect(Math.abs(((await log.lastWriteBound('a')) ?? 0) - (bound ?? 0))).toBeLessThan(1);
    await log.pruneEvents('a', { keepNewest: 0 }, false);
    expect(await seqs(log, 'a')).toEqual([]);
    expect(await log.has('a')).toBe(false);
    expect(await log.hasFile('a')).toBe(true);
    await log.append('a', encode(entry(5)));
    expect(await seqs(log, 'a')).toEqual([5]);
  });

  it('keeps every append made before, during and after the rewrite, in call order', async () => {
    const log = openLog();
    await appendAll(log, 'a', 1, 200);
    const before = Array.from({ length: 50 }, (_, i) => log.append('a', encode(entry(201 + i, 'monitor'))));
    const pruning = log.pruneEvents('a', { olderThan: BASE_MS + 101 }, false);
    const during = Array.from({ length: 50 }, (_, i) => log.append('a', encode(entry(251 + i, 'progress'))));
    const result = await pruning;
    await Promise.all([...before, ...during]);
    expect(result.count).toBe(100);
    expect(await seqs(log, 'a')).toEqual(Array.from({ length: 200 }, (_, i) => 101 + i));
    expect(await log.check('a')).toEqual([]);
  });

  it('keeps unreadable lines byte for byte and a torn last line, and drops only sealed torn writes', async () => {
    const log = openLog();
    await appendAll(log, 'a', 1, 2);
    appendFileSync(eventsFile('a'), 'not json\n{"cursor":3,"bookm');
    await log.append('a', encode(entry(4)));
    await log.append('a', encode(entry(5)));
    appendFileSync(eventsFile('a'), '{"cursor":6,"bookm');
    const problemsBefore = await log.check('a');
    expect(problemsBefore).toHaveLength(2);
    expect((await log.pruneEvents('a', { olderThan: BASE_MS + 2 }, false)).count).toBe(1);
    const text = readFileSync(eventsFile('a'), 'utf8');
    expect(text).not.toContain(TORN_LINE_TERMINATOR);
    expect(text.startsWith(`${encode(entry(2))}\nnot json\n${encode(entry(4))}\n`)).toBe(true);
    expect(text.endsWith('\n{"cursor":6,"bookm')).toBe(true);
    // The same damage is reported, at its new offsets.
    expect((await log.check('a')).map((p) => p.replace(/offset \d+/, 'offset N'))).toEqual(
      problemsBefore.map((p) => p.replace(/offset \d+/, 'offset N')),
    );
    await log.append('a', encode(entry(7)));
    expect(await seqs(log, 'a')).toEqual([2, 4, 5, 7]);
  });

  it('sees a file another FileEventLog rewrote: its next append goes into the new file', async () => {
    const writer = openLog();
    const pruner = openLog();
    await appendAll(writer, 'a', 1, 5);
    await pruner.pruneEvents('a', { keepNewest: 2 }, false);
    await writer.append('a', encode(entry(6)));
    expect(await seqs(pruner, 'a')).toEqual([4, 5, 6]);
  });

  it('ignores a temporary file a crashed rewrite left, and the next prune removes it', async () => {
    const log = openLog();
    await appendAll(log, 'a', 1, 3);
    // A process id no process has (above the kernel's pid_max).
    const stale = `${eventsFile('a')}.99999999.0badcafe.prune-tmp`;
    writeFileSync(stale, `${encode(entry(99))}\n`);
    expect(await seqs(log, 'a')).toEqual([1, 2, 3]);
    expect(await log.listAgentIds()).toEqual(['a']);
    expect(await log.check('a')).toEqual([]);
    await log.pruneEvents('a', { keepNewest: 1 }, false);
    expect(readdirSync(dirname(eventsFile('a')))).toEqual([EVENTS_FILE_NAME]);
    expect(await seqs(log, 'a')).toEqual([3]);
  });

  it('refuses with UnsupportedError under maxOpenFiles 1 (a rewrite holds two files) and works under 2', async () => {
    const one = openLog(1);
    await appendAll(one, 'a', 1, 3);
    await expect(one.pruneEvents('a', { keepNewest: 1 }, false)).rejects.toMatchObject({
      code: 'KODE_UNSUPPORTED',
    });
    await one.close();
    const two = openLog(2);
    // Another agent's kept append descriptor and a paused read hold both slots; the rewrite waits, then runs.
    await appendAll(two, 'b', 1, 2);
    const reading = two.read('b')[Symbol.asyncIterator]();
    await reading.next();
    const pruned = two.pruneEvents('a', { keepNewest: 1 }, false);
    await reading.return?.();
    expect((await pruned).count).toBe(2);
    expect(await seqs(two, 'a')).toEqual([3]);
  });

  it('rejects a closed log with StoreClosedError', async () => {
    const log = openLog();
    await log.close();
    await expect(log.pruneEvents('a', { keepNewest: 1 }, false)).rejects.toMatchObject({
      code: 'KODE_STORE_CLOSED',
    });
  });
});

describe('DescriptorLimit.acquire(count)', () => {
  it('gives several slots in one request, in call order with single ones, and refuses more than the bound', async () => {
    const limit = new DescriptorLimit(2, () => undefined);
    await limit.acquire();
    const order: string[] = [];
    // The pair takes the free slot and waits for a second one; the single caller waits behind it.
    const pair = limit.acquire(2).then(() => order.push('pair'));
    const single = limit.acquire().then(() => order.push('single'));
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(limit.inUse).toBe(2);
    expect(limit.contended).toBe(true);
    limit.release();
    await pair;
    expect(order).toEqual(['pair']);
    limit.release();
    await single;
    expect(order).toEqual(['pair', 'single']);
    expect(limit.contended).toBe(false);
    await expect(limit.acquire(3)).rejects.toThrow(RangeError);
  });
});

describe('FileEventLog.pruneEvents: a process killed while it rewrites', () => {
  function startPruner(config: PrunerConfig): {
    child: ChildProcess;
    acks: number[];
    rewrites: () => number;
    exited: Promise<{ signal: NodeJS.Signals | null; stderr: string }>;
  } {
    const child = spawn(process.execPath, ['--import', 'tsx', PRUNER, JSON.stringify(config)], {
      cwd: join(here, '..', '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acks: number[] = [];
    let rewrites = 0;
    let pending = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const match = /^ack (\d+)$/.exec(line);
        if (match) acks.push(Number(match[1]));
        else if (line === 'rewrite') rewrites++;
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    const exited = new Promise<{ signal: NodeJS.Signals | null; stderr: string }>((done) =>
      child.on('close', (_code, signal) => done({ signal, stderr })),
    );
    return { child, acks, rewrites: () => rewrites, exited };
  }

  it('loses no acknowledged event, leaves no garbage entry, and the next prune cleans up', async () => {
    const agentId = 'agt-prune-crash';
    const rounds = 6;
    let killedMidRewrite = 0;
    for (let round = 0; round < rounds; round++) {
      const pruner = startPruner({ baseDir, agentId, payloadBytes: 4096, window: 32, initial: 3000 });
      // Killed once it has begun a few rewrites: in even rounds as soon as a rewrite's
      // temporary file is seen (writing the new file, before the rename), in odd rounds
      // as a rewrite begins (scanning the old file). Correctness does not depend on where.
      const killAt = 3 + (round % 3);
      const agentPath = dirname(eventsFile(agentId));
      await new Promise<void>((killed) => {
        const poll = setInterval(() => {
          const ready = pruner.rewrites() >= killAt;
          const rewriting =
            round % 2 === 1 || (ready && readdirSync(agentPath).some((name) => name.endsWith('.prune-tmp')));
          if (!(ready && rewriting) && pruner.child.exitCode === null) return;
          clearInterval(poll);
          pruner.child.kill('SIGKILL');
          killed();
        }, 1);
      });
      const { signal, stderr } = await pruner.exited;
      expect(signal, stderr).toBe('SIGKILL');

      const log = openLog();
      const problems = await log.check(agentId);
      // The only damage a kill may leave is a torn last line.
      expect(problems.length, problems.join('\n')).toBeLessThanOrEqual(1);
      if (problems.length === 1) expect(problems[0]).toMatch(/torn last line/);
      const indexes = (await collect(log.read(agentId))).map((e) =>
        Number((e.event as { delta: string }).delta.split(':')[0]),
      );
      // Each round starts again at index 0: this round's entries follow the previous rounds' non-monitor ones.
      const thisRound = indexes.slice(indexes.lastIndexOf(0));
      expect(thisRound).toEqual([...thisRound].sort((x, y) => x - y));
      expect(new Set(thisRound).size).toBe(thisRound.length);
      const kept = new Set(thisRound);
      const lost = pruner.acks.filter((index) => index % 3 !== 1 && !kept.has(index));
      expect(pruner.acks.length).toBeGreaterThan(0);
      expect(lost).toEqual([]);
      const temporaries = () =>
        readdirSync(dirname(eventsFile(agentId))).filter((name) => name.endsWith('.prune-tmp'));
      if (temporaries().length > 0) killedMidRewrite++;
      // The next prune (this process) removes a temporary file the killed one left.
      await log.pruneEvents(agentId, { channels: ['monitor'], keepNewest: 0 }, false);
      expect(temporaries()).toEqual([]);
      await log.close();
    }
    console.info(
      `[file-event-log-prune] rounds killed while a temporary file existed (mid-rewrite): ${killedMidRewrite}/${rounds}`,
    );
    // Six child processes, each loading TypeScript and writing 3,000 events of 4 KB before its
    // rewrites begin: 11 s on an idle machine, 77 s at load 9 on two cores. The bound is for a
    // stuck run, not a slow machine.
  }, 300_000);
});
