import { constants as fsConstants, type Stats } from 'node:fs';
import { type FileHandle, open, readdir, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * File-system steps of the hybrid-mode event files, each on at most one
 * descriptor (the log's descriptor bound counts on that).
 */

// O_RDWR, not O_WRONLY: the torn-tail check reads the last byte through the
// same descriptor. O_NOFOLLOW: a symbolic link planted where an event file
// belongs must not redirect writes outside the base directory (0 where the
// platform lacks it).
export const APPEND_FLAGS = fsConstants.O_RDWR | fsConstants.O_APPEND | (fsConstants.O_NOFOLLOW ?? 0);
export const READ_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0);
export const CREATE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | (fsConstants.O_NOFOLLOW ?? 0);

const NEWLINE = 0x0a;

/** Writes all of `buffer`, counting in `written.bytes` what reached the file, also when a later write fails. */
export async function writeFully(
  handle: FileHandle,
  buffer: Buffer,
  written: { bytes: number },
): Promise<void> {
  let offset = 0;
  // A regular file rarely takes less than asked, but a short write (signal,
  // nearly full disk) must not drop the rest of the batch.
  while (offset < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset);
    offset += bytesWritten;
    written.bytes += bytesWritten;
  }
}

export async function endsWithNewline(handle: FileHandle, size: number): Promise<boolean> {
  const last = Buffer.alloc(1);
  const { bytesRead } = await handle.read(last, 0, 1, size - 1);
  return bytesRead === 1 && last[0] === NEWLINE;
}

export async function openForReading(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, READ_FLAGS);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

export async function syncDirectory(path: string): Promise<void> {
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
export async function closeQuietly(handle: FileHandle): Promise<void> {
  await handle.close().catch(() => undefined);
}

export async function statOrUndefined(path: string): Promise<Stats | undefined> {
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
export function holdsEvents(info: Stats | undefined): info is Stats {
  return info?.isFile() === true && info.size > 0;
}

export async function isDirectory(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isDirectory() ?? false;
}

export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function describeError(error: unknown): string {
  return errorCode(error) ?? (error instanceof Error ? error.message : String(error));
}

/**
 * Removes the temporary files `<path>.<pid>.<random><suffix>` that a crash
 * left (of a prune's rewrite, of a new channel index): those of processes
 * no longer running (a live one may be writing one right now).
 */
export async function removeStaleTemporaries(path: string, suffix: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return;
    throw error;
  }
  const prefix = `${basename(path)}.`;
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(suffix)) continue;
    const pid = Number(name.slice(prefix.length).split('.')[0]);
    // This process removes its own temporary files when a rewrite fails.
    if (pid === process.pid || (Number.isSafeInteger(pid) && pid > 0 && isRunning(pid))) continue;
    await unlink(join(dirname(path), name)).catch(() => undefined);
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return errorCode(error) === 'EPERM';
  }
}
