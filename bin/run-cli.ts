import { Command, CommanderError } from 'commander';
import { version } from '../package.json';
import { type CliIo, ExitCode, type ExitCodeValue, processIo } from './cli-io.js';
import { withStandardHelp } from './command-support.js';
import { compactCommand } from './commands/compact.js';
import { conformanceCommand } from './commands/conformance.js';
import { doctorCommand } from './commands/doctor.js';
import { eventsCommand } from './commands/events.js';
import { exportCommand } from './commands/export.js';
import { importCommand } from './commands/import.js';
import { inspectCommand } from './commands/inspect.js';
import { migrateCommand } from './commands/migrate.js';
import { pruneCommand } from './commands/prune.js';
import { studioCommand } from './commands/studio.js';

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
    .description('Migrate, inspect, check, back up, verify and browse KODE agent stores.')
    .version(version, '-V, --version', 'print the kode-store version')
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
    eventsCommand(io, setExit),
    pruneCommand(io, setExit),
    compactCommand(io, setExit),
    studioCommand(io, setExit),
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
