import { type Command, InvalidArgumentError, Option } from 'commander';
import { isKodeStoreError } from '../src/errors.js';
import { describeJsonStoreProblem } from '../src/transfer/json-store-problems.js';
import {
  CliError,
  type CliIo,
  EXIT_CODES_HELP,
  ExitCode,
  type ExitCodeValue,
  LOCATIONS_HELP,
  writeLine,
} from './cli-io.js';
import { type OpenedLocation, type OpenLocationOptions, openLocation } from './open-location.js';

/**
 * Opens a location to read it, read-only (it must hold kode-store data;
 * nothing is created or written), through the io's opener (tests) or the real one.
 */
export function open(
  io: CliIo,
  location: string | undefined,
  options: Omit<OpenLocationOptions, 'env'> = {},
) {
  return (io.openLocation ?? openLocation)(location, { readOnly: true, ...options, env: io.env });
}

/** Opens a location to write it (not `json:`): a store is created or upgraded as needed. */
export async function openWritable(io: CliIo, location: string | undefined, role: string) {
  const opened = await open(io, location, { readOnly: false });
  if (opened.kind !== 'store') {
    await opened.close();
    throw new CliError(`${role} ${opened.label} is a json: location, which is read-only`, ExitCode.usage);
  }
  return opened;
}

/** Runs `body` with the location open, and closes it whatever happens. */
export async function withLocation<T>(
  opened: OpenedLocation,
  body: (opened: OpenedLocation) => Promise<T>,
): Promise<T> {
  try {
    return await body(opened);
  } finally {
    await opened.close();
  }
}

/** The exit code an error stands for. */
export function exitCodeFor(error: unknown): ExitCodeValue {
  if (error instanceof CliError) return error.exitCode;
  if (isKodeStoreError(error)) {
    switch (error.code) {
      case 'KODE_CONFIG':
      case 'KODE_VALIDATION':
      case 'KODE_QUERY':
      // A schema too old to read without upgrading, or too new for this kode-store.
      case 'KODE_UNSUPPORTED':
        return ExitCode.usage;
      case 'KODE_CORRUPT':
      case 'KODE_NOT_FOUND':
        return ExitCode.problemsFound;
      default:
        return ExitCode.failed;
    }
  }
  return ExitCode.failed;
}

/** Prints an error as one line (with the corrupt file's path when there is one) and returns its exit code. */
export async function reportError(io: CliIo, error: unknown): Promise<ExitCodeValue> {
  const problem = (error as { problem?: Parameters<typeof describeJsonStoreProblem>[0] }).problem;
  const message = problem
    ? describeJsonStoreProblem(problem)
    : error instanceof Error
      ? error.message
      : String(error);
  await writeLine(io.stderr, `kode-store: ${message}`);
  return exitCodeFor(error);
}

/** Parses a non-negative integer option. */
export function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

/** Parses a positive integer option. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** `--event-order`, for json: sources. */
export function eventOrderOption(): Option {
  return new Option(
    '--event-order <order>',
    'json: sources: merge channel logs by "timestamp" (then seq) or "seq"',
  )
    .choices(['timestamp', 'seq'])
    .default('timestamp');
}

/** Appends the location syntax and the exit codes to a command's help. */
export function withStandardHelp(command: Command, { locations = true } = {}): Command {
  if (locations) command.addHelpText('after', LOCATIONS_HELP);
  return command.addHelpText('after', EXIT_CODES_HELP);
}

/**
 * The action wrapper every command uses: runs the command, turns a thrown
 * error into its one-line message and exit code, and hands the code to `setExit`.
 */
export function action<A extends unknown[]>(
  io: CliIo,
  setExit: (code: ExitCodeValue) => void,
  body: (...args: A) => Promise<ExitCodeValue>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      setExit(await body(...args));
    } catch (error) {
      setExit(await reportError(io, error));
    }
  };
}

/** Prints the corrupt files a json: source reported, one per line. */
export async function printProblems(
  io: CliIo,
  prefix: string,
  problems: Parameters<typeof describeJsonStoreProblem>[0][],
) {
  for (const problem of problems) await writeLine(io.stderr, `${prefix}${describeJsonStoreProblem(problem)}`);
}
