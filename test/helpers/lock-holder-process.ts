import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A lock held by a child process (scripts under test/child/*-lock-holder.ts). */
export interface ChildLock {
  /** Resolves once the child holds the lock. */
  acquired: Promise<void>;
  /** Asks the child to release and exit; resolves when it has exited. */
  release(): Promise<void>;
  /** SIGKILLs the child (a crashed holder); resolves when it is gone. */
  kill(): Promise<void>;
}

/**
 * Starts `test/child/<script>` with `args`. The script prints `acquired` once
 * it holds the lock, and releases and exits when it reads `release` on stdin.
 */
export function startLockHolder(script: string, args: string[]): ChildLock {
  const path = fileURLToPath(new URL(`../child/${script}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const acquired = new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('acquired\n')) resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`lock holder exited (${code}) before acquiring: ${stderr}`)),
    );
  });
  acquired.catch(() => undefined);
  return {
    acquired,
    async release() {
      child.stdin.write('release\n');
      await exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
