import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { describePostgres, postgresUrl, requirePostgresUrl } from './postgres.js';
import { PortTakenError, saysAddressInUse, startOnSparePort } from './spare-port.js';

/**
 * A PgBouncer of one test's own, in front of a PostgreSQL server: a config
 * written to a temporary directory, a spare port, started as a child process
 * and stopped by its pid. PgBouncer refuses to run as root, so as root it
 * runs as the `postgres` user (else `nobody`).
 *
 * PgBouncer is required where PostgreSQL is (KODE_TEST_REQUIRE names
 * `postgres`): a missing binary then fails the run instead of skipping.
 */

/** Where the binary is looked for (KODE_TEST_PGBOUNCER first). */
const CANDIDATES = [process.env.KODE_TEST_PGBOUNCER, '/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].filter(
  (path): path is string => typeof path === 'string' && path !== '',
);

const binary = CANDIDATES.find((path) => existsSync(path)) ?? null;

const required = (process.env.KODE_TEST_REQUIRE ?? '')
  .split(',')
  .map((name) => name.trim().toLowerCase())
  .includes('postgres');

/** Why the PgBouncer tests cannot run here (null when they can). */
export const pgbouncerMissing: string | null = binary
  ? null
  : `no pgbouncer binary in ${CANDIDATES.join(', ')} (apt-get install pgbouncer, or set KODE_TEST_PGBOUNCER)`;

if (pgbouncerMissing) {
  if (required) {
    throw new Error(
      `KODE_TEST_REQUIRE names postgres, so PgBouncer is required too, but there is ${pgbouncerMissing}.`,
    );
  }
  console.warn(`\n!!! SKIPPING THE PGBOUNCER TESTS: ${pgbouncerMissing}. !!!\n`);
}

export type PoolMode = 'session' | 'transaction' | 'statement';

export interface PgBouncerOptions {
  /** The server PgBouncer connects to (`postgres://user[:password]@host:port/db`). */
  serverUrl: string;
  poolMode: PoolMode;
  /** Server connections per user and database (PgBouncer's `default_pool_size`, default 8 here). */
  poolSize?: number;
  /**
   * Startup parameters PgBouncer accepts without tracking them (default the
   * two the store sends: statement_timeout, lock_timeout). `[]` leaves the
   * setting out, as in PgBouncer's own default.
   */
  ignoreStartupParameters?: string[];
  /** Run on each new server connection (PgBouncer's `connect_query`): session settings behind a pooler. */
  connectQuery?: string;
}

export interface RunningPgBouncer {
  /** The server URL with PgBouncer's host and port (same user, password and database). */
  readonly url: string;
  readonly port: number;
  /** Stops PgBouncer (SIGINT, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
}

/** The uid and gid PgBouncer runs as: ours, or, as root, `postgres`'s (else `nobody`'s). */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const user of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      // No such user; try the next.
    }
  }
  throw new Error('running as root, and neither a postgres nor a nobody user exists to run PgBouncer as');
}

/** A value in PgBouncer's `key=value` connection strings: quoted, with quotes doubled. */
const connValue = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * Resolves once PgBouncer says it listens on `port` and accepts TCP
 * connections there, or rejects when the child exits first. Its own word is
 * needed: if another process took the port, that one accepts connections
 * while PgBouncer fails to bind it and exits.
 */
async function listening(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const listens = `listening on 127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `pgbouncer exited (${child.exitCode ?? child.signalCode}) before listening:\n${output()}`,
      );
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open && output().includes(listens)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`pgbouncer did not listen on port ${port} within 5 s:\n${output()}`);
}

/** Starts PgBouncer in front of `options.serverUrl`; resolves once it listens. */
export async function startPgBouncer(options: PgBouncerOptions): Promise<RunningPgBouncer> {
  if (!binary) throw new Error(pgbouncerMissing ?? 'no pgbouncer');
  const server = new URL(options.serverUrl);
  const user = decodeURIComponent(server.username) || process.env.PGUSER || userInfo().username;
  const password = decodeURIComponent(server.password);
  const owner = runAs();
  const target = [
    `host=${connValue(server.hostname || '127.0.0.1')}`,
    `port=${server.port || '5432'}`,
    ...(password ? [`password=${connValue(password)}`] : []),
    ...(options.connectQuery ? [`connect_query=${connValue(options.connectQuery)}`] : []),
  ].join(' ');
  const ignored = options.ignoreStartupParameters ?? ['statement_timeout', 'lock_timeout'];
  // Each attempt its own directory and config: the port is written in the config.
  const startOn = async (port: number): Promise<RunningPgBouncer> => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-pgbouncer-'));
    const config = [
      '[databases]',
      // Every database name the client asks for, on the same server.
      `* = ${target}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      // No Unix socket: the system's socket directory may belong to another PgBouncer.
      'unix_socket_dir =',
      // Trust: no password check at the pooler (it still needs the user in its auth file).
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      `pool_mode = ${options.poolMode}`,
      `default_pool_size = ${options.poolSize ?? 8}`,
      'max_client_conn = 1000',
      ...(ignored.length > 0 ? [`ignore_startup_parameters = ${ignored.join(',')}`] : []),
    ].join('\n');
    const configPath = join(dir, 'pgbouncer.ini');
    await writeFile(configPath, `${config}\n`);
    await writeFile(join(dir, 'users.txt'), `"${user.replace(/"/g, '""')}" ""\n`);
    if (owner) {
      for (const path of [dir, configPath, join(dir, 'users.txt')]) await chown(path, owner.uid, owner.gid);
    }
    await chmod(dir, 0o700);

    const child = spawn(binary, [configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(owner ?? {}),
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      // The log is only read when starting fails; keep its end.
      output = (output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // SIGTERM: PgBouncer exits at once (SIGINT would wait for clients to finish).
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    };
    try {
      await listening(port, child, () => output);
    } catch (error) {
      await stop();
      if (saysAddressInUse(output)) throw new PortTakenError(port, output);
      throw error;
    }
    const url = new URL(options.serverUrl);
    url.hostname = '127.0.0.1';
    url.port = String(port);
    return { url: url.toString(), port, stop };
  };
  return startOnSparePort('PgBouncer', startOn);
}

/**
 * `describePostgres` that also needs PgBouncer: skipped, with the reason in
 * its name, when the server or the binary is missing (and not required).
 */
export function describePgBouncer(name: string, body: () => void): void {
  if (postgresUrl && pgbouncerMissing) describe.skip(`${name} (skipped: ${pgbouncerMissing})`, body);
  else describePostgres(name, body);
}

/**
 * A PgBouncer in front of the test server for the calling file's tests:
 * started before them, stopped after. Call at the top of a `describePgBouncer` block.
 */
export function usePgBouncer(options: Omit<PgBouncerOptions, 'serverUrl'>): { readonly url: string } {
  let running: RunningPgBouncer | undefined;
  beforeAll(async () => {
    running = await startPgBouncer({ ...options, serverUrl: requirePostgresUrl() });
  });
  afterAll(async () => {
    await running?.stop();
  });
  return {
    get url() {
      if (!running) throw new Error('PgBouncer is not running (used outside the tests?)');
      return running.url;
    },
  };
}
