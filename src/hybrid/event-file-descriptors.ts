import type { FileHandle } from 'node:fs/promises';
import { DescriptorLimit } from './descriptor-limit.js';
import { closeQuietly } from './event-file-io.js';

/** An agent's append descriptor, kept open for its next batch. */
export interface OpenEventFile {
  handle: FileHandle;
  /** File size right after this object's last write, or -1 when unknown (fresh descriptor, failed write). */
  knownSize: number;
  /** Batches using the descriptor; only an idle one is closed to make room. */
  busy: number;
  /** The file was created when this descriptor was opened (cleared by the first batch written through it). */
  created: boolean;
}

/**
 * Every descriptor of one `FileEventLog` under its `maxOpenFiles` bound:
 * append descriptors kept open for an agent's next batch, files being read
 * or checked, and descriptors still closing. Kept append files are the ones
 * given up (least recently used first) when someone waits for a slot.
 */
export class EventFileDescriptors {
  readonly limit: DescriptorLimit;
  /** Files being read or checked; `closeAll` closes them under their readers, which then end. */
  readonly readers = new Set<FileHandle>();
  /**
   * Append descriptors kept open, each holding a slot of `limit`. Insertion
   * order is recency order: a used entry is re-inserted at the end.
   */
  private readonly appendFiles = new Map<string, OpenEventFile>();
  private readonly closing = new Set<Promise<void>>();

  constructor(maxOpenFiles: number) {
    this.limit = new DescriptorLimit(maxOpenFiles, () => this.closeLeastRecentIdle());
  }

  /** The agent's kept append descriptor, marked busy and most recently used; undefined when none is kept. */
  reuse(agentId: string): OpenEventFile | undefined {
    const cached = this.appendFiles.get(agentId);
    if (!cached) return undefined;
    this.appendFiles.delete(agentId);
    this.appendFiles.set(agentId, cached);
    cached.busy++;
    return cached;
  }

  /** Keeps an append descriptor (opened under a slot of `limit`) for the agent's next batches. */
  keep(agentId: string, file: OpenEventFile): void {
    this.appendFiles.set(agentId, file);
  }

  /** Takes the agent's descriptor out of the kept ones without closing it: its slot stays taken. */
  takeOut(agentId: string): OpenEventFile | undefined {
    const file = this.appendFiles.get(agentId);
    if (file) this.appendFiles.delete(agentId);
    return file;
  }

  /** Closes the agent's kept append descriptor, if any, and frees its slot (no batch of the agent may be running). */
  async closeAppendFile(agentId: string): Promise<void> {
    const file = this.takeOut(agentId);
    if (file) await this.closeFile(file.handle);
  }

  /** A batch is done with `file`: someone waits for a descriptor, so one kept only for reuse goes now. */
  finished(file: OpenEventFile): void {
    file.busy--;
    if (file.busy === 0 && this.limit.contended) this.limit.reclaim();
  }

  /**
   * Runs `body`, which opens at most `count` descriptors at a time and
   * closes what it opens, under `count` slots taken together (one by default).
   */
  async withDescriptor<T>(body: () => Promise<T>, count = 1): Promise<T> {
    await this.limit.acquire(count);
    try {
      return await body();
    } finally {
      for (let i = 0; i < count; i++) this.limit.release();
    }
  }

  /** Closes every descriptor (the log is closing): readers still running end with their own error. */
  async closeAll(): Promise<void> {
    // A read still running releases its own slot when it ends.
    const readers = [...this.readers];
    this.readers.clear();
    const files = [...this.appendFiles.values()];
    this.appendFiles.clear();
    await Promise.allSettled([
      ...readers.map((handle) => handle.close()),
      ...files.map((file) => this.closeFile(file.handle)),
      ...this.closing,
    ]);
  }

  /** Closes an append descriptor taken out of the kept ones, then frees its slot. */
  closeFile(handle: FileHandle): Promise<void> {
    return this.closeInBackground(handle).then(() => this.limit.release());
  }

  /** For the descriptor limit: closes the least recently used idle append file, if there is one. */
  private closeLeastRecentIdle(): Promise<void> | undefined {
    for (const [agentId, file] of this.appendFiles) {
      if (file.busy > 0) continue;
      this.appendFiles.delete(agentId);
      return this.closeInBackground(file.handle);
    }
    return undefined;
  }

  /** Closes a descriptor (never rejects); `closeAll` waits for every one still closing. */
  private closeInBackground(handle: FileHandle): Promise<void> {
    const closed: Promise<void> = closeQuietly(handle).finally(() => this.closing.delete(closed));
    this.closing.add(closed);
    return closed;
  }
}
