import type { FileHandle } from 'node:fs/promises';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AppendBatcher } from '../agent/append-batcher.js';
import { pagedIterable } from '../agent/paged-iterable.js';
import { eventFilter } from '../agent/store-codec.js';
import { StoreOperations } from '../agent/store-operations.js';
import { ConfigError, UnsupportedError, ValidationError, wrapDriverError } from '../errors.js';
import { compareCodePoints } from '../strings.js';
import { holdsJsonStore } from '../transfer/json-store-layout.js';
import type { AgentChannel, Bookmark, Timeline } from '../types.js';
import { agentDir, listEventFiles, openEventFileForAppend } from './agent-dirs.js';
import { appendLines } from './event-file-append.js';
import { findEventFileProblems } from './event-file-check.js';
import { EventFileDescriptors, type OpenEventFile } from './event-file-descriptors.js';
import { closeQuietly, holdsEvents, isDirectory, statOrUndefined, syncDirectory } from './event-file-io.js';
import { readEventFile } from './event-file-read.js';
import {
  countPrunable,
  type FileEventPruneRule,
  type FilePruneCount,
  rewriteWithout,
} from './event-file-rewrite.js';
import { assertEventLine } from './event-lines.js';
import {
  DEFAULT_MAX_OPEN_FILES,
  EVENTS_FILE_NAME,
  FILE_TIME_SLACK_MS,
  type FileEventLogOptions,
} from './file-event-log-options.js';

export { TORN_LINE_TERMINATOR } from './event-lines.js';

/**
 * The hybrid mode's append-only event files (SPEC §4).
 *
 * Layout: `<baseDir>/<agent dir>/events.jsonl`, one file per agent holding all
 * channels in append order, one `Timeline` JSON per line, and beside it
 * `events.idx`, the channel index that filtered reads keep (a cache of where
 * each channel's lines are, rebuilt from the file; event-file-index.ts). The agent directory
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
 * Crashes and failed writes are handled where batches are written
 * (event-file-append.ts): a torn last line left by a crash is sealed by the
 * next batch, never cut, so no acknowledged entry is lost; a batch whose
 * write or sync fails is rejected and cut back only when nothing else
 * follows it. A file cut back to nothing counts as no file: `has` and
 * `listAgentIds` see only agents with events.
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
 * than one chunk and one line in memory (a filtered read also holds the
 * channel index: 16 bytes a line). A read of one channel or since a
 * bookmark parses only the lines it returns, through the index. Unreadable lines are skipped by
 * `read()` (an agent must stay resumable) and reported by `check()`.
 */

/** Most lines one fdatasync may cover. */
const MAX_APPEND_BATCH = 20_000;

export {
  DEFAULT_MAX_OPEN_FILES,
  EVENTS_FILE_NAME,
  FILE_TIME_SLACK_MS,
  type FileEventLogOptions,
} from './file-event-log-options.js';

const BACKEND = 'file-event-log';

interface AgentAppends {
  batcher: AppendBatcher<string>;
  /** Appends enqueued and not yet settled; the entry is dropped from the map at 0. */
  inFlight: number;
}

/** Append-only per-agent event files; see the module comment for the file format and its guarantees. */
export class FileEventLog {
  /** The absolute base directory. */
  readonly baseDir: string;
  private readonly fsync: boolean;
  private readonly registerAgent: FileEventLogOptions['registerAgent'];
  private readonly admitAgent: FileEventLogOptions['admitAgent'];
  /** Filtered reads add what they scanned to the channel index (not on a read-only store). */
  private readonly indexWrites: boolean;
  /** Agents whose `registerAgent` call succeeded (forgotten when the agent is deleted). */
  private readonly registered = new Set<string>();
  private readonly ops = new StoreOperations(BACKEND);
  private readonly appends = new Map<string, AgentAppends>();
  private readonly files: EventFileDescriptors;
  /**
   * Per agent, a promise that settles (never rejects) when a pending `delete`
   * or prune rewrite has finished: the agent's later appends wait for it.
   */
  private readonly exclusive = new Map<string, Promise<void>>();
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
    this.indexWrites = options.readOnly !== true;
    const maxOpenFiles = options.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES;
    if (!Number.isSafeInteger(maxOpenFiles) || maxOpenFiles < 1) {
      throw new ValidationError(`maxOpenFiles must be a positive integer, got ${String(maxOpenFiles)}`, {
        backend: BACKEND,
        operation: 'constructor',
      });
    }
    this.files = new EventFileDescriptors(maxOpenFiles);
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
      return holdsEvents(await statOrUndefined(join(agentDir(this.baseDir, agentId).path, EVENTS_FILE_NAME)));
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
      const info = await statOrUndefined(join(agentDir(this.baseDir, agentId).path, EVENTS_FILE_NAME));
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
   * Removes the agent's events that `rule` names and resolves with how many
   * went and the UTF-8 bytes of their lines; with `dryRun`, counts them and
   * changes nothing. The file is rewritten atomically without them
   * (event-file-rewrite.ts); nothing is written when the rule names none.
   * Appends made before the call are judged with the rest; appends made
   * after it wait for the rewrite and are kept. Needs two descriptors at
   * once, so `maxOpenFiles` of at least 2.
   */
  pruneEvents(agentId: string, rule: FileEventPruneRule, dryRun: boolean): Promise<FilePruneCount> {
    return this.ops.runForAgent('pruneEvents', null, agentId, () => {
      if (this.files.limit.max < 2) {
        throw new UnsupportedError('pruning an event file needs maxOpenFiles of at least 2', {
          backend: BACKEND,
          operation: 'pruneEvents',
          agentId,
        });
      }
      const path = join(agentDir(this.baseDir, agentId).path, EVENTS_FILE_NAME);
      const assertOpen = () => this.ops.assertOpen('pruneEvents');
      if (dryRun) {
        return this.settled(agentId).then(() =>
          this.files.withDescriptor(() => countPrunable(path, rule, assertOpen)),
        );
      }
      return this.exclusively(agentId, async () => {
        // The rewrite replaces the file: the kept descriptor would append to the old one.
        await this.files.closeAppendFile(agentId);
        return this.files.withDescriptor(
          () => rewriteWithout(path, rule, { fsync: this.fsync, assertOpen }),
          2,
        );
      });
    });
  }

  /** True when the agent has an event file, an empty one included (every event pruned). */
  hasFile(agentId: string): Promise<boolean> {
    return this.ops.runForAgent('hasFile', null, agentId, async () => {
      await this.settled(agentId);
      const info = await statOrUndefined(join(agentDir(this.baseDir, agentId).path, EVENTS_FILE_NAME));
      return info?.isFile() === true;
    });
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
      const dir = agentDir(this.baseDir, agentId);
      return this.files.withDescriptor(() =>
        findEventFileProblems(agentId, dir, join(dir.path, EVENTS_FILE_NAME), this.files.readers, () =>
          this.ops.assertOpen('check'),
        ),
      );
    });
  }

  /** Agent ids that have events on disk, decoded from the directory names (or sidecars), in code-point order. */
  listAgentIds(): Promise<string[]> {
    return this.ops.run('listAgentIds', null, async () => {
      await this.settledAll();
      return (await this.eventFiles()).map((file) => file.agentId).sort(compareCodePoints);
    });
  }

  /** Storage totals for metrics: the number of agents with events on disk and the size of their files in bytes. */
  stats(): Promise<{ files: number; bytes: number }> {
    return this.ops.run('stats', null, async () => {
      await this.settledAll();
      const files = await this.eventFiles();
      return { files: files.length, bytes: files.reduce((sum, file) => sum + file.bytes, 0) };
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
      await Promise.allSettled([...this.exclusive.values()]);
      // A read still running ends with StoreClosedError and releases its own slot.
      await this.files.closeAll();
    })();
    return this.closing;
  }

  // --- appending -----------------------------------------------------------

  private enqueue(agentId: string, line: string): Promise<void> {
    let state = this.appends.get(agentId);
    if (!state) {
      // Appends made after a delete() or pruneEvents() call must not write before it is done.
      const deletion = this.exclusive.get(agentId);
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
        this.files.takeOut(agentId);
        await closeQuietly(file.handle);
        let reopened: { handle: FileHandle; created: boolean } | undefined;
        try {
          reopened = await openEventFileForAppend(this.baseDir, agentId, this.fsync, this.admitAgent);
        } catch (error) {
          this.files.limit.release();
          throw error;
        }
        if (!reopened) {
          this.files.limit.release();
          return 'discarded';
        }
        file.handle = reopened.handle;
        created = reopened.created;
        this.files.keep(agentId, file);
        file.knownSize = -1;
        info = await file.handle.stat();
      }
      const knownSize = file.knownSize;
      file.knownSize = -1;
      file.knownSize = await appendLines(file.handle, lines, info.size, knownSize, this.fsync);
      return created ? 'created' : 'written';
    } finally {
      this.files.finished(file);
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
    await this.files.closeAppendFile(agentId);
    await this.files.withDescriptor(() =>
      rm(agentDir(this.baseDir, agentId).path, { recursive: true, force: true }),
    );
  }

  /**
   * Refuses to write into an SDK JSONStore directory: our files would mix
   * with the SDK's, and a later `kode-store migrate --from json:` would read
   * a directory that is no longer what the SDK wrote.
   */
  private async refuseJsonStore(): Promise<void> {
    if (!(await this.files.withDescriptor(() => holdsJsonStore(this.baseDir)))) return;
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
    const cached = this.files.reuse(agentId);
    if (cached) return cached;
    await this.files.limit.acquire();
    let opened: { handle: FileHandle; created: boolean } | undefined;
    try {
      opened = await openEventFileForAppend(this.baseDir, agentId, this.fsync, this.admitAgent);
    } catch (error) {
      this.files.limit.release();
      throw error;
    }
    if (!opened) {
      this.files.limit.release();
      return undefined;
    }
    const file: OpenEventFile = { handle: opened.handle, knownSize: -1, busy: 1, created: opened.created };
    this.files.keep(agentId, file);
    return file;
  }

  // --- deleting --------------------------------------------------------------

  private deleteFiles(agentId: string): Promise<void> {
    const dir = agentDir(this.baseDir, agentId);
    return this.exclusively(agentId, async () => {
      // Appends after the delete start a new file, which is registered again.
      this.registered.delete(agentId);
      await this.files.closeAppendFile(agentId);
      await this.files.withDescriptor(async () => {
        await rm(dir.path, { recursive: true, force: true });
        if (this.fsync && (await isDirectory(this.baseDir))) await syncDirectory(this.baseDir);
      });
    });
  }

  /**
   * Runs `body` alone on the agent's file: after the appends made before this
   * call (and any delete or rewrite before it), while later appends wait.
   */
  private exclusively<T>(agentId: string, body: () => Promise<T>): Promise<T> {
    // Runs synchronously up to the first await, in call order with append():
    // appends made before this call stay on the detached batcher (and are
    // waited for), later ones get a new batcher gated on this operation.
    const before = this.appends.get(agentId);
    this.appends.delete(agentId);
    const previous = this.exclusive.get(agentId);
    const run = (async () => {
      await previous;
      await before?.batcher.idle();
      return body();
    })();
    const gate = run.then(
      () => undefined,
      () => undefined,
    );
    this.exclusive.set(agentId, gate);
    void gate.then(() => {
      if (this.exclusive.get(agentId) === gate) this.exclusive.delete(agentId);
    });
    return run;
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
    try {
      this.ops.check('read', agentId);
      const filter = eventFilter(opts, ctx);
      await this.settled(agentId);
      yield* readEventFile(join(agentDir(this.baseDir, agentId).path, EVENTS_FILE_NAME), filter, {
        files: this.files,
        writeIndex: this.indexWrites,
        assertOpen: () => this.ops.assertOpen('read'),
        closed: () => this.ops.closed,
      });
    } catch (error) {
      throw wrapDriverError(error, ctx);
    }
  }

  /** The agents with events on disk and the sizes of their event files (agent-dirs.ts). */
  private eventFiles(): Promise<Array<{ agentId: string; bytes: number }>> {
    // The listing and each sidecar read open one descriptor, one after the other.
    return this.files.withDescriptor(() => listEventFiles(this.baseDir));
  }

  /** Resolves when this object's pending appends, deletes and rewrites of the agent are done (read-your-writes). */
  private async settled(agentId: string): Promise<void> {
    const appends = this.appends.get(agentId);
    const deletion = this.exclusive.get(agentId);
    await appends?.batcher.idle();
    await deletion;
  }

  private async settledAll(): Promise<void> {
    await Promise.allSettled([...this.appends.values()].map((state) => state.batcher.idle()));
    await Promise.all([...this.exclusive.values()]);
  }
}
