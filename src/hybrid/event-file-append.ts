import type { FileHandle } from 'node:fs/promises';
import { endsWithNewline, writeFully } from './event-file-io.js';
import { joinLines, TORN_LINE_TERMINATOR } from './event-lines.js';

/**
 * How a batch of lines is written to an agent's event file, and what a
 * crash or a failed write leaves.
 *
 * Crashes. A writer killed in the middle of a `write()` (or a power loss before
 * the sync) can leave a last line without its newline. Readers only accept
 * newline-terminated lines, so such a torn line is skipped, and the next
 * append repairs it by *terminating* it: the batch is written as
 * `"\t#torn-write-repaired\n" + lines`. Terminating rather than truncating is
 * deliberate: truncation has to compute an offset and then cut, and between
 * the two another process may have appended acknowledged entries that the cut
 * would destroy; an `O_APPEND` write never removes a byte, so no acknowledged
 * entry can be lost, and the marker lets `check()` tell a repaired torn write
 * (healthy) from real corruption. The file size after our own last write is
 * remembered, so the tail is only read back (one `pread` of a byte) when the
 * file was touched by someone else or a write failed; one `fstat` per batch
 * (not per append) also notices a file that another `FileEventLog` deleted
 * while this one still had it open.
 *
 * A batch whose `write()` or sync fails (disk full, I/O error) is rejected,
 * and nothing of it stays readable: the file is cut back to the size it had
 * before the batch. The cut is the one truncation the log makes, and it is
 * guarded: it is made only when the file holds exactly what this batch
 * wrote after that size, so an entry another writer appended meanwhile is
 * never destroyed (the failed batch's lines then stay, the one case where a
 * rejected append can be read). A file cut back to nothing counts as no
 * file: `has` and `listAgentIds` see only agents with events. A line
 * another process is writing at this moment looks torn to `check()` until
 * that write completes.
 */

/**
 * Appends `lines` (each one JSON Timeline, without its newline) through an
 * `O_APPEND` descriptor whose file had `size` bytes a moment ago; `knownSize`
 * is the size right after this descriptor's own last write (-1 when unknown),
 * so the torn-tail check reads a byte only when someone else touched the
 * file. Resolves with the size right after the batch; rejects with the
 * error of a failed write or sync, after cutting the batch back.
 */
export async function appendLines(
  handle: FileHandle,
  lines: string[],
  size: number,
  knownSize: number,
  fsync: boolean,
): Promise<number> {
  const torn = size > 0 && size !== knownSize && !(await endsWithNewline(handle, size));
  const written = { bytes: 0 };
  try {
    for (const chunk of joinLines(lines, torn ? `${TORN_LINE_TERMINATOR}\n` : '')) {
      await writeFully(handle, Buffer.from(chunk, 'utf8'), written);
    }
    if (fsync) await handle.datasync();
  } catch (error) {
    await cutBack(handle, size, written.bytes, fsync);
    throw error;
  }
  return size + written.bytes;
}

/**
 * Removes what a failed batch left in the file (it started at `start` and
 * wrote `bytes`), so that a rejected append is never read. Only when the
 * file holds nothing else after `start`: another writer's entries appended
 * meanwhile must not be cut.
 */
async function cutBack(handle: FileHandle, start: number, bytes: number, fsync: boolean): Promise<void> {
  try {
    if (bytes > 0 && (await handle.stat()).size === start + bytes) {
      await handle.truncate(start);
      if (fsync) await handle.datasync();
    }
  } catch {
    // The batch is rejected with the error that failed it; a cut that fails
    // too (a dead disk) leaves its lines, as a crash at that moment would.
  }
}
