import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { CorruptDataError } from '../errors.js';
import {
  AGENT_ID_SIDECAR,
  agentDirName,
  agentIdFromDirName,
  agentIdFromSidecar,
  isHashedDirName,
} from './agent-path.js';
import {
  APPEND_FLAGS,
  CREATE_FLAGS,
  closeQuietly,
  errorCode,
  holdsEvents,
  statOrUndefined,
  syncDirectory,
} from './event-file-io.js';
import { EVENTS_FILE_NAME } from './file-event-log-options.js';

/**
 * The agent directories of a hybrid-mode base directory: where an agent's
 * directory is, creating it and its event file durably (with its `agent-id`
 * sidecar when its name is a hash), and listing the directories back as
 * agent ids. Each step
 * opens at most one descriptor at a time.
 */

const BACKEND = 'file-event-log';

/** One agent's directory under the base directory. */
export interface AgentDir {
  name: string;
  path: string;
  hashed: boolean;
}

export function agentDir(baseDir: string, agentId: string): AgentDir {
  const { name, hashed } = agentDirName(agentId);
  return { name, hashed, path: join(baseDir, name) };
}

/** The agent directories under baseDir, with their ids; directories that are not ours are ignored. */
export async function readAgentDirs(baseDir: string): Promise<Array<{ agentId: string; path: string }>> {
  let entries: Dirent[];
  try {
    entries = await readdir(baseDir, { withFileTypes: true });
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return [];
    throw error;
  }
  const dirs: Array<{ agentId: string; path: string }> = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const path = join(baseDir, entry.name);
    let agentId = agentIdFromDirName(entry.name);
    if (agentId === undefined && isHashedDirName(entry.name)) {
      const sidecar = await readFile(join(path, AGENT_ID_SIDECAR), 'utf8').catch(() => undefined);
      if (sidecar !== undefined) agentId = agentIdFromSidecar(sidecar, entry.name);
    }
    if (agentId !== undefined) dirs.push({ agentId, path });
  }
  return dirs;
}

/**
 * The agents under baseDir whose event file holds events (an empty file is
 * none), with the file's size: what `listAgentIds` and `stats` report.
 */
export async function listEventFiles(baseDir: string): Promise<Array<{ agentId: string; bytes: number }>> {
  const files: Array<{ agentId: string; bytes: number }> = [];
  for (const dir of await readAgentDirs(baseDir)) {
    const info = await statOrUndefined(join(dir.path, EVENTS_FILE_NAME));
    if (holdsEvents(info)) files.push({ agentId: dir.agentId, bytes: info.size });
  }
  return files;
}

/**
 * Opens (creating it if need be, once `admit` agreed) the agent's event file
 * for appending; undefined when the admission refused. The caller holds one
 * descriptor slot, and every step here has at most one descriptor open at a
 * time: the new file is created and closed, its directory synced, and only
 * then is it opened for appending.
 */
export async function openEventFileForAppend(
  baseDir: string,
  agentId: string,
  fsync: boolean,
  admit: ((agentId: string) => boolean | Promise<boolean>) | undefined,
): Promise<{ handle: FileHandle; created: boolean } | undefined> {
  const dir = agentDir(baseDir, agentId);
  const path = join(dir.path, EVENTS_FILE_NAME);
  try {
    return { handle: await open(path, APPEND_FLAGS), created: false };
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
  if (admit && !(await admit(agentId))) return undefined;
  // A delete by another FileEventLog can remove the directory between our
  // mkdir and open; a few attempts get past that race.
  for (let attempt = 1; ; attempt++) {
    try {
      await createAgentDir(baseDir, agentId, dir, fsync);
      await closeQuietly(await open(path, CREATE_FLAGS, 0o666));
      if (fsync) await syncDirectory(dir.path);
      return { handle: await open(path, APPEND_FLAGS), created: true };
    } catch (error) {
      if (errorCode(error) !== 'ENOENT' || attempt >= 3) throw error;
    }
  }
}

/** Creates the base directory (with its parents) and the agent's directory, synced when `fsync`. */
async function createAgentDir(
  baseDir: string,
  agentId: string,
  dir: AgentDir,
  fsync: boolean,
): Promise<void> {
  const firstCreated = await mkdir(baseDir, { recursive: true });
  if (firstCreated !== undefined && fsync) {
    // A new directory survives a power loss only once its parent's entry is
    // synced: sync the parent of every directory mkdir just created.
    let parent = dirname(firstCreated);
    await syncDirectory(parent);
    for (const segment of relative(parent, baseDir).split(sep).slice(0, -1)) {
      parent = join(parent, segment);
      await syncDirectory(parent);
    }
  }
  try {
    await mkdir(dir.path);
    if (fsync) await syncDirectory(baseDir);
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw error;
  }
  if (dir.hashed) await ensureSidecar(agentId, dir, fsync);
}

/** Writes the `agent-id` file of a hashed directory (atomically, via rename), or checks the one there. */
async function ensureSidecar(agentId: string, dir: AgentDir, fsync: boolean): Promise<void> {
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
    if (fsync) await handle.sync();
  } finally {
    await closeQuietly(handle);
  }
  await rename(temporary, path);
}
