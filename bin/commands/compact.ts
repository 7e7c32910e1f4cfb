import { Command } from 'commander';
import { supportsRetention } from '../../src/agent/retention.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import { action, openWritable, withLocation, withStandardHelp } from '../command-support.js';
import { printJson, renderKeyValues } from '../output.js';

/** Options of `kode-store compact`. */
export interface CompactCommandOptions {
  full?: boolean;
  json?: boolean;
}

/** `kode-store compact <location> [--full]`: gives freed space back (see `store.compact`). */
export async function runCompact(
  io: CliIo,
  location: string | undefined,
  options: CompactCommandOptions,
): Promise<ExitCodeValue> {
  const opened = await openWritable(io, location, 'the location');
  return withLocation(opened, async () => {
    const store = opened.store;
    if (!supportsRetention(store)) {
      throw new CliError(`${opened.label} (${opened.backend}) does not support compact`, ExitCode.usage);
    }
    const result = await store.compact({ full: options.full === true });
    if (options.json) {
      await printJson(io, { location: opened.label, ...result });
      return ExitCode.ok;
    }
    const bytes = (n: number | undefined) => (n === undefined ? 'unknown' : `${n} bytes`);
    await writeLine(io.stdout, `${opened.label}: ${result.action}`);
    await writeLine(
      io.stdout,
      renderKeyValues([
        ['size before', bytes(result.bytesBefore)],
        ['size after', bytes(result.bytesAfter)],
        ['free space left inside', bytes(result.reclaimableBytes)],
      ]),
    );
    return ExitCode.ok;
  });
}

export function compactCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('compact')
    .description(
      'Give the space of removed data back to the file system (SQLite), or vacuum the tables (PostgreSQL).',
    )
    .argument('[location]', 'the store (default: the environment)')
    .option(
      '--full',
      'SQLite: convert a file made without incremental auto-vacuum (rewrites it, blocks writers)',
    )
    .option('--json', 'print the report as JSON')
    .action(
      action(io, setExit, (location: string | undefined, options: CompactCommandOptions) =>
        runCompact(io, location, options),
      ),
    );
  return withStandardHelp(command);
}
