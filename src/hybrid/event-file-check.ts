import type { FileHandle } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreClosedError } from '../errors.js';
import type { AgentDir } from './agent-dirs.js';
import { AGENT_ID_SIDECAR } from './agent-path.js';
import {
  decodeIndex,
  EVENT_INDEX_FILE_NAME,
  identityOf,
  indexAgrees,
  readIndexFile,
} from './event-file-index.js';
import { closeQuietly, describeError, openForReading } from './event-file-io.js';
import { linesOf, parseLine, readLineBlocks } from './event-lines.js';

/** Most problems listed for one file; the rest are counted. */
const MAX_REPORTED_PROBLEMS = 100;

/**
 * Problems of one agent's event file (`FileEventLog.check`), read under one
 * descriptor slot: the sidecar and the channel index are read before the
 * event file is opened. The
 * open file is kept in `readers` while it is read, so that closing the log
 * closes it.
 */
export async function findEventFileProblems(
  agentId: string,
  dir: AgentDir,
  path: string,
  readers: Set<FileHandle>,
  assertOpen: () => void,
): Promise<string[]> {
  const problems: string[] = [];
  const sidecar = dir.hashed
    ? await readFile(join(dir.path, AGENT_ID_SIDECAR), 'utf8').catch(() => undefined)
    : agentId;
  const indexBytes = await readIndexFile(path);
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
  readers.add(handle);
  try {
    if (sidecar === undefined) report(`the ${AGENT_ID_SIDECAR} file naming the agent is missing`);
    else if (sidecar !== agentId) report(`the ${AGENT_ID_SIDECAR} file names another agent`);
    const info = await handle.stat();
    // The channel index is a cache that reads verify, but one that disagrees with the file may
    // have hidden lines from a read of one channel: reported at its first disagreement.
    const index = indexBytes && decodeIndex(indexBytes, identityOf(info));
    let indexed = 0;
    for await (const block of readLineBlocks(handle, info.size, assertOpen)) {
      if (!block.terminated) {
        report(
          `torn last line at offset ${block.offset} (${block.bytes.length} bytes without a trailing newline)`,
        );
        continue;
      }
      for (const line of linesOf(block)) {
        const { entry, problem } = parseLine(line.bytes);
        if (problem) report(`unreadable line at offset ${line.offset}: ${problem}`);
        if (index && indexed < index.count) {
          if (!indexAgrees(index, indexed, line.offset, line.bytes.length, entry)) {
            report(
              `the channel index ${EVENT_INDEX_FILE_NAME} disagrees with the file at offset ${line.offset} ` +
                '(removing it is safe: the next read of one channel rebuilds it)',
            );
            indexed = index.count;
          } else indexed++;
        }
      }
    }
    if (index && indexed < index.count) {
      report(
        `the channel index ${EVENT_INDEX_FILE_NAME} describes ${index.count - indexed} lines past the end of the file ` +
          '(removing it is safe: the next read of one channel rebuilds it)',
      );
    }
  } catch (error) {
    if (error instanceof StoreClosedError) throw error;
    report(`unreadable file (${describeError(error)})`);
  } finally {
    if (readers.delete(handle)) await closeQuietly(handle);
  }
  if (more > 0) problems.push(`${path}: ${more} more problems not listed`);
  return problems;
}
