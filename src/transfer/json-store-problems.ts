import { CorruptDataError } from '../errors.js';

/** What is wrong with a file of a JSONStore directory. */
export type JsonStoreProblemKind =
  /** A JSON file that does not parse (truncated by a crash, hand-edited). */
  | 'unparsable-json'
  /** A JSON file that parses but is not what the SDK writes there (an object where a list belongs). */
  | 'unexpected-shape'
  /** An event-log line that is not a complete timeline entry (a write torn by a crash). */
  | 'torn-event-line'
  /** A recovered-file text whose header is not the SDK's three `# …` lines and a blank line. */
  | 'bad-recovered-file'
  /** A file that exists but cannot be read (permissions, I/O error). */
  | 'unreadable-file';

/** One corrupt file, or one corrupt line of an event log, with where it is. */
export interface JsonStoreProblem {
  kind: JsonStoreProblemKind;
  /** Path of the file, as reached from the root the reader was given. */
  path: string;
  /** The agent the file belongs to, when it belongs to one. */
  agentId?: string;
  /** 1-based line number, for event-log lines. */
  line?: number;
  /** What is wrong, and what was kept. */
  message: string;
}

/** Formats a problem as one line: `path:line: message`. */
export function describeJsonStoreProblem(problem: JsonStoreProblem): string {
  const where = problem.line === undefined ? problem.path : `${problem.path}:${problem.line}`;
  return `${where}: ${problem.message}`;
}

/**
 * A JSONStore file (or event-log line) that cannot be read as what the SDK
 * writes there. Raised by `JsonStoreReader` unless it was told to skip
 * corrupt files; `problem` says which file and why.
 */
export class JsonStoreCorruptFileError extends CorruptDataError {
  readonly problem: JsonStoreProblem;
  /** The corrupt file. */
  readonly filePath: string;

  constructor(problem: JsonStoreProblem, cause?: unknown) {
    super(describeJsonStoreProblem(problem), {
      backend: 'json',
      operation: 'read',
      agentId: problem.agentId,
      cause,
    });
    this.problem = problem;
    this.filePath = problem.path;
  }
}
