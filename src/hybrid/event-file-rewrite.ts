import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Timeline } from '../types.js';
import { removeIndex } from './event-file-index.js';
import {
  closeQuietly,
  openForReading,
  removeStaleTemporaries,
  syncDirectory,
  writeFully,
} from './event-file-io.js';
import { linesOf, MAX_WRITE_CHARS, parseLine, readLineBlocks } from './event-lines.js';

/**
 * Pruning an agent's event file (retention, issue 17): the file is rewritten
 * without the lines a rule names, atomically.
 *
 * The kept lines (unreadable ones included, byte for byte: pruning is not
 * repair, and `check()` must still see them) are written to a temporary file
 * next to the event file, which is synced, given the old file's modification
 * time (a rewrite is not activity: retention reads an agent's last append
 * from it), and renamed over the event file; then the directory is synced.
 * A crash before the rename leaves the old file, after it the new one. A
 * temporary file left by a crash is never read (readers and listings only
 * look at `events.jsonl`) and is removed by the next prune of the agent, or
 * with the agent's directory.
 *
 * The caller serialises the rewrite with the log's own appends of the agent
 * (they wait for it). Bytes another process appends to the old file while
 * it runs are copied over, unjudged: those found before the rename, and
 * those that reached the old file until just after it (a writer notices the
 * renamed file at its next batch, see event-file-append.ts). A writer in
 * another process that checked the file just before the rename and writes
 * just after the copy can still land in the old file; fleets that append to
 * one agent from several processes while it is pruned must hold the agent's
 * lock around both.
 *
 * Two descriptors are open at once (the old file, the new one), taken from
 * the log's bound in one request.
 */

/** Which of an agent's events go: those matching every given field (see `EventPruneRule`). */
export interface FileEventPruneRule {
  /** Events whose `bookmark.timestamp` is before this time (epoch ms); an event without one never is. */
  olderThan?: number;
  /** Events not among the newest N (file order, within `channels`). */
  keepNewest?: number;
  /** Only events of these channels. */
  channels?: readonly string[];
}

/** What a prune removed (or would remove): events and the UTF-8 bytes of their lines. */
export interface FilePruneCount {
  count: number;
  bytes: number;
}

/** Suffix of a rewrite's temporary file: `events.jsonl.<pid>.<random>.prune-tmp`. */
const TEMPORARY_SUFFIX = '.prune-tmp';
/** Exclusive creation (a name is never reused), appending (see `copyTail`), no link followed. */
const TEMPORARY_FLAGS =
  fsConstants.O_WRONLY |
  fsConstants.O_CREAT |
  fsConstants.O_EXCL |
  fsConstants.O_APPEND |
  (fsConstants.O_NOFOLLOW ?? 0);

/**
 * The judgement of one rule over one file: which events it considers (its
 * channels), which of those are old enough, and how many of the newest it
 * keeps. `keepNewest` needs the number of considered events, so a file is
 * read once to count (`scan`) and again to rewrite.
 */
class PruneJudge {
  /** Considered events seen so far by the current pass. */
  private considered = 0;
  /** Considered events in the whole file, known after `scan`. */
  private total = 0;
  /** Index (among considered events) and size of each considered event old enough to go, from `scan`. */
  private readonly old: Array<{ index: number; bytes: number }> = [];

  constructor(private readonly rule: FileEventPruneRule) {}

  /** First pass: one line of the file. */
  scan(entry: Timeline | undefined, bytes: number): void {
    if (!entry || !this.considers(entry)) return;
    if (this.isOld(entry)) this.old.push({ index: this.considered, bytes });
    this.considered++;
  }

  /** After `scan`: what the rule removes. */
  finishScan(): FilePruneCount {
    this.total = this.considered;
    this.considered = 0;
    const keepFrom = this.keepFrom();
    let count = 0;
    let bytes = 0;
    for (const event of this.old) {
      if (event.index >= keepFrom) break;
      count++;
      bytes += event.bytes;
    }
    return { count, bytes };
  }

  /** Second pass, in the same order: whether the rule removes this line's event. */
  removes(entry: Timeline | undefined): boolean {
    if (!entry || !this.considers(entry)) return false;
    const index = this.considered++;
    return index < this.keepFrom() && this.isOld(entry);
  }

  /** The index of the first considered event among the newest N (all are below it when N is not set). */
  private keepFrom(): number {
    return this.rule.keepNewest === undefined ? this.total : this.total - this.rule.keepNewest;
  }

  private considers(entry: Timeline): boolean {
    return this.rule.channels === undefined || this.rule.channels.includes(entry.event.channel);
  }

  private isOld(entry: Timeline): boolean {
    if (this.rule.olderThan === undefined) return true;
    const timestamp: unknown = entry.bookmark.timestamp;
    return typeof timestamp === 'number' && timestamp < this.rule.olderThan;
  }
}

/** Reads the first `end` bytes of a file line by line: each line's bytes, its entry, and whether it ends with a newline. */
async function forEachLine(
  handle: FileHandle,
  end: number,
  assertOpen: () => void,
  visit: (bytes: Buffer, entry: Timeline | undefined, terminated: boolean) => Promise<void> | void,
): Promise<void> {
  for await (const block of readLineBlocks(handle, end, assertOpen)) {
    if (!block.terminated) {
      await visit(block.bytes, undefined, false);
      continue;
    }
    for (const line of linesOf(block)) await visit(line.bytes, parseLine(line.bytes).entry, true);
  }
}

/** Counts what `rule` removes from the file at `path` (a dry run); one descriptor. */
export async function countPrunable(
  path: string,
  rule: FileEventPruneRule,
  assertOpen: () => void,
): Promise<FilePruneCount> {
  const handle = await openForReading(path);
  if (!handle) return { count: 0, bytes: 0 };
  try {
    const judge = new PruneJudge(rule);
    const end = (await handle.stat()).size;
    await forEachLine(handle, end, assertOpen, (bytes, entry) => judge.scan(entry, bytes.length));
    return judge.finishScan();
  } finally {
    await closeQuietly(handle);
  }
}

/**
 * Rewrites the file at `path` without the events `rule` names (see the
 * module comment); nothing is written when it names none. The caller holds
 * two descriptor slots and keeps the log's appends of the agent waiting.
 */
export async function rewriteWithout(
  path: string,
  rule: FileEventPruneRule,
  options: { fsync: boolean; assertOpen: () => void },
): Promise<FilePruneCount> {
  await removeStaleTemporaries(path, TEMPORARY_SUFFIX);
  const old = await openForReading(path);
  if (!old) return { count: 0, bytes: 0 };
  let temporary: { path: string; handle: FileHandle } | undefined;
  let renamed = false;
  try {
    const info = await old.stat();
    const judge = new PruneJudge(rule);
    await forEachLine(old, info.size, options.assertOpen, (bytes, entry) => judge.scan(entry, bytes.length));
    const removed = judge.finishScan();
    if (removed.count === 0) return removed;

    const temporaryPath = `${path}.${process.pid}.${randomBytes(4).toString('hex')}${TEMPORARY_SUFFIX}`;
    temporary = { path: temporaryPath, handle: await open(temporaryPath, TEMPORARY_FLAGS, 0o666) };
    const out = new ChunkWriter(temporary.handle);
    await forEachLine(old, info.size, options.assertOpen, async (bytes, entry, terminated) => {
      // A sealed torn write (no entry, no problem) holds nothing: it is left out.
      if (terminated && entry === undefined && parseLine(bytes).problem === undefined) return;
      if (judge.removes(entry)) return;
      await out.write(bytes, terminated);
    });
    // What other processes appended since the scan began: kept as it is.
    let copied = await copyTail(old, info.size, out);
    await out.flush();
    if (options.fsync) await temporary.handle.datasync();
    // In seconds with a fraction: a Date would cut the time to whole milliseconds.
    await temporary.handle.utimes(info.atimeMs / 1000, info.mtimeMs / 1000);
    // The channel index describes the old file: removed first, so that no crash leaves it beside
    // the new one (a new file would be told apart by its inode anyway; see event-file-index.ts).
    await removeIndex(path);
    await rename(temporary.path, path);
    renamed = true;
    // Bytes that reached the old file up to the rename, which other writers only notice at their next batch.
    copied = await copyTail(old, copied, out);
    await out.flush();
    if (options.fsync) await temporary.handle.datasync();
    return removed;
  } finally {
    await closeQuietly(old);
    if (temporary) {
      await closeQuietly(temporary.handle);
      if (!renamed) await unlink(temporary.path).catch(() => undefined);
    }
    // The rename is durable once the directory is; a crash before this sync leaves either file whole.
    if (renamed && options.fsync) await syncDirectory(dirname(path));
  }
}

/** Appends the old file's bytes from `from` to its current end to the new file; resolves with that end. */
async function copyTail(old: FileHandle, from: number, out: ChunkWriter): Promise<number> {
  const end = (await old.stat()).size;
  const buffer = Buffer.allocUnsafe(Math.min(MAX_WRITE_CHARS, Math.max(0, end - from)));
  let position = from;
  while (position < end) {
    const { bytesRead } = await old.read(buffer, 0, Math.min(buffer.length, end - position), position);
    if (bytesRead === 0) break;
    await out.writeRaw(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return position;
}

/** Buffers lines into writes of at most about `MAX_WRITE_CHARS` bytes. */
class ChunkWriter {
  private pieces: Buffer[] = [];
  private size = 0;
  private readonly written = { bytes: 0 };

  constructor(private readonly handle: FileHandle) {}

  async write(line: Buffer, terminated: boolean): Promise<void> {
    // Copied: the reader reuses its chunk buffer.
    this.pieces.push(Buffer.from(line));
    this.size += line.length;
    if (terminated) {
      this.pieces.push(NEWLINE_BYTES);
      this.size += 1;
    }
    if (this.size >= MAX_WRITE_CHARS) await this.flush();
  }

  async writeRaw(bytes: Buffer): Promise<void> {
    await this.flush();
    await writeFully(this.handle, bytes, this.written);
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const chunk = Buffer.concat(this.pieces, this.size);
    this.pieces = [];
    this.size = 0;
    await writeFully(this.handle, chunk, this.written);
  }
}

const NEWLINE_BYTES = Buffer.from('\n');
