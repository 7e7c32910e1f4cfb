import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Timeline } from '../../src/types.js';
import type { RawEventFilter, RawEventLog } from './raw-baseline.js';

/** How the raw event files are laid out and synced. */
export interface RawFileEventsOptions {
  /**
   * `fdatasync` before an append counts as done (default true): the
   * durability `FileEventLog` gives. False is the SDK JSONStore's: written,
   * never synced, so a power loss may take what the OS had not flushed.
   */
  fsync?: boolean;
  /**
   * One file per agent and channel (the JSONStore's layout), instead of one
   * per agent (the hybrid mode's, which keeps one append order across channels).
   * A channel read then loads only that channel's file.
   */
  perChannel?: boolean;
}

/**
 * The raw baseline of event files: one JSON line per event appended with
 * `O_APPEND` to one file per agent (or per agent and channel), synced or not
 * as `options` say, and reads that load the file, split it into lines and
 * parse each.
 */
export class RawFileEvents implements RawEventLog {
  private readonly handles = new Map<string, FileHandle>();
  private readonly fsync: boolean;
  private readonly perChannel: boolean;

  /** @param dir a directory of its own (created if missing) */
  constructor(
    private readonly dir: string,
    options: RawFileEventsOptions = {},
  ) {
    mkdirSync(dir, { recursive: true });
    this.fsync = options.fsync ?? true;
    this.perChannel = options.perChannel ?? false;
  }

  private path(agentId: string, channel: string | undefined): string {
    const name = createHash('sha256').update(agentId).digest('hex').slice(0, 32);
    return join(this.dir, this.perChannel ? `${name}.${channel}.jsonl` : `${name}.jsonl`);
  }

  private async handle(agentId: string, channel: string): Promise<FileHandle> {
    const path = this.path(agentId, channel);
    let handle = this.handles.get(path);
    if (!handle) {
      handle = await open(path, 'a');
      this.handles.set(path, handle);
    }
    return handle;
  }

  async appendAllAtOnce(agentId: string, events: readonly Timeline[]): Promise<void> {
    // One write (and one sync) per file touched.
    const texts = new Map<string, string>();
    for (const entry of events) {
      const channel = this.perChannel ? entry.event.channel : '';
      texts.set(channel, `${texts.get(channel) ?? ''}${JSON.stringify(entry)}\n`);
    }
    for (const [channel, text] of texts) {
      const handle = await this.handle(agentId, channel);
      await handle.write(text);
      if (this.fsync) await handle.datasync();
    }
  }

  async appendOne(agentId: string, entry: Timeline): Promise<void> {
    const handle = await this.handle(agentId, this.perChannel ? entry.event.channel : '');
    await handle.write(`${JSON.stringify(entry)}\n`);
    if (this.fsync) await handle.datasync();
  }

  async read(agentId: string, filter: RawEventFilter): Promise<number> {
    if (this.perChannel && filter.channel === undefined) {
      // Every channel's file: the count is what matters to the workloads, not one order across them.
      let count = 0;
      for (const channel of ['progress', 'control', 'monitor'] as const) {
        count += await this.readFile(agentId, { ...filter, channel });
      }
      return count;
    }
    return this.readFile(agentId, filter);
  }

  private async readFile(agentId: string, filter: RawEventFilter): Promise<number> {
    const path = this.path(agentId, this.perChannel ? filter.channel : '');
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
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

  async readStreaming(
    agentId: string,
    _pageSize?: number,
    limit = Number.POSITIVE_INFINITY,
  ): Promise<number> {
    // The agent's file(s) in 256 KiB chunks, split into lines, each parsed.
    const paths = this.perChannel
      ? (['progress', 'control', 'monitor'] as const).map((channel) => this.path(agentId, channel))
      : [this.path(agentId, undefined)];
    let count = 0;
    const chunk = Buffer.allocUnsafe(256 * 1024);
    for (const path of paths) {
      const handle = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (!handle) continue;
      try {
        let rest = Buffer.alloc(0);
        for (;;) {
          const { bytesRead } = await handle.read(chunk, 0, chunk.length);
          if (bytesRead === 0) break;
          // Lines are split on the byte 0x0A, which never occurs inside a UTF-8 character.
          const view = chunk.subarray(0, bytesRead);
          const last = view.lastIndexOf(0x0a);
          if (last === -1) {
            rest = Buffer.concat([rest, view]);
            continue;
          }
          const lines = Buffer.concat([rest, view.subarray(0, last)])
            .toString('utf8')
            .split('\n');
          rest = Buffer.from(view.subarray(last + 1));
          for (const line of lines) {
            JSON.parse(line);
            count++;
          }
          if (count >= limit) return count;
        }
      } finally {
        await handle.close();
      }
    }
    return count;
  }

  async close(): Promise<void> {
    for (const handle of this.handles.values()) await handle.close();
    this.handles.clear();
  }
}
