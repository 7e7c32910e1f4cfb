/**
 * The options of `FileEventLog` and the constants of its file layout, apart
 * from the log itself so that the stores and the command line can name them
 * without the log's machinery.
 */

/** Options of `FileEventLog`. */
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
  /**
   * The log is only read (a read-only store): filtered reads use the
   * channel index (`events.idx`) as they find it and never write it.
   * Default `false`.
   */
  readOnly?: boolean;
}

/** Name of an agent's event file inside its directory. */
export const EVENTS_FILE_NAME = 'events.jsonl';

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
