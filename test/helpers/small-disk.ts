import { execFileSync } from 'node:child_process';
import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  rmSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A small real file system (tmpfs) for disk-full tests: writes into it fail
 * with ENOSPC for real, no mock involved. Mounting needs root (or
 * CAP_SYS_ADMIN); `smallDiskUnavailable` says why it cannot be had here.
 */
export class SmallDisk {
  private constructor(
    /** The mount point; everything under it lives on the small disk. */
    readonly dir: string,
  ) {}

  /** Mounts a tmpfs of `bytes` on a fresh directory. */
  static mount(bytes: number): SmallDisk {
    const dir = mkdtempSync(join(tmpdir(), 'kode-small-disk-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0777`, 'tmpfs', dir], {
        stdio: 'pipe',
      });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    return new SmallDisk(dir);
  }

  /** Bytes that can still be written. */
  freeBytes(): number {
    const info = statfsSync(this.dir);
    return info.bavail * info.bsize;
  }

  /**
   * Fills the disk with a filler file, then gives back `leaveBytes` of it
   * (rounded up to whole blocks by the file system), so that the next
   * writes succeed for that much and then fail with ENOSPC.
   */
  fill(leaveBytes = 0): void {
    const fd = openSync(join(this.dir, 'filler'), 'a');
    try {
      const block = Buffer.alloc(64 * 1024, 0x61);
      for (;;) {
        try {
          writeSync(fd, block);
        } catch (error) {
          if ((error as { code?: string }).code === 'ENOSPC') break;
          throw error;
        }
      }
      if (leaveBytes > 0) ftruncateSync(fd, Math.max(0, fstatSync(fd).size - leaveBytes));
    } finally {
      closeSync(fd);
    }
  }

  /** Removes the filler: the disk has room again. */
  free(): void {
    rmSync(join(this.dir, 'filler'), { force: true });
  }

  /** Unmounts (lazily: a test that failed may leave a store's files open on it) and removes the mount point. */
  unmount(): void {
    execFileSync('umount', ['--lazy', this.dir], { stdio: 'pipe' });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Why no small disk can be mounted here (not root, no tmpfs), or undefined when it can. */
export const smallDiskUnavailable: string | undefined = (() => {
  try {
    SmallDisk.mount(64 * 1024).unmount();
    return undefined;
  } catch (error) {
    const detail = (error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message;
    return `needs to mount a small tmpfs (root or CAP_SYS_ADMIN) for real ENOSPC: ${detail}`;
  }
})();
