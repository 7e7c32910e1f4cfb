import { type ChildProcess, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CliIo } from '../../bin/cli-io.js';
import type { OpenedLocation, OpenLocationOptions } from '../../bin/open-location.js';
import { openLocation } from '../../bin/open-location.js';
import { runCli } from '../../bin/run-cli.js';
import type { AgentCounts } from '../../src/transfer/export-format.js';
import type { ExtendedStore } from '../../src/types.js';

/** Helpers shared by the command-line tests: run the CLI in-process or as a child, and the fixture with its manifest. */

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The JSONStore directory the KODE SDK v2.7.5 wrote (test/fixtures/README.md says how). */
export const FIXTURE_DIR = resolve(REPO_ROOT, 'test/fixtures/kode-jsonstore-v2.7.5');
export const FIXTURE_LOCATION = `json:${FIXTURE_DIR}`;
const MANIFEST_PATH = resolve(REPO_ROOT, 'test/fixtures/kode-jsonstore-v2.7.5.manifest.json');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function collect(stream: PassThrough): () => string {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks).toString('utf8');
}

/**
 * Runs the command line in this process. `stores` maps a location to an
 * already open store (e.g. one `MemoryStore` shared by several commands);
 * anything else opens for real.
 */
export async function runInProcess(
  argv: string[],
  options: {
    env?: Record<string, string | undefined>;
    stdin?: string;
    stores?: Record<string, ExtendedStore>;
  } = {},
): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out = collect(stdout);
  const err = collect(stderr);
  const io: CliIo = {
    stdout,
    stderr,
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    interactive: false,
    env: options.env ?? {},
    openLocation: async (
      location: string | undefined,
      opts: OpenLocationOptions,
    ): Promise<OpenedLocation> => {
      const store = location === undefined ? undefined : options.stores?.[location];
      if (store) {
        // Shared stores outlive a command: closing is the test's job.
        return {
          kind: 'store',
          label: location!,
          backend: 'memory',
          readOnly: opts.readOnly ?? false,
          store,
          source: store,
          close: async () => {},
        };
      }
      return openLocation(location, opts);
    },
  };
  const code = await runCli(argv, io);
  stdout.end();
  stderr.end();
  return { code, stdout: out(), stderr: err() };
}

/** tsx's loader, by absolute path, so a child can run in any working directory. */
export const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
export const CLI_ENTRY = join(REPO_ROOT, 'bin/kode-store.ts');

/** Starts `node --import tsx bin/kode-store.ts ...` (the real entry point), in the repository unless `cwd` says otherwise. */
export function startCli(
  argv: string[],
  env: Record<string, string | undefined> = {},
  cwd = REPO_ROOT,
): ChildProcess {
  return spawn(process.execPath, ['--import', TSX_LOADER, CLI_ENTRY, ...argv], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs the real entry point as a child process and waits for it. */
export async function spawnCli(
  argv: string[],
  options: { env?: Record<string, string | undefined>; stdin?: string; cwd?: string } = {},
): Promise<CliRun> {
  const child = startCli(argv, options.env, options.cwd);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  child.stdin!.end(options.stdin ?? '');
  const code = await new Promise<number>((done) => child.on('close', (c) => done(c ?? -1)));
  return { code, stdout, stderr };
}

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(prefix = 'kode-cli-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A writable copy of the fixture (tests never touch the shared one). */
export async function copyFixture(into: string): Promise<string> {
  const target = join(into, 'jsonstore');
  await cp(FIXTURE_DIR, target, { recursive: true });
  return target;
}

interface ManifestChannel {
  distinctLines: number;
  afterWalRecovery?: { distinctLines: number };
}

interface ManifestAgent {
  path: string;
  messages: { count: number };
  toolCalls: { count: number };
  events: Record<string, ManifestChannel>;
  todos: { count: number } | null;
  snapshots: unknown[];
  historyWindows: unknown[];
  compressions: unknown[];
  recoveredFiles: unknown[];
  mediaCache: { count: number } | null;
  metaJson: boolean;
}

export interface FixtureManifest {
  agents: Record<string, ManifestAgent>;
}

export async function loadManifest(): Promise<FixtureManifest> {
  return JSON.parse(await readFile(MANIFEST_PATH, 'utf8')) as FixtureManifest;
}

/**
 * What a correct copy of one fixture agent holds, from the manifest: events
 * are the distinct lines of every channel, the leftover WAL's lines included.
 */
export function expectedCounts(agent: ManifestAgent): AgentCounts {
  const events = Object.values(agent.events).reduce(
    (sum, channel) => sum + (channel.afterWalRecovery?.distinctLines ?? channel.distinctLines),
    0,
  );
  return {
    info: agent.metaJson ? 1 : 0,
    messages: agent.messages.count,
    toolCalls: agent.toolCalls.count,
    todos: agent.todos ? 1 : 0,
    events,
    historyWindows: agent.historyWindows.length,
    compressionRecords: agent.compressions.length,
    recoveredFiles: agent.recoveredFiles.length,
    mediaCache: agent.mediaCache?.count ?? 0,
    snapshots: agent.snapshots.length,
  };
}
