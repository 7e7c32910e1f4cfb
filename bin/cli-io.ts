import type { Readable, Writable } from 'node:stream';
import type { OpenedLocation, OpenLocationOptions } from './open-location.js';

/**
 * Exit codes scripts can rely on. Documented in every command's `--help`.
 * 1 means "the tool worked and found something wrong with the data"; 2 means
 * "the tool was asked for something it cannot do as asked"; 3 means "the
 * tool could not do its job" (a server unreachable, a disk error).
 */
export const ExitCode = {
  ok: 0,
  /** A check failed: differences after a migration, doctor found issues, corrupt source files, a conformance case failed. */
  problemsFound: 1,
  /** Bad arguments, an unknown location, a missing or contradictory setting. */
  usage: 2,
  /** The operation failed: a store could not be reached, an I/O error. */
  failed: 3,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** The text appended to every command's `--help`. */
export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  a check failed: differences found, doctor found issues, corrupt source files, conformance failures
  2  usage or configuration error: bad arguments, unknown location, missing setting
  3  the operation failed: store unreachable, I/O error`;

/** The text appended to every command's `--help` that takes a location. */
export const LOCATIONS_HELP = `
Locations:
  sqlite:<path>              SQLite database file
  postgres://user@host/db    PostgreSQL (postgresql:// also works)
  mongodb://host/db          MongoDB (mongodb+srv:// also works)
  json:<dir>                 the KODE SDK's JSONStore directory (read-only)
  memory:                    an empty in-memory store (for trials)
  (none)                     the environment decides, as createExtendedStore() does:
                             KODE_STORE_TYPE, KODE_SQLITE_PATH, DATABASE_URL, MONGODB_URI, ...
Hybrid mode (events in files) comes from the environment with any location:
  KODE_STORE_EVENTS=file KODE_STORE_PATH=<dir>`;

/**
 * Everything a command touches outside itself, so that tests run commands
 * in-process with their own streams and stores, and the real entry point
 * passes the process's.
 */
export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable;
  /** Draw progress bars (stderr is a terminal); otherwise progress is plain lines. */
  interactive: boolean;
  /** The environment used when no location is given. */
  env: Record<string, string | undefined>;
  /** Opens a location; replaceable so tests can hand several commands one in-memory store. */
  openLocation?: (location: string | undefined, options: OpenLocationOptions) => Promise<OpenedLocation>;
}

/** The process's own streams and environment. */
export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    interactive: Boolean(process.stderr.isTTY),
    env: process.env,
  };
}

/** An error the command line reports as one line, with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * Writes text, waiting for the stream to drain when its buffer is full (an
 * export can be gigabytes). A stream that failed (a full disk) or closed
 * rejects instead of leaving the writer waiting for a drain that never comes.
 */
export async function write(stream: Writable, text: string): Promise<void> {
  if (stream.errored) throw stream.errored;
  if (stream.write(text)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error | null) => {
      stream.off('drain', onDrain);
      stream.off('error', done);
      stream.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () =>
      done(stream.errored ?? new Error('the output was closed before everything was written'));
    stream.once('drain', onDrain);
    stream.once('error', done);
    stream.once('close', onClose);
  });
}

/** Writes one line. */
export function writeLine(stream: Writable, text = ''): Promise<void> {
  return write(stream, `${text}\n`);
}
