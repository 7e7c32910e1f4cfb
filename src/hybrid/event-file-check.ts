import type { FileHandle } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreClosedError } from '../errors.js';
import type { AgentDir } from './agent-dirs.js';
import { AGENT_ID_SIDECAR } from './agent-path.js';
import { closeQuietly, describeError, openForReading } from './event-file-io.js';
import { linesOf, parseLine, readLineBlocks } from './event-lines.js';

/** Most problems listed for one file; the rest are counted. */
const MAX_REPORTED_PROBLEMS = 100;

/**
 * Problems of one agent's event file (`FileEventLog.check`), read under one
 * descriptor slot: the sidecar is read before the event file is opened. The
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
    const end = (await handle.stat()).size;
    for await (const block of readLineBlocks(handle, end, assertOpen)) {
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
    if (readers.delete(handle)) await closeQuietly(handle);
  }
  if (more > 0) problems.push(`${path}: ${more} more problems not listed`);
  return problems;
}
