import { isUtf8 } from 'node:buffer';
import type { FileHandle } from 'node:fs/promises';
import { isTimeline } from '../agent/store-codec.js';
import { ValidationError } from '../errors.js';
import type { Timeline } from '../types.js';

/**
 * The line format of hybrid-mode event files: one `Timeline` JSON per
 * newline-terminated line, a torn last line sealed by
 * `TORN_LINE_TERMINATOR`, and the readers that hand a file over as blocks
 * of whole lines (see file-event-log.ts for the guarantees around them).
 */

/** Written after a torn last line, before the next batch; a line ending with it is a repaired torn write. */
export const TORN_LINE_TERMINATOR = '\t#torn-write-repaired';

/** Bytes read from an event file per step. */
export const READ_CHUNK_BYTES = 256 * 1024;
/** A batch longer than this is written in several `write()` calls, each of whole lines, to bound the extra memory. */
export const MAX_WRITE_CHARS = 4 * 1024 * 1024;
const NEWLINE = 0x0a;
const BACKEND = 'file-event-log';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function assertEventLine(
  encodedTimeline: unknown,
  agentId: string,
): asserts encodedTimeline is string {
  const ctx = { backend: BACKEND, operation: 'append', agentId };
  if (typeof encodedTimeline !== 'string') {
    throw new ValidationError(`encodedTimeline must be a string, got ${typeof encodedTimeline}`, ctx);
  }
  // The file is line-based: a raw newline would split one entry into two
  // garbage lines. encodeJson never produces one (JSON escapes it in strings).
  if (encodedTimeline.includes('\n')) {
    throw new ValidationError('encodedTimeline must be one line of JSON (use encodeJson)', ctx);
  }
  if (!encodedTimeline.isWellFormed()) {
    throw new ValidationError('encodedTimeline must not contain lone surrogates (use encodeJson)', ctx);
  }
  const { problem } = parseText(encodedTimeline);
  if (problem) throw new ValidationError(`encodedTimeline is ${problem}`, ctx);
}

export interface ParsedLine {
  entry?: Timeline;
  /** Why the line is not an entry; absent for entries and for repaired torn writes. */
  problem?: string;
}

const TORN_LINE_TERMINATOR_BYTES = Buffer.from(TORN_LINE_TERMINATOR, 'utf8');

export function parseLine(bytes: Buffer): ParsedLine {
  // Judged on the bytes: the torn piece before the marker may end inside a
  // multi-byte character, and a sealed torn line is never an entry anyway.
  if (endsWithBytes(bytes, TORN_LINE_TERMINATOR_BYTES)) return {};
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return { problem: 'not valid UTF-8' };
  }
  return parseText(text);
}

function endsWithBytes(bytes: Buffer, suffix: Buffer): boolean {
  return bytes.length >= suffix.length && bytes.subarray(bytes.length - suffix.length).equals(suffix);
}

export function parseText(text: string): ParsedLine {
  if (text.length === 0) return { problem: 'an empty line' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'not JSON' };
  }
  return isTimeline(value)
    ? { entry: value }
    : { problem: 'not a Timeline entry (needs bookmark.seq as a number and event.channel as a string)' };
}

/** Groups lines into newline-terminated chunks of whole lines, each at most MAX_WRITE_CHARS unless one line is longer. */
export function joinLines(lines: string[], prefix: string): string[] {
  const chunks: string[] = [];
  let current = prefix;
  for (const line of lines) {
    if (current.length > 0 && current.length + line.length + 1 > MAX_WRITE_CHARS) {
      chunks.push(current);
      current = '';
    }
    current += `${line}\n`;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Whole lines of a file, read together (see `readLineBlocks`). */
export interface LineBlock {
  /** Byte offset of the block's first line. */
  offset: number;
  /** Lines joined by newlines, without the last one's; only valid until the next block is requested. */
  bytes: Buffer;
  /** False for the unterminated last line of the file (a torn write), handed over alone. */
  terminated: boolean;
}

/**
 * The bytes of a file from `start` (the start of a line) to `end` as blocks
 * of whole lines, a chunk's worth at a time (one asynchronous step per
 * chunk, not per line), so that a reader can decode a block in one call.
 * Splitting on the byte 0x0A is safe for UTF-8: it never occurs inside a
 * multi-byte character.
 */
export async function* readLineBlocks(
  handle: FileHandle,
  end: number,
  assertOpen: () => void,
  start = 0,
): AsyncGenerator<LineBlock> {
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let position = start;
  let blockStart = start;
  // The start of a line that continues into the next chunk (copied: `chunk` is reused).
  let pieces: Buffer[] = [];
  while (position < end) {
    assertOpen();
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, end - position), position);
    if (bytesRead === 0) break; // the file was truncated under us
    const view = chunk.subarray(0, bytesRead);
    const last = view.lastIndexOf(NEWLINE);
    if (last === -1) {
      pieces.push(Buffer.from(view));
    } else {
      const head = view.subarray(0, last);
      yield {
        offset: blockStart,
        bytes: pieces.length === 0 ? head : Buffer.concat([...pieces, head]),
        terminated: true,
      };
      pieces = last + 1 < bytesRead ? [Buffer.from(view.subarray(last + 1))] : [];
      blockStart = position + last + 1;
    }
    position += bytesRead;
  }
  if (pieces.length > 0) yield { offset: blockStart, bytes: Buffer.concat(pieces), terminated: false };
}

/** Each line of a block with its byte offset in the file. */
export function* linesOf(block: LineBlock): Generator<{ offset: number; bytes: Buffer }> {
  for (let from = 0; from <= block.bytes.length; ) {
    const newline = block.bytes.indexOf(NEWLINE, from);
    const to = newline === -1 ? block.bytes.length : newline;
    yield { offset: block.offset + from, bytes: block.bytes.subarray(from, to) };
    from = to + 1;
  }
}

/** A block's lines as strings; lines that are not valid UTF-8 are left out (`check` reports them). */
export function decodeLines(block: LineBlock): string[] {
  // One isUtf8 + toString for the whole block (both SIMD in Node): about
  // twice as fast as a fatal TextDecoder per line, which is what makes
  // reading a long stream cheap.
  if (isUtf8(block.bytes)) return block.bytes.toString('utf8').split('\n');
  const lines: string[] = [];
  for (const { bytes } of linesOf(block)) if (isUtf8(bytes)) lines.push(bytes.toString('utf8'));
  return lines;
}
