import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentDir } from '../../src/hybrid/agent-dirs.js';
import { EVENT_INDEX_FILE_NAME } from '../../src/hybrid/event-file-index.js';
import { EVENTS_FILE_NAME, FileEventLog } from '../../src/hybrid/file-event-log.js';
import type { AgentChannel, ReadEventsOptions, Timeline } from '../../src/types.js';

/**
 * The channel index (`events.idx`, src/hybrid/event-file-index.ts): a read
 * of one channel or since a bookmark parses only the lines it returns, and
 * whatever happened to the index (torn, zeroed, another file's, stale after
 * a cut-back or a prune) a read returns what a scan of the file returns.
 */

const CHANNELS: AgentChannel[] = ['progress', 'progress', 'monitor', 'control', 'progress'];

function event(n: number, channel: AgentChannel = CHANNELS[n % CHANNELS.length]!): Timeline {
  const bookmark = { seq: n, timestamp: 1_700_000_000_000 + n };
  return {
    cursor: n,
    bookmark,
    event: { channel, type: 'text_chunk', step: n, delta: `text ${n}`, bookmark },
  } as unknown as Timeline;
}

let root: string;
const opened: FileEventLog[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kode-event-index-'));
});

afterEach(async () => {
  await Promise.allSettled(opened.map((log) => log.close()));
  opened.length = 0;
  rmSync(root, { recursive: true, force: true });
});

function newLog(options: { readOnly?: boolean } = {}): FileEventLog {
  const log = new FileEventLog({ baseDir: root, fsync: false, ...options });
  opened.push(log);
  return log;
}

const eventsPath = (agentId: string) => join(agentDir(root, agentId).path, EVENTS_FILE_NAME);
const indexPath = (agentId: string) => join(agentDir(root, agentId).path, EVENT_INDEX_FILE_NAME);

async function read(log: FileEventLog, agentId: string, options: ReadEventsOptions = {}): Promise<number[]> {
  const seqs: number[] = [];
  for await (const entry of log.read(agentId, options)) seqs.push(entry.bookmark.seq);
  return seqs;
}

/** What a scan of the file keeps for `options`: the expected answer of any read. */
function expected(events: Timeline[], options: ReadEventsOptions): number[] {
  return events
    .filter((e) => options.since === undefined || e.bookmark.seq > options.since.seq)
    .filter((e) => options.channel === undefined || e.event.channel === options.channel)
    .map((e) => e.bookmark.seq);
}

async function appendAll(log: FileEventLog, agentId: string, events: Timeline[]): Promise<void> {
  await Promise.all(events.map((e) => log.append(agentId, JSON.stringify(e))));
}

const FILTERS: ReadEventsOptions[] = [
  { channel: 'progress' },
  { channel: 'monitor' },
  { channel: 'control' },
  { since: { seq: 37, timestamp: 0 } },
  { since: { seq: 80, timestamp: 0 }, channel: 'progress' },
];

async function expectReadsRight(log: FileEventLog, agentId: string, events: Timeline[]): Promise<void> {
  for (const filter of FILTERS) expect(await read(log, agentId, filter)).toEqual(expected(events, filter));
  expect(await read(log, agentId)).toEqual(events.map((e) => e.bookmark.seq));
}

describe('the channel index', () => {
  it('is written by a filtered read, grows with later reads, and reads stay in append order', async () => {
    const log = newLog();
    const events = Array.from({ length: 120 }, (_, n) => event(n));
    await appendAll(log, 'a', events.slice(0, 100));
    // An unfiltered read does not need it and does not write it.
    await read(log, 'a');
    expect(existsSync(indexPath('a'))).toBe(false);
    expect(await read(log, 'a', { channel: 'control' })).toEqual(
      expected(events.slice(0, 100), { channel: 'control' }),
    );
    const first = statSync(indexPath('a')).size;
    await appendAll(log, 'a', events.slice(100));
    await expectReadsRight(log, 'a', events);
    // The lines appended since were added as a chunk: the index grew, it was not rebuilt smaller.
    expect(statSync(indexPath('a')).size).toBeGreaterThan(first);
    expect(await log.check('a')).toEqual([]);
  });

  it('is used: a line it puts on another channel is not read by a read of one channel', async () => {
    const log = newLog();
    const events = Array.from({ length: 50 }, (_, n) => event(n));
    await appendAll(log, 'a', events);
    await read(log, 'a', { channel: 'progress' });
    // Line 2 is on `monitor`; rewritten in place (same length) as a `progress` line with the same seq.
    const text = readFileSync(eventsPath('a'), 'utf8');
    const lines = text.split('\n');
    const offset = Buffer.byteLength(`${lines[0]}\n${lines[1]}\n`);
    const forged = lines[2]!.replace('"channel":"monitor"', '"channel":"control"');
    expect(forged.length).toBe(lines[2]!.length);
    const fd = openSync(eventsPath('a'), 'r+');
    writeSync(fd, forged, offset);
    closeSync(fd);
    // The read of `control` parses only the lines the index puts on `control`: not line 2.
    expect(await read(log, 'a', { channel: 'control' })).toEqual(expected(events, { channel: 'control' }));
    // check() reads every line and reports the disagreement.
    expect(await log.check('a')).toEqual([expect.stringContaining(`${EVENT_INDEX_FILE_NAME} disagrees`)]);
    // A read with the file's truth: an unfiltered one.
    expect(await read(log, 'a')).toHaveLength(50);
  });

  it('is ignored when torn, zeroed or garbage, and rebuilt', async () => {
    const log = newLog();
    const events = Array.from({ length: 80 }, (_, n) => event(n));
    await appendAll(log, 'a', events.slice(0, 40));
    await read(log, 'a', { channel: 'progress' });
    await appendAll(log, 'a', events.slice(40));
    await read(log, 'a', { channel: 'progress' });
    const whole = readFileSync(indexPath('a'));
    for (const damage of [
      () => truncateSync(indexPath('a'), whole.length - 7), // a torn last chunk
      () => truncateSync(indexPath('a'), 20), // a torn header
      () => appendFileSync(indexPath('a'), Buffer.alloc(4096)), // a power loss's zeroed blocks
      () => {
        const fd = openSync(indexPath('a'), 'r+');
        writeSync(fd, Buffer.from('garbage!'), 0, 8, 100);
        closeSync(fd);
      },
    ]) {
      writeFileSync(indexPath('a'), whole);
      damage();
      await expectReadsRight(log, 'a', events);
      expect(await log.check('a')).toEqual([]);
    }
  });

  it('of another file is ignored: an agent deleted and written again, a pruned file', async () => {
    const log = newLog();
    const events = Array.from({ length: 60 }, (_, n) => event(n));
    await appendAll(log, 'a', events);
    await read(log, 'a', { channel: 'monitor' });
    const stale = readFileSync(indexPath('a'));
    await log.delete('a');
    const again = Array.from({ length: 60 }, (_, n) => event(1000 + n, CHANNELS[(n + 2) % CHANNELS.length]));
    await appendAll(log, 'a', again);
    writeFileSync(indexPath('a'), stale);
    await expectReadsRight(log, 'a', again);

    // A prune rewrites the file (a new inode) and removes the index describing the old one.
    const pruned = await log.pruneEvents('a', { keepNewest: 10 }, false);
    expect(pruned.count).toBe(50);
    expect(existsSync(indexPath('a'))).toBe(false);
    await expectReadsRight(log, 'a', again.slice(50));
  });

  it('is not trusted past a cut-back: the file cut and appended differently under the same inode', async () => {
    const log = newLog();
    const events = Array.from({ length: 60 }, (_, n) => event(n, n < 40 ? undefined : 'monitor'));
    await appendAll(log, 'a', events);
    await read(log, 'a', { channel: 'control' });
    // What a failed batch cut back by another process leaves once appends go on: other lines past
    // the cut, here of the same lengths (so every indexed offset still starts a line) on `control`,
    // which the index, were it trusted, would not even read for a read of `control`.
    const lines = readFileSync(eventsPath('a'), 'utf8').split('\n');
    truncateSync(eventsPath('a'), Buffer.byteLength(`${lines.slice(0, 40).join('\n')}\n`));
    const after = events.slice(40).map((e) => event(e.bookmark.seq, 'control'));
    appendFileSync(eventsPath('a'), `${after.map((e) => JSON.stringify(e)).join('\n')}\n`);
    expect(statSync(eventsPath('a')).size).toBe(Buffer.byteLength(`${lines.join('\n')}`));
    const now = [...events.slice(0, 40), ...after];
    expect(await read(log, 'a', { channel: 'control' })).toEqual(expected(now, { channel: 'control' }));
    await expectReadsRight(log, 'a', now);
  });

  it('that disagrees with a line it returns makes the read go on by scanning, and is removed', async () => {
    const log = newLog();
    const events = Array.from({ length: 60 }, (_, n) => event(n, 'progress'));
    await appendAll(log, 'a', events);
    await read(log, 'a', { channel: 'progress' });
    // Line 20's seq changed in place (same length): the index's record for it is now wrong.
    const lines = readFileSync(eventsPath('a'), 'utf8').split('\n');
    const offset = Buffer.byteLength(`${lines.slice(0, 20).join('\n')}\n`);
    const changed = lines[20]!.replaceAll('"seq":20', '"seq":77');
    const fd = openSync(eventsPath('a'), 'r+');
    writeSync(fd, changed, offset);
    closeSync(fd);
    const truth = events.map((e) => (e.bookmark.seq === 20 ? 77 : e.bookmark.seq));
    expect(await read(log, 'a', { channel: 'progress' })).toEqual(truth);
    expect(existsSync(indexPath('a'))).toBe(false);
    expect(await read(log, 'a', { channel: 'progress' })).toEqual(truth);
    expect(existsSync(indexPath('a'))).toBe(true);
  });

  it('is never written by a read-only log, which still reads right', async () => {
    const writer = newLog();
    const events = Array.from({ length: 30 }, (_, n) => event(n));
    await appendAll(writer, 'a', events);
    const reader = newLog({ readOnly: true });
    await expectReadsRight(reader, 'a', events);
    expect(existsSync(indexPath('a'))).toBe(false);
  });

  it('skips torn and unreadable lines as a scan does, and indexes past them', async () => {
    const log = newLog();
    const events = Array.from({ length: 20 }, (_, n) => event(n));
    await appendAll(log, 'a', events.slice(0, 10));
    appendFileSync(eventsPath('a'), 'not json\n{"torn":');
    await appendAll(log, 'a', events.slice(10));
    await expectReadsRight(log, 'a', events);
    await expectReadsRight(log, 'a', events);
  });
});
