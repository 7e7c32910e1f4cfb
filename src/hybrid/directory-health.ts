import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

const PROBE_CONTENT = 'kode-store health probe\n';

/** What `healthCheck()` reports about a directory a store writes to. */
export interface DirectoryHealth {
  writable: boolean;
  error?: string;
}

/**
 * Whether files can really be written in `path`: a directory that exists is
 * probed by writing (and removing) a small file, since permission bits say
 * nothing for root or a read-only mount; a directory still to be created
 * needs its nearest existing ancestor to be a directory we can write in.
 * A regular file where the directory should be is reported as such. The
 * probe holds a few bytes, not none: creating an empty file still works on
 * a full disk, where every append fails.
 *
 * `probe: false` (a read-only store, which creates no file) asks the
 * permission bits instead (`access(W_OK)`), which a read-only mount answers
 * correctly but root's permissions do not.
 */
export async function checkDirectoryWritable(
  path: string,
  { probe = true }: { probe?: boolean } = {},
): Promise<DirectoryHealth> {
  const target = resolve(path);
  let current = target;
  for (;;) {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(current)).isDirectory();
    } catch (error) {
      const parent = dirname(current);
      if ((error as { code?: unknown }).code === 'ENOENT' && parent !== current) {
        current = parent;
        continue;
      }
      return { writable: false, error: `${current} cannot be read (${(error as Error).message})` };
    }
    if (!isDirectory) {
      return {
        writable: false,
        error: `${current} is not a directory, so ${target} cannot be created or written`,
      };
    }
    const file = join(current, `.kode-store-health-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      if (probe) {
        await writeFile(file, PROBE_CONTENT);
        await unlink(file);
      } else {
        await access(current, constants.W_OK);
      }
      return { writable: true };
    } catch (error) {
      if (probe) await unlink(file).catch(() => {});
      const code = (error as { code?: unknown }).code;
      const why = code === 'ENOSPC' || code === 'EDQUOT' ? 'is full' : 'is not writable';
      return { writable: false, error: `${current} ${why} (${(error as Error).message})` };
    }
  }
}
