import type { FileHandle } from 'node:fs/promises';
import type { Timeline } from '../types.js';
import { decodeLines, parseText, readLineBlocks, TORN_LINE_TERMINATOR } from './event-lines.js';

/**
 * The entries of one open event file up to `end` (its size when the read
 * began), a chunk's worth at a time and never an empty page: those after
 * `sinceSeq` on `channel`. Torn and unreadable lines are skipped (an agent
 * must stay resumable; `check()` reports them). FileEventLog.readPages
 * (file-event-log.ts) holds the descriptor around it.
 */
export async function* readEntryPages(
  handle: FileHandle,
  end: number,
  { sinceSeq, channel }: { sinceSeq?: number; channel?: string },
  assertOpen: () => void,
): AsyncGenerator<Timeline[]> {
  for await (const block of readLineBlocks(handle, end, assertOpen)) {
    // An unterminated last line is a torn write: never an entry.
    if (!block.terminated) continue;
    const entries: Timeline[] = [];
    for (const text of decodeLines(block)) {
      if (text.endsWith(TORN_LINE_TERMINATOR)) continue;
      const entry = parseText(text).entry;
      if (!entry) continue;
      if (sinceSeq !== undefined && !(entry.bookmark.seq > sinceSeq)) continue;
      if (channel !== undefined && entry.event.channel !== channel) continue;
      entries.push(entry);
    }
    if (entries.length > 0) yield entries;
  }
}
