#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { type CliIo, ExitCode, type ExitCodeValue, processIo } from './cli-io.js';
import { withStandardHelp } from './command-support.js';
import { conformanceCommand } from './commands/conformance.js';
import { doctorCommand } from './commands/doctor.js';
import { exportCommand } from './commands/export.js';
import { importCommand } from './commands/import.js';
import { inspectCommand } from './commands/inspect.js';
import { migrateCommand } from './commands/migrate.js';

/**
 * The `kode-store` command line. `runCli` builds a fresh program per call
 * (commander keeps parse state on the program), so tests run commands
 * in-process with their own streams; the process entry point passes its own.
 */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<ExitCodeValue> {
  let exitCode: ExitCodeValue = ExitCode.ok;
  const setExit = (code: ExitCodeValue) => {
    exitCode = code;
  };
  const program = new Command('kode-store')
    .description('Migrate, inspect, check, back up and verify KODE agent stores.')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  withStandardHelp(program);
  for (const command of [
    migrateCommand(io, setExit),
    inspectCommand(io, setExit),
    doctorCommand(io, setExit),
    exportCommand(io, setExit),
    importCommand(io, setExit),
    conformanceCommand(io, setExit),
  ]) {
    // Subcommands inherit neither output nor exitOverride from the program.
    command.configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });
    command.exitOverride();
    command.showHelpAfterError('(run with --help for usage)');
    program.addCommand(command);
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here too, with commander's exit code 0.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    throw error;
  }
  return exitCode;
}

async function main(): Promise<void> {
  // `kode-store inspect ... | head` closes the pipe early; that is the
  // reader's choice, not an error worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  process.exitCode = await runCli(process.argv.slice(2));
}

// Run only as the entry point (`node dist/cli.cjs`, the npm bin link to it,
// `node --import tsx bin/kode-store.ts`), never when imported (tests). The
// bin link is a symlink, hence the realpath.
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `kode-store: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = ExitCode.failed;
  });
}
