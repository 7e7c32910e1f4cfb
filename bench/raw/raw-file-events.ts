import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Timeline } from '../../src/types.js';
import type { RawEventFilter, RawEventLog } from './raw-baseline.js';

/**
 * The raw baseline of the hybrid mode's event files: one JSON line per
 * event appended to one file per agent with `O_APPEND`, `fdatasync` before an
 * append counts as done (the durability `FileEventLog` gives), and reads
 * that load the file, split it into lines and parse each.
 */
export class RawFileEvents implements RawEventLog {
  private readonly handles = new Map<string, FileHandle>();

  /** @param dir a directory of its own (created if missing) */
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private path(agentId: string): string {
    return join(this.dir, `${createHash('sha256').update(agentId).digest('hex').slice(0, 32)}.jsonl`);
  }

  private async handle(agentId: string): Promise<FileHandle> {
    let handle = this.handles.get(agentId);
    if (!handle) {
      handle = await open(this.path(agentId), 'a');
      this.handles.set(agentId, handle);
    }
    return handle;
  }

  async appendAllAtOnce(agentId: string, events: readonly Timeline[]): Promise<void> {
    const handle = await this.handle(agentId);
    let text = '';
    for (const entry of events) text += `${JSON.stringify(entry)}\n`;
    await handle.write(text);
    await handle.datasync();
  }

  async appendOne(agentId: string, entry: Timeline): Promise<void> {
    const handle = await this.handle(agentId);
    await handle.write(`${JSON.stringify(entry)}\n`);
    await handle.datasync();
  }

  async read(agentId: string, filter: RawEventFilter): Promise<number> {
    const text = await readFile(this.path(agentId), 'utf8');
    let count = 0;
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; start = end + 1, end = text.indexOf('\n', start)) {
      const entry = JSON.parse(text.slice(start, end)) as Timeline;
      if (filter.sinceSeq !== undefined && !(entry.bookmark.seq > filter.sinceSeq)) continue;
      if (filter.channel !== undefined && entry.event.channel !== filter.channel) continue;
      count++;
    }
    return count;
  }

  async close(): Promise<void> {
    for (const handle of this.handles.values()) await handle.close();
    this.handles.clear();
  }
}
