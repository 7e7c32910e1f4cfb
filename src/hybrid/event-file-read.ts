import { isUtf8 } from 'node:buffer';
import type { FileHandle } from 'node:fs/promises';
import type { Timeline } from '../types.js';
import type { EventFileDescriptors } from './event-file-descriptors.js';
import {
  channelHash,
  decodeIndex,
  type IndexedLines,
  IndexUpdate,
  identityOf,
  indexAgrees,
  indexedEnd,
  readIndexFile,
  writeIndexUpdate,
} from './event-file-index.js';
import { closeQuietly, openForReading } from './event-file-io.js';
import {
  decodeLines,
  linesOf,
  parseText,
  READ_CHUNK_BYTES,
  readLineBlocks,
  TORN_LINE_TERMINATOR,
} from './event-lines.js';

/**
 * Reading one open event file up to `end` (its size when the read began), a
 * chunk's worth at a time and never an empty page: the entries after
 * `sinceSeq` on `channel`. Torn and unreadable lines are skipped (an agent
 * must stay resumable; `check()` reports them). FileEventLog.readPages
 * (file-event-log.ts) holds the descriptor around it.
 *
 * A filtered read (a channel, or since a bookmark) goes through the file's
 * channel index (event-file-index.ts): the indexed lines it returns are read
 * (neighbours together, up to a chunk) and parsed, the others are not even
 * decoded; the lines past the index are scanned and added to it.
 */

export interface EventFileFilter {
  sinceSeq?: number;
  channel?: string;
}

/**
 * The entries of the event file at `path` that `filter` keeps, a page at a
 * time, under one descriptor slot of `files` held until the loop ends (or
 * is broken out of). The open file is in `files.readers`, so that closing
 * the log closes it under the read, which then ends with `assertOpen`'s
 * error. A filtered read reads the channel index before opening the event
 * file and writes what it adds after closing it: one descriptor at a time.
 */
export async function* readEventFile(
  path: string,
  filter: EventFileFilter,
  options: {
    files: EventFileDescriptors;
    /** False on a read-only log: the index is used, never written. */
    writeIndex: boolean;
    assertOpen: () => void;
    closed: () => boolean;
  },
): AsyncGenerator<Timeline[]> {
  const { files, assertOpen } = options;
  let handle: FileHandle | undefined;
  let update: IndexUpdate | undefined;
  await files.limit.acquire();
  try {
    assertOpen();
    const filtered = filter.channel !== undefined || filter.sinceSeq !== undefined;
    const indexBytes = filtered ? await readIndexFile(path) : undefined;
    handle = await openForReading(path);
    if (!handle) return;
    files.readers.add(handle);
    const info = await handle.stat();
    if (!filtered) {
      yield* scanEntryPages(handle, info.size, filter, assertOpen);
      return;
    }
    const identity = identityOf(info);
    if (options.writeIndex) update = new IndexUpdate(identity);
    const index = indexBytes && decodeIndex(indexBytes, identity);
    yield* readFilteredPages(handle, info.size, filter, index, update, assertOpen);
  } finally {
    // close() may have closed the handle already (and taken it out of `readers`); the slot is still ours.
    if (handle && files.readers.delete(handle)) await closeQuietly(handle);
    if (update && !options.closed()) await writeIndexUpdate(path, update);
    files.limit.release();
  }
}

/** Indexed lines read together when they are at most this far apart: cheaper than another read. */
const MAX_GAP_BYTES = 64 * 1024;
/** A page of an indexed read is handed out at about this many bytes of lines. */
const PAGE_BYTES = READ_CHUNK_BYTES;

/**
 * The entries of the file after `start` (the start of a line), every line
 * parsed. Without `update`, a block's lines are decoded in one call (the
 * fast path of a read of everything); with it, each line's length and
 * entry are recorded for the index.
 */
export async function* scanEntryPages(
  handle: FileHandle,
  end: number,
  { sinceSeq, channel }: EventFileFilter,
  assertOpen: () => void,
  start = 0,
  update?: IndexUpdate,
): AsyncGenerator<Timeline[]> {
  for await (const block of readLineBlocks(handle, end, assertOpen, start)) {
    // An unterminated last line is a torn write: never an entry (nor indexed: it may still grow).
    if (!block.terminated) continue;
    const entries: Timeline[] = [];
    if (update) {
      const whole = isUtf8(block.bytes);
      for (const line of linesOf(block)) {
        const entry = lineEntry(line.bytes, whole);
        update.add(line.bytes.length, entry);
        if (entry && matches(entry, sinceSeq, channel)) entries.push(entry);
      }
    } else {
      for (const text of decodeLines(block)) {
        if (text.endsWith(TORN_LINE_TERMINATOR)) continue;
        const entry = parseText(text).entry;
        if (entry && matches(entry, sinceSeq, channel)) entries.push(entry);
      }
    }
    if (entries.length > 0) yield entries;
  }
}

/** The entry of one line, or undefined (unreadable, a sealed torn write); `validUtf8` when its block was checked whole. */
function lineEntry(bytes: Buffer, validUtf8: boolean): Timeline | undefined {
  if (!validUtf8 && !isUtf8(bytes)) return undefined;
  const text = bytes.toString('utf8');
  if (text.endsWith(TORN_LINE_TERMINATOR)) return undefined;
  return parseText(text).entry;
}

function matches(entry: Timeline, sinceSeq: number | undefined, channel: string | undefined): boolean {
  return (
    (sinceSeq === undefined || entry.bookmark.seq > sinceSeq) &&
    (channel === undefined || entry.event.channel === channel)
  );
}

/**
 * A filtered read through the channel index `index` (undefined: none could
 * be used), recording in `update` what the index gains. The index's lines
 * are used up to `end`; the last of them is read back first and must be
 * what the index says, and each line returned is checked as it is parsed:
 * at the first disagreement the read goes on by scanning from the end of
 * the last line it verified, and the index is discarded.
 */
export async function* readFilteredPages(
  handle: FileHandle,
  end: number,
  filter: EventFileFilter,
  index: IndexedLines | undefined,
  update: IndexUpdate | undefined,
  assertOpen: () => void,
): AsyncGenerator<Timeline[]> {
  let usable = 0;
  if (index) {
    usable = index.count;
    while (usable > 0 && indexedEnd(index, usable) > end) usable--;
    if (usable > 0 && !(await lineIsIndexed(handle, index, usable - 1))) {
      index = undefined;
      usable = 0;
    }
  }
  let start = 0;
  if (index && usable > 0) {
    const outcome = { resumeAt: 0, intact: true };
    yield* readIndexedPages(handle, index, usable, filter, assertOpen, outcome);
    start = outcome.resumeAt;
    if (!outcome.intact) {
      if (update) update.mode = 'discard';
      yield* scanEntryPages(handle, end, filter, assertOpen, start);
      return;
    }
  }
  // Index what lies past it: appended to the index when the read covered all of it, else a new one.
  const collect = update !== undefined && (index === undefined || indexedEnd(index) === start);
  if (update && collect) {
    update.mode = index ? 'append' : 'fresh';
    update.start = start;
  }
  yield* scanEntryPages(handle, end, filter, assertOpen, start, collect ? update : undefined);
}

/** Whether line `i` of the index is in the file as indexed: newlines around it, its entry's channel and seq. */
async function lineIsIndexed(handle: FileHandle, index: IndexedLines, i: number): Promise<boolean> {
  const offset = index.offsets[i]!;
  const length = index.lengths[i]!;
  const from = offset === 0 ? 0 : offset - 1;
  const bytes = Buffer.allocUnsafe(offset + length + 1 - from);
  const { bytesRead } = await handle.read(bytes, 0, bytes.length, from);
  if (bytesRead !== bytes.length || bytes[bytes.length - 1] !== 0x0a) return false;
  if (offset > 0 && bytes[0] !== 0x0a) return false;
  const line = bytes.subarray(offset - from, offset - from + length);
  return indexAgrees(index, i, offset, length, lineEntry(line, false));
}

/**
 * The entries of the first `usable` indexed lines that the filter keeps:
 * only the lines whose record matches are read (ranges of neighbours in one
 * read) and parsed. Sets `outcome.resumeAt` to where a scan goes on, and
 * `outcome.intact` to false when a line disagreed with its record.
 */
async function* readIndexedPages(
  handle: FileHandle,
  index: IndexedLines,
  usable: number,
  { sinceSeq, channel }: EventFileFilter,
  assertOpen: () => void,
  outcome: { resumeAt: number; intact: boolean },
): AsyncGenerator<Timeline[]> {
  const { offsets, lengths, hashes, seqs } = index;
  const wanted = channel === undefined ? undefined : channelHash(channel);
  // A record names a candidate when its seq is an entry's (not NaN) after sinceSeq, on the channel's hash.
  const candidate = (i: number) => {
    const seq = seqs[i]!;
    if (Number.isNaN(seq)) return false;
    if (sinceSeq !== undefined && !(seq > sinceSeq)) return false;
    return wanted === undefined || hashes[i] === wanted;
  };
  let buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let page: Timeline[] = [];
  let pageBytes = 0;
  let verifiedEnd = 0;
  let i = 0;
  while (i < usable) {
    if (!candidate(i)) {
      i++;
      continue;
    }
    // A range of candidates: each within MAX_GAP_BYTES of the previous one, the whole within a chunk.
    const rangeStart = offsets[i]!;
    let rangeEnd = rangeStart + lengths[i]! + 1;
    const members = [i];
    for (let j = i + 1; j < usable; j++) {
      if (offsets[j]! - rangeEnd > MAX_GAP_BYTES) break;
      if (!candidate(j)) continue;
      const lineEnd = offsets[j]! + lengths[j]! + 1;
      if (lineEnd - rangeStart > READ_CHUNK_BYTES) break;
      members.push(j);
      rangeEnd = lineEnd;
    }
    const size = rangeEnd - rangeStart;
    if (buffer.length < size) buffer = Buffer.allocUnsafe(size);
    assertOpen();
    const { bytesRead } = await handle.read(buffer, 0, size, rangeStart);
    for (const k of members) {
      const at = offsets[k]! - rangeStart;
      const length = lengths[k]!;
      const entry =
        at + length < bytesRead && buffer[at + length] === 0x0a
          ? lineEntry(buffer.subarray(at, at + length), false)
          : undefined;
      if (!entry || !indexAgrees(index, k, offsets[k]!, length, entry)) {
        outcome.resumeAt = verifiedEnd;
        outcome.intact = false;
        if (page.length > 0) yield page;
        return;
      }
      verifiedEnd = offsets[k]! + length + 1;
      if (matches(entry, sinceSeq, channel)) {
        page.push(entry);
        pageBytes += length;
      }
    }
    if (pageBytes >= PAGE_BYTES) {
      yield page;
      page = [];
      pageBytes = 0;
    }
    i = members[members.length - 1]! + 1;
  }
  if (page.length > 0) yield page;
  outcome.resumeAt = indexedEnd(index, usable);
}
