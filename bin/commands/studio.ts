import { spawn } from 'node:child_process';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import { action, eventOrderOption, open, withLocation, withStandardHelp } from '../command-support.js';
import {
  DEFAULT_STUDIO_HOST,
  DEFAULT_STUDIO_PORT,
  type RunningStudio,
  startStudio,
} from '../studio/studio-server.js';
import { studioSourceOf } from '../studio/studio-source.js';

/** Options of `kode-store studio`. */
export interface StudioOptions {
  port: number;
  host: string;
  open?: boolean;
  skipCorrupt?: boolean;
  eventOrder?: 'timestamp' | 'seq';
}

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port from 0 to 65535');
  return n;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Why the server could not listen, as the user can act on it. */
function listenError(error: NodeJS.ErrnoException, options: StudioOptions): CliError {
  const where = `${options.host}:${options.port}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return new CliError(
        `${where} is in use; choose another --port, or --port 0 for any free one`,
        ExitCode.usage,
      );
    case 'EACCES':
      return new CliError(
        `not allowed to listen on ${where} (ports below 1024 need privileges)`,
        ExitCode.usage,
      );
    default:
      return new CliError(`cannot listen on ${where}: ${error.message}`, ExitCode.usage);
  }
}

/**
 * Opens the URL in the user's browser: `$BROWSER` when set (as many command
 * line tools honour it), else the platform's opener. Failing to open one is
 * not the studio failing: the URL is printed anyway.
 */
function openBrowser(url: string, io: CliIo): void {
  const browser = io.env.BROWSER;
  const [command, args] = browser
    ? [browser, [url]]
    : process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '""', url]]
        : ['xdg-open', [url]];
  const child = spawn(command, args, { stdio: 'ignore', detached: true });
  child.on('error', (error) => {
    void writeLine(
      io.stderr,
      `kode-store studio: could not open a browser (${error.message}); open the URL above`,
    );
  });
  child.unref();
}

/** Resolves at the first SIGINT or SIGTERM: Ctrl+C ends the studio cleanly. */
function untilStopped(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Runs `kode-store studio [location]` until it is stopped. */
export async function runStudio(
  location: string | undefined,
  options: StudioOptions,
  io: CliIo,
  stopped: () => Promise<unknown> = untilStopped,
): Promise<ExitCodeValue> {
  const opened = await open(io, location, {
    skipCorrupt: options.skipCorrupt,
    eventOrder: options.eventOrder,
  });
  return withLocation(opened, async () => {
    const source = studioSourceOf(opened);
    let studio: RunningStudio;
    try {
      studio = await startStudio({
        source,
        host: options.host,
        port: options.port,
        onError: (error) => {
          void writeLine(
            io.stderr,
            `kode-store studio: a request failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        },
      });
    } catch (error) {
      // Only a refused listen is the user's to fix with --port/--host; anything else is what it is.
      if ((error as NodeJS.ErrnoException).syscall === 'listen')
        throw listenError(error as NodeJS.ErrnoException, options);
      throw error;
    }
    const whenStopped = stopped();
    await writeLine(io.stdout, `kode-store studio: ${source.label} (${source.backend}, read-only)`);
    await writeLine(io.stdout, `  ${studio.url}`);
    if (!isLoopback(options.host)) {
      await writeLine(
        io.stderr,
        `kode-store studio: listening on ${options.host}: anyone who can reach it and has the URL can read this store`,
      );
    }
    await writeLine(io.stdout, 'Press Ctrl+C to stop.');
    if (options.open) openBrowser(studio.url, io);
    await whenStopped;
    await studio.close();
    await writeLine(io.stdout, 'kode-store studio: stopped');
    return ExitCode.ok;
  });
}

/** Registers `studio`. */
export function studioCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('studio')
    .description(
      'Look at a store in a browser: agents, conversations, tool calls, events, forks, stats, KV (read-only).',
    )
    .argument('[location]', 'the store to show (default: from the environment)')
    .addOption(
      new Option('--port <n>', 'port to listen on (0: any free port)')
        .argParser(portNumber)
        .default(DEFAULT_STUDIO_PORT),
    )
    .option(
      '--host <host>',
      'interface to listen on; anything but loopback lets other machines connect',
      DEFAULT_STUDIO_HOST,
    )
    .option('--open', 'open the URL in a browser ($BROWSER, else the system default)')
    .option('--skip-corrupt', 'json: locations: leave out corrupt files instead of stopping')
    .addOption(eventOrderOption())
    .addHelpText(
      'after',
      `
The studio only reads: the location is opened read-only and no request can
change it. It prints a URL with a random token; requests without the token
are refused (401). Stop it with Ctrl+C.

Examples:
  kode-store studio sqlite:./data/agents.db
  kode-store studio json:./data/store --open          (an SDK JSONStore, before migrating it)
  kode-store studio postgres://app@db/agents --port 0`,
    )
    .action(
      action(io, setExit, (location: string | undefined, options: StudioOptions) =>
        runStudio(location, options, io),
      ),
    );
  return withStandardHelp(command);
}
