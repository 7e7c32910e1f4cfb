import { randomBytes } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Timeline } from '../types.js';
import { closeQuietly, errorCode, removeStaleTemporaries, writeFully } from './event-file-io.js';

/**
 * The channel index of an agent's event file (`events.idx`, beside
 * `events.jsonl`): for every line of the file, in file order, its length,
 * the hash of its entry's channel and its entry's `bookmark.seq`. A read of
 * one channel, or since a bookmark, then parses only the lines it returns
 * (event-file-read.ts) instead of every line of the file, while the file
 * keeps the one append order across channels that a read of every channel
 * and the bookmarks need.
 *
 * The index is a cache, never the source of truth: it is written by reads
 * (a filtered read indexes the lines it had to scan), never by appends, so
 * the append path and its crash rules (event-file-append.ts) are those of a
 * log without it; it is never synced; and a read uses only what it can
 * verify:
 * - the header names the event file it describes (inode and birth time):
 *   a pruned file (rewritten and renamed) or a file of a deleted and
 *   re-created agent is another file, and its old index is ignored;
 * - the rest is chunks, each appended by one read in one `write()` with a
 *   checksum: a torn chunk (a crash, a power loss without sync, a full disk)
 *   fails its checksum and ends the index there;
 * - a chunk names the byte offset of its first line, and lines tile the
 *   file, so two reads indexing the same lines at once (their chunks
 *   overlap) or a gap are seen; overlapping records are skipped;
 * - before use, the last indexed line the read will rely on is read back
 *   and must be that line (a failed batch cut back and re-appended
 *   differently); every line a read returns is checked against its record
 *   as it is parsed, and the first disagreement makes the read go on by
 *   scanning the file from the last line it verified, and removes the index.
 * An index that cannot be used is rebuilt by the next filtered read; a
 * pruned file's index is removed by the prune (event-file-rewrite.ts).
 *
 * Format (little-endian): a 32-byte header (`KSEVIDX1`, inode f64, birth
 * time f64, checksum u32, 0 u32), then chunks: a 24-byte chunk header
 * (magic u32, record count u32, offset of the first line f64, checksum u32
 * of the count, offset, identity and records, identity u32) and 16 bytes per
 * line (length u32 without the newline, channel hash u32, seq f64: NaN for
 * a line that is not an entry).
 */

/** Name of the channel index beside an agent's event file. */
export const EVENT_INDEX_FILE_NAME = 'events.idx';

const HEADER_MAGIC = Buffer.from('KSEVIDX1', 'latin1');
const HEADER_BYTES = 32;
const CHUNK_MAGIC = 0x4843534b; // 'KSCH'
const CHUNK_HEADER_BYTES = 24;
const RECORD_BYTES = 16;
/** Suffix of a new index being written: `events.idx.<pid>.<random>.index-tmp`. */
const TEMPORARY_SUFFIX = '.index-tmp';
const APPEND_FLAGS = fsConstants.O_WRONLY | fsConstants.O_APPEND | (fsConstants.O_NOFOLLOW ?? 0);
const CREATE_FLAGS =
  fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | (fsConstants.O_NOFOLLOW ?? 0);

/** Which event file an index describes. */
export interface EventFileIdentity {
  ino: number;
  birthtimeMs: number;
}

export function identityOf(info: Stats): EventFileIdentity {
  return { ino: info.ino, birthtimeMs: info.birthtimeMs };
}

/** The hash an index keeps for a channel (FNV-1a over its UTF-16 code units); equal channels, equal hashes. */
export function channelHash(channel: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) hash = Math.imul(hash ^ channel.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** The indexed lines of an event file, from its first byte: line i is `lengths[i]` bytes at `offsets[i]`, then a newline. */
export interface IndexedLines {
  count: number;
  offsets: Float64Array;
  lengths: Uint32Array;
  hashes: Uint32Array;
  /** NaN for a line that is not an entry (unreadable, or a sealed torn write). */
  seqs: Float64Array;
}

/** Where the indexed lines end: the offset after the newline of the last one. */
export function indexedEnd(lines: IndexedLines, count = lines.count): number {
  return count === 0 ? 0 : lines.offsets[count - 1]! + lines.lengths[count - 1]! + 1;
}

/** Whether line `i` of the index is the line of `length` bytes at `offset` holding `entry` (undefined: not an entry). */
export function indexAgrees(
  index: IndexedLines,
  i: number,
  offset: number,
  length: number,
  entry: Timeline | undefined,
): boolean {
  if (index.offsets[i] !== offset || index.lengths[i] !== length) return false;
  const seq = index.seqs[i]!;
  if (!entry) return Number.isNaN(seq);
  return entry.bookmark.seq === seq && channelHash(entry.event.channel) === index.hashes[i];
}

/** Lines indexed by a read, to be added to the index once the event file is closed (`writeIndexUpdate`). */
export class IndexUpdate {
  /** What the read found: the index extends (`append`), a new one (`fresh`), the index must go (`discard`), or nothing to write. */
  mode: 'append' | 'fresh' | 'discard' | 'none' = 'none';
  /** Offset of the first collected line. */
  start = 0;
  readonly lengths: number[] = [];
  readonly hashes: number[] = [];
  readonly seqs: number[] = [];

  constructor(readonly identity: EventFileIdentity) {}

  /** Records one line read by a scan (its entry, or undefined when it is not one). */
  add(length: number, entry: Timeline | undefined): void {
    this.lengths.push(length);
    this.hashes.push(entry ? channelHash(entry.event.channel) : 0);
    this.seqs.push(entry ? entry.bookmark.seq : Number.NaN);
  }
}

/** A 32-bit checksum of `bytes[from, to)` (whole 4-byte words): tells a torn or zeroed chunk from a written one. */
function checksum(bytes: Buffer, from: number, to: number, seed: number): number {
  let hash = seed ^ 0x9e3779b9;
  for (let i = from; i + 4 <= to; i += 4) {
    hash = Math.imul(hash ^ bytes.readUInt32LE(i), 0x85ebca6b);
    hash ^= hash >>> 13;
  }
  return (hash ^ (to - from)) >>> 0;
}

function identityWord(identity: EventFileIdentity): number {
  const bytes = Buffer.alloc(16);
  bytes.writeDoubleLE(identity.ino, 0);
  bytes.writeDoubleLE(identity.birthtimeMs, 8);
  return checksum(bytes, 0, 16, 0x1d);
}

function encodeHeader(identity: EventFileIdentity): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  HEADER_MAGIC.copy(header, 0);
  header.writeDoubleLE(identity.ino, 8);
  header.writeDoubleLE(identity.birthtimeMs, 16);
  header.writeUInt32LE(checksum(header, 0, 24, 0x4b), 24);
  return header;
}

function encodeChunk(update: IndexUpdate): Buffer {
  const count = update.lengths.length;
  const chunk = Buffer.alloc(CHUNK_HEADER_BYTES + count * RECORD_BYTES);
  chunk.writeUInt32LE(CHUNK_MAGIC, 0);
  chunk.writeUInt32LE(count, 4);
  chunk.writeDoubleLE(update.start, 8);
  chunk.writeUInt32LE(identityWord(update.identity), 20);
  for (let i = 0; i < count; i++) {
    const at = CHUNK_HEADER_BYTES + i * RECORD_BYTES;
    chunk.writeUInt32LE(update.lengths[i]!, at);
    chunk.writeUInt32LE(update.hashes[i]!, at + 4);
    chunk.writeDoubleLE(update.seqs[i]!, at + 8);
  }
  chunk.writeUInt32LE(chunkChecksum(chunk, 0, chunk.length), 16);
  return chunk;
}

/** The checksum of a chunk: its count and offset, its identity and its records. */
function chunkChecksum(bytes: Buffer, at: number, end: number): number {
  const head = checksum(bytes, at + 4, at + 16, 0x43);
  const identity = bytes.readUInt32LE(at + 20);
  return checksum(bytes, at + CHUNK_HEADER_BYTES, end, head ^ identity);
}

/**
 * The lines an index file's bytes describe for the event file `identity`,
 * up to the first chunk that cannot be used; undefined when the header is
 * not one of ours or names another file.
 */
export function decodeIndex(bytes: Buffer, identity: EventFileIdentity): IndexedLines | undefined {
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, 8).equals(HEADER_MAGIC)) return undefined;
  if (bytes.readUInt32LE(24) !== checksum(bytes, 0, 24, 0x4b)) return undefined;
  if (bytes.readDoubleLE(8) !== identity.ino || bytes.readDoubleLE(16) !== identity.birthtimeMs) {
    return undefined;
  }
  const word = identityWord(identity);
  const capacity = Math.floor((bytes.length - HEADER_BYTES) / RECORD_BYTES);
  const lines: IndexedLines = {
    count: 0,
    offsets: new Float64Array(capacity),
    lengths: new Uint32Array(capacity),
    hashes: new Uint32Array(capacity),
    seqs: new Float64Array(capacity),
  };
  let covered = 0;
  for (let at = HEADER_BYTES; at + CHUNK_HEADER_BYTES <= bytes.length; ) {
    if (bytes.readUInt32LE(at) !== CHUNK_MAGIC) break;
    const count = bytes.readUInt32LE(at + 4);
    const end = at + CHUNK_HEADER_BYTES + count * RECORD_BYTES;
    // A torn chunk (or garbage) ends the index: chunks after it could only extend a gap.
    if (end > bytes.length || bytes.readUInt32LE(at + 16) !== chunkChecksum(bytes, at, end)) break;
    let offset = bytes.readDoubleLE(at + 8);
    if (offset > covered) break;
    if (bytes.readUInt32LE(at + 20) === word) {
      for (let record = at + CHUNK_HEADER_BYTES; record < end; record += RECORD_BYTES) {
        const length = bytes.readUInt32LE(record);
        if (offset === covered) {
          const i = lines.count++;
          lines.offsets[i] = offset;
          lines.lengths[i] = length;
          lines.hashes[i] = bytes.readUInt32LE(record + 4);
          lines.seqs[i] = bytes.readDoubleLE(record + 8);
          covered = offset + length + 1;
        } else if (offset > covered) {
          // Records of another tiling: nothing after this point lines up.
          return lines;
        }
        offset += length + 1;
      }
    }
    at = end;
  }
  return lines;
}

/** The index of the event file at `eventPath` as bytes; undefined when there is none or it cannot be read. */
export async function readIndexFile(eventPath: string): Promise<Buffer | undefined> {
  try {
    return await readFile(join(dirname(eventPath), EVENT_INDEX_FILE_NAME), { flag: fsConstants.O_RDONLY });
  } catch {
    return undefined;
  }
}

/**
 * Writes what a read collected (the caller has closed the event file and
 * holds one descriptor slot). Never throws: the index is a cache, and a
 * read that could not write it (a full disk, a read-only directory, the
 * agent deleted meanwhile) has still read correctly.
 */
export async function writeIndexUpdate(eventPath: string, update: IndexUpdate): Promise<void> {
  const path = join(dirname(eventPath), EVENT_INDEX_FILE_NAME);
  try {
    if (update.mode === 'discard') {
      await unlink(path);
    } else if (update.mode === 'append' && update.lengths.length > 0) {
      // Appended only to an index that exists: its header says which file the chunks are for.
      const handle = await open(path, APPEND_FLAGS);
      try {
        await writeFully(handle, encodeChunk(update), { bytes: 0 });
      } finally {
        await closeQuietly(handle);
      }
    } else if (update.mode === 'fresh' && update.lengths.length > 0) {
      await removeStaleTemporaries(path, TEMPORARY_SUFFIX);
      const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}${TEMPORARY_SUFFIX}`;
      const handle = await open(temporary, CREATE_FLAGS, 0o666);
      let written = false;
      try {
        await writeFully(handle, Buffer.concat([encodeHeader(update.identity), encodeChunk(update)]), {
          bytes: 0,
        });
        written = true;
      } finally {
        await closeQuietly(handle);
        if (!written) await unlink(temporary).catch(() => undefined);
      }
      await rename(temporary, path).catch(async (error: unknown) => {
        await unlink(temporary).catch(() => undefined);
        throw error;
      });
    }
  } catch {
    // A cache: ENOENT (the agent deleted, the index removed by a prune meanwhile), ENOSPC, EROFS...
  }
}

/** Removes the index beside an event file (a prune replaces the file it describes). */
export async function removeIndex(eventPath: string): Promise<void> {
  await unlink(join(dirname(eventPath), EVENT_INDEX_FILE_NAME)).catch((error: unknown) => {
    if (errorCode(error) !== 'ENOENT') throw error;
  });
}
