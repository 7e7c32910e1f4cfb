import { type ChildProcess, spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KodeStoreError, StoreClosedError, ValidationError } from '../../src/errors.js';
import {
  AGENT_ID_SIDECAR,
  agentDirName,
  agentIdFromDirName,
  MAX_DIRECT_DIR_NAME_LENGTH,
} from '../../src/hybrid/agent-path.js';
import {
  DEFAULT_MAX_OPEN_FILES,
  EVENTS_FILE_NAME,
  FileEventLog,
  type FileEventLogOptions,
  TORN_LINE_TERMINATOR,
} from '../../src/hybrid/file-event-log.js';
import { encodeJson } from '../../src/json-codec.js';
import type { AgentChannel, Timeline } from '../../src/types.js';
import type { AppenderConfig } from '../child/file-event-log-appender.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = join(here, '..', '..');
const APPENDER = join(here, '..', 'child', 'file-event-log-appender.ts');
const FIXTURE_DIR = join(here, '..', 'fixtures', 'kode-jsonstore-v2.7.5');
const hasProcFs = existsSync('/proc/self/fd') && existsSync('/proc/self/io');
const NO_PROC_REASON = 'needs Linux /proc/self/fd and /proc/self/io to observe descriptors and write calls';

let root: string;
let baseDir: string;
const opened: FileEventLog[] = [];

beforeEach(() => {
  // baseDir is one level below a fresh directory, so the tests can see that
  // nothing is created beside it and that it is created on the first append.
  root = mkdtempSync(join(tmpdir(), 'kode-file-event-log-'));
  baseDir = join(root, 'store');
});

afterEach(async () => {
  await Promise.allSettled(opened.map((log) => log.close()));
  opened.length = 0;
  rmSync(root, { recursive: true, force: true });
});

function openLog(options: Partial<FileEventLogOptions> = {}): FileEventLog {
  const log = new FileEventLog({ baseDir, ...options });
  opened.push(log);
  return log;
}

const CHANNELS: AgentChannel[] = ['progress', 'monitor', 'control'];

function entry(
  index: number,
  channel: AgentChannel = CHANNELS[index % 3] ?? 'progress',
  seq = index,
): Timeline {
  const bookmark = { seq, timestamp: 1_795_361_537_000 + index };
  return {
    cursor: index,
    bookmark,
    event: { channel, type: 'text_chunk', step: 1, delta: `event ${index}`, bookmark },
  } as Timeline;
}

const encode = (timeline: Timeline) => encodeJson(timeline, 'event');

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

function eventsFile(agentId: string): string {
  return join(baseDir, agentDirName(agentId).name, EVENTS_FILE_NAME);
}

/** Descriptors of this process that point into `dir`. */
function openDescriptorsUnder(dir: string): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/`)) count++;
    } catch {
      // the descriptor closed while we looked
    }
  }
  return count;
}

/** Number of write-type system calls this process has made so far. */
function writeSyscalls(): number {
  const match = /^syscw:\s*(\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
  return Number(match?.[1]);
}

/** Every path below `dir`, relative to it. */
function walk(dir: string): string[] {
  const paths: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    paths.push(relative(baseDir, path));
    if (entry.isDirectory()) paths.push(...walk(path));
  }
  return paths;
}

/** `writer` and `index` of an event written by the child appender. */
function appenderTag(timeline: Timeline): { writer: string; index: number } {
  const delta = (timeline.event as { delta: string }).delta;
  const [writer = '', index = ''] = delta.split(':');
  return { writer, index: Number(index) };
}

function startAppender(config: AppenderConfig): {
  child: ChildProcess;
  acks: number[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  onAck(listener: (index: number) => void): void;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', APPENDER, JSON.stringify(config)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const acks: number[] = [];
  const listeners: Array<(index: number) => void> = [];
  let pending = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const match = /^ack (\d+)$/.exec(line);
      if (!match) continue;
      const index = Number(match[1]);
      acks.push(index);
      for (const listener of listeners) listener(index);
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((done) =>
    child.on('close', (code, signal) => done({ code, signal, stderr })),
  );
  return { child, acks, exited, onAck: (listener) => listeners.push(listener) };
}

describe('FileEventLog: appending and reading', () => {
  it('reads back what was appended, in append order across channels', async () => {
    const log = openLog();
    const entries = Array.from({ length: 30 }, (_, i) => entry(i));
    for (const timeline of entries) await log.append('agt-1', encode(timeline));
    expect(await collect(log.read('agt-1'))).toEqual(entries);
  });

  it('keeps the call order of un-awaited appends and resolves every one', async () => {
    const log = openLog();
    const entries = Array.from({ length: 2000 }, (_, i) => entry(i));
    await Promise.all(entries.map((timeline) => log.append('agt-1', encode(timeline))));
    expect(await collect(log.read('agt-1'))).toEqual(entries);
  });

  it('writes one line per entry, byte for byte as encoded', async () => {
    const log = openLog();
    const lines = [entry(0), entry(1, 'control')].map(encode);
    lines.push(
      encode({ ...entry(2), event: { ...entry(2).event, delta: 'ünï 😀 \u0000 "q" \\ \n' } } as Timeline),
    );
    await Promise.all(lines.map((line) => log.append('agt-1', line)));
    expect(readFileSync(eventsFile('agt-1'), 'utf8')).toBe(`${lines.join('\n')}\n`);
  });

  it.skipIf(!hasProcFs)(`batches un-awaited appends into few write calls (${NO_PROC_REASON})`, async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0))); // the first append opens and creates the file
    const before = writeSyscalls();
    await Promise.all(Array.from({ length: 2000 }, (_, i) => log.append('agt-1', encode(entry(i + 1)))));
    const calls = writeSyscalls() - before;
    // One write per batch of up to 1000 lines, plus whatever else the worker
    // process writes meanwhile; one write per append would be 2000.
    expect(calls).toBeLessThan(100);
    expect(await collect(log.read('agt-1'))).toHaveLength(2001);
  });

  it('keeps agents apart', async () => {
    const log = openLog();
    await Promise.all([
      log.append('agt-a', encode(entry(1))),
      log.append('agt-b', encode(entry(2))),
      log.append('agt-a', encode(entry(3))),
    ]);
    expect(await collect(log.read('agt-a'))).toEqual([entry(1), entry(3)]);
    expect(await collect(log.read('agt-b'))).toEqual([entry(2)]);
  });

  it('reads nothing for an agent without events, and creates nothing doing so', async () => {
    const log = openLog();
    expect(await collect(log.read('agt-none'))).toEqual([]);
    expect(await log.has('agt-none')).toBe(false);
    expect(await log.check('agt-none')).toEqual([]);
    expect(await log.listAgentIds()).toEqual([]);
    expect(await log.stats()).toEqual({ files: 0, bytes: 0 });
    expect(existsSync(baseDir)).toBe(false);
  });

  it('creates the base directory on the first append, and nothing beside it', async () => {
    const log = openLog();
    expect(existsSync(baseDir)).toBe(false);
    await log.append('agt-1', encode(entry(0)));
    expect(readdirSync(root)).toEqual(['store']);
    expect(walk(baseDir).sort()).toEqual([
      agentDirName('agt-1').name,
      join(agentDirName('agt-1').name, EVENTS_FILE_NAME),
    ]);
  });

  it('creates missing parents of the base directory too', async () => {
    baseDir = join(root, 'a', 'b', 'store');
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    expect(await collect(log.read('agt-1'))).toEqual([entry(0)]);
  });

  it('works without fsync', async () => {
    const log = openLog({ fsync: false });
    await Promise.all([0, 1, 2].map((i) => log.append('agt-1', encode(entry(i)))));
    expect(await collect(log.read('agt-1'))).toEqual([entry(0), entry(1), entry(2)]);
  });

  it('filters by since (bookmark.seq > since.seq) and by event.channel, keeping append order', async () => {
    const log = openLog();
    // Seqs are not unique and not monotonic (the SDK reuses them after a crash).
    const entries = [
      entry(0, 'monitor', 5),
      entry(1, 'progress', 6),
      entry(2, 'control', 7),
      entry(3, 'monitor', 3),
      entry(4, 'progress', 6),
      entry(5, 'progress', 9),
    ];
    await Promise.all(entries.map((timeline) => log.append('agt-1', encode(timeline))));
    const since = { seq: 5, timestamp: 0 };
    expect(await collect(log.read('agt-1', { since }))).toEqual(entries.filter((e) => e.bookmark.seq > 5));
    expect(await collect(log.read('agt-1', { channel: 'progress' }))).toEqual(
      entries.filter((e) => e.event.channel === 'progress'),
    );
    expect(await collect(log.read('agt-1', { since, channel: 'progress' }))).toEqual([
      entries[1],
      entries[4],
      entries[5],
    ]);
    expect(await collect(log.read('agt-1', { since: { seq: 9, timestamp: 0 } }))).toEqual([]);
  });

  it("round-trips the SDK's own event logs exactly, duplicates and reused seqs included", async () => {
    const log = openLog();
    const agents = [
      'agt-01M81Y5YTSB07WSKPHZV3ZCPY1',
      'agt-01M81Y5ZF7V8KSXSER1RPEBZ1R',
      'agt-01M81Y5ZQBXZ24M0ZTAKMQ05S4',
    ];
    for (const agentId of agents) {
      const dir = join(FIXTURE_DIR, agentId, 'events');
      const lines = readdirSync(dir)
        .sort()
        .flatMap((name) => readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean));
      // encodeJson of the parsed line gives back the very same text (key order kept).
      const encoded = lines.map((line) => encode(JSON.parse(line) as Timeline));
      expect(encoded).toEqual(lines);
      await Promise.all(encoded.map((line) => log.append(agentId, line)));
      const expected = lines.map((line) => JSON.parse(line) as Timeline);
      expect(await collect(log.read(agentId))).toEqual(expected);
      expect(readFileSync(eventsFile(agentId), 'utf8')).toBe(`${lines.join('\n')}\n`);
      const since = { seq: 15, timestamp: 0 };
      expect(await collect(log.read(agentId, { since, channel: 'monitor' }))).toEqual(
        expected.filter((e) => e.bookmark.seq > 15 && e.event.channel === 'monitor'),
      );
      expect(await log.check(agentId)).toEqual([]);
    }
    // The assistant's progress log holds 22 byte-identical duplicates: kept, not merged.
    const assistant = await collect(log.read(agents[0] as string));
    expect(new Set(assistant.map((e) => JSON.stringify(e))).size).toBe(assistant.length - 22);
    expect(await log.listAgentIds()).toEqual([...agents].sort());
  });

  it('streams a file larger than one read chunk, lines crossing chunk borders included', async () => {
    const log = openLog({ fsync: false });
    const entries = Array.from({ length: 400 }, (_, i) => {
      const timeline = entry(i);
      (timeline.event as { delta: string }).delta = `${i}:${'é'.repeat((i * 7919) % 3000)}`;
      return timeline;
    });
    await Promise.all(entries.map((timeline) => log.append('agt-1', encode(timeline))));
    expect(statSync(eventsFile('agt-1')).size).toBeGreaterThan(3 * 64 * 1024);
    expect(await collect(log.read('agt-1'))).toEqual(entries);
  });

  it('round-trips a 1 MiB entry and a batch larger than one write chunk', async () => {
    const log = openLog({ fsync: false });
    const big = entry(0);
    (big.event as { delta: string }).delta = 'x'.repeat(1024 * 1024);
    const entries = [big, ...Array.from({ length: 6 }, () => big), entry(1)];
    await Promise.all(entries.map((timeline) => log.append('agt-1', encode(timeline))));
    expect(await collect(log.read('agt-1'))).toEqual(entries);
    expect(await log.check('agt-1')).toEqual([]);
  });

  it('reads while appends continue: a prefix in order, and the read ends', async () => {
    const writer = openLog({ fsync: false });
    const reader = openLog();
    for (let i = 0; i < 500; i++) void writer.append('agt-1', encode(entry(i)));
    await writer.append('agt-1', encode(entry(500)));
    let next = 501;
    const appending = (async () => {
      for (let round = 0; round < 50; round++) {
        await Promise.all(Array.from({ length: 20 }, () => writer.append('agt-1', encode(entry(next++)))));
      }
    })();
    const seen: number[] = [];
    for await (const timeline of reader.read('agt-1')) {
      seen.push(timeline.cursor);
      if (seen.length % 100 === 0) await new Promise((done) => setImmediate(done));
    }
    await appending;
    expect(seen.length).toBeGreaterThanOrEqual(501);
    expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i));
    expect(await collect(reader.read('agt-1'))).toHaveLength(next);
  });

  it('serves concurrent readers the same entries without changing the file', async () => {
    const log = openLog();
    await Promise.all(Array.from({ length: 300 }, (_, i) => log.append('agt-1', encode(entry(i)))));
    const before = readFileSync(eventsFile('agt-1'));
    const [a, b, c] = await Promise.all([
      collect(log.read('agt-1')),
      collect(log.read('agt-1', { channel: 'monitor' })),
      collect(log.read('agt-1')),
    ]);
    expect(a).toHaveLength(300);
    expect(c).toEqual(a);
    expect(b).toEqual(a.filter((e) => e.event.channel === 'monitor'));
    expect(readFileSync(eventsFile('agt-1')).equals(before)).toBe(true);
  });

  it.skipIf(!hasProcFs)(
    `closes the file when the consumer breaks out of for-await (${NO_PROC_REASON})`,
    async () => {
      const writer = openLog({ fsync: false });
      await Promise.all(Array.from({ length: 3000 }, (_, i) => writer.append('agt-1', encode(entry(i)))));
      await writer.close();
      const reader = openLog();
      let taken = 0;
      for await (const _ of reader.read('agt-1')) {
        expect(openDescriptorsUnder(baseDir)).toBe(1);
        if (++taken === 3) break;
      }
      expect(openDescriptorsUnder(baseDir)).toBe(0);
    },
  );

  it('sees entries appended through another FileEventLog on the same directory', async () => {
    const a = openLog();
    const b = openLog();
    await a.append('agt-1', encode(entry(0)));
    await b.append('agt-1', encode(entry(1)));
    await a.append('agt-1', encode(entry(2)));
    expect(await collect(b.read('agt-1'))).toEqual([entry(0), entry(1), entry(2)]);
    expect(await collect(a.read('agt-1'))).toEqual([entry(0), entry(1), entry(2)]);
  });

  it('never interleaves two FileEventLogs appending large entries to one agent at once', async () => {
    const a = openLog({ fsync: false });
    const b = openLog({ fsync: false });
    const big = (writer: string, i: number) => {
      const timeline = entry(i);
      (timeline.event as { delta: string }).delta =
        `${writer}:${i}:${'y'.repeat(((i * 104_729) % 200_000) + 1)}`;
      return encode(timeline);
    };
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => [
        a.append('agt-1', big('a', i)),
        b.append('agt-1', big('b', i)),
      ]).flat(),
    );
    const tags = (await collect(a.read('agt-1'))).map(appenderTag);
    expect(tags).toHaveLength(120);
    for (const writer of ['a', 'b']) {
      expect(tags.filter((tag) => tag.writer === writer).map((tag) => tag.index)).toEqual(
        Array.from({ length: 60 }, (_, i) => i),
      );
    }
    expect(await a.check('agt-1')).toEqual([]);
  });
});

describe('FileEventLog: refused input', () => {
  it.each([
    ['an empty id', ''],
    ['a NUL byte', 'agt\u0000x'],
    ['a lone surrogate', 'agt-\ud800'],
    ['a non-string', 42],
    ['an id over the maximum length', 'a'.repeat(1025)],
  ])('refuses an agent id with %s, with ValidationError, and writes nothing', async (_, agentId) => {
    const log = openLog();
    const id = agentId as string;
    await expect(log.append(id, encode(entry(0)))).rejects.toBeInstanceOf(ValidationError);
    await expect(collect(log.read(id))).rejects.toBeInstanceOf(ValidationError);
    await expect(log.has(id)).rejects.toBeInstanceOf(ValidationError);
    await expect(log.delete(id)).rejects.toBeInstanceOf(ValidationError);
    await expect(log.check(id)).rejects.toBeInstanceOf(ValidationError);
    expect(existsSync(baseDir)).toBe(false);
  });

  it.each([
    ['not a string', 42, /must be a string/],
    ['two lines', `${encode(entry(0))}\n${encode(entry(1))}`, /one line/],
    ['not JSON', '{"cursor":1,', /not JSON/],
    ['an empty string', '', /empty/],
    ['a JSON array', '[1,2]', /not a Timeline/],
    ['missing bookmark.seq', '{"cursor":0,"bookmark":{},"event":{"channel":"progress"}}', /not a Timeline/],
    ['missing event.channel', '{"cursor":0,"bookmark":{"seq":1},"event":{}}', /not a Timeline/],
    ['a lone surrogate', '{"cursor":0,"bookmark":{"seq":1},"event":{"channel":"\ud800"}}', /lone surrogates/],
  ])('refuses an encoded line that is %s, with ValidationError', async (_, line, message) => {
    const log = openLog();
    const error = await log.append('agt-1', line as string).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('KODE_VALIDATION');
    expect((error as Error).message).toMatch(message);
    expect(await log.has('agt-1')).toBe(false);
  });

  it('refuses malformed read options with ValidationError', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    const badSince = { since: { seq: '3', timestamp: 0 } } as unknown as {
      since: { seq: number; timestamp: number };
    };
    await expect(collect(log.read('agt-1', badSince))).rejects.toBeInstanceOf(ValidationError);
    const badChannel = { channel: 7 } as unknown as { channel: AgentChannel };
    await expect(collect(log.read('agt-1', badChannel))).rejects.toBeInstanceOf(ValidationError);
  });

  it('refuses a missing or NUL base directory at construction', () => {
    expect(() => new FileEventLog({ baseDir: '' })).toThrow(ValidationError);
    expect(() => new FileEventLog({ baseDir: `${root}/a\u0000b` })).toThrow(ValidationError);
    expect(() => new FileEventLog(undefined as unknown as FileEventLogOptions)).toThrow(ValidationError);
  });

  it('rejects with a typed error naming the operation when the base directory is a file', async () => {
    writeFileSync(baseDir, 'not a directory');
    const log = openLog();
    const error = await log.append('agt-1', encode(entry(0))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KodeStoreError);
    expect((error as KodeStoreError).operation).toBe('append');
    expect((error as KodeStoreError).agentId).toBe('agt-1');
    expect((error as Error).cause).toBeDefined();
    await expect(log.listAgentIds()).rejects.toBeInstanceOf(KodeStoreError);
    await expect(log.stats()).rejects.toBeInstanceOf(KodeStoreError);
    expect(await log.has('agt-1')).toBe(false);
    expect(await collect(log.read('agt-1'))).toEqual([]);
    // A failed batch does not poison the next one once the cause is gone.
    rmSync(baseDir);
    await log.append('agt-1', encode(entry(1)));
    expect(await collect(log.read('agt-1'))).toEqual([entry(1)]);
  });
});

describe('FileEventLog: torn and damaged files', () => {
  it('skips a hand-made torn last line, reports it, and repairs it on the next append', async () => {
    const log = openLog();
    await Promise.all([0, 1, 2].map((i) => log.append('agt-1', encode(entry(i)))));
    await log.close();
    const file = eventsFile('agt-1');
    const tornAt = statSync(file).size;
    const fragment = encode(entry(3)).slice(0, 25);
    appendFileSync(file, fragment);

    const reopened = openLog();
    expect(await collect(reopened.read('agt-1'))).toEqual([entry(0), entry(1), entry(2)]);
    expect(await reopened.check('agt-1')).toEqual([
      `${file}: torn last line at offset ${tornAt} (${fragment.length} bytes without a trailing newline)`,
    ]);

    await reopened.append('agt-1', encode(entry(4)));
    expect(await collect(reopened.read('agt-1'))).toEqual([entry(0), entry(1), entry(2), entry(4)]);
    expect(await reopened.check('agt-1')).toEqual([]);
    // Terminated, not truncated: the fragment stays, marked, and is skipped.
    expect(readFileSync(file, 'utf8').slice(tornAt)).toBe(
      `${fragment}${TORN_LINE_TERMINATOR}\n${encode(entry(4))}\n`,
    );
  });

  it('ignores a complete entry that lacks its newline (its write never finished)', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    appendFileSync(eventsFile('agt-1'), encode(entry(1)));
    const other = openLog();
    expect(await collect(other.read('agt-1'))).toEqual([entry(0)]);
    expect(await other.check('agt-1')).toHaveLength(1);
    await other.append('agt-1', encode(entry(2)));
    expect(await collect(other.read('agt-1'))).toEqual([entry(0), entry(2)]);
  });

  it('repairs a torn tail left by another writer while this log kept its file open', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0))); // the descriptor is now cached
    appendFileSync(eventsFile('agt-1'), '{"cursor":1,"bookm');
    await log.append('agt-1', encode(entry(2)));
    expect(await collect(log.read('agt-1'))).toEqual([entry(0), entry(2)]);
    expect(await log.check('agt-1')).toEqual([]);
  });

  it('seals a torn tail cut inside a multi-byte character, and check() finds nothing after the repair', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    const whole = Buffer.from(encodeJson({ ...entry(1), note: 'naïve 日本 🙂' }, 'event'), 'utf8');
    // Cut one byte into the four-byte emoji: the torn piece is not valid UTF-8.
    const cut = whole.indexOf(Buffer.from('🙂', 'utf8')) + 1;
    appendFileSync(eventsFile('agt-1'), whole.subarray(0, cut));
    const other = openLog();
    expect(await other.check('agt-1')).toEqual([
      expect.stringContaining(`torn last line at offset ${statSync(eventsFile('agt-1')).size - cut}`),
    ]);
    await other.append('agt-1', encode(entry(2)));
    expect(await collect(other.read('agt-1'))).toEqual([entry(0), entry(2)]);
    expect(await other.check('agt-1')).toEqual([]);
  });

  it('still reports a line that is not UTF-8 when it merely contains the repair marker', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    const file = eventsFile('agt-1');
    const offset = statSync(file).size;
    appendFileSync(
      file,
      Buffer.concat([Buffer.from([0xff]), Buffer.from(`${TORN_LINE_TERMINATOR} and more\n`)]),
    );
    expect(await log.check('agt-1')).toEqual([
      `${file}: unreadable line at offset ${offset}: not valid UTF-8`,
    ]);
  });

  it('repairs a torn tail of zero bytes (what a power loss can leave)', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    appendFileSync(eventsFile('agt-1'), Buffer.alloc(4096));
    const other = openLog();
    await other.append('agt-1', encode(entry(1)));
    expect(await collect(other.read('agt-1'))).toEqual([entry(0), entry(1)]);
    expect(await other.check('agt-1')).toEqual([]);
  });

  it('skips unreadable lines inside the file and reports each with its offset', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    const file = eventsFile('agt-1');
    const offsets: number[] = [];
    const addLine = (bytes: Buffer | string) => {
      offsets.push(statSync(file).size);
      appendFileSync(file, Buffer.concat([Buffer.from(bytes), Buffer.from('\n')]));
    };
    addLine('not json at all');
    addLine('[1,2,3]');
    addLine(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    addLine('');
    appendFileSync(file, `${encode(entry(1))}\n`);
    expect(await collect(log.read('agt-1'))).toEqual([entry(0), entry(1)]);
    expect(await log.check('agt-1')).toEqual([
      `${file}: unreadable line at offset ${offsets[0]}: not JSON`,
      `${file}: unreadable line at offset ${offsets[1]}: not a Timeline entry (needs bookmark.seq as a number and event.channel as a string)`,
      `${file}: unreadable line at offset ${offsets[2]}: not valid UTF-8`,
      `${file}: unreadable line at offset ${offsets[3]}: an empty line`,
    ]);
  });

  it('lists at most 100 problems and counts the rest', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    appendFileSync(eventsFile('agt-1'), 'garbage\n'.repeat(150));
    const problems = await log.check('agt-1');
    expect(problems).toHaveLength(101);
    expect(problems[100]).toMatch(/50 more problems not listed$/);
  });

  it('reports an event file that cannot be read, and read() rejects with a typed error', async () => {
    mkdirSync(eventsFile('agt-1'), { recursive: true });
    const log = openLog();
    const problems = await log.check('agt-1');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/unreadable file \(EISDIR\)/);
    const error = await collect(log.read('agt-1')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KodeStoreError);
    expect((error as KodeStoreError).operation).toBe('read');
    expect(await log.has('agt-1')).toBe(false);
    expect(await log.listAgentIds()).toEqual([]);
  });

  it('survives SIGKILL mid-stream: every acknowledged event is there, in order, with no garbage entry', async () => {
    const agentId = 'agt-crash';
    const rounds = 3;
    let lastAcked = -1;
    let tornTailsSeen = 0;
    for (let round = 0; round < rounds; round++) {
      const appender = startAppender({
        baseDir,
        agentId,
        writer: `round${round}`,
        count: -1,
        // Large entries make a kill inside a write() (a torn tail) likely.
        payloadBytes: [200, 64 * 1024, 10, 300 * 1024],
        window: 48,
      });
      const killAfter = 150 + round * 40;
      appender.onAck((index) => {
        if (index >= killAfter) appender.child.kill('SIGKILL');
      });
      const { signal, stderr } = await appender.exited;
      expect(signal, stderr).toBe('SIGKILL');
      lastAcked = Math.max(...appender.acks);
      expect(lastAcked).toBeGreaterThanOrEqual(killAfter);
      expect(appender.acks).toEqual(Array.from({ length: appender.acks.length }, (_, i) => i));

      const log = openLog();
      const problems = await log.check(agentId);
      // The only damage a kill may leave is a torn last line.
      expect(problems.length).toBeLessThanOrEqual(1);
      if (problems.length === 1) {
        expect(problems[0]).toMatch(/torn last line/);
        tornTailsSeen++;
      }
      const tags = (await collect(log.read(agentId))).map(appenderTag);
      for (let earlier = 0; earlier <= round; earlier++) {
        const indexes = tags.filter((tag) => tag.writer === `round${earlier}`).map((tag) => tag.index);
        // Contiguous from 0: nothing lost, nothing doubled, order kept.
        expect(indexes).toEqual(Array.from({ length: indexes.length }, (_, i) => i));
        if (earlier === round) expect(indexes.length).toBeGreaterThan(lastAcked);
      }
      // Rounds follow each other: every round's entries come after the previous round's.
      const roundOrder = tags.map((tag) => Number(tag.writer.slice('round'.length)));
      expect(roundOrder).toEqual([...roundOrder].sort((x, y) => x - y));
      expect(tags.every((tag) => tag.writer.startsWith('round'))).toBe(true);
      await log.close();
      if (round === 0 && problems.length === 0) {
        // Kills rarely land inside a write(); leave the torn tail such a kill
        // would, so the next child's first append has to repair it.
        appendFileSync(eventsFile(agentId), '{"cursor":999,"bookmark":{"seq":9');
        tornTailsSeen++;
      }
    }
    const log = openLog();
    await log.append(agentId, encode(entry(0)));
    expect(await log.check(agentId)).toEqual([]);
    const all = await collect(log.read(agentId));
    expect(all.at(-1)).toEqual(entry(0));
    console.info(
      `[file-event-log] rounds that ended with a torn tail (made by a kill or by hand): ${tornTailsSeen}/${rounds}`,
    );
  }, 60_000);

  it('keeps two processes appending to one agent from interleaving inside a line', async () => {
    const agentId = 'agt-shared';
    const count = 80;
    const writers = ['p1', 'p2'].map((writer) =>
      startAppender({
        baseDir,
        agentId,
        writer,
        count,
        payloadBytes: [100, 150_000, 3000, 70_000],
        window: 16,
      }),
    );
    for (const writer of writers) {
      const { code, stderr } = await writer.exited;
      expect(code, stderr).toBe(0);
      expect(writer.acks).toHaveLength(count);
    }
    const log = openLog();
    expect(await log.check(agentId)).toEqual([]);
    const tags = (await collect(log.read(agentId))).map(appenderTag);
    expect(tags).toHaveLength(2 * count);
    for (const writer of ['p1', 'p2']) {
      expect(tags.filter((tag) => tag.writer === writer).map((tag) => tag.index)).toEqual(
        Array.from({ length: count }, (_, i) => i),
      );
    }
  }, 60_000);
});

describe('FileEventLog: agent ids on disk', () => {
  const hostileIds = [
    '../x',
    '/etc/passwd',
    'a/../../b',
    '..\\..\\windows',
    'C:\\Windows\\system32',
    'CON',
    'con',
    'nul.txt',
    'COM1',
    'LPT9',
    '.',
    '..',
    '...',
    'trailing dot.',
    'trailing space ',
    ' leading space',
    '-rf',
    '~',
    '%2e%2e',
    'id-x',
    'h-0000',
    'a'.repeat(255),
    'A'.repeat(255),
    '😀',
    '😀'.repeat(200),
    '日本語のエージェント',
    'e\u0301', // e + combining accent (NFD)
    '\u00e9', // é (NFC): a normalising file system must not merge it with the one above
    'Agent',
    'agent',
    'AGENT',
    'agt-01M81Y5YTSB07WSKPHZV3ZCPY1/fork-1795361537133/fork-1795361537197',
    'tab\tand\nnewline',
    '*?<>|:"',
  ];

  it('keeps every hostile id inside the base directory, readable and listable', async () => {
    const log = openLog({ fsync: false });
    for (const [i, agentId] of hostileIds.entries()) {
      await log.append(agentId, encode(entry(i)));
      await log.append(agentId, encode(entry(i + 1000)));
    }
    expect(readdirSync(root)).toEqual(['store']);
    for (const [i, agentId] of hostileIds.entries()) {
      expect(await collect(log.read(agentId))).toEqual([entry(i), entry(i + 1000)]);
      expect(await log.has(agentId)).toBe(true);
      expect(await log.check(agentId)).toEqual([]);
    }
    expect(await log.listAgentIds()).toEqual([...hostileIds].sort());
    const names = readdirSync(baseDir);
    expect(names).toHaveLength(hostileIds.length);
    for (const name of names) {
      expect(Buffer.byteLength(name)).toBeLessThan(255);
      expect(name).toMatch(/^[a-z0-9_%-]+$/);
      expect(name).not.toMatch(/^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i);
      expect(['.', '..']).not.toContain(name);
    }
    // A case-insensitive file system would still keep every id apart.
    expect(new Set(names.map((name) => name.toLowerCase())).size).toBe(names.length);
  });

  it('removes one hostile id without touching the others', async () => {
    const log = openLog({ fsync: false });
    for (const agentId of hostileIds) await log.append(agentId, encode(entry(0)));
    await log.delete('..');
    await log.delete('../x');
    expect(await log.has('..')).toBe(false);
    expect(await log.has('../x')).toBe(false);
    expect(existsSync(root)).toBe(true);
    expect(await log.listAgentIds()).toEqual(hostileIds.filter((id) => id !== '..' && id !== '../x').sort());
  });

  it('names long ids by hash and keeps the real id in a sidecar file', async () => {
    const log = openLog();
    const long = `agt-${'x'.repeat(300)}/fork-1`;
    await log.append(long, encode(entry(0)));
    const { name, hashed } = agentDirName(long);
    expect(hashed).toBe(true);
    expect(readFileSync(join(baseDir, name, AGENT_ID_SIDECAR), 'utf8')).toBe(long);
    expect(readdirSync(join(baseDir, name)).sort()).toEqual([AGENT_ID_SIDECAR, EVENTS_FILE_NAME]);
    expect(await log.listAgentIds()).toEqual([long]);
    await log.delete(long);
    expect(existsSync(join(baseDir, name))).toBe(false);
  });

  it('reports and refuses a hashed directory whose sidecar names another agent', async () => {
    const long = 'b'.repeat(300);
    const dir = join(baseDir, agentDirName(long).name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, AGENT_ID_SIDECAR), 'someone else');
    const log = openLog();
    const error = await log.append(long, encode(entry(0))).catch((e: unknown) => e);
    expect((error as KodeStoreError).code).toBe('KODE_CORRUPT');
    writeFileSync(join(dir, EVENTS_FILE_NAME), `${encode(entry(0))}\n`);
    expect(await log.check(long)).toEqual([
      `${join(dir, EVENTS_FILE_NAME)}: the ${AGENT_ID_SIDECAR} file names another agent`,
    ]);
    expect(await log.listAgentIds()).toEqual([]);
    rmSync(join(dir, AGENT_ID_SIDECAR));
    expect(await log.check(long)).toEqual([
      `${join(dir, EVENTS_FILE_NAME)}: the ${AGENT_ID_SIDECAR} file naming the agent is missing`,
    ]);
  });

  it('lists only its own directories that hold an event file', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    for (const foreign of [
      'lost+found',
      'id-A',
      'id-%61',
      'id-%6',
      'id-%zz',
      'id-%00',
      'h-123',
      'id-no-events',
    ]) {
      mkdirSync(join(baseDir, foreign));
    }
    writeFileSync(join(baseDir, 'id-b'), 'a file, not a directory');
    writeFileSync(join(baseDir, '.DS_Store'), '');
    expect(await log.listAgentIds()).toEqual(['agt-1']);
    expect(await log.stats()).toEqual({ files: 1, bytes: statSync(eventsFile('agt-1')).size });
  });

  it('encodes ids reversibly into one safe, case-insensitively unique segment (property)', () => {
    const validId = fc
      .string({ unit: 'binary', minLength: 1, maxLength: 300 })
      .filter((id) => !id.includes('\u0000') && id.isWellFormed());
    fc.assert(
      fc.property(validId, validId, (a, b) => {
        for (const id of [a, b]) {
          const { name, hashed } = agentDirName(id);
          expect(name).toMatch(/^[a-z0-9_%-]+$/);
          expect(name.length).toBeLessThanOrEqual(MAX_DIRECT_DIR_NAME_LENGTH);
          expect(agentIdFromDirName(name)).toBe(hashed ? undefined : id);
        }
        if (a !== b) expect(agentDirName(a).name.toLowerCase()).not.toBe(agentDirName(b).name.toLowerCase());
        const upper = a.toUpperCase();
        if (upper !== a)
          expect(agentDirName(upper).name.toLowerCase()).not.toBe(agentDirName(a).name.toLowerCase());
      }),
      { numRuns: 500 },
    );
  });
});

describe('FileEventLog: delete, close, descriptors, totals', () => {
  it('delete removes the agent directory and nothing else', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    await log.append('agt-2', encode(entry(1)));
    await log.delete('agt-1');
    expect(existsSync(join(baseDir, agentDirName('agt-1').name))).toBe(false);
    expect(await log.has('agt-1')).toBe(false);
    expect(await collect(log.read('agt-1'))).toEqual([]);
    expect(await collect(log.read('agt-2'))).toEqual([entry(1)]);
    expect(await log.listAgentIds()).toEqual(['agt-2']);
    await log.delete('agt-never'); // deleting an unknown agent is fine
  });

  it('delete removes appends made before it and keeps those made after it', async () => {
    const log = openLog();
    const results = [
      log.append('agt-1', encode(entry(0))),
      log.append('agt-1', encode(entry(1))),
      log.delete('agt-1'),
      log.append('agt-1', encode(entry(2))),
      log.delete('agt-1'),
      log.append('agt-1', encode(entry(3))),
      log.append('agt-1', encode(entry(4))),
    ];
    await Promise.all(results);
    expect(await collect(log.read('agt-1'))).toEqual([entry(3), entry(4)]);
  });

  it('appends to a new file after another FileEventLog deleted the agent under an open descriptor', async () => {
    const a = openLog();
    const b = openLog();
    await a.append('agt-1', encode(entry(0))); // a keeps the descriptor open
    await b.delete('agt-1');
    await a.append('agt-1', encode(entry(1)));
    expect(await collect(b.read('agt-1'))).toEqual([entry(1)]);
    expect(await b.has('agt-1')).toBe(true);
  });

  it('close waits for pending appends, which are then on disk', async () => {
    const log = openLog();
    let resolved = 0;
    const appends = Array.from({ length: 500 }, (_, i) =>
      log.append('agt-1', encode(entry(i))).then(() => {
        resolved++;
      }),
    );
    await log.close();
    expect(resolved).toBe(500);
    expect(readFileSync(eventsFile('agt-1'), 'utf8').split('\n')).toHaveLength(501);
    await Promise.all(appends);
    expect(await collect(openLog().read('agt-1'))).toHaveLength(500);
  });

  it('rejects every call after close with StoreClosedError, and close is idempotent', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    await Promise.all([log.close(), log.close()]);
    await log.close();
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['append', () => log.append('agt-1', encode(entry(1)))],
      ['read', () => collect(log.read('agt-1'))],
      ['has', () => log.has('agt-1')],
      ['delete', () => log.delete('agt-1')],
      ['check', () => log.check('agt-1')],
      ['listAgentIds', () => log.listAgentIds()],
      ['stats', () => log.stats()],
    ];
    for (const [operation, call] of calls) {
      const error = await call().catch((e: unknown) => e);
      expect(error, operation).toBeInstanceOf(StoreClosedError);
      expect((error as StoreClosedError).code).toBe('KODE_STORE_CLOSED');
    }
    expect(await collect(openLog().read('agt-1'))).toEqual([entry(0)]);
  });

  it('ends a read that is still running when the log is closed', async () => {
    const log = openLog({ fsync: false });
    await Promise.all(Array.from({ length: 3000 }, (_, i) => log.append('agt-1', encode(entry(i)))));
    const iterator = log.read('agt-1')[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toEqual(entry(0));
    await log.close();
    const error = await (async () => {
      for (;;) if ((await iterator.next()).done) return undefined;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreClosedError);
    if (hasProcFs) expect(openDescriptorsUnder(baseDir)).toBe(0);
  });

  it.skipIf(!hasProcFs)(
    `keeps at most ${DEFAULT_MAX_OPEN_FILES} descriptors open by default, idle ones included (${NO_PROC_REASON})`,
    async () => {
      // 100 agents at once: the first burst opens more files than the bound
      // before any batch is done (what used to leave 100 open under load).
      const log = openLog({ fsync: false });
      const agents = Array.from({ length: DEFAULT_MAX_OPEN_FILES + 36 }, (_, i) => `agt-${i}`);
      let peak = 0;
      const look = () => {
        peak = Math.max(peak, openDescriptorsUnder(baseDir));
      };
      await Promise.all(agents.map((agentId, i) => log.append(agentId, encode(entry(i))).then(look)));
      for (const [i, agentId] of agents.entries()) await log.append(agentId, encode(entry(i + 1000)));
      look();
      expect(peak).toBeLessThanOrEqual(DEFAULT_MAX_OPEN_FILES);
      expect(openDescriptorsUnder(baseDir)).toBeGreaterThan(0);
      for (const [i, agentId] of agents.entries()) {
        expect(await collect(log.read(agentId))).toEqual([entry(i), entry(i + 1000)]);
      }
      await log.close();
      expect(openDescriptorsUnder(baseDir)).toBe(0);
    },
  );

  it.skipIf(!hasProcFs)(
    `holds at most maxOpenFiles descriptors while appending, reading and checking at once (${NO_PROC_REASON})`,
    async () => {
      const maxOpenFiles = 3;
      const log = openLog({ maxOpenFiles });
      const agents = Array.from({ length: 40 }, (_, i) => `agt-${i}`);
      let peak = 0;
      const look = () => {
        peak = Math.max(peak, openDescriptorsUnder(baseDir));
      };
      const work: Promise<unknown>[] = [];
      for (let round = 0; round < 3; round++) {
        for (const [i, agentId] of agents.entries()) {
          work.push(log.append(agentId, encode(entry(round * 100 + i))).then(look));
          if (i % 4 === 0) work.push(collect(log.read(agentId)).then(look));
          if (i % 7 === 0) work.push(log.check(agentId).then(look));
        }
      }
      work.push(log.listAgentIds().then(look), log.delete('agt-39').then(look));
      await Promise.all(work);
      expect(peak).toBeLessThanOrEqual(maxOpenFiles);
      for (const [i, agentId] of agents.slice(0, 39).entries()) {
        expect(await collect(log.read(agentId))).toEqual([entry(i), entry(100 + i), entry(200 + i)]);
      }
      expect(await log.has('agt-39')).toBe(false);
    },
  );

  it('goes on appending with one descriptor, and while a paused read holds one of two', async () => {
    const single = openLog({ maxOpenFiles: 1, fsync: false });
    const agents = Array.from({ length: 30 }, (_, i) => `agt-${i}`);
    await Promise.all(agents.map((agentId, i) => single.append(agentId, encode(entry(i)))));
    for (const [i, agentId] of agents.entries())
      expect(await collect(single.read(agentId))).toEqual([entry(i)]);
    await single.close();

    const log = openLog({ maxOpenFiles: 2, fsync: false });
    await log.append('paused', encode(entry(0)));
    const paused = log.read('paused')[Symbol.asyncIterator]();
    expect((await paused.next()).value).toEqual(entry(0));
    // The read keeps its file open until it ends; appends share the other descriptor.
    await Promise.all(agents.map((agentId, i) => log.append(agentId, encode(entry(100 + i)))));
    expect(await log.listAgentIds()).toHaveLength(agents.length + 1);
    expect(await paused.next()).toEqual({ value: undefined, done: true });
    for (const [i, agentId] of agents.entries()) {
      expect(await collect(log.read(agentId))).toEqual([entry(i), entry(100 + i)]);
    }
  });

  it('refuses a maxOpenFiles that is not a positive integer', () => {
    for (const maxOpenFiles of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '8' as unknown as number]) {
      expect(() => new FileEventLog({ baseDir, maxOpenFiles }), String(maxOpenFiles)).toThrow(
        ValidationError,
      );
    }
  });

  it('stats counts event files and their bytes', async () => {
    const log = openLog();
    await log.append('agt-1', encode(entry(0)));
    await log.append('agt-2', encode(entry(1)));
    await log.append('b'.repeat(300), encode(entry(2)));
    await log.append('agt-2', encode(entry(3)));
    const bytes = ['agt-1', 'agt-2', 'b'.repeat(300)].reduce(
      (sum, id) => sum + statSync(eventsFile(id)).size,
      0,
    );
    expect(await log.stats()).toEqual({ files: 3, bytes });
    await log.delete('agt-2');
    expect((await log.stats()).files).toBe(2);
  });

  it('answers has/read/listAgentIds/stats after un-awaited appends (read-your-writes)', async () => {
    const log = openLog();
    void log.append('agt-1', encode(entry(0)));
    expect(await log.has('agt-1')).toBe(true);
    void log.append('agt-2', encode(entry(1)));
    expect(await log.listAgentIds()).toEqual(['agt-1', 'agt-2']);
    void log.append('agt-3', encode(entry(2)));
    expect((await log.stats()).files).toBe(3);
    void log.append('agt-3', encode(entry(3)));
    expect(await collect(log.read('agt-3'))).toEqual([entry(2), entry(3)]);
  });
});
