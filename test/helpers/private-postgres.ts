import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe } from 'vitest';
import { PortTakenError, saysAddressInUse, startOnSparePort } from './spare-port.js';

/**
 * A PostgreSQL server of one test's own, on a spare port, for faults the
 * shared server must never see: every server process stopped (SIGSTOP) and
 * resumed, or the server stopped; and hot standbys of it (pg_basebackup -R,
 * started on another port) for read-replica tests. Built from the local
 * PostgreSQL binaries (initdb, pg_ctl, pg_basebackup); as root it runs as
 * the `postgres` user, since PostgreSQL refuses to run as root.
 */

const run = promisify(execFile);

/** Where the binaries are looked for (KODE_TEST_PG_BIN first). */
const BIN_DIRS = [
  process.env.KODE_TEST_PG_BIN,
  '/usr/lib/postgresql/17/bin',
  '/usr/lib/postgresql/16/bin',
  '/usr/lib/postgresql/15/bin',
  '/usr/lib/postgresql/14/bin',
].filter((dir): dir is string => typeof dir === 'string' && dir !== '');

/** The directory holding initdb and pg_ctl, or null. */
export function postgresBinDir(): string | null {
  return BIN_DIRS.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) ?? null;
}

/** Why a private server cannot be started here (null when it can). */
export function privatePostgresSkipReason(): string | null {
  if (process.platform !== 'linux') return 'a private PostgreSQL server is started on Linux only';
  if (postgresBinDir() === null) {
    return `no PostgreSQL binaries (initdb, pg_ctl) in ${BIN_DIRS.join(', ')}; set KODE_TEST_PG_BIN`;
  }
  return null;
}

/** `describe` for tests that need a private server; skipped, with the reason, where none can start. */
export function describeWithPrivatePostgres(name: string, body: () => void): void {
  const reason = privatePostgresSkipReason();
  if (reason === null) describe(name, body);
  else describe.skip(`${name} (skipped: ${reason})`, body);
}

/** A running private server. */
export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** SIGSTOPs the postmaster, then every process it started; resolves once all of them are stopped. */
  pause(): Promise<void>;
  /** SIGCONTs every stopped process. */
  resume(): Promise<void>;
  /**
   * Stops the server at once (`-m immediate`: every connection cut, no
   * checkpoint, crash recovery at the next start) and starts it again on the
   * same port; resolves once it accepts connections.
   */
  restart(): Promise<void>;
  /** Stops the server at once (immediate shutdown), keeping its data directory. */
  stop(): Promise<void>;
  /**
   * A hot standby of this server (started with `replication: true`): a base
   * backup taken with pg_basebackup -R (standby.signal and primary_conninfo
   * written for it), started on a port of its own, streaming from this one.
   */
  startStandby(): Promise<PrivatePostgres>;
  /** Resumes if paused, stops the server at once and removes its data directory. */
  destroy(): Promise<void>;
}

/** Options of `startPrivatePostgres`. */
export interface PrivatePostgresOptions {
  /** Ready to be a primary: wal_level replica and WAL senders (pg_hba allows replication from 127.0.0.1). */
  replication?: boolean;
}

/** Runs a PostgreSQL binary as a user PostgreSQL accepts (the `postgres` user when we are root). */
async function runAsServerUser(binary: string, args: string[]): Promise<void> {
  const asRoot = process.getuid?.() === 0;
  const [command, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
  await run(command, argv, { timeout: 60_000 });
}

/** Processes whose parent is `pid` (from /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name: state, ppid, ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

/** True once the kernel reports the process stopped (state T), or it is gone. */
async function isStopped(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
  } catch {
    return true;
  }
}

/** A directory owned by the server user, for a data directory, socket and log. */
async function serverDirectory(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kode-private-pg-'));
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  return dir;
}

/** Starts a fresh server (initdb, then pg_ctl start) and returns once it accepts connections. */
export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (bin === null) throw new Error(privatePostgresSkipReason() ?? 'no PostgreSQL binaries');
  const dir = await serverDirectory();
  const data = join(dir, 'data');
  await runAsServerUser(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  if (options.replication) {
    // initdb's pg_hba.conf already has these lines (with --auth=trust); stated here so the test does not rest on it.
    await appendFile(join(data, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\n');
  }
  const replication = options.replication ? ' -c wal_level=replica -c max_wal_senders=5' : '';
  return launch(bin, dir, data, replication);
}

/** Starts the server of `data` on a spare port (its socket in `dir`) and returns the handle on it. */
async function launch(
  bin: string,
  dir: string,
  data: string,
  extraOptions: string,
): Promise<PrivatePostgres> {
  const log = join(dir, 'log');
  const startOn = async (port: number) => {
    // The socket directory is the server's own: the system one may belong to another server.
    const serverOptions = `-p ${port} -h 127.0.0.1 -k ${dir} -c fsync=off -c max_connections=50${extraOptions}`;
    const logStart = await stat(log).then(
      (file) => file.size,
      () => 0,
    );
    try {
      await runAsServerUser(join(bin, 'pg_ctl'), ['-D', data, '-o', serverOptions, '-l', log, '-w', 'start']);
    } catch (error) {
      // This attempt's part of the log (pg_ctl appends): the postmaster's bind error is there, not in pg_ctl's output.
      const attemptLog = (await readFile(log).catch(() => Buffer.alloc(0)))
        .subarray(logStart)
        .toString('utf8');
      if (saysAddressInUse(attemptLog)) throw new PortTakenError(port, attemptLog);
      throw error;
    }
    return Number((await readFile(join(data, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  };
  const started = await startOnSparePort('a private PostgreSQL server', async (port) => ({
    port,
    postmaster: await startOn(port),
  }));
  const port = started.port;
  let postmaster = started.postmaster;
  const stopNow = () => runAsServerUser(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
  let stopped: number[] = [];

  const resume = async () => {
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
    }
    stopped = [];
  };
  const stop = async () => {
    await resume();
    await stopNow().catch(() => undefined);
  };

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async pause() {
      // The postmaster first: stopped, it starts no new process while the others are being stopped.
      process.kill(postmaster, 'SIGSTOP');
      stopped = [postmaster, ...(await childrenOf(postmaster))];
      for (const pid of stopped.slice(1)) {
        try {
          process.kill(pid, 'SIGSTOP');
        } catch {
          // Ended before it could be stopped.
        }
      }
      for (const pid of stopped) {
        while (!(await isStopped(pid))) await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    resume,
    async restart() {
      await resume();
      await stopNow();
      // The same port: clients hold the URL.
      postmaster = await startOn(port);
    },
    stop,
    async startStandby() {
      const standbyDir = await serverDirectory();
      const standbyData = join(standbyDir, 'data');
      // -R writes standby.signal and primary_conninfo; -X stream copies the WAL the backup needs.
      await runAsServerUser(join(bin, 'pg_basebackup'), [
        '-D',
        standbyData,
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'postgres',
        '-R',
        '-X',
        'stream',
        '--no-sync',
        '-c',
        'fast',
      ]);
      try {
        // hot_standby is on by default; a standby accepts read-only connections once consistent (pg_ctl -w waits for it).
        return await launch(bin, standbyDir, standbyData, ' -c hot_standby=on');
      } catch (error) {
        await rm(standbyDir, { recursive: true, force: true });
        throw error;
      }
    },
    async destroy() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
