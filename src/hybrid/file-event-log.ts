import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { type Dirent, constants as fsConstants, type Stats } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { AppendBatcher } from '../agent/append-batcher.js';
import { pagedIterable } from '../agent/paged-iterable.js';
import { eventFilter, isTimeline } from '../agent/store-codec.js';
import { StoreOperations } from '../agent/store-operations.js';
import {
  ConfigError,
  CorruptDataError,
  StoreClosedError,
  ValidationError,
  wrapDriverError,
} from '../errors.js';
import { compareCodePoints } from '../strings.js';
import { holdsJsonStore } from '../transfer/json-store-layout.js';
import type { AgentChannel, Bookmark, Timeline } from '../types.js';
import {
  AGENT_ID_SIDECAR,
  agentDirName,
  agentIdFromDirName,
  agentIdFromSidecar,
  isHashedDirName,
} from './agent-path.js';
import { DescriptorLimit } from './descriptor-limit.js';

/**
 * The hybrid mode's append-only event files (SPEC §4).
 *
 * Layout: `<baseDir>/<agent dir>/events.jsonl`, one file per agent holding all
 * channels in append order, one `Timeline` JSON per line. The agent directory
 * name comes from `agent-path.ts` (a reversible, case-safe encoding of the id,
 * or a hash plus an `agent-id` sidecar file for long ids), so no id can name a
 * path outside `baseDir`.
 *
 * Writing. Appends of one agent go through an `AppendBatcher`: everything
 * queued while a batch is being written becomes the next batch, written with
 * one `write()` on a descriptor opened with `O_APPEND`, then one `fdatasync`.
 * An append resolves after that sync, so a resolved append is on disk (the
 * first append of an agent also syncs the directories it created). Two
 * `FileEventLog` objects, in one process or two, may append to the same file:
 * on Linux local file systems a `write()` to an `O_APPEND` descriptor holds
 * the inode lock for the whole call, so batches never interleave inside a
 * line, whatever their size. That is an assumption about the file system:
 * it does not hold on NFS and other network file systems, where two writers
 * of one agent must be kept apart by the agent lock.
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
 *
 * Registration. A store keeps a row per agent in its database; the log calls
 * `registerAgent` after the first batch of an agent it wrote, after every
 * batch that created the agent's file, and again after a batch whose
 * registration failed, before that batch's appends resolve. Its failure does
 * not reject them: their entries are on disk, and the stores' `list` and
 * `exists` read the files too, so the agent is seen either way; the next
 * batch of the agent tries again.
 *
 * Admission. Before a batch creates an agent's file (its first, or the first
 * after the file was deleted, by this log or another), the log asks the
 * store's `admitAgent`: a deleted agent's late events are discarded (the
 * appends resolve, nothing is written), and an agent whose events live in
 * the database is refused (src/agent/deleted-agents.ts, src/hybrid/event-modes.ts). A
 * delete by another process between that question and the file's creation
 * is caught by the registration that follows: `registerAgent` answers
 * `false`, and the log removes the file it just made.
 *
 * Descriptors. The log never holds more than `maxOpenFiles` descriptors at
 * once: append files kept open for the next batch, files being read or
 * checked, directories being synced or listed. Whatever needs one beyond
 * that waits, in call order, and append files that are only kept open for
 * reuse are closed (least recently used first) to make room. A running
 * `read` holds one until its loop ends or is broken out of.
 *
 * Reading streams the file in chunks up to the size it had when the read
 * began, so a read ends even while appends continue, and never holds more
 * than one chunk and one line in memory. Unreadable lines are skipped by
 * `read()` (an agent must stay resumable) and reported by `check()`.
 */

/** Options of {@link FileEventLog}. */
export interface FileEventLogOptions {
  /**
   * Directory holding one sub-directory per agent. Created (with its parents)
   * on the first append, never before; nothing is written outside it.
   * @example { baseDir: './data/store' }
   */
  baseDir: string;
  /**
   * Sync every batch to disk (`fdatasync`) before its appends resolve.
   * Default `true`. `false` trades durability on power loss for speed: a
   * process crash still loses nothing acknowledged, an OS crash may.
   */
  fsync?: boolean;
  /**
   * The most file descriptors the log holds open at once, idle append files
   * included (at least 1; default {@link DEFAULT_MAX_OPEN_FILES}). Appends
   * and reads beyond it wait for a descriptor instead of failing with
   * `EMFILE`; keep it well below the process limit (`ulimit -n`), which the
   * database driver and sockets share.
   * @example { baseDir: './data/store', maxOpenFiles: 256 }
   */
  maxOpenFiles?: number;
  /**
   * Records in the store's database that the agent has events in files.
   * Called after the first batch of an agent this log wrote, after a batch
   * that created the agent's file, and again after a later batch while it
   * has not succeeded, before the batch's appends resolve. A failure does not
   * reject the appends (their entries are on disk); it is tried again with
   * the agent's next batch. `false` means the agent was deleted meanwhile:
   * the log removes the agent's file and the appends resolve, discarded.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a store that never refuses registers with a plain async function
  registerAgent?: (agentId: string) => boolean | void | Promise<boolean | void>;
  /**
   * Asked before a batch creates the agent's event file. `false` discards the
   * batch (the agent was deleted: its appends resolve, nothing is written);
   * a rejection rejects the batch's appends with that error.
   */
  admitAgent?: (agentId: string) => boolean | Promise<boolean>;
}

/** Name of an agent's event file inside its directory. */
export const EVENTS_FILE_NAME = 'events.jsonl';

/** Most lines one fdatasync may cover. */
const MAX_APPEND_BATCH = 20_000;

/**
 * Default of `maxOpenFiles`: enough for a disk's worth of parallel fsyncs
 * (libuv runs four file system calls at a time by default), and far below
 * the usual 1,024 descriptors a process may open.
 */
export const DEFAULT_MAX_OPEN_FILES = 64;

/**
 * How far a file's modification time may lag the write that set it: Linux
 * stamps files from a coarse clock (one scheduler tick, up to 10 ms behind),
 * and some file systems keep whole seconds (ext3, HFS+).
 */
export const FILE_TIME_SLACK_MS = 1000;

/** Written after a torn last line, before the next batch; a line ending with it is a repaired torn write. */
export const TORN_LINE_TERMINATOR = '\t#torn-write-repaired';

const BACKEND = 'file-event-log';
const READ_CHUNK_BYTES = 256 * 1024;
/** A batch longer than this is written in several `write()` calls, each of whole lines, to bound the extra memory. */
const MAX_WRITE_CHARS = 4 * 1024 * 1024;
const MAX_REPORTED_PROBLEMS = 100;
const NEWLINE = 0x0a;

// O_RDWR, not O_WRONLY: the torn-tail check reads the last byte through the
// same descriptor. O_NOFOLLOW: a symbolic link planted where an event file
// belongs must not redirect writes outside the base directory (0 where the
// platform lacks it).
const APPEND_FLAGS = fsConstants.O_RDWR | fsConstants.O_APPEND | (fsConstants.O_NOFOLLOW ?? 0);
const READ_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0);
const CREATE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | (fsConstants.O_NOFOLLOW ?? 0);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

interface AgentAppends {
  batcher: AppendBatcher<string>;
  /** Appends enqueued and not yet settled; the entry is dropped from the map at 0. */
  inFlight: number;
}

interface OpenEventFile {
  handle: FileHandle;
  /** File size right after this object's last write, or -1 when unknown (fresh descriptor, failed write). */
  knownSize: number;
  /** Batches using the descriptor; only an idle one is closed to make room. */
  busy: number;
  /** The file was created when this descriptor was opened (cleared by the first batch written through it). */
  created: boolean;
}

interface AgentDir {
  name: string;
  path: string;
  hashed: boolean;
}

/** Append-only per-agent event files; see the module comment for the file format and its guarantees. */
export class FileEventLog {
  /** The absolute base directory. */
  readonly baseDir: string;
  private readonly fsync: boolean;
  private readonly registerAgent: FileEventLogOptions['registerAgent'];
  private readonly admitAgent: FileEventLogOptions['admitAgent'];
  /** Agents whose `registerAgent` call succeeded (forgotten when the agent is deleted). */
  private readonly registered = new Set<string>();
  private readonly ops = new StoreOperations(BACKEND);
  private readonly appends = new Map<string, AgentAppends>();
  /**
   * Append descriptors kept open for the agent's next batch, each holding a
   * slot of `descriptors`. Insertion order is recency order: a used entry is
   * re-inserted at the end.
   */
  private readonly openFiles = new Map<string, OpenEventFile>();
  private readonly descriptors: DescriptorLimit;
  /** Per agent, a promise that settles (never rejects) when a pending `delete` has finished. */
  private readonly deletions = new Map<string, Promise<void>>();
  private readonly readers = new Set<FileHandle>();
  private readonly closingHandles = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;
  /** Settles once the base directory was found not to be an SDK JSONStore (asked before the first write). */
  private layoutChecked: Promise<void> | undefined;

  constructor(options: FileEventLogOptions) {
    const baseDir = (options as Partial<FileEventLogOptions> | undefined)?.baseDir;
    if (typeof baseDir !== 'string' || baseDir.length === 0 || baseDir.includes('\u0000')) {
      throw new ValidationError('baseDir must be a non-empty path without NUL', {
        backend: BACKEND,
        operation: 'constructor',
      });
    }
    // Resolved once, so a later process.chdir() cannot move the log.
    this.baseDir = resolve(baseDir);
    this.fsync = options.fsync ?? true;
    this.registerAgent = options.registerAgent;
    this.admitAgent = options.admitAgent;
    const maxOpenFiles = options.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES;
    if (!Number.isSafeInteger(maxOpenFiles) || maxOpenFiles < 1) {
      throw new ValidationError(`maxOpenFiles must be a positive integer, got ${String(maxOpenFiles)}`, {
        backend: BACKEND,
        operation: 'constructor',
      });
    }
    this.descriptors = new DescriptorLimit(maxOpenFiles, () => this.closeLeastRecentIdleFile());
  }

  /**
   * Appends one pre-encoded Timeline JSON line (from `encodeJson(timeline, 'event')`);
   * resolves once it is on disk. Appends of one agent are written in call order.
   * A line that is not one JSON `Timeline` (`bookmark.seq` a number, `event.channel`
   * a string) is refused with `ValidationError`, so whatever is accepted reads back.
   */
  append(agentId: string, encodedTimeline: string): Promise<void> {
    return this.ops.runForAgent('append', null, agentId, () => {
      assertEventLine(encodedTimeline, agentId);
      return this.enqueue(agentId, encodedTimeline);
    });
  }

  /**
   * `append` for a line that `StoreCodec.timeline` just produced (so it is
   * one well-formed JSON Timeline line): the stores' hot path, which skips
   * parsing the line again and the asynchronous operation frame.
   * @internal
   */
  appendEncoded(agentId: string, encodedTimeline: string): Promise<void> {
    try {
      this.ops.check('append', agentId);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.enqueue(agentId, encodedTimeline);
  }

  /**
   * Streams entries in append order (across channels), filtered by `since`
   * (`bookmark.seq > since.seq`) and `channel` (`event.channel`). Waits for
   * this object's pending appends of the agent first. Never holds the whole
   * file in memory; a torn last line and unreadable lines are skipped. Breaking
   * out of `for await` closes the file.
   */
  read(agentId: string, opts: { since?: Bookmark; channel?: AgentChannel } = {}): AsyncIterable<Timeline> {
    return pagedIterable(() => this.readPages(agentId, opts));
  }

  /** True when the agent has events on disk (an event file that is not empty). */
  has(agentId: string): Promise<boolean> {
    return this.ops.runForAgent('has', null, agentId, async () => {
      await this.settled(agentId);
      return holdsEvents(await statOrUndefined(join(this.agentDir(agentId).path, EVENTS_FILE_NAME)));
    });
  }

  /**
   * A time (epoch ms) no earlier than the last write to the agent's event
   * file, after this object's pending appends: its modification time plus
   * `FILE_TIME_SLACK_MS`; undefined when the agent has no events on disk.
   * Retention judges a hybrid agent's activity by it (appends never touch
   * the database).
   */
  lastWriteBound(agentId: string): Promise<number | undefined> {
    return this.ops.runForAgent('lastWriteBound', null, agentId, async () => {
      await this.settled(agentId);
      const info = await statOrUndefined(join(this.agentDir(agentId).path, EVENTS_FILE_NAME));
      return holdsEvents(info) ? info.mtimeMs + FILE_TIME_SLACK_MS : undefined;
    });
  }

  /**
   * Removes the agent's directory and everything in it. Appends made before
   * the call are written first and removed with the rest; appends made after
   * it wait for the removal and start a new file.
   */
  delete(agentId: string): Promise<void> {
    return this.ops.runForAgent('delete', null, agentId, () => this.deleteFiles(agentId));
  }

  /**
   * Problems found in the agent's event file: a torn last line (with its
   * offset), unreadable lines (with offsets), an unreadable file, a missing or
   * wrong `agent-id` sidecar. `[]` when healthy or when the agent has no file.
   * A repaired torn write is not a problem.
   */
  check(agentId: string): Promise<string[]> {
    return this.ops.runForAgent('check', null, agentId, async () => {
      await this.settled(agentId);
      return this.withDescriptor(() => this.findProblems(agentId));
    });
  }

  /** Agent ids that have events on disk, decoded from the directory names (or sidecars), in code-point order. */
  listAgentIds(): Promise<string[]> {
    return this.ops.run('listAgentIds', null, async () => {
      await this.settledAll();
      const ids: string[] = [];
      for (const dir of await this.agentDirs()) {
        if (holdsEvents(await statOrUndefined(join(dir.path, EVENTS_FILE_NAME)))) ids.push(dir.agentId);
      }
      return ids.sort(compareCodePoints);
    });
  }

  /** Storage totals for metrics: the number of agents with events on disk and the size of their files in bytes. */
  stats(): Promise<{ files: number; bytes: number }> {
    return this.ops.run('stats', null, async () => {
      await this.settledAll();
      let files = 0;
      let bytes = 0;
      for (const dir of await this.agentDirs()) {
        const info = await statOrUndefined(join(dir.path, EVENTS_FILE_NAME));
        if (holdsEvents(info)) {
          files++;
          bytes += info.size;
        }
      }
      return { files, bytes };
    });
  }

  /**
   * Resolves once every append and delete issued so far has finished (later
   * ones are not waited for, so a caller never starves behind agents that
   * keep streaming).
   */
  idle(): Promise<void> {
    return this.settledAll();
  }

  /**
   * Waits for pending appends and deletes, then closes every file. Later calls
   * reject with `StoreClosedError`; reads still running end with it. Idempotent.
   */
  close(): Promise<void> {
    if (!this.ops.markClosed()) return this.closing ?? Promise.resolve();
    this.closing = (async () => {
      await Promise.allSettled([...this.appends.values()].map((state) => state.batcher.idle()));
      await Promise.allSettled([...this.deletions.values()]);
      // A read still running releases its own slot when it ends (with StoreClosedError).
      const readers = [...this.readers];
      this.readers.clear();
      const files = [...this.openFiles.values()];
      this.openFiles.clear();
      await Promise.allSettled([
        ...readers.map((handle) => handle.close()),
        ...files.map((file) => this.closeFile(file.handle)),
        ...this.closingHandles,
      ]);
    })();
    return this.closing;
  }

  // --- appending -----------------------------------------------------------

  private enqueue(agentId: string, line: string): Promise<void> {
    let state = this.appends.get(agentId);
    if (!state) {
      // Appends made after a delete() call must not write before the files are gone.
      const deletion = this.deletions.get(agentId);
      // Batches are cut into writes of at most MAX_WRITE_CHARS anyway; a large
      // line cap lets a burst of appends share one fdatasync.
      const current: AgentAppends = {
        batcher: new AppendBatcher<string>(
          async (lines) => {
            try {
              if (deletion) await deletion;
              // Asked once; a failure to look (not a refusal) is asked again next time.
              this.layoutChecked ??= this.refuseJsonStore().catch((error: unknown) => {
                if (!(error instanceof ConfigError)) this.layoutChecked = undefined;
                throw error;
              });
              await this.layoutChecked;
              const outcome = await this.writeBatch(agentId, lines);
              if (outcome === 'discarded') return;
              // A new file is a new life of the agent (after a delete, maybe
              // another process's): registered again, which may discard it.
              if (outcome === 'created') this.registered.delete(agentId);
              if (!(await this.register(agentId))) await this.discardFiles(agentId);
            } finally {
              // Forget an agent's batcher once nothing of it is in flight, so the
              // map stays as small as the set of agents being written right now.
              // Counted per batch (not by the batcher's queue, which is empty
              // while its last batch is still being written), so no write of
              // this batcher is running when it is dropped.
              current.inFlight -= lines.length;
              if (current.inFlight === 0 && this.appends.get(agentId) === current)
                this.appends.delete(agentId);
            }
          },
          MAX_APPEND_BATCH,
          // Typed here, once per failed append, so that callers need no handler per append.
          (error) => wrapDriverError(error, { backend: BACKEND, operation: 'append', agentId }),
        ),
        inFlight: 0,
      };
      state = current;
      this.appends.set(agentId, state);
    }
    state.inFlight++;
    return state.batcher.enqueue(line);
  }

  /**
   * Writes a batch: into the agent's file, `created` by this batch if it did
   * not exist; `discarded` when the store's admission refused it a new file.
   */
  private async writeBatch(agentId: string, lines: string[]): Promise<'written' | 'created' | 'discarded'> {
    const file = await this.openForAppend(agentId);
    if (!file) return 'discarded';
    let created = file.created;
    file.created = false;
    try {
      let info = await file.handle.stat();
      if (info.nlink === 0) {
        // Another FileEventLog deleted the agent's files while this one kept
        // the descriptor: writing to the unlinked inode would lose the entries.
        // Only this agent's batcher uses the descriptor, and it is here; the
        // new descriptor takes over the old one's slot.
        this.openFiles.delete(agentId);
        await closeQuietly(file.handle);
        let reopened: { handle: FileHandle; created: boolean } | undefined;
        try {
          reopened = await this.openEventFileForAppend(agentId);
        } catch (error) {
          this.descriptors.release();
          throw error;
        }
        if (!reopened) {
          this.descriptors.release();
          return 'discarded';
        }
        file.handle = reopened.handle;
        created = reopened.created;
        this.openFiles.set(agentId, file);
        file.knownSize = -1;
        info = await file.handle.stat();
      }
      const torn =
        info.size > 0 && info.size !== file.knownSize && !(await endsWithNewline(file.handle, info.size));
      file.knownSize = -1;
      const written = { bytes: 0 };
      try {
        for (const chunk of joinLines(lines, torn ? `${TORN_LINE_TERMINATOR}\n` : '')) {
          await writeFully(file.handle, Buffer.from(chunk, 'utf8'), written);
        }
        if (this.fsync) await file.handle.datasync();
      } catch (error) {
        await this.cutBack(file.handle, info.size, written.bytes);
        throw error;
      }
      file.knownSize = info.size + written.bytes;
      return created ? 'created' : 'written';
    } finally {
      file.busy--;
      // Someone waits for a descriptor: one kept only for reuse goes now.
      if (file.busy === 0 && this.descriptors.contended) this.descriptors.reclaim();
    }
  }

  /**
   * Removes what a failed batch left in the file (it started at `start` and
   * wrote `bytes`), so that a rejected append is never read. Only when the
   * file holds nothing else after `start`: another writer's entries appended
   * meanwhile must not be cut.
   */
  private async cutBack(handle: FileHandle, start: number, bytes: number): Promise<void> {
    try {
      if (bytes > 0 && (await handle.stat()).size === start + bytes) {
        await handle.truncate(start);
        if (this.fsync) await handle.datasync();
      }
    } catch {
      // The batch is rejected with the error that failed it; a cut that fails
      // too (a dead disk) leaves its lines, as a crash at that moment would.
    }
  }

  /**
   * Calls `registerAgent` after a batch written for an agent not registered
   * yet; false when the store answered that the agent was deleted meanwhile.
   */
  private async register(agentId: string): Promise<boolean> {
    if (!this.registerAgent || this.registered.has(agentId)) return true;
    try {
      if ((await this.registerAgent(agentId)) === false) return false;
      this.registered.add(agentId);
    } catch {
      // The batch is on disk and the stores see the agent through its file;
      // its next batch registers it again (see the module comment).
    }
    return true;
  }

  /**
   * Removes the files of an agent that was deleted while this log wrote its
   * first batch (a late event of a deleted agent). Runs inside the agent's
   * batcher, so no other batch of the agent uses its descriptor now.
   */
  private async discardFiles(agentId: string): Promise<void> {
    this.registered.delete(agentId);
    const file = this.openFiles.get(agentId);
    if (file) {
      this.openFiles.delete(agentId);
      await this.closeFile(file.handle);
    }
    await this.withDescriptor(() => rm(this.agentDir(agentId).path, { recursive: true, force: true }));
  }

  /**
   * Refuses to write into an SDK JSONStore directory: our files would mix
   * with the SDK's, and a later `kode-store migrate --from json:` would read
   * a directory that is no longer what the SDK wrote.
   */
  private async refuseJsonStore(): Promise<void> {
    if (!(await this.withDescriptor(() => holdsJsonStore(this.baseDir)))) return;
    throw new ConfigError(
      `${this.baseDir} holds a KODE SDK JSONStore; hybrid-mode event files must not mix with it: ` +
        'set fileStoreBaseDir (KODE_STORE_PATH) to another directory, or import the JSONStore with ' +
        `\`kode-store migrate --from json:${this.baseDir}\``,
      { backend: BACKEND, operation: 'append', variable: 'fileStoreBaseDir' },
    );
  }

  /**
   * The agent's append descriptor, marked busy (the caller decrements
   * `busy`); undefined when the store's admission refused to create the file.
   */
  private async openForAppend(agentId: string): Promise<OpenEventFile | undefined> {
    const cached = this.openFiles.get(agentId);
    if (cached) {
      this.openFiles.delete(agentId);
      this.openFiles.set(agentId, cached);
      cached.busy++;
      return cached;
    }
    await this.descriptors.acquire();
    let opened: { handle: FileHandle; created: boolean } | undefined;
    try {
      opened = await this.openEventFileForAppend(agentId);
    } catch (error) {
      this.descriptors.release();
      throw error;
    }
    if (!opened) {
      this.descriptors.release();
      return undefined;
    }
    const file: OpenEventFile = { handle: opened.handle, knownSize: -1, busy: 1, created: opened.created };
    this.openFiles.set(agentId, file);
    return file;
  }

  /**
   * Opens (creating it if need be, once `admitAgent` agreed) the agent's event
   * file for appending; undefined when the admission refused. The caller
   * holds one descriptor slot, and every step here has at most one
   * descriptor open at a time: the new file is created and closed, its
   * directory synced, and only then is it opened for appending.
   */
  private async openEventFileForAppend(
    agentId: string,
  ): Promise<{ handle: FileHandle; created: boolean } | undefined> {
    const dir = this.agentDir(agentId);
    const path = join(dir.path, EVENTS_FILE_NAME);
    try {
      return { handle: await open(path, APPEND_FLAGS), created: false };
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
    }
    if (this.admitAgent && !(await this.admitAgent(agentId))) return undefined;
    // A delete by another FileEventLog can remove the directory between our
    // mkdir and open; a few attempts get past that race.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.createAgentDir(agentId, dir);
        await closeQuietly(await open(path, CREATE_FLAGS, 0o666));
        if (this.fsync) await syncDirectory(dir.path);
        return { handle: await open(path, APPEND_FLAGS), created: true };
      } catch (error) {
        if (errorCode(error) !== 'ENOENT' || attempt >= 3) throw error;
      }
    }
  }

  private async createAgentDir(agentId: string, dir: AgentDir): Promise<void> {
    const firstCreated = await mkdir(this.baseDir, { recursive: true });
    if (firstCreated !== undefined && this.fsync) {
      // A new directory survives a power loss only once its parent's entry is
      // synced: sync the parent of every directory mkdir just created.
      let parent = dirname(firstCreated);
      await syncDirectory(parent);
      for (const segment of relative(parent, this.baseDir).split(sep).slice(0, -1)) {
        parent = join(parent, segment);
        await syncDirectory(parent);
      }
    }
    try {
      await mkdir(dir.path);
      if (this.fsync) await syncDirectory(this.baseDir);
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
    }
    if (dir.hashed) await this.ensureSidecar(agentId, dir);
  }

  /** Writes the `agent-id` file of a hashed directory (atomically, via rename), or checks the one there. */
  private async ensureSidecar(agentId: string, dir: AgentDir): Promise<void> {
    const path = join(dir.path, AGENT_ID_SIDECAR);
    const existing = await readFile(path, 'utf8').catch((error: unknown) => {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    });
    if (existing === agentId) return;
    if (existing !== undefined) {
      throw new CorruptDataError(`directory ${dir.name} holds the events of another agent id`, {
        backend: BACKEND,
        operation: 'append',
        agentId,
      });
    }
    const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(temporary, 'wx');
    try {
      await handle.writeFile(agentId, 'utf8');
      if (this.fsync) await handle.sync();
    } finally {
      await closeQuietly(handle);
    }
    await rename(temporary, path);
  }

  /** For the descriptor limit: closes the least recently used idle append file, if there is one. */
  private closeLeastRecentIdleFile(): Promise<void> | undefined {
    for (const [agentId, file] of this.openFiles) {
      if (file.busy > 0) continue;
      this.openFiles.delete(agentId);
      return this.closeInBackground(file.handle);
    }
    return undefined;
  }

  /** Closes an append descriptor this log took out of `openFiles`, then frees its slot. */
  private closeFile(handle: FileHandle): Promise<void> {
    return this.closeInBackground(handle).then(() => this.descriptors.release());
  }

  /** Closes a descriptor (never rejects); close() waits for every one still closing. */
  private closeInBackground(handle: FileHandle): Promise<void> {
    const closed: Promise<void> = closeQuietly(handle).finally(() => this.closingHandles.delete(closed));
    this.closingHandles.add(closed);
    return closed;
  }

  /** Runs `body`, which opens at most one descriptor at a time and closes what it opens, under one slot. */
  private async withDescriptor<T>(body: () => Promise<T>): Promise<T> {
    await this.descriptors.acquire();
    try {
      return await body();
    } finally {
      this.descriptors.release();
    }
  }

  // --- deleting --------------------------------------------------------------

  private deleteFiles(agentId: string): Promise<void> {
    // Runs synchronously up to the first await, in call order with append():
    // appends made before this call stay on the detached batcher (and are
    // deleted), later ones get a new batcher gated on this deletion.
    const before = this.appends.get(agentId);
    this.appends.delete(agentId);
    const previous = this.deletions.get(agentId);
    const dir = this.agentDir(agentId);
    const removal = (async () => {
      await previous;
      await before?.batcher.idle();
      // Appends after the delete start a new file, which is registered again.
      this.registered.delete(agentId);
      const file = this.openFiles.get(agentId);
      if (file) {
        this.openFiles.delete(agentId);
        await this.closeFile(file.handle);
      }
      await this.withDescriptor(async () => {
        await rm(dir.path, { recursive: true, force: true });
        if (this.fsync && (await isDirectory(this.baseDir))) await syncDirectory(this.baseDir);
      });
    })();
    const gate = removal.then(
      () => undefined,
      () => undefined,
    );
    this.deletions.set(agentId, gate);
    void gate.then(() => {
      if (this.deletions.get(agentId) === gate) this.deletions.delete(agentId);
    });
    return removal;
  }

  // --- reading ---------------------------------------------------------------

  /**
   * `read` a file chunk's worth of entries at a time (never empty), for
   * stores that hand entries out through their own `pagedIterable`.
   * @internal
   */
  async *readPages(
    agentId: string,
    opts: { since?: Bookmark; channel?: AgentChannel } = {},
  ): AsyncGenerator<Timeline[]> {
    const ctx = { backend: BACKEND, operation: 'read', agentId };
    let handle: FileHandle | undefined;
    let holdsSlot = false;
    try {
      this.ops.check('read', agentId);
      const { sinceSeq, channel } = eventFilter(opts, { backend: BACKEND, operation: 'read', agentId });
      await this.settled(agentId);
      await this.descriptors.acquire();
      holdsSlot = true;
      this.ops.assertOpen('read');
      handle = await openForReading(join(this.agentDir(agentId).path, EVENTS_FILE_NAME));
      if (!handle) return;
      this.readers.add(handle);
      const end = (await handle.stat()).size;
      for await (const block of readLineBlocks(handle, end, () => this.ops.assertOpen('read'))) {
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
    } catch (error) {
      throw wrapDriverError(error, ctx);
    } finally {
      // close() may have closed the handle already (and taken it out of `readers`); the slot is still ours.
      if (handle && this.readers.delete(handle)) await closeQuietly(handle);
      if (holdsSlot) this.descriptors.release();
    }
  }

  /** `check`'s work, under one descriptor slot (the sidecar is read before the event file is opened). */
  private async findProblems(agentId: string): Promise<string[]> {
    const dir = this.agentDir(agentId);
    const path = join(dir.path, EVENTS_FILE_NAME);
    const problems: string[] = [];
    const sidecar = dir.hashed
      ? await readFile(join(dir.path, AGENT_ID_SIDECAR), 'utf8').catch(() => undefined)
      : agentId;
    let handle: FileHandle | undefined;
    try {
      handle = await openForReading(path);
    } catch (error) {
      return [`${path}: unreadable file (${describeError(error)})`];
    }
    if (!handle) return [];
    let more = 0;
    const report = (problem: string) => {
      if (problems.length < MAX_REPORTED_PROBLEMS) problems.push(`${path}: ${problem}`);
      else more++;
    };
    this.readers.add(handle);
    try {
      if (sidecar === undefined) report(`the ${AGENT_ID_SIDECAR} file naming the agent is missing`);
      else if (sidecar !== agentId) report(`the ${AGENT_ID_SIDECAR} file names another agent`);
      const end = (await handle.stat()).size;
      for await (const block of readLineBlocks(handle, end, () => this.ops.assertOpen('check'))) {
        if (!block.terminated) {
          report(
            `torn last line at offset ${block.offset} (${block.bytes.length} bytes without a trailing newline)`,
          );
          continue;
        }
        for (const line of linesOf(block)) {
          const { problem } = parseLine(line.bytes);
          if (problem) report(`unreadable line at offset ${line.offset}: ${problem}`);
        }
      }
    } catch (error) {
      if (error instanceof StoreClosedError) throw error;
      report(`unreadable file (${describeError(error)})`);
    } finally {
      if (this.readers.delete(handle)) await closeQuietly(handle);
    }
    if (more > 0) problems.push(`${path}: ${more} more problems not listed`);
    return problems;
  }

  // --- directories -------------------------------------------------------------

  private agentDir(agentId: string): AgentDir {
    const { name, hashed } = agentDirName(agentId);
    return { name, hashed, path: join(this.baseDir, name) };
  }

  /** The agent directories under baseDir, with their ids; directories that are not ours are ignored. */
  private agentDirs(): Promise<Array<{ agentId: string; path: string }>> {
    // The listing and each sidecar read open one descriptor, one after the other.
    return this.withDescriptor(() => this.readAgentDirs());
  }

  private async readAgentDirs(): Promise<Array<{ agentId: string; path: string }>> {
    let entries: Dirent[];
    try {
      entries = await readdir(this.baseDir, { withFileTypes: true });
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return [];
      throw error;
    }
    const dirs: Array<{ agentId: string; path: string }> = [];
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const path = join(this.baseDir, entry.name);
      let agentId = agentIdFromDirName(entry.name);
      if (agentId === undefined && isHashedDirName(entry.name)) {
        const sidecar = await readFile(join(path, AGENT_ID_SIDECAR), 'utf8').catch(() => undefined);
        if (sidecar !== undefined) agentId = agentIdFromSidecar(sidecar, entry.name);
      }
      if (agentId !== undefined) dirs.push({ agentId, path });
    }
    return dirs;
  }

  /** Resolves when this object's pending appends and deletes of the agent are done (read-your-writes). */
  private async settled(agentId: string): Promise<void> {
    const appends = this.appends.get(agentId);
    const deletion = this.deletions.get(agentId);
    await appends?.batcher.idle();
    await deletion;
  }

  private async settledAll(): Promise<void> {
    await Promise.allSettled([...this.appends.values()].map((state) => state.batcher.idle()));
    await Promise.all([...this.deletions.values()]);
  }
}

// --- lines ---------------------------------------------------------------------

function assertEventLine(encodedTimeline: unknown, agentId: string): asserts encodedTimeline is string {
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

interface ParsedLine {
  entry?: Timeline;
  /** Why the line is not an entry; absent for entries and for repaired torn writes. */
  problem?: string;
}

const TORN_LINE_TERMINATOR_BYTES = Buffer.from(TORN_LINE_TERMINATOR, 'utf8');

function parseLine(bytes: Buffer): ParsedLine {
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

function parseText(text: string): ParsedLine {
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
function joinLines(lines: string[], prefix: string): string[] {
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
interface LineBlock {
  /** Byte offset of the block's first line. */
  offset: number;
  /** Lines joined by newlines, without the last one's; only valid until the next block is requested. */
  bytes: Buffer;
  /** False for the unterminated last line of the file (a torn write), handed over alone. */
  terminated: boolean;
}

/**
 * The first `end` bytes of a file as blocks of whole lines, a chunk's worth
 * at a time (one asynchronous step per chunk, not per line), so that a
 * reader can decode a block in one call. Splitting on the byte 0x0A is safe
 * for UTF-8: it never occurs inside a multi-byte character.
 */
async function* readLineBlocks(
  handle: FileHandle,
  end: number,
  assertOpen: () => void,
): AsyncGenerator<LineBlock> {
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let position = 0;
  let blockStart = 0;
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
function* linesOf(block: LineBlock): Generator<{ offset: number; bytes: Buffer }> {
  for (let from = 0; from <= block.bytes.length; ) {
    const newline = block.bytes.indexOf(NEWLINE, from);
    const to = newline === -1 ? block.bytes.length : newline;
    yield { offset: block.offset + from, bytes: block.bytes.subarray(from, to) };
    from = to + 1;
  }
}

/** A block's lines as strings; lines that are not valid UTF-8 are left out (`check` reports them). */
function decodeLines(block: LineBlock): string[] {
  // One isUtf8 + toString for the whole block (both SIMD in Node): about
  // twice as fast as a fatal TextDecoder per line, which is what makes
  // reading a long stream cheap.
  if (isUtf8(block.bytes)) return block.bytes.toString('utf8').split('\n');
  const lines: string[] = [];
  for (const { bytes } of linesOf(block)) if (isUtf8(bytes)) lines.push(bytes.toString('utf8'));
  return lines;
}

// --- file system -----------------------------------------------------------------

/** Writes all of `buffer`, counting in `written.bytes` what reached the file, also when a later write fails. */
async function writeFully(handle: FileHandle, buffer: Buffer, written: { bytes: number }): Promise<void> {
  let offset = 0;
  // A regular file rarely takes less than asked, but a short write (signal,
  // nearly full disk) must not drop the rest of the batch.
  while (offset < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset);
    offset += bytesWritten;
    written.bytes += bytesWritten;
  }
}

async function endsWithNewline(handle: FileHandle, size: number): Promise<boolean> {
  const last = Buffer.alloc(1);
  const { bytesRead } = await handle.read(last, 0, 1, size - 1);
  return bytesRead === 1 && last[0] === NEWLINE;
}

async function openForReading(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, READ_FLAGS);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, fsConstants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await closeQuietly(handle);
  }
}

/**
 * Closes a descriptor on a path that already has an outcome (success or its
 * own error): a failing close must neither hide that error nor leave the
 * descriptor to the garbage collector.
 */
async function closeQuietly(handle: FileHandle): Promise<void> {
  await handle.close().catch(() => undefined);
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/**
 * Whether an event file holds events. An empty one is no file: a first batch
 * that failed was cut back to nothing, or a crash came between creating the
 * file and writing to it.
 */
function holdsEvents(info: Stats | undefined): info is Stats {
  return info?.isFile() === true && info.size > 0;
}

async function isDirectory(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isDirectory() ?? false;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function describeError(error: unknown): string {
  return errorCode(error) ?? (error instanceof Error ? error.message : String(error));
}
