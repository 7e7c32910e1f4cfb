import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * A child Node process running one of the scripts in this folder (through
 * tsx), driven by lines: it prints what it did on stdout, the test answers
 * on stdin. Lets a test hold a lock or a transaction in another process for
 * exactly as long as it wants, without timing guesses.
 */
export class ChildScript {
  private readonly lines: string[] = [];
  private readonly waiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const waiter = this.waiters.find((w) => w.match(line));
      if (waiter) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      } else {
        this.lines.push(line);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  /** Starts `test/child/<script>` with `args`. */
  static start(script: string, args: string[]): ChildScript {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'test', 'child', script), ...args],
      {
        cwd: REPO_ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    return new ChildScript(child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resolves with the first line (already printed or still to come) starting with `prefix`; rejects if the child exits first. */
  waitFor(prefix: string): Promise<string> {
    const match = (line: string) => line.startsWith(prefix);
    const seen = this.lines.findIndex(match);
    if (seen >= 0) return Promise.resolve(this.lines.splice(seen, 1)[0]!);
    return new Promise((resolve, reject) => {
      this.waiters.push({ match, resolve });
      void this.exited.then(({ code, signal }) =>
        reject(
          new Error(
            `child exited (code ${code}, signal ${signal}) before printing ${JSON.stringify(prefix)}\n${this.stderr}`,
          ),
        ),
      );
    });
  }

  /** Writes one line to the child's stdin. */
  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Kills the child with `signal` and waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }

  /** What the child wrote to stderr so far. */
  get errors(): string {
    return this.stderr;
  }
}

/**
 * Resolves with the next line the parent writes to this process's stdin that
 * starts with `prefix`, then stops reading stdin (an open stdin would keep
 * the child alive after its script ends). Each script reads one line.
 */
export function nextStdinLine(prefix: string): Promise<string> {
  return new Promise((resolve) => {
    const lines = createInterface({ input: process.stdin });
    lines.on('line', (line) => {
      if (!line.startsWith(prefix)) return;
      lines.close();
      process.stdin.destroy();
      resolve(line);
    });
  });
}
